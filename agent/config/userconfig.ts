// userconfig.xml: text in, effective ModuleConfig and located problems out. Pure: the file name,
// the environment used for %NAME% and the cluster are parameters, nothing is read from disk.
import { isIPv4 } from './addresses.ts';
import { isLuaBlock, parseLegacyRules } from './failover-rules.ts';
import { type Environment, MacroExpander } from './macros.ts';
import type {
  Checker,
  ClusterConfig,
  DefaultPrimary,
  ErrdSettings,
  FailoverRule,
  FailoverSettings,
  FarmSettings,
  HeartSettings,
  LoadBalancingGroup,
  LuaBlock,
  ModuleConfig,
  ModuleMode,
  NotReplicated,
  OnOff,
  ProcessMonitor,
  ReplicatedDir,
  RfsSettings,
  UserSettings,
  VipInterface,
  VipSettings,
  VirtualAddress,
  VirtualHostname,
} from './model.ts';
import { farmPortOf, heartbeatPortOf } from './ports.ts';
import { LineIndex } from './positions.ts';
import { type ConfigProblem, ProblemCollector } from './problems.ts';
import { elementHomes, type ParsedValue } from './schema.ts';
import { attributeSite, site, type WalkContext, type WalkedElement, walkDocument } from './schema-walk.ts';
import { SourceRefs } from './source-refs.ts';
import { userconfigRootName, userconfigSchema } from './userconfig-schema.ts';
import { validateModule } from './validate-module.ts';
import {
  elementChildren,
  elementPath,
  elementPathAt,
  findAttribute,
  nodeText,
  parseXml,
  type XmlDocument,
} from './xml.ts';

export interface LoadUserconfigOptions {
  /** Name used in problems; default `userconfig.xml`. */
  readonly file?: string;
  /** Values for %NAME% that are not macros; default none (pass process.env from a command). */
  readonly environment?: Environment;
  /** When given, lan and node names are checked against it. */
  readonly cluster?: ClusterConfig;
  /** The module's name, to catch a `<module>` checker watching its own module. */
  readonly moduleName?: string;
  /** Module-relative paths of the package (`bin/start_prim`), when known: handlers and custom
   *  checkers are then checked to exist. */
  readonly packageFiles?: readonly string[];
  /** The module id, when known: fills the ports derived from it. */
  readonly moduleId?: number;
}

export interface LoadedUserconfig {
  readonly document: XmlDocument;
  /** Undefined when the file has no usable `<service>`. */
  readonly config: ModuleConfig | undefined;
  readonly problems: readonly ConfigProblem[];
  /** No error: the configuration may be applied. */
  readonly ok: boolean;
}

const homes = elementHomes(userconfigSchema, userconfigRootName);

// Typed reads of walked values. The walker only keeps valid values and the schema's defaults, so
// a mismatch here is a bug in the schema tables, hence the fallbacks rather than user problems.

function numberOf(walked: WalkedElement, name: string, fallback = 0): number {
  const value = walked.value(name);
  return typeof value === 'number' ? value : fallback;
}

function optionalNumber(walked: WalkedElement, name: string): number | undefined {
  const value = walked.value(name);
  return typeof value === 'number' ? value : undefined;
}

function textOf(walked: WalkedElement, name: string): string {
  const value = walked.value(name);
  return value === undefined ? '' : String(value);
}

function optionalText(walked: WalkedElement, name: string): string | undefined {
  const value = walked.value(name);
  return value === undefined ? undefined : String(value);
}

function pick<T extends string>(walked: WalkedElement, name: string, allowed: readonly T[], fallback: T): T {
  const value: ParsedValue | undefined = walked.value(name);
  return allowed.find((candidate) => candidate === value) ?? fallback;
}

const onOffValues: readonly OnOff[] = ['on', 'off'];

function onOff(walked: WalkedElement, name: string, fallback: OnOff): OnOff {
  return pick(walked, name, onOffValues, fallback);
}

function trimmed(walked: WalkedElement, name: string): string {
  return textOf(walked, name).trim();
}

