// Installing, applying and removing modules (reference 7.5): `module install|uninstall|list|
// listid|package`, `config`, `deconfig`, `confcheck`. A configuration is checked completely
// before anything is replaced, and swapped in with renames, so a failure leaves the old one.
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readClusterForValidation, signatureOf } from './cluster-files.ts';
import { moduleKeyPath, packageFiles, packageUserconfig } from '../config/module-package.ts';
import { readModuleFolder, readSafeFile, writeModuleFolder, writeSafeFile } from '../config/package-io.ts';
import { formatProblem } from '../config/problems.ts';
import { loadUserconfig } from '../config/userconfig.ts';
import type { ModulePackage } from '../config/module-package.ts';
import { moduleNameProblem, type ModuleRegistry } from './module-registry.ts';
import { updateRefusal } from './dynamic-update.ts';
import type { NodePaths } from './paths.ts';
import { runScript } from '../scripts/runner.ts';
import { archiveConfiguration } from '../api/snapshot.ts';
import {
  deleteModuleKey,
  editableModuleKeyFile,
  generateModuleKey,
  moduleKeyProblem,
  moduleKeySignature,
} from './module-key.ts';

export class ModuleAdminError extends Error {
  override name = 'ModuleAdminError';
}

function assertModuleName(module: string): void {
  const problem = moduleNameProblem(module);
  if (problem) throw new ModuleAdminError(problem);
}

function packageKeyProblem(modulePackage: ModulePackage): string | null {
  const key = modulePackage.entries.find((entry) => entry.path === moduleKeyPath);
  if (key === undefined) return null;
  if (key.kind !== 'file') return 'not a regular file (a link or a directory)';
  return moduleKeyProblem(new TextDecoder().decode(key.data));
}

/** Validates a module package; returns the warnings, throws with every error. */
export function checkPackage(
  paths: NodePaths,
  module: string,
  modulePackage: ModulePackage,
  origin: string,
): string[] {
  const text = packageUserconfig(modulePackage);
  if (text === undefined) throw new ModuleAdminError(`${origin}: conf/userconfig.xml is missing`);
  const cluster = readClusterForValidation(paths);
  const options = {
    file: `${origin}/conf/userconfig.xml`,
    environment: process.env,
    moduleName: module,
    packageFiles: packageFiles(modulePackage),
    ...(cluster ? { cluster } : {}),
  };
  const loaded = loadUserconfig(text, options);
  const lines = loaded.problems.map(formatProblem);
  // A bad key would only show when the nodes first connect: say it before anything changes.
  const keyProblem = packageKeyProblem(modulePackage);
  if (keyProblem !== null)
    lines.push(
      `${origin}/${moduleKeyPath}: error: module encryption key: ${keyProblem} (make one with: hakit module genkey -m ${module})`,
    );
  if (!loaded.ok || keyProblem !== null)
    throw new ModuleAdminError(`configuration of ${module} refused:\n${lines.join('\n')}`);
  return lines;
}

export class ModuleAdmin {
  constructor(
    private readonly paths: NodePaths,
    private readonly registry: ModuleRegistry,
  ) {}

  private editableDir(module: string): string {
    return join(this.paths.modulesDir, module);
  }

  private runtimeDir(module: string): string {
    return join(this.paths.runtimeModulesDir, module);
  }

  private assertStopped(module: string, action: string): void {
    const supervisor = this.registry.get(module);
    if (supervisor && supervisor.status().state !== 'STOP') {
      throw new ModuleAdminError(
        `${action} ${module}: stop the module first (it is ${supervisor.describe()})`,
      );
    }
  }

