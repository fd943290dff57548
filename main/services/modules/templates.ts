// Module templates from resources/modules/<name>/: template.json plus the module files, with
// `{{NAME}}` replaced by parameter values (XML-escaped in .xml files, as given in scripts).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { ModuleFile, ModuleKind, TemplateInfo, TemplateParameter } from '../../api/contract.ts';
import { badInput, notFound } from '../errors.ts';
import { userconfigFile } from './signature.ts';

const templateNamePattern = /^[a-z0-9-]{1,64}$/;
const kinds: readonly ModuleKind[] = ['mirror', 'farm', 'light'];
export const templateFilesMax = 64;
export const parameterValueLengthMax = 1024;

export interface Template extends TemplateInfo {
  userconfig: string;
  files: ModuleFile[];
}

function xmlEscape(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}

export function fillPlaceholders(text: string, values: Record<string, string>, xml: boolean): string {
  return text.replace(/\{\{([A-Z0-9_]+)\}\}/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) return whole;
    return xml ? xmlEscape(value) : value;
  });
}

function readTemplate(dir: string, name: string): Template {
  const meta = JSON.parse(readFileSync(join(dir, 'template.json'), 'utf8')) as {
    kind: ModuleKind;
    title: string;
    description: string;
    parameters: TemplateParameter[];
  };
  if (!kinds.includes(meta.kind))
    throw new Error(`template ${name}: kind ${String(meta.kind)} is not mirror, farm or light`);
  const files: ModuleFile[] = [];
  let userconfig: string | null = null;
  const visit = (folder: string) => {
    for (const entry of readdirSync(folder).sort()) {
      const path = join(folder, entry);
      const info = statSync(path);
      const rel = relative(dir, path).split(sep).join('/');
      if (info.isDirectory()) visit(path);
      else if (rel === userconfigFile) userconfig = readFileSync(path, 'utf8');
      else if (rel.startsWith('bin/') || rel.startsWith('conf/'))
        files.push({ path: rel, text: readFileSync(path, 'utf8'), executable: (info.mode & 0o111) !== 0 });
      if (files.length > templateFilesMax)
        throw new Error(`template ${name} has more than ${templateFilesMax} files`);
    }
  };
  visit(dir);
  if (userconfig === null) throw new Error(`template ${name} has no ${userconfigFile}`);
  return {
    name,
    kind: meta.kind,
    title: meta.title,
    description: meta.description,
    parameters: meta.parameters,
    userconfig,
    files,
  };
}

export class TemplateLibrary {
  constructor(private readonly modulesDir: string) {}

  list(): Template[] {
    if (!existsSync(this.modulesDir)) return [];
    return readdirSync(this.modulesDir)
      .filter(
        (name) => templateNamePattern.test(name) && existsSync(join(this.modulesDir, name, 'template.json')),
      )
      .sort()
      .map((name) => readTemplate(join(this.modulesDir, name), name));
  }

  get(name: string): Template {
    if (typeof name !== 'string' || !templateNamePattern.test(name))
      throw badInput(`template name '${String(name)}' is not valid`);
    const found = this.list().find((template) => template.name === name);
    if (!found) throw notFound(`no module template named ${name} in ${this.modulesDir}`);
    return found;
  }

  /** The module files of a template with its parameters filled (defaults for those not given). */
  instantiate(
    name: string,
    given: Record<string, string>,
  ): { template: Template; userconfig: string; files: ModuleFile[] } {
    const template = this.get(name);
    const values: Record<string, string> = {};
    for (const parameter of template.parameters) {
      const value = given[parameter.name] ?? parameter.defaultValue;
      if (typeof value !== 'string' || value.length > parameterValueLengthMax || /[\r\n]/.test(value))
        throw badInput(`${parameter.label}: one line of at most ${parameterValueLengthMax} characters`);
      values[parameter.name] = value;
    }
    for (const key of Object.keys(given))
      if (!template.parameters.some((parameter) => parameter.name === key))
        throw badInput(`template ${name} has no parameter ${key}`);
    return {
      template,
      userconfig: fillPlaceholders(template.userconfig, values, true),
      files: template.files.map((file) => ({
        ...file,
        text: fillPlaceholders(file.text, values, file.path.endsWith('.xml')),
      })),
    };
  }
}