function buildHeart(heart: WalkedElement | undefined, refs: SourceRefs): HeartSettings | undefined {
  if (heart === undefined) return undefined;
  return {
    portUdp: optionalNumber(heart, 'port'),
    pulseMs: numberOf(heart, 'pulse'),
    timeoutMs: numberOf(heart, 'timeout'),
    permanentArp: onOff(heart, 'permanent_arp', 'on'),
    heartbeats: heart.childrenNamed('heartbeat').map((heartbeat) => ({
      lan: trimmed(heartbeat, 'name'),
      ident: trimmed(heartbeat, 'ident'),
      pulseMs: numberOf(heartbeat, 'pulse', numberOf(heart, 'pulse')),
      timeoutMs: numberOf(heartbeat, 'timeout', numberOf(heart, 'timeout')),
      source: refs.of(heartbeat),
    })),
    source: refs.of(heart),
  };
}

function buildFarm(farm: WalkedElement | undefined, refs: SourceRefs): FarmSettings | undefined {
  if (farm === undefined) return undefined;
  return {
    portUdp: optionalNumber(farm, 'port'),
    pulseMs: numberOf(farm, 'pulse'),
    mlostCount: numberOf(farm, 'mlost_count'),
    slostCount: numberOf(farm, 'slost_count'),
    lans: farm.childrenNamed('lan').map((lan) => ({ name: trimmed(lan, 'name'), source: refs.of(lan) })),
    source: refs.of(farm),
  };
}

function buildVirtualAddress(walked: WalkedElement, refs: SourceRefs): VirtualAddress {
  return {
    addr: trimmed(walked, 'addr'),
    where: pick(walked, 'where', ['one_side_alias', 'one_side', 'alias'], 'one_side_alias'),
    check: onOff(walked, 'check', 'on'),
    connections: onOff(walked, 'connections', 'off'),
    netmask: optionalText(walked, 'netmask')?.trim(),
    source: refs.of(walked),
  };
}

function buildVip(vip: WalkedElement | undefined, refs: SourceRefs): VipSettings | undefined {
  if (vip === undefined) return undefined;
  const interfaces: VipInterface[] = [];
  for (const list of vip.childrenNamed('interface_list')) {
    for (const entry of list.childrenNamed('interface')) {
      interfaces.push({
        name: optionalText(entry, 'name')?.trim(),
        check: onOff(entry, 'check', 'on'),
        arpreroute: onOff(entry, 'arpreroute', 'off'),
        arpintervalSec: numberOf(entry, 'arpinterval'),
        arpelapseSec: numberOf(entry, 'arpelapse'),
        realAddresses: entry
          .childrenNamed('real_interface')
          .flatMap((real) =>
            real.childrenNamed('virtual_addr').map((addr) => buildVirtualAddress(addr, refs)),
          ),
        virtualInterfaces: entry.childrenNamed('virtual_interface').map((virtual) => ({
          type: pick(virtual, 'type', ['vmac_directed', 'vmac_invisible'], 'vmac_directed'),
          mac: optionalText(virtual, 'addr'),
          addresses: virtual.childrenNamed('virtual_addr').map((addr) => buildVirtualAddress(addr, refs)),
          source: refs.of(virtual),
        })),
        source: refs.of(entry),
      });
    }
  }
  const groups: LoadBalancingGroup[] = [];
  for (const list of vip.childrenNamed('loadbalancing_list')) {
    for (const group of list.childrenNamed('group')) {
      groups.push({
        name: trimmed(group, 'name'),
        hosts: group
          .childrenNamed('cluster')
          .flatMap((cluster) => cluster.childrenNamed('host'))
          .map((host) => ({
            node: trimmed(host, 'name'),
            power: numberOf(host, 'power', 1),
            source: refs.of(host),
          })),
        rules: group.childrenNamed('rule').map((rule) => {
          const port = rule.value('port');
          return {
            virtualAddr: trimmed(rule, 'virtual_addr') || '*',
            port: typeof port === 'number' ? port : '*',
            proto: pick(rule, 'proto', ['tcp', 'udp', 'arp'], 'tcp'),
            filter: pick(rule, 'filter', ['on_addr', 'on_port', 'on_ipid'], 'on_addr'),
            source: refs.of(rule),
          };
        }),
        source: refs.of(group),
      });
    }
  }
  return {
    tcpreset: onOff(vip, 'tcpreset', 'on'),
    scriptcontrol: onOff(vip, 'scriptcontrol', 'off'),
    interfaces,
    groups,
    source: refs.of(vip),
  };
}