  /** `module install [-m AM] [-M id] [-r] PATH` from a .safe file or a module folder. */
  async install(
    source: string,
    options: { module?: string; id?: number; reinstall: boolean },
  ): Promise<string> {
    if (!existsSync(source)) throw new ModuleAdminError(`module install: ${source} does not exist`);
    const module = options.module ?? basename(source).replace(/\.safe$/, '');
    assertModuleName(module);
    const modulePackage = source.endsWith('.safe')
      ? await readSafeFile(source)
      : await readModuleFolder(source);
    if (packageUserconfig(modulePackage) === undefined)
      throw new ModuleAdminError(`${source}: conf/userconfig.xml is missing`);
    const target = this.editableDir(module);
    if (existsSync(target)) {
      if (!options.reinstall)
        throw new ModuleAdminError(`module ${module} is already installed; use -r to reinstall it`);
      this.assertStopped(module, 'module install -r');
    }
    const staging = join(this.paths.modulesDir, `.${module}.installing`);
    rmSync(staging, { recursive: true, force: true });
    await writeModuleFolder(modulePackage, staging);
    const old = join(this.paths.modulesDir, `.${module}.old`);
    rmSync(old, { recursive: true, force: true });
    if (existsSync(target)) renameSync(target, old);
    renameSync(staging, target);
    rmSync(old, { recursive: true, force: true });
    const id = this.registry.assignId(module, options.id);
    return `module ${module} installed with id ${id}; apply its configuration with: hakit config -m ${module}`;
  }

  /** `config -m AM`: check the editable module, then swap it in as the runtime copy and reload. */
  async apply(module: string): Promise<string> {
    assertModuleName(module);
    const source = this.editableDir(module);
    if (!existsSync(source)) throw new ModuleAdminError(`module ${module} is not installed (no ${source})`);
    // A running module takes a configuration whose changes are all dynamic (dynamic-update.ts).
    const running = this.registry.get(module)?.status();
    const dynamic = running !== undefined && running.state !== 'STOP';
    if (running !== undefined && dynamic) {
      const refusal = updateRefusal(running.mode, running);
      if (refusal !== null)
        throw new ModuleAdminError(`config ${module}: the module is running; ${refusal}; or stop it first`);
    }
    const modulePackage = await readModuleFolder(source);
    const warnings = checkPackage(this.paths, module, modulePackage, source);
    if (this.registry.ids()[module] === undefined) this.registry.assignId(module);
    const target = this.runtimeDir(module);
    const staging = join(this.paths.runtimeModulesDir, `.${module}.applying`);
    rmSync(staging, { recursive: true, force: true });
    await writeModuleFolder(modulePackage, staging);
    const old = join(this.paths.runtimeModulesDir, `.${module}.old`);
    rmSync(old, { recursive: true, force: true });
    if (existsSync(target)) renameSync(target, old);
    renameSync(staging, target);
    let updated = '';
    let updateAccepted = true;
    try {
      if (dynamic) {
        const outcome = await this.registry.update(module, 'config');
        if (!outcome.applied) throw new Error(outcome.message);
        // Applied: the new files stay even when the update script failed (said in the answer).
        updated = outcome.message;
        updateAccepted = outcome.accepted;
      } else await this.registry.reload(module);
    } catch (error) {
      // The new configuration cannot run: put the old one back, untouched.
      rmSync(target, { recursive: true, force: true });
      if (existsSync(old)) {
        renameSync(old, target);
        if (!dynamic) await this.registry.reload(module).catch(() => undefined);
      }
      throw new ModuleAdminError(`config ${module}: ${(error as Error).message}`);
    }
    rmSync(old, { recursive: true, force: true });
    archiveConfiguration(this.paths, module, target);
    // Running: the update script stood for config/postconfig (the application is up).
    if (dynamic && !updateAccepted)
      throw new ModuleAdminError(`config ${module}: configuration applied while running: ${updated}`);
    if (dynamic) return [...warnings, `module ${module} configured while running: ${updated}`].join('\n');
    for (const script of ['config', 'postconfig']) await this.runAdminScript(module, script);
    return [...warnings, `module ${module} configured`].join('\n');
  }

