// userconfig.xml, element by element, as the reference describes it (safekit-behaviour.md §4):
// names, value types, units, defaults and modes. Defaults marked [I] are not given by the
// reference and are hakit's choice. Attributes the reference's syntax shows without brackets
// (tcp and custom `when`, rule `proto`/`filter`, virtual_interface `type`) are required.
import {
  address,
  duration,
  type ElementSpec,
  element,
  identifier,
  identText,
  integer,
  oneOf,
  onOff,
  portNumber,
  text,
  type ValueLookup,
} from './schema.ts';

const checkerWhen = ['prim', 'second', 'both', 'pre'] as const;
const checkerActions = ['restart', 'stopstart', 'stop', 'wait', 'noaction'] as const;

const seconds = (defaultValue: number, doc: string) => duration('s', defaultValue, false, doc);

const heartbeat = element('One heartbeat on a lan of cluster.xml (resource heartbeat.<ident>).', {
  name: text('Name of a <lan> of cluster.xml.', {
    required: 'set the name of a lan of cluster.xml',
  }),
  ident: identText('Resource name heartbeat.<ident>; "flow" also carries replication.', {
    default: (element: ValueLookup) => element.value('name'),
  }),
  pulse: duration(
    'ms',
    (element: ValueLookup) => element.parent?.value('pulse'),
    false,
    'Interval between heartbeats.',
  ),
  timeout: duration(
    'ms',
    (element: ValueLookup) => element.parent?.value('timeout'),
    false,
    'Loss detection time for this heartbeat.',
  ),
});

const heart = element(
  'Mirror heartbeats.',
  {
    port: portNumber(undefined, 'UDP port; default 8888 + (module id - 1).'),
    pulse: duration('ms', 700, false, 'Interval between heartbeats.'),
    timeout: duration('ms', 30000, false, 'Heartbeat loss detection time.'),
    permanent_arp: onOff('on', 'Keep a static ARP entry for the peer addresses.'),
  },
  {
    heartbeat,
    server: element(
      'Heartbeat peer address, the syntax before 7.2.',
      {},
      {},
      {
        legacy: 'legacy <server> heartbeats (before 7.2) are not supported: use <heartbeat name="LAN"/>',
        legacyIsError: true,
        anyAttributes: true,
      },
    ),
  },
  { modes: ['mirror'], occurrencesMax: 1, dyn: true },
);

const farm = element(
  'Farm membership.',
  {
    port: portNumber(undefined, 'UDP port; default 4803 + (module id - 1) * 3.'),
    pulse: duration('ms', 100, false, 'Interval between membership packets.'),
    mlost_count: integer(1, 100_000, 20, 'Missed packets before electing a new leader.'),
    slost_count: integer(1, 100_000, 10, 'Missed packets before declaring a follower offline.'),
  },
  {
    lan: element(
      'A lan of cluster.xml used by the membership protocol.',
      { name: text('Name of a <lan> of cluster.xml.', { required: 'set the name of a lan of cluster.xml' }) },
      {
        node: element(
          'Node address, the syntax before cluster.xml.',
          {},
          {},
          {
            legacy: 'legacy <node> inside a farm <lan> is ignored: node addresses come from cluster.xml',
            anyAttributes: true,
          },
        ),
      },
    ),
  },
  { modes: ['farm'], occurrencesMax: 1 },
);

const virtualAddr = element('A virtual IP address.', {
  addr: address(false, 'Virtual IP address or name.', { required: 'set the virtual IP address' }),
  where: oneOf(
    ['one_side_alias', 'one_side', 'alias'],
    (element: ValueLookup) =>
      element.parent?.elementName === 'virtual_interface' ? 'alias' : 'one_side_alias',
    'Where the address is set. [I] default one_side_alias, or alias inside <virtual_interface>',
  ),
  check: onOff('on', 'Generate an <ip> checker (rule ip_failure).'),
  connections: onOff('off', 'Count active connections (resource connections.<vip>).'),
  netmask: { type: { kind: 'netmask' }, doc: 'Netmask of the virtual address.' },
});