function buildReplicated(walked: WalkedElement, refs: SourceRefs): ReplicatedDir {
  const notReplicated: NotReplicated[] = [];
  for (const exclusion of walked.childrenNamed('notreplicated')) {
    const regexpath = optionalText(exclusion, 'regexpath');
    const path = optionalText(exclusion, 'path');
    if (regexpath !== undefined) {
      const negated = regexpath.startsWith('!');
      notReplicated.push({
        kind: 'regexpath',
        regex: negated ? regexpath.slice(1) : regexpath,
        negated,
        source: refs.of(exclusion),
      });
    } else if (path !== undefined) notReplicated.push({ kind: 'path', path, source: refs.of(exclusion) });
  }
  return {
    dir: trimmed(walked, 'dir'),
    readOnly: walked.value('mode') === 'read_only',
    notReplicated,
    toCheck: walked
      .childrenNamed('tocheck')
      .map((tocheck) => ({ path: textOf(tocheck, 'path'), source: refs.of(tocheck) })),
    source: refs.of(walked),
  };
}

function buildRfs(rfs: WalkedElement | undefined, refs: SourceRefs): RfsSettings | undefined {
  if (rfs === undefined) return undefined;
  const mountover = rfs.value('mountover');
  return {
    acl: onOff(rfs, 'acl', 'off'),
    async: pick(rfs, 'async', ['second', 'none'], 'second'),
    locktimeoutSec: numberOf(rfs, 'locktimeout'),
    sendtimeoutSec: numberOf(rfs, 'sendtimeout'),
    iotimeoutSec: numberOf(rfs, 'iotimeout'),
    roflags: numberOf(rfs, 'roflags'),
    nbrei: numberOf(rfs, 'nbrei'),
    reitimeoutSec: numberOf(rfs, 'reitimeout'),
    reidetail: onOff(rfs, 'reidetail', 'off'),
    reicommit: numberOf(rfs, 'reicommit'),
    packetsizeBytes: optionalNumber(rfs, 'packetsize'),
    reipacketsizeBytes: numberOf(rfs, 'reipacketsize'),
    ruzoneBlocksizeBytes: numberOf(rfs, 'ruzone_blocksize'),
    namespacepolicy: numberOf(rfs, 'namespacepolicy'),
    allocthresholdGb: numberOf(rfs, 'allocthreshold'),
    nbremconn: numberOf(rfs, 'nbremconn'),
    checktimeMs: numberOf(rfs, 'checktime'),
    checkintvSec: numberOf(rfs, 'checkintv'),
    nfsboxOptions: textOf(rfs, 'nfsbox_options'),
    scripts: onOff(rfs, 'scripts', 'off'),
    reiallowedbwKBps: optionalNumber(rfs, 'reiallowedbw'),
    syncdeltaMin: numberOf(rfs, 'syncdelta'),
    syncat: optionalText(rfs, 'syncat'),
    mountoversuffix: textOf(rfs, 'mountoversuffix'),
    mountover: mountover === 'on' || mountover === 'off' ? mountover : undefined,
    flowLan:
      rfs.child('flow') === undefined ? undefined : trimmed(rfs.child('flow') as WalkedElement, 'name'),
    replicated: rfs.childrenNamed('replicated').map((replicated) => buildReplicated(replicated, refs)),
    source: refs.of(rfs),
  };
}

