// The lab's private address plan: 10.231.K.0/24 and fd48:616b:6974:K::/64 for lab number K.
// Nodes n1..n32 take host numbers 1..32, the witness w takes 100, the client c 200, and the
// machine running hakit-lab reaches the lab from .254 on its own veth.
import { LabError } from './command.ts';

export const subnetIndexMax = 199;
export const hostNumberOfHost = 254;

export interface LabAddressPlan {
  subnetIndex: number;
  subnet: string;
  subnet6: string;
  hostIp: string;
  hostIp6: string;
}

export function addressPlan(subnetIndex: number): LabAddressPlan {
  if (!Number.isInteger(subnetIndex) || subnetIndex < 0 || subnetIndex > subnetIndexMax) {
    throw new LabError(`lab subnet index ${subnetIndex} out of range 0..${subnetIndexMax}`);
  }
  return {
    subnetIndex,
    subnet: `10.231.${subnetIndex}.0/24`,
    subnet6: `fd48:616b:6974:${subnetIndex.toString(16)}::/64`,
    hostIp: nodeIp(subnetIndex, hostNumberOfHost),
    hostIp6: nodeIp6(subnetIndex, hostNumberOfHost),
  };
}

export function hostNumberOfNode(node: string): number {
  if (node === 'w') return 100;
  if (node === 'c') return 200;
  const match = /^n([1-9][0-9]?)$/.exec(node);
  if (!match?.[1]) throw new LabError(`bad node name '${node}'`);
  return Number(match[1]);
}

export function nodeIp(subnetIndex: number, hostNumber: number): string {
  return `10.231.${subnetIndex}.${hostNumber}`;
}

export function nodeIp6(subnetIndex: number, hostNumber: number): string {
  return `fd48:616b:6974:${subnetIndex.toString(16)}::${hostNumber.toString(16)}`;
}

/** [first, last] of an IPv4 CIDR as 32-bit numbers. */
export function ipv4Range(cidr: string): [number, number] {
  const [address, lengthText] = cidr.split('/');
  const parts = (address ?? '').split('.').map(Number);
  if (parts.length !== 4 || parts.some((part) => !Number.isInteger(part) || part < 0 || part > 255)) {
    throw new LabError(`bad IPv4 address in '${cidr}'`);
  }
  const length = lengthText === undefined ? 32 : Number(lengthText);
  const value = parts.reduce((sum, part) => sum * 256 + part, 0);
  const size = 2 ** (32 - length);
  const first = Math.floor(value / size) * size;
  return [first, first + size - 1];
}

export function ipv4RangesOverlap(a: string, b: string): boolean {
  const [aFirst, aLast] = ipv4Range(a);
  const [bFirst, bLast] = ipv4Range(b);
  return aFirst <= bLast && bFirst <= aLast;
}
