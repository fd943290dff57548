// The module's resource table (reference 1, 2.8): `class.id` -> value, who set it, when, and a
// short history. Checkers write it; the rule engine and `hakit state -v` read it. Pure.

export type ResourceValue = string;
export const resourceStates = ['init', 'up', 'down', 'unknown'] as const;

export interface ResourceChange {
  value: ResourceValue;
  setBy: string;
  atMs: number;
}

export interface Resource extends ResourceChange {
  history: ResourceChange[];
}

export type ResourceTable = Readonly<Record<string, Resource>>;

export const resourceHistoryMax = 16;
export const resourcesMax = 4096;
const resourceNamePattern = /^[a-z][a-z0-9_]*\.[A-Za-z0-9_.:@%-]{1,200}$/;
const resourceValuePattern = /^[\x20-\x7e]{0,256}$/;

export function isResourceName(name: string): boolean {
  return resourceNamePattern.test(name);
}

export function validateResourceAssignment(name: string, value: string): string | null {
  if (!isResourceName(name)) return `bad resource name '${name}' (expected class.id, e.g. custom.mycheck)`;
  if (!resourceValuePattern.test(value))
    return `bad value for ${name}: printable ASCII, at most 256 characters`;
  return null;
}

export function setResource(
  table: ResourceTable,
  name: string,
  value: ResourceValue,
  setBy: string,
  atMs: number,
): { table: ResourceTable; changed: boolean } {
  const problem = validateResourceAssignment(name, value);
  if (problem) throw new Error(problem);
  const current = table[name];
  if (current && current.value === value) return { table, changed: false };
  if (!current && Object.keys(table).length >= resourcesMax)
    throw new Error(`more than ${resourcesMax} resources`);
  const change: ResourceChange = { value, setBy, atMs };
  const history = [...(current?.history ?? []), change].slice(-resourceHistoryMax);
  return { table: { ...table, [name]: { ...change, history } }, changed: true };
}

export function resourceValue(table: ResourceTable, name: string): ResourceValue | undefined {
  return table[name]?.value;
}

/** Names of the resources of one class (`tcp` -> tcp.a, tcp.b). */
export function resourcesOfClass(table: ResourceTable, resourceClass: string): string[] {
  return Object.keys(table)
    .filter((name) => name.startsWith(`${resourceClass}.`))
    .sort();
}