function buildUser(user: WalkedElement | undefined, refs: SourceRefs): UserSettings | undefined {
  if (user === undefined) return undefined;
  return {
    nicestoptimeoutSec: numberOf(user, 'nicestoptimeout'),
    forcestoptimeoutSec: numberOf(user, 'forcestoptimeout'),
    logging: pick(user, 'logging', ['userlog', 'none'], 'userlog'),
    userlogsizeKB: numberOf(user, 'userlogsize'),
    vars: user.childrenNamed('var').map((variable) => ({
      name: trimmed(variable, 'name'),
      value: textOf(variable, 'value'),
      source: refs.of(variable),
    })),
    source: refs.of(user),
  };
}

function buildVhosts(vhost: WalkedElement | undefined, refs: SourceRefs): VirtualHostname[] {
  if (vhost === undefined) return [];
  return vhost.childrenNamed('virtualhostname').map((entry) => ({
    name: trimmed(entry, 'name'),
    envfile: trimmed(entry, 'envfile'),
    when: pick(entry, 'when', ['prim', 'second', 'both'], 'prim'),
    source: refs.of(entry),
  }));
}

function buildErrd(errd: WalkedElement | undefined, refs: SourceRefs): ErrdSettings | undefined {
  if (errd === undefined) return undefined;
  const processes: ProcessMonitor[] = errd.childrenNamed('proc').map((proc) => {
    const name = trimmed(proc, 'name');
    const services = optionalText(proc, 'restart_services');
    return {
      name,
      service: proc.value('service') === 'yes',
      nameregex: optionalText(proc, 'nameregex'),
      argregex: optionalText(proc, 'argregex'),
      atleast: numberOf(proc, 'atleast', 1),
      atmax: numberOf(proc, 'atmax', -1),
      action: textOf(proc, 'action').trim() || 'stopstart',
      class: textOf(proc, 'class').trim() || 'prim',
      startAfter: optionalNumber(proc, 'start_after'),
      restartServices:
        services === undefined
          ? []
          : services
              .split(',')
              .map((service) => service.trim())
              .filter((service) => service !== ''),
      resource: `proc.${name}`,
      source: refs.of(proc),
    };
  });
  return { polltimerSec: numberOf(errd, 'polltimer'), processes, source: refs.of(errd) };
}

const whenValues = ['prim', 'second', 'both', 'pre'] as const;
const actionValues = ['restart', 'stopstart', 'stop', 'wait', 'noaction'] as const;