const vip = element(
  'Virtual IP addresses and farm load balancing.',
  {
    tcpreset: onOff('on', 'Reset connections using the VIP as source before removing it.'),
    scriptcontrol: onOff('off', 'Scripts open and close farm traffic themselves.', { modes: ['farm'] }),
  },
  {
    interface_list: element(
      'Network interfaces carrying virtual addresses.',
      {},
      {
        interface: element(
          'One network interface.',
          {
            check: onOff('on', 'Generate an <intf> checker (rule interface_failure).'),
            arpreroute: onOff('off', 'Send gratuitous ARP for the VIP.'),
            arpinterval: seconds(60, 'Interval between gratuitous ARPs.'),
            arpelapse: seconds(1200, 'How long gratuitous ARPs are sent.'),
            name: text('Interface name (eth0); default: the one on the VIP subnet.'),
          },
          {
            real_interface: element(
              'Alias on the primary node only (mirror).',
              {},
              { virtual_addr: virtualAddr },
            ),
            virtual_interface: element(
              'Virtual MAC interface (farm, or a mirror needing a VMAC).',
              {
                type: oneOf(['vmac_directed', 'vmac_invisible'], undefined, 'How the virtual MAC is used.', {
                  required: 'set vmac_directed or vmac_invisible',
                }),
                addr: {
                  type: { kind: 'mac' },
                  doc: 'Virtual MAC; default 5A:FE followed by the VIP in hex.',
                },
              },
              { virtual_addr: virtualAddr },
            ),
          },
        ),
      },
      { occurrencesMax: 1 },
    ),
    loadbalancing_list: element(
      'Farm load-balancing groups.',
      {},
      {
        group: element(
          'A load-balancing group.',
          { name: text('Group name.', { required: 'set the group name' }) },
          {
            cluster: element(
              'Per-node power.',
              {},
              {
                host: element('A node and its share of the buckets.', {
                  name: text('Node name of cluster.xml.', { required: 'set a node name of cluster.xml' }),
                  power: integer(
                    0,
                    2_147_483_647,
                    1,
                    'Share of the 256 buckets; 0 takes no traffic. [I] default 1',
                  ),
                }),
              },
              { occurrencesMax: 1 },
            ),
            rule: element('Which traffic is balanced and how.', {
              virtual_addr: {
                type: { kind: 'address', brackets: false, anyAllowed: true },
                default: '*',
                doc: 'Virtual address or *.',
              },
              port: {
                type: { kind: 'port', anyAllowed: true },
                default: '*',
                doc: 'Port or *.',
                emptyHint: 'set the load-balanced port, or * for every port',
              },
              proto: oneOf(['tcp', 'udp', 'arp'], undefined, 'Protocol.', {
                required: 'set tcp, udp or arp',
              }),
              filter: oneOf(['on_addr', 'on_port', 'on_ipid'], undefined, 'Hash input.', {
                required: 'set on_addr, on_port or on_ipid',
              }),
            }),
          },
        ),
      },
      { modes: ['farm'], occurrencesMax: 1 },
    ),
  },
  { modes: ['mirror', 'farm'], occurrencesMax: 1 },
);

const replicated = element(
  'A replicated directory.',
  {
    dir: text('Absolute path of the directory.', {
      required: 'set the absolute path of the directory to replicate',
    }),
    mode: oneOf(['read_only'], undefined, 'read_only: read-only on the secondary.'),
  },
  {
    notreplicated: element(
      'A file or subdirectory left out of replication.',
      {
        path: text('Path relative to the replicated directory.'),
        regexpath: text('POSIX extended regular expression; a leading ! keeps only matches.'),
      },
      {},
      { exactlyOne: ['path', 'regexpath'] },
    ),
    tocheck: element('A path that must exist before replication starts.', {
      path: text('Path relative to the replicated directory.', { required: 'set the path to check' }),
    }),
  },
);

