// The effective configuration in the two forms `hakit config show` prints: JSON (the typed model
// without source positions) and XML (a complete userconfig.xml: macros expanded, every attribute
// written with its default, durations with their unit). The XML form is also how the console
// writes a new module from a model: loading it gives back the same model.
import { formatDuration } from './duration.ts';
import type {
  Checker,
  FailoverRule,
  ModuleConfig,
  RuleAction,
  RuleExpression,
  VirtualAddress,
} from './model.ts';
import { escapeAttributeValue } from './xml.ts';

/** Positions: where things are written, not what they mean. */
const positionKeys = new Set(['source', 'start', 'end', 'line', 'column']);

/** Drops positions so the result only changes when the configuration does. */
export function effectiveJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(effectiveJson);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (positionKeys.has(key) || item === undefined) continue;
      out[key] = effectiveJson(item);
    }
    return out;
  }
  return value;
}

function precedence(expression: RuleExpression): number {
  switch (expression.kind) {
    case 'or':
      return 1;
    case 'and':
      return 2;
    case 'not':
      return 3;
    case 'compare':
      return 4;
    default:
      return 5;
  }
}

export function formatExpression(expression: RuleExpression): string {
  const wrap = (inner: RuleExpression, minimum: number): string => {
    const text = formatExpression(inner);
    return precedence(inner) < minimum ? `(${text})` : text;
  };
  switch (expression.kind) {
    case 'or':
      return `${wrap(expression.left, 1)} || ${wrap(expression.right, 2)}`;
    case 'and':
      return `${wrap(expression.left, 2)} && ${wrap(expression.right, 3)}`;
    case 'not':
      // Always `!(a == b)`: without parentheses a reader may take `!a == b` as `(!a) == b`.
      return `!${wrap(expression.operand, 5)}`;
    case 'compare':
      return `${wrap(expression.left, 5)} ${expression.op} ${wrap(expression.right, 5)}`;
    case 'resource':
      return `${expression.scope === undefined ? '' : `${expression.scope}.`}${expression.class}.${expression.name}`;
    case 'state':
      return expression.value;
    case 'call':
      return `${expression.name}()`;
    case 'word':
      return expression.value;
  }
}

function formatAction(action: RuleAction): string {
  return action.kind === 'command'
    ? `${action.command}()`
    : `${formatExpression(action.resource)}=${action.value}`;
}

export function formatRule(rule: FailoverRule): string {
  return `${rule.label}: if (${formatExpression(rule.condition)}) then ${formatAction(rule.action)};`;
}

type Attributes = readonly (readonly [string, string | number | undefined])[];

class XmlWriter {
  private readonly lines: string[] = [];

  tag(depth: number, name: string, attributes: Attributes, selfClosing: boolean): void {
    const written = attributes
      .filter((pair): pair is readonly [string, string | number] => pair[1] !== undefined)
      .map(([key, value]) => ` ${key}="${escapeAttributeValue(String(value), '"')}"`)
      .join('');
    this.lines.push(`${'  '.repeat(depth)}<${name}${written}${selfClosing ? '/>' : '>'}`);
  }

  close(depth: number, name: string): void {
    this.lines.push(`${'  '.repeat(depth)}</${name}>`);
  }