function buildCheckers(
  check: WalkedElement | undefined,
  vip: VipSettings | undefined,
  mode: ModuleMode,
  refs: SourceRefs,
) {
  const checkers: Checker[] = [];
  for (const checker of check?.children ?? []) {
    const ident = trimmed(checker, 'ident');
    const source = refs.of(checker);
    const targets = checker.childrenNamed('to');
    switch (checker.element.name) {
      case 'tcp':
        checkers.push({
          type: 'tcp',
          ident,
          resource: `tcp.${ident}`,
          generated: false,
          source,
          when: pick(checker, 'when', whenValues, 'prim'),
          action: pick(checker, 'action', actionValues, 'restart'),
          targets: targets.map((to) => ({
            addr: trimmed(to, 'addr'),
            port: numberOf(to, 'port'),
            intervalSec: numberOf(to, 'interval'),
            timeoutSec: numberOf(to, 'timeout'),
          })),
        });
        break;
      case 'ping':
        checkers.push({
          type: 'ping',
          ident,
          resource: `ping.${ident}`,
          generated: false,
          source,
          when: pick(checker, 'when', whenValues, 'pre'),
          action: pick(checker, 'action', actionValues, 'wait'),
          targets: targets.map((to) => ({
            addr: trimmed(to, 'addr'),
            intervalSec: numberOf(to, 'interval'),
            timeoutSec: numberOf(to, 'timeout'),
          })),
        });
        break;
      case 'intf':
        checkers.push({
          type: 'intf',
          ident,
          resource: `intf.${ident}`,
          generated: false,
          source,
          when: pick(checker, 'when', whenValues, 'pre'),
          localAddrs: targets.map((to) => trimmed(to, 'local_addr')),
        });
        break;
      case 'ip':
        checkers.push({
          type: 'ip',
          ident,
          resource: `ip.${ident}`,
          generated: false,
          source,
          when: pick(checker, 'when', ['prim', 'both'], 'prim'),
          targets: targets.map((to) => ({
            addr: trimmed(to, 'addr'),
            intervalSec: numberOf(to, 'interval'),
          })),
        });
        break;
      case 'custom':
        checkers.push({
          type: 'custom',
          ident,
          resource: `custom.${ident}`,
          generated: false,
          source,
          when: pick(checker, 'when', whenValues, 'prim'),
          exec: trimmed(checker, 'exec'),
          arg: optionalText(checker, 'arg'),
          action: pick(checker, 'action', actionValues, 'noaction'),
        });
        break;
      case 'module': {
        const name = trimmed(checker, 'name');
        const moduleTargets = targets.map((to) => ({
          addr: optionalText(to, 'addr')?.trim(),
          port: numberOf(to, 'port', 9010),
          intervalSec: numberOf(to, 'interval'),
          timeoutSec: numberOf(to, 'timeout'),
          secure: onOff(to, 'secure', 'off'),
        }));
        const resourceIdent = ident !== '' ? ident : `${name}_${moduleTargets[0]?.addr ?? 'localhost'}`;
        checkers.push({
          type: 'module',
          ident: resourceIdent,
          resource: `module.${resourceIdent}`,
          generated: false,
          source,
          module: name,
          targets: moduleTargets,
        });
        break;
      }
      case 'splitbrain':
        checkers.push({
          type: 'splitbrain',
          ident,
          resource: `splitbrain.${ident}`,
          generated: false,
          source,
          witnesses: textOf(checker, 'arg')
            .split(/\s+/)
            .filter((witness) => witness !== ''),
        });
        break;
      default:
        break;
    }
  }
  // `<virtual_addr check="on">` generates an ip checker on the VIP; `<interface check="on">` an intf
  // checker named after the network, which needs the netmask (without it the agent derives it
  // from the interface at run time).
  for (const entry of vip?.interfaces ?? []) {
    const addresses = [
      ...entry.realAddresses,
      ...entry.virtualInterfaces.flatMap((virtual) => virtual.addresses),
    ];
    for (const address of addresses) {
      if (address.check === 'on' && address.addr !== '') {
        checkers.push({
          type: 'ip',
          ident: address.addr,
          resource: `ip.${address.addr}`,
          generated: true,
          source: address.source,
          when: mode === 'farm' ? 'both' : 'prim',
          targets: [{ addr: address.addr, intervalSec: 10 }],
        });
      }
      const network = entry.check === 'on' ? networkOf(address.addr, address.netmask) : undefined;
      if (network !== undefined && !checkers.some((checker) => checker.resource === `intf.${network}`)) {
        checkers.push({
          type: 'intf',
          ident: network,
          resource: `intf.${network}`,
          generated: true,
          source: entry.source,
          when: 'pre',
          localAddrs: [],
        });
      }
    }
  }
  return checkers;
}

/** `10.0.0.0` for 10.0.0.5/255.255.255.0 (or /24); undefined when not computable. */
export function networkOf(addr: string, netmask: string | undefined): string | undefined {
  if (netmask === undefined || !isIPv4(addr)) return undefined;
  let maskBits: number;
  const prefix = /^\/?([0-9]{1,2})$/.exec(netmask);
  if (prefix !== null) maskBits = Number(prefix[1]);
  else if (isIPv4(netmask))
    maskBits = netmask
      .split('.')
      .reduce((bits, part) => bits + (Number(part).toString(2).match(/1/g)?.length ?? 0), 0);
  else return undefined;
  if (maskBits > 32) return undefined;
  const value = addr.split('.').reduce((sum, part) => sum * 256 + Number(part), 0);
  const mask = maskBits === 0 ? 0 : (0xffffffff << (32 - maskBits)) >>> 0;
  const network = (value & mask) >>> 0;
  return [24, 16, 8, 0].map((shift) => (network >>> shift) & 255).join('.');
}