const rfs = element(
  'Real-time file replication.',
  {
    acl: onOff('off', 'Replicate ACLs.'),
    async: oneOf(['second', 'none'], 'second', 'When the secondary acknowledges.', { dyn: true }),
    locktimeout: seconds(100, 'Replication request timeout; past it the primary goes ALONE.'),
    sendtimeout: seconds(30, 'TCP send timeout to the secondary.'),
    iotimeout: seconds(300, 'Windows filter I/O timeout.'),
    roflags: {
      type: { kind: 'integer', min: 0, max: 0xffffffff, hex: true },
      default: 0x10,
      doc: 'Windows read-only flags (0x10, 0x10000).',
    },
    nbrei: integer(1, 64, 6, 'Parallel reintegration threads.', { dyn: true }),
    reitimeout: duration('s', 150, false, 'Reintegration request timeout.', { dyn: true }),
    reidetail: onOff('off', 'Verbose reintegration log.', { dyn: true }),
    reicommit: integer(0, 1_000_000, 0, 'Commit every N reintegration packets.'),
    packetsize: integer(
      1,
      1_073_741_824,
      undefined,
      'NFS rsize/wsize in bytes; default: the server default.',
    ),
    reipacketsize: integer(1, 1_073_741_824, 8_388_608, 'Reintegration packet size in bytes.'),
    ruzone_blocksize: integer(1, 1_073_741_824, 8_388_608, 'Modified-zone size in bytes.'),
    namespacepolicy: integer(0, 4, 4, 'Zone reintegration policy: 0, 1, 3 or 4.'),
    allocthreshold: integer(0, 1_000_000, 0, 'Windows: GB threshold to preallocate big files.'),
    nbremconn: integer(1, 64, 1, 'TCP connections between primary and secondary.'),
    checktime: duration('ms', 220000, false, 'Timeout of the NFS null-request probe.'),
    checkintv: seconds(120, 'Interval of the NFS null-request probe.'),
    nfsbox_options: text('Windows: reparse point handling.', { default: 'cross' }),
    scripts: onOff('off', 'Call the _rfs_* scripts of bin/.'),
    reiallowedbw: integer(1, 100_000_000, undefined, 'Reintegration bandwidth cap in KB/s.'),
    syncdelta: duration('m', 0, true, 'Minutes a not-up-to-date node may still become primary; 0 disables.'),
    syncat: text('Scheduled synchronisation (cron syntax).'),
    mountoversuffix: text('Suffix of the real directory.', { default: '_For_SafeKit_Replication' }),
    mountover: onOff(undefined, 'Legacy attribute of the vendor templates.', {
      legacy: 'mountover is not documented since 8.2 and has no effect',
    }),
  },
  {
    replicated,
    flow: element(
      'Replication network, the legacy way.',
      { name: text('Name of a lan of cluster.xml.', { required: 'set the name of a lan of cluster.xml' }) },
      {},
      { occurrencesMax: 1, dyn: true },
    ),
  },
  { modes: ['mirror'], occurrencesMax: 1 },
);

const user = element(
  'Scripts: their timeouts, logs and environment.',
  {
    nicestoptimeout: seconds(300, 'Time limit of the graceful stop scripts.'),
    forcestoptimeout: seconds(300, 'Time limit of the forced stop scripts.'),
    logging: oneOf(['userlog', 'none'], 'userlog', 'Write script output to per-run logs.'),
    userlogsize: integer(1, 10_000_000, 2048, 'Log size in KB that truncates logs at start.'),
  },
  {
    var: element('An environment variable of the scripts.', {
      name: text('Variable name.', {
        required: 'set the variable name',
        type: {
          kind: 'text',
          emptyAllowed: false,
          lengthMax: 256,
          pattern: identifier,
          patternText: 'letters, digits and _',
        },
      }),
      value: text('Variable value.', {}, true),
    }),
  },
  { occurrencesMax: 1, dyn: true },
);