  raw(line: string): void {
    this.lines.push(line);
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

function virtualAddr(writer: XmlWriter, depth: number, address: VirtualAddress): void {
  writer.tag(
    depth,
    'virtual_addr',
    [
      ['addr', address.addr],
      ['where', address.where],
      ['check', address.check],
      ['connections', address.connections],
      ['netmask', address.netmask],
    ],
    true,
  );
}

function checker(writer: XmlWriter, depth: number, entry: Checker): void {
  const seconds = (value: number) => formatDuration(value, 's');
  switch (entry.type) {
    case 'tcp':
      writer.tag(
        depth,
        'tcp',
        [
          ['ident', entry.ident],
          ['when', entry.when],
          ['action', entry.action],
        ],
        false,
      );
      for (const to of entry.targets) {
        writer.tag(
          depth + 1,
          'to',
          [
            ['addr', to.addr],
            ['port', to.port],
            ['interval', seconds(to.intervalSec)],
            ['timeout', seconds(to.timeoutSec)],
          ],
          true,
        );
      }
      writer.close(depth, 'tcp');
      break;
    case 'ping':
      writer.tag(
        depth,
        'ping',
        [
          ['ident', entry.ident],
          ['when', entry.when],
          ['action', entry.action],
        ],
        false,
      );
      for (const to of entry.targets) {
        writer.tag(
          depth + 1,
          'to',
          [
            ['addr', to.addr],
            ['interval', seconds(to.intervalSec)],
            ['timeout', seconds(to.timeoutSec)],
          ],
          true,
        );
      }
      writer.close(depth, 'ping');
      break;
    case 'intf':
      writer.tag(
        depth,
        'intf',
        [
          ['ident', entry.ident],
          ['when', entry.when],
        ],
        false,
      );
      for (const addr of entry.localAddrs) writer.tag(depth + 1, 'to', [['local_addr', addr]], true);
      writer.close(depth, 'intf');
      break;
    case 'ip':
      writer.tag(
        depth,
        'ip',
        [
          ['ident', entry.ident],
          ['when', entry.when],
        ],
        false,
      );
      for (const to of entry.targets)
        writer.tag(
          depth + 1,
          'to',
          [
            ['addr', to.addr],
            ['interval', seconds(to.intervalSec)],
          ],
          true,
        );
      writer.close(depth, 'ip');
      break;
    case 'custom':
      writer.tag(
        depth,
        'custom',
        [
          ['ident', entry.ident],
          ['when', entry.when],
          ['exec', entry.exec],
          ['arg', entry.arg],
          ['action', entry.action],
        ],
        true,
      );
      break;
    case 'module':
      writer.tag(
        depth,
        'module',
        [
          ['ident', entry.ident],
          ['name', entry.module],
        ],
        entry.targets.length === 0,
      );
      for (const to of entry.targets) {
        writer.tag(
          depth + 1,
          'to',
          [
            ['addr', to.addr],
            ['port', to.port],
            ['interval', seconds(to.intervalSec)],
            ['timeout', seconds(to.timeoutSec)],
            ['secure', to.secure],
          ],
          true,
        );
      }
      if (entry.targets.length > 0) writer.close(depth, 'module');
      break;
    case 'splitbrain':
      writer.tag(
        depth,
        'splitbrain',
        [
          ['ident', entry.ident],
          ['exec', 'ping'],
          ['arg', entry.witnesses.join(' ')],
          ['when', 'pre'],
        ],
        true,
      );
      break;
  }
}

/** A complete userconfig.xml for `config`, every attribute written (defaults included). */
export function renderEffectiveXml(config: ModuleConfig): string {
  const writer = new XmlWriter();
  const ms = (value: number) => formatDuration(value, 'ms');
  const s = (value: number) => formatDuration(value, 's');
  writer.raw('<!DOCTYPE safe>');
  writer.raw('<safe>');
  writer.raw('<!-- Effective configuration (hakit): macros expanded, defaults filled in. -->');
  const service = config.service;
  const primary = service.defaultPrimary;
  const mirror = config.mode === 'mirror';
  writer.tag(
    0,
    'service',
    [
      ['mode', config.mode],
      ['boot', service.boot],
      ['boot_delay', s(service.bootDelaySec)],
      ['failover', mirror ? service.failover : undefined],
      ['defaultprim', mirror ? (primary.kind === 'node' ? primary.node : primary.kind) : undefined],
      ['maxloop', service.maxloop],
      ['loop_interval', formatDuration(service.loopIntervalHours, 'h')],
      ['automatic_reboot', service.automaticReboot],
    ],
    false,
  );
  const heart = config.heart;
  if (heart !== undefined) {
    writer.tag(
      1,
      'heart',
      [
        ['port', heart.portUdp],
        ['pulse', ms(heart.pulseMs)],
        ['timeout', ms(heart.timeoutMs)],
        ['permanent_arp', heart.permanentArp],
      ],
      false,
    );
    for (const heartbeat of heart.heartbeats) {
      writer.tag(
        2,
        'heartbeat',
        [
          ['name', heartbeat.lan],
          ['ident', heartbeat.ident],
          ['pulse', ms(heartbeat.pulseMs)],
          ['timeout', ms(heartbeat.timeoutMs)],
        ],
        true,
      );
    }
    writer.close(1, 'heart');
  }
  const farm = config.farm;
  if (farm !== undefined) {
    writer.tag(
      1,
      'farm',
      [
        ['port', farm.portUdp],
        ['pulse', ms(farm.pulseMs)],
        ['mlost_count', farm.mlostCount],
        ['slost_count', farm.slostCount],
      ],
      false,
    );
    for (const lan of farm.lans) writer.tag(2, 'lan', [['name', lan.name]], true);
    writer.close(1, 'farm');
  }
  const vip = config.vip;
  if (vip !== undefined) {
    writer.tag(
      1,
      'vip',
      [
        ['tcpreset', vip.tcpreset],
        ['scriptcontrol', config.mode === 'farm' ? vip.scriptcontrol : undefined],
      ],
      false,
    );
    if (vip.interfaces.length > 0) {
      writer.tag(2, 'interface_list', [], false);
      for (const entry of vip.interfaces) {
        writer.tag(
          3,
          'interface',
          [
            ['check', entry.check],
            ['arpreroute', entry.arpreroute],
            ['arpinterval', s(entry.arpintervalSec)],
            ['arpelapse', s(entry.arpelapseSec)],
            ['name', entry.name],
          ],
          false,
        );
        if (entry.realAddresses.length > 0) {
          writer.tag(4, 'real_interface', [], false);
          for (const address of entry.realAddresses) virtualAddr(writer, 5, address);
          writer.close(4, 'real_interface');
        }
        for (const virtual of entry.virtualInterfaces) {
          writer.tag(
            4,
            'virtual_interface',
            [
              ['type', virtual.type],
              ['addr', virtual.mac],
            ],
            false,
          );
          for (const address of virtual.addresses) virtualAddr(writer, 5, address);
          writer.close(4, 'virtual_interface');
        }
        writer.close(3, 'interface');
      }
      writer.close(2, 'interface_list');
    }
    if (vip.groups.length > 0) {
      writer.tag(2, 'loadbalancing_list', [], false);
      for (const group of vip.groups) {
        writer.tag(3, 'group', [['name', group.name]], false);
        if (group.hosts.length > 0) {
          writer.tag(4, 'cluster', [], false);
          for (const host of group.hosts)
            writer.tag(
              5,
              'host',
              [
                ['name', host.node],
                ['power', host.power],
              ],
              true,
            );
          writer.close(4, 'cluster');
        }
        for (const rule of group.rules) {
          writer.tag(
            4,
            'rule',
            [
              ['virtual_addr', rule.virtualAddr],
              ['port', rule.port],
              ['proto', rule.proto],
              ['filter', rule.filter],
            ],
            true,
          );
        }
        writer.close(3, 'group');
      }
      writer.close(2, 'loadbalancing_list');
    }
    writer.close(1, 'vip');
  }
  const rfs = config.rfs;
  if (rfs !== undefined) {
    writer.tag(
      1,
      'rfs',
      [
        ['acl', rfs.acl],
        ['async', rfs.async],
        ['locktimeout', s(rfs.locktimeoutSec)],
        ['sendtimeout', s(rfs.sendtimeoutSec)],
        ['iotimeout', s(rfs.iotimeoutSec)],
        ['roflags', `0x${rfs.roflags.toString(16)}`],
        ['nbrei', rfs.nbrei],
        ['reitimeout', s(rfs.reitimeoutSec)],
        ['reidetail', rfs.reidetail],
        ['reicommit', rfs.reicommit],
        ['packetsize', rfs.packetsizeBytes],
        ['reipacketsize', rfs.reipacketsizeBytes],
        ['ruzone_blocksize', rfs.ruzoneBlocksizeBytes],
        ['namespacepolicy', rfs.namespacepolicy],
        ['allocthreshold', rfs.allocthresholdGb],
        ['nbremconn', rfs.nbremconn],
        ['checktime', ms(rfs.checktimeMs)],
        ['checkintv', s(rfs.checkintvSec)],
        ['nfsbox_options', rfs.nfsboxOptions],
        ['scripts', rfs.scripts],
        ['reiallowedbw', rfs.reiallowedbwKBps],
        ['syncdelta', formatDuration(rfs.syncdeltaMin, 'm')],
        ['syncat', rfs.syncat],
        ['mountoversuffix', rfs.mountoversuffix],
        ['mountover', rfs.mountover],
      ],
      false,
    );
    if (rfs.flowLan !== undefined) writer.tag(2, 'flow', [['name', rfs.flowLan]], true);
    for (const replicated of rfs.replicated) {
      const empty = replicated.notReplicated.length === 0 && replicated.toCheck.length === 0;
      writer.tag(
        2,
        'replicated',
        [
          ['dir', replicated.dir],
          ['mode', replicated.readOnly ? 'read_only' : undefined],
        ],
        empty,
      );
      if (empty) continue;
      for (const exclusion of replicated.notReplicated) {
        writer.tag(
          3,
          'notreplicated',
          exclusion.kind === 'path'
            ? [['path', exclusion.path]]
            : [['regexpath', `${exclusion.negated ? '!' : ''}${exclusion.regex}`]],
          true,
        );
      }
      for (const check of replicated.toCheck) writer.tag(3, 'tocheck', [['path', check.path]], true);
      writer.close(2, 'replicated');
    }
    writer.close(1, 'rfs');
  }
  const user = config.user;
  if (user !== undefined) {
    writer.tag(
      1,
      'user',
      [
        ['nicestoptimeout', s(user.nicestoptimeoutSec)],
        ['forcestoptimeout', s(user.forcestoptimeoutSec)],
        ['logging', user.logging],
        ['userlogsize', user.userlogsizeKB],
      ],
      user.vars.length === 0,
    );
    for (const variable of user.vars)
      writer.tag(
        2,
        'var',
        [
          ['name', variable.name],
          ['value', variable.value],
        ],
        true,
      );
    if (user.vars.length > 0) writer.close(1, 'user');
  }
  if (config.vhosts.length > 0) {
    writer.tag(1, 'vhost', [], false);
    for (const host of config.vhosts) {
      writer.tag(
        2,
        'virtualhostname',
        [
          ['name', host.name],
          ['envfile', host.envfile],
          ['when', host.when],
        ],
        true,
      );
    }
    writer.close(1, 'vhost');
  }
  const errd = config.errd;
  if (errd !== undefined) {
    writer.tag(1, 'errd', [['polltimer', s(errd.polltimerSec)]], errd.processes.length === 0);
    for (const process of errd.processes) {
      writer.tag(
        2,
        'proc',
        [
          ['name', process.name],
          ['service', process.service ? 'yes' : 'no'],
          ['nameregex', process.nameregex],
          ['argregex', process.argregex],
          ['atleast', process.atleast],
          ['atmax', process.atmax],
          ['action', process.action],
          ['class', process.class],
          ['start_after', process.startAfter],
          [
            'restart_services',
            process.restartServices.length > 0 ? process.restartServices.join(', ') : undefined,
          ],
        ],
        true,
      );
    }
    if (errd.processes.length > 0) writer.close(1, 'errd');
  }
  const written = config.checkers.filter((entry) => !entry.generated);
  if (written.length > 0) {
    writer.tag(1, 'check', [], false);
    for (const entry of written) checker(writer, 2, entry);
    writer.close(1, 'check');
  }
  const failover = config.failover;
  if (failover !== undefined) {
    writer.tag(
      1,
      'failover',
      [
        ['extends', failover.extends ? 'yes' : 'no'],
        ['period', ms(failover.periodMs)],
        ['handle_time', ms(failover.handleTimeMs)],
      ],
      false,
    );
    if (failover.rules.length > 0) {
      writer.raw('<![CDATA[');
      for (const rule of failover.rules) writer.raw(formatRule(rule));
      writer.raw(']]>');
    }
    for (const block of failover.luaBlocks)
      writer.raw(`<![CDATA[${block.text.replace(/]]>/g, ']]]]><![CDATA[>')}]]>`);
    writer.close(1, 'failover');
  }
  writer.close(0, 'service');
  writer.raw('</safe>');
  return writer.text();
}
