// cluster.xml as the reference describes it (safekit-behaviour.md §4.14).
import { address, duration, type ElementSpec, element, integer, onOff, portNumber, text } from './schema.ts';

const nodeName = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

const legacyAttributes = {
  console: onOff(undefined, 'Ignored since 8.2.', { legacy: 'console= is ignored since 8.2' }),
  framework: onOff(undefined, 'Ignored since 8.2.', { legacy: 'framework= is ignored since 8.2' }),
};

const node = element('A node and its address on this lan.', {
  name: text('Node name, the same on every lan.', {
    required: 'set the node name',
    type: {
      kind: 'text',
      emptyAllowed: false,
      lengthMax: 255,
      pattern: nodeName,
      patternText: 'letters, digits, _ . and -',
    },
  }),
  addr: address(true, 'IPv4, [IPv6] or DNS name.', { required: 'set the node address' }),
  laddr: address(true, 'Local address when the node is behind NAT.'),
  ...legacyAttributes,
});

const lan = element(
  'A network.',
  {
    name: text('Lan name, used by <heartbeat name> and <farm><lan name>.', {
      required: 'set the lan name',
      type: {
        kind: 'text',
        emptyAllowed: false,
        lengthMax: 255,
        pattern: nodeName,
        patternText: 'letters, digits, _ . and -',
      },
    }),
    command: onOff(undefined, 'The lan used for distributed commands; default: the first lan.'),
    ...legacyAttributes,
  },
  { node },
);

export const clusterSchema: ElementSpec = element(
  'Root of cluster.xml.',
  {},
  {
    lans: element(
      'The cluster networks and the global membership protocol.',
      {
        port: portNumber(4800, 'UDP port of the cluster protocol.'),
        pulse: duration('ms', 100, false, 'Interval between membership packets.'),
        mlost_count: integer(1, 100_000, 20, 'Missed packets before electing a new leader.'),
        slost_count: integer(1, 100_000, 10, 'Missed packets before declaring a follower offline.'),
      },
      { lan },
      { occurrencesMax: 1 },
    ),
    arbitrator: element(
      'hakit extension: a third host running `hakitd --arbitrator` that grants each mirror module a ' +
        'time-bounded primary lease, so two nodes never run the primary side at once.',
      {
        addr: address(true, 'IPv4, [IPv6] or DNS name of the arbitrator.', {
          required: 'set the arbitrator address',
        }),
        port: portNumber(4810, 'UDP port of the arbitrator.'),
        lease: duration(
          'ms',
          4000,
          false,
          'How long a grant lasts. A dead primary is replaced after at most about this long.',
        ),
      },
      {},
      { occurrencesMax: 1 },
    ),
  },
);

export const clusterRootName = 'cluster';