const vhost = element(
  'Virtual hostname for the application.',
  {},
  {
    virtualhostname: element('A virtual hostname.', {
      name: text('Virtual hostname.', { required: 'set the virtual hostname' }),
      envfile: text('File the environment is written to.', { required: 'set the environment file' }),
      when: oneOf(['prim', 'second', 'both'], 'prim', 'When the name applies.'),
    }),
  },
  { modes: ['mirror', 'farm', 'light'], occurrencesMax: 1 },
);

const proc = element('A monitored process or service (resource proc.<name>).', {
  name: text('Command name or service name.', {
    required: 'set the name of the process or service to monitor',
  }),
  service: oneOf(['yes', 'no'], 'no', 'Monitor a systemd unit or Windows service.'),
  nameregex: text('Regular expression on the command name.'),
  argregex: text('Regular expression on the arguments.'),
  atleast: integer(0, 100_000, 1, 'Minimum number of processes.'),
  atmax: integer(-1, 100_000, -1, 'Maximum number of processes; -1: unused.'),
  action: {
    type: {
      kind: 'open-enum',
      values: ['restart', 'stopstart', 'stop', 'noaction'],
      pattern: /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/,
      otherwise: 'the name of a handler in bin/',
    },
    default: 'stopstart',
    doc: 'What to do when the condition fails.',
  },
  class: {
    type: {
      kind: 'open-enum',
      values: ['prim', 'both', 'pre', 'second', 'sec'],
      pattern: identifier,
      otherwise: 'a custom class name',
    },
    default: 'prim',
    doc: 'When monitoring is active. [I] default prim',
  },
  start_after: integer(1, 100_000, undefined, 'Start monitoring after (N-1) poll periods.'),
  restart_services: text('Services passed to the restart scripts (-Services).'),
});

const errd = element(
  'Process and service monitoring.',
  { polltimer: seconds(30, 'Poll interval.') },
  { proc },
  { occurrencesMax: 1, dyn: true },
);

const checkerTo = (attributes: ElementSpec['attributes']) =>
  element('Target of the checker.', { ...attributes });

const check = element(
  'Checkers.',
  {},
  {
    tcp: element(
      'TCP checker (resource tcp.<ident>).',
      {
        ident: identText('Checker name.', { required: 'set the checker ident' }),
        when: oneOf(
          checkerWhen,
          undefined,
          'When the checker runs (required: the reference gives no default).',
          {
            required: 'set prim, second, both or pre',
          },
        ),
        action: oneOf(
          checkerActions,
          (element: ValueLookup) => (element.value('when') === 'pre' ? 'wait' : 'restart'),
          'Action when the check fails.',
        ),
      },
      {
        to: checkerTo({
          addr: address(false, 'Address to connect to.', { required: 'set the address to check' }),
          port: portNumber(undefined, 'TCP port.', { required: 'set the port to check' }),
          interval: seconds(10, 'Interval between checks.'),
          timeout: seconds(5, 'Check timeout.'),
        }),
      },
    ),
    ping: element(
      'Ping checker (resource ping.<ident>).',
      {
        ident: identText('Checker name.', { required: 'set the checker ident' }),
        when: oneOf(checkerWhen, 'pre', 'When the checker runs.'),
        action: oneOf(checkerActions, 'wait', 'Action when the check fails.'),
      },
      {
        to: checkerTo({
          addr: address(false, 'Address to ping.', { required: 'set the address to ping' }),
          interval: seconds(10, 'Interval between checks.'),
          timeout: seconds(5, 'Check timeout.'),
        }),
      },
    ),
    intf: element(
      'Network interface checker (resource intf.<ident>, rule interface_failure).',
      {
        ident: identText('Checker name.', { required: 'set the checker ident' }),
        when: oneOf(checkerWhen, 'pre', 'When the checker runs.'),
      },
      {
        to: checkerTo({
          local_addr: address(false, 'A local address on the interface.', {
            required: 'set a local address of the interface',
          }),
        }),
      },
    ),
    ip: element(
      'IP address checker (resource ip.<ident>, rule ip_failure).',
      {
        ident: identText('Checker name.', { required: 'set the checker ident' }),
        when: oneOf(['prim', 'both'], 'prim', 'When the checker runs.'),
      },
      {
        to: checkerTo({
          addr: address(false, 'Address to check.', { required: 'set the address to check' }),
          interval: seconds(10, 'Interval between checks.'),
        }),
      },
    ),
    custom: element('Custom checker (resource custom.<ident>).', {
      ident: identText('Checker name.', { required: 'set the checker ident' }),
      when: oneOf(
        checkerWhen,
        undefined,
        'When the checker runs (required: the reference gives no default).',
        {
          required: 'set prim, second, both or pre',
        },
      ),
      exec: text('Executable, relative to bin/ or absolute.', { required: 'set the checker executable' }),
      arg: text('Arguments.', {}, true),
      action: oneOf(checkerActions, 'noaction', 'Action when the resource goes down.'),
    }),
    module: element(
      'Module checker (resource module.<ident>).',
      {
        ident: identText('Checker name; default <name>_<addr>.'),
        name: text('Watched module.', { required: 'set the name of the watched module' }),
      },
      {
        to: checkerTo({
          addr: address(false, 'Node running the watched module; default: this node.'),
          port: portNumber(9010, 'API port of that node (9010 HTTP, 9453 HTTPS).'),
          interval: seconds(10, 'Interval between checks.'),
          timeout: seconds(5, 'Check timeout.'),
          secure: onOff('off', 'Use HTTPS.'),
        }),
      },
    ),
    splitbrain: element(
      'Split-brain checker: witness ping (resource splitbrain.<ident>).',
      {
        ident: identText('Checker name.', { required: 'set the checker ident' }),
        exec: oneOf(['ping'], 'ping', 'Fixed: ping.'),
        arg: text('Witness addresses, separated by spaces.', { required: 'set the witness addresses' }),
        when: oneOf(['pre'], 'pre', 'Fixed: pre.'),
      },
      {},
      { modes: ['mirror'] },
    ),
  },
  { occurrencesMax: 1, dyn: true },
);