function buildFailover(
  failover: WalkedElement | undefined,
  context: WalkContext,
  lines: LineIndex,
  refs: SourceRefs,
): FailoverSettings | undefined {
  if (failover === undefined) return undefined;
  const rules: FailoverRule[] = [];
  const luaBlocks: LuaBlock[] = [];
  const positionOf = (offset: number) => lines.position(offset);
  for (const node of failover.element.children) {
    if (node.kind !== 'text' && node.kind !== 'cdata') continue;
    const raw = nodeText(context.source, node);
    if (raw.trim() === '') continue;
    const start = node.kind === 'cdata' ? node.content.start : node.span.start;
    const firstChar = start + (raw.length - raw.trimStart().length);
    if (isLuaBlock(raw)) {
      const position = lines.position(Math.min(firstChar, context.source.length));
      luaBlocks.push({ text: raw, line: position.line, column: position.column });
      context.problems.error(
        'lua-unsupported',
        { start: firstChar, end: firstChar, path: failover.path },
        'Lua failover rules are not supported by hakit; this block is kept but not run',
        'rewrite the rules in the legacy syntax: label: if (expression) then action();',
      );
      continue;
    }
    const expansion = context.expander?.expand(raw);
    const text = expansion?.value ?? raw;
    // Offsets are exact unless entities or macros changed the length; then errors point at the block.
    const written = context.source.slice(start, node.kind === 'cdata' ? node.content.end : node.span.end);
    const exact = text === written;
    const parsed = parseLegacyRules(text, exact ? start : () => start, positionOf);
    rules.push(...parsed.rules);
    for (const error of parsed.errors) {
      context.problems.error(
        'rule-syntax',
        { start: error.start, end: error.end, path: failover.path },
        error.message,
      );
    }
  }
  return {
    extends: failover.value('extends') !== 'no',
    periodMs: numberOf(failover, 'period'),
    handleTimeMs: numberOf(failover, 'handle_time'),
    rules,
    luaBlocks,
    source: refs.of(failover),
  };
}

function withPort<T extends { readonly portUdp: number | undefined }>(
  settings: T | undefined,
  moduleId: number | undefined,
  derive: (id: number) => number,
): T | undefined {
  if (settings === undefined || settings.portUdp !== undefined || moduleId === undefined) return settings;
  return { ...settings, portUdp: derive(moduleId) };
}

function defaultPrimaryOf(raw: string): DefaultPrimary {
  const value = raw.trim();
  if (value === '' || value === 'alone') return { kind: 'alone' };
  if (value === 'lastprim') return { kind: 'lastprim' };
  // The guide shows both `defaultprim="node1"` and `defaultprim="hostname node1"`.
  const hostname = /^hostname\s+(\S+)$/.exec(value);
  return { kind: 'node', node: hostname?.[1] ?? value };
}

function defineMacros(document: XmlDocument, expander: MacroExpander, problems: ProblemCollector): void {
  const root = document.root;
  if (root === undefined || root.name !== userconfigRootName) return;
  let serviceSeen = false;
  for (const child of elementChildren(root)) {
    if (child.name === 'service') serviceSeen = true;
    if (child.name !== 'macro') continue;
    const path = elementPath(child);
    const nameAttribute = findAttribute(child, 'name');
    const valueAttribute = findAttribute(child, 'value');
    const name = nameAttribute?.value.trim() ?? '';
    if (name === '' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) continue; // the schema walk reports it
    if (serviceSeen) {
      problems.warning(
        'document-structure',
        site(child.nameSpan, path),
        `macro ${name} is defined after <service>`,
        'define macros before <service>',
      );
    }
    if (expander.has(name)) {
      problems.warning(
        'duplicate-name',
        site(nameAttribute?.valueSpan ?? child.nameSpan, path),
        `macro ${name} is defined twice; the later value wins`,
      );
    }
    const expansion = expander.expand(valueAttribute?.value ?? '');
    for (const undefinedName of expansion.undefinedNames) {
      problems.warning(
        'undefined-macro',
        valueAttribute === undefined ? site(child.nameSpan, path) : attributeSite(valueAttribute, path),
        `%${undefinedName}% is neither a macro defined above nor an environment variable; it is left as written`,
      );
    }
    expander.define({ name, value: expansion.value, element: child, valueAttribute });
  }
}