  private async runAdminScript(module: string, script: string): Promise<void> {
    const binDir = join(this.runtimeDir(module), 'bin');
    const result = await runScript({
      script,
      args: [],
      binDir,
      env: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        SAFE: this.paths.safe,
        SAFEBIN: this.paths.safeBin,
        SAFEVAR: this.paths.safeVar,
        SAFEMODULE: module,
        SAFEUSERBIN: binDir,
        SAFEUSERCONF: join(this.runtimeDir(module), 'conf'),
        SAFEUSERVAR: join(this.paths.moduleStateDir, module),
      },
      timeoutMs: 300_000,
      userlogDir: null,
      userlogBytesMax: 0,
    });
    if (!result.missing && result.exitCode !== 0) {
      throw new ModuleAdminError(
        `${script} script of ${module} failed (exit ${result.exitCode ?? result.signal})`,
      );
    }
  }

  async deconfig(module: string): Promise<string> {
    assertModuleName(module);
    this.assertStopped(module, 'deconfig');
    if (existsSync(this.runtimeDir(module))) await this.runAdminScript(module, 'deconfig');
    await this.registry.close(module);
    rmSync(this.runtimeDir(module), { recursive: true, force: true });
    return `module ${module} deconfigured`;
  }

  async uninstall(module: string): Promise<string> {
    assertModuleName(module);
    if (!existsSync(this.editableDir(module)))
      throw new ModuleAdminError(`module ${module} is not installed`);
    this.assertStopped(module, 'module uninstall');
    if (existsSync(this.runtimeDir(module))) await this.deconfig(module);
    rmSync(this.editableDir(module), { recursive: true, force: true });
    this.registry.releaseId(module);
    return `module ${module} uninstalled`;
  }

  async confcheck(module: string): Promise<string> {
    assertModuleName(module);
    const source = this.editableDir(module);
    if (!existsSync(source)) throw new ModuleAdminError(`module ${module} is not installed (no ${source})`);
    const warnings = checkPackage(this.paths, module, await readModuleFolder(source), source);
    return [...warnings, `module ${module}: configuration is valid`].join('\n');
  }

  async packageTo(module: string, file: string): Promise<string> {
    assertModuleName(module);
    if (!file.startsWith('/'))
      throw new ModuleAdminError(`module package: give an absolute path, not '${file}'`);
    const source = this.editableDir(module);
    if (!existsSync(source)) throw new ModuleAdminError(`module ${module} is not installed`);
    await writeSafeFile(await readModuleFolder(source), file);
    return `module ${module} packaged into ${file}`;
  }

  list(): string[] {
    return this.registry.installed();
  }

  listIds(): string[] {
    const ids = this.registry.ids();
    return Object.entries(ids)
      .sort(([, a], [, b]) => a - b)
      .map(([module, id]) => `${module} ${id}`);
  }

  /** Signature of the applied and of the edited configuration and encryption key (confinfo). */
  confinfo(module: string): string {
    const describe = (file: string) =>
      existsSync(file) ? `${file} (signature ${signatureOf(readFileSync(file))})` : `${file} (missing)`;
    const describeKey = (file: string) => {
      if (!existsSync(file)) return 'none';
      const text = readFileSync(file, 'utf8');
      return moduleKeyProblem(text) === null
        ? `signature ${moduleKeySignature(text)}`
        : `${file} is not a key: ${moduleKeyProblem(text)}`;
    };
    return [
      `applied: ${describe(join(this.runtimeDir(module), 'conf', 'userconfig.xml'))}`,
      `edited:  ${describe(join(this.editableDir(module), 'conf', 'userconfig.xml'))}`,
      `encryption key applied: ${describeKey(join(this.runtimeDir(module), ...moduleKeyPath.split('/')))}`,
      `encryption key edited:  ${describeKey(editableModuleKeyFile(this.paths.modulesDir, module))}`,
    ].join('\n');
  }

  /** `module genkey -m AM`: a new key in the editable module; `config` applies it. */
  genkey(module: string): string {
    assertModuleName(module);
    if (!existsSync(join(this.editableDir(module), 'conf')))
      throw new ModuleAdminError(`module ${module} is not installed (no ${this.editableDir(module)}/conf)`);
    return generateModuleKey(this.paths.modulesDir, module);
  }

  /** `module delkey -m AM`: removes the editable module's key; `config` turns encryption off. */
  delkey(module: string): string {
    assertModuleName(module);
    if (!existsSync(this.editableDir(module)))
      throw new ModuleAdminError(`module ${module} is not installed (no ${this.editableDir(module)})`);
    return deleteModuleKey(this.paths.modulesDir, module);
  }
}