const failover = element(
  'Failover rules (legacy syntax in CDATA; Lua blocks are not supported).',
  {
    extends: oneOf(['yes', 'no'], 'yes', 'Add to the default rules (yes) or replace them (no).'),
    period: duration('ms', 5000, false, 'Rule evaluation interval.'),
    handle_time: duration('ms', 15000, false, 'How long an action must hold before it applies.'),
  },
  {},
  { occurrencesMax: 1, content: 'rules' },
);

const service = element(
  'The module.',
  {
    mode: oneOf(['mirror', 'farm', 'light'], undefined, 'Module kind.', {
      required: 'set mirror, farm or light',
    }),
    boot: oneOf(['on', 'off', 'auto', 'ignore'], 'ignore', 'Start at boot.', { dyn: true }),
    boot_delay: duration('s', 0, true, 'Delay before the start at boot.', { dyn: true }),
    failover: onOff('on', 'Automatic failover.', { modes: ['mirror'] }),
    defaultprim: text('alone, lastprim or a node name.', { default: 'alone', modes: ['mirror'] }),
    maxloop: integer(0, 1_000_000, 3, 'Automatic recoveries allowed within loop_interval.', { dyn: true }),
    loop_interval: duration('h', 24, true, 'Window of maxloop; 0 disables the counter.', { dyn: true }),
    automatic_reboot: onOff('off', 'A stopstart reboots the node.', { dyn: true }),
  },
  { heart, farm, vip, rfs, user, vhost, errd, check, failover },
  { occurrencesMax: 1 },
);

export const userconfigSchema: ElementSpec = element(
  'Root of userconfig.xml.',
  {},
  {
    macro: element(
      'A macro: every %NAME% is replaced by its value.',
      {
        name: text('Macro name.', {
          required: 'set the macro name',
          type: {
            kind: 'text',
            emptyAllowed: false,
            lengthMax: 256,
            pattern: identifier,
            patternText: 'letters, digits and _',
          },
        }),
        value: text('Macro value.', {}, true, 64 * 1024),
      },
      {},
      { literal: true },
    ),
    service,
  },
);

export const userconfigRootName = 'safe';