function modeOf(document: XmlDocument, expander: MacroExpander): ModuleMode | undefined {
  const service =
    document.root === undefined
      ? undefined
      : elementChildren(document.root).find((child) => child.name === 'service');
  const raw = service === undefined ? undefined : findAttribute(service, 'mode')?.value;
  const mode = raw === undefined ? undefined : expander.expand(raw).value.trim();
  return mode === 'mirror' || mode === 'farm' || mode === 'light' ? mode : undefined;
}

export function loadUserconfig(text: string, options: LoadUserconfigOptions = {}): LoadedUserconfig {
  const file = options.file ?? 'userconfig.xml';
  const lines = new LineIndex(text);
  const problems = new ProblemCollector(file, lines);
  const document = parseXml(text);
  for (const problem of document.problems) {
    problems.add(
      problem.severity,
      'xml-syntax',
      { start: problem.span.start, end: problem.span.end, path: elementPathAt(document, problem.span.start) },
      problem.message,
      problem.hint,
    );
  }
  if (document.root !== undefined && document.root.name === userconfigRootName) {
    if (document.doctype === undefined) {
      problems.warning(
        'document-structure',
        site(document.root.nameSpan, userconfigRootName),
        'missing <!DOCTYPE safe> before <safe>',
        'the original product expects the file to start with <!DOCTYPE safe>',
      );
    } else if (document.doctype.name !== 'safe') {
      problems.warning(
        'document-structure',
        site(document.doctype.span, ''),
        `<!DOCTYPE ${document.doctype.name}> should be <!DOCTYPE safe>`,
      );
    }
  }
  const expander = new MacroExpander(options.environment ?? {});
  defineMacros(document, expander, problems);
  const mode = modeOf(document, expander);
  const context: WalkContext = { source: text, problems, mode, expander, homes };
  const root = walkDocument(document, userconfigSchema, userconfigRootName, context);
  let config: ModuleConfig | undefined;
  const service = root?.child('service');
  if (root !== undefined && service === undefined) {
    problems.error(
      'document-structure',
      site(root.element.nameSpan, root.path),
      'no <service> element in <safe>',
    );
  }
  if (service !== undefined && mode !== undefined) {
    const refs = new SourceRefs(lines);
    const vip = buildVip(service.child('vip'), refs);
    config = {
      mode,
      macros: expander
        .definitions()
        .map((definition) => ({ name: definition.name, value: definition.value })),
      service: {
        boot: pick(service, 'boot', ['on', 'off', 'auto', 'ignore'], 'ignore'),
        bootDelaySec: numberOf(service, 'boot_delay'),
        failover: onOff(service, 'failover', 'on'),
        defaultPrimary: defaultPrimaryOf(textOf(service, 'defaultprim')),
        maxloop: numberOf(service, 'maxloop', 3),
        loopIntervalHours: numberOf(service, 'loop_interval', 24),
        automaticReboot: onOff(service, 'automatic_reboot', 'off'),
      },
      heart: withPort(buildHeart(service.child('heart'), refs), options.moduleId, heartbeatPortOf),
      farm: withPort(buildFarm(service.child('farm'), refs), options.moduleId, farmPortOf),
      vip,
      rfs: buildRfs(service.child('rfs'), refs),
      user: buildUser(service.child('user'), refs),
      vhosts: buildVhosts(service.child('vhost'), refs),
      errd: buildErrd(service.child('errd'), refs),
      checkers: buildCheckers(service.child('check'), vip, mode, refs),
      failover: buildFailover(service.child('failover'), context, lines, refs),
    };
    validateModule(config, {
      problems,
      service: refs.of(service),
      ...(options.cluster === undefined ? {} : { cluster: options.cluster }),
      ...(options.moduleName === undefined ? {} : { moduleName: options.moduleName }),
      ...(options.packageFiles === undefined ? {} : { packageFiles: options.packageFiles }),
    });
  }
  const list = problems.list();
  return { document, config, problems: list, ok: !list.some((problem) => problem.severity === 'error') };
}
