// Names of everything a lab creates. One place decides them so `down` can find a lab's
// leftovers from its name alone, even when the state file is gone after a crash.
import { join } from 'node:path';
import { LabError } from './command.ts';

export const labNameDefault = 'lab';
export const nodeCountMax = 32;
const labNamePattern = /^[a-z][a-z0-9]{0,9}$/;
const nodeNamePattern = /^(n[1-9][0-9]?|w|c)$/;

export function assertLabName(name: string): string {
  if (!labNamePattern.test(name)) {
    throw new LabError(
      `bad lab name '${name}': use 1 to 10 lower-case letters or digits, starting with a letter`,
    );
  }
  return name;
}

export function assertNodeName(name: string): string {
  if (!nodeNamePattern.test(name)) {
    throw new LabError(
      `bad node name '${name}': lab nodes are n1..n${nodeCountMax}, w (witness) and c (client)`,
    );
  }
  return name;
}

/** Root of every lab's files; overridable so tests of the naming can run elsewhere. */
export function labsRootDir(): string {
  return process.env.HAKIT_LAB_ROOT ?? '/var/lib/hakit-lab';
}

export function labDir(lab: string): string {
  return join(labsRootDir(), lab);
}

export function nodeDir(lab: string, node: string): string {
  return join(labDir(lab), 'nodes', node);
}

export function netnsPrefix(lab: string): string {
  return `hlab-${lab}-`;
}

export function nodeNetns(lab: string, node: string): string {
  return `${netnsPrefix(lab)}${node}`;
}

/** The namespace holding the lab's bridge (the "switch"). */
export function switchNetns(lab: string): string {
  return `${netnsPrefix(lab)}sw`;
}

/** The host's end of the veth into the switch (at most 13 characters, under IFNAMSIZ). */
export function hostLinkName(lab: string): string {
  return `hl-${lab}`;
}

/** A node's port on the lab bridge, inside the switch namespace. */
export function switchPortName(node: string): string {
  return `p-${node}`;
}

export const nodeLinkName = 'eth0';
export const bridgeName = 'br0';
export const nftTableName = 'hakit_lab';
