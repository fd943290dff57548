// Checks across the elements of one module (and against cluster.xml when given): what the schema
// walk cannot see element by element. Every problem points at the element or attribute to fix.
import { parseAddress } from './addresses.ts';
import { ruleResources } from './failover-rules.ts';
import type { Checker, ClusterConfig, ModuleConfig, SourceRef, VirtualAddress } from './model.ts';
import { isSameOrInside, type NormalizedPath, normalizePath, relativePathProblem } from './paths.ts';
import type { ProblemCollector, ProblemSite } from './problems.ts';
import { attributeSiteOf, elementSite } from './source-refs.ts';
import { closestName, didYouMean } from './suggest.ts';

export interface ModuleValidationContext {
  readonly problems: ProblemCollector;
  /** The `<service>` element, for problems about what is missing. */
  readonly service: SourceRef;
  readonly cluster?: ClusterConfig;
  readonly moduleName?: string;
  readonly packageFiles?: readonly string[];
}

/** Environment names the agent sets itself; a `<var>` may not replace them (reference §6.2). */
export const reservedVariableNames: readonly string[] = [
  'SAFE',
  'SAFEBIN',
  'SAFEVAR',
  'SAFEMODULE',
  'SAFEUSERBIN',
  'SAFEUSERCONF',
  'SAFEUSERVAR',
];

/** Linux truncates a process command name (comm) to 15 characters. */
const linuxCommandNameCharsMax = 15;

const rfsResources = [
  'uptodate',
  'degraded',
  'reintegre_failed',
  'synced',
  'syncat',
  'rfssync',
  'rep_bandwidth',
  'rei_bandwidth',
  'netout_bandwidth',
  'netin_bandwidth',
];
const usersettingResources = [
  'errd',
  'checker',
  'encryption',
  'boot',
  'failover',
  'rfssyncmode',
  'rfssyncrole',
  'rfssyncuid',
];

/** Names of the resources a module has, by class; `any` when the names are only known at run time. */
export function moduleResources(config: ModuleConfig): Map<string, Set<string> | 'any'> {
  const resources = new Map<string, Set<string> | 'any'>();
  const add = (resourceClass: string, name: string): void => {
    const set = resources.get(resourceClass);
    if (set === 'any') return;
    if (set === undefined) resources.set(resourceClass, new Set([name]));
    else set.add(name);
  };
  const declare = (resourceClass: string): void => {
    if (!resources.has(resourceClass)) resources.set(resourceClass, new Set());
  };
  for (const name of ['local', 'remote']) add('state', name);
  for (const name of usersettingResources) add('usersetting', name);
  add('heart', 'stopstartloop');
  for (const checkerType of [
    'tcp',
    'ping',
    'intf',
    'ip',
    'custom',
    'module',
    'splitbrain',
    'proc',
    'connections',
  ]) {
    declare(checkerType);
  }
  if (config.mode === 'mirror') {
    declare('heartbeat');
    for (const heartbeat of config.heart?.heartbeats ?? []) add('heartbeat', heartbeat.ident);
    for (const name of rfsResources) add('rfs', name);
    add('splitbrain', 'uptodate');
  }
  for (const process of config.errd?.processes ?? []) add('proc', process.name);
  for (const checker of config.checkers) add(checker.type, checker.ident);
  for (const entry of config.vip?.interfaces ?? []) {
    // Without a netmask the intf checker's name (the network address) is only known on the node.
    if (
      entry.check === 'on' &&
      !config.checkers.some((checker) => checker.type === 'intf' && checker.generated)
    ) {
      resources.set('intf', 'any');
    }
    for (const address of allAddresses(config))
      if (address.connections === 'on') add('connections', address.addr);
  }
  return resources;
}

export function allAddresses(config: ModuleConfig): VirtualAddress[] {
  return (config.vip?.interfaces ?? []).flatMap((entry) => [
    ...entry.realAddresses,
    ...entry.virtualInterfaces.flatMap((virtual) => virtual.addresses),
  ]);
}

function checkStructure(config: ModuleConfig, context: ModuleValidationContext): void {
  const { problems } = context;
  const serviceSite = elementSite(context.service);
  if (config.mode === 'mirror' && (config.heart === undefined || config.heart.heartbeats.length === 0)) {
    problems.error(
      'missing-value',
      serviceSite,
      'a mirror module needs <heart> with at least one <heartbeat name="LAN"/>',
    );
  }
  if (config.mode === 'farm' && (config.farm === undefined || config.farm.lans.length === 0)) {
    problems.error(
      'missing-value',
      serviceSite,
      'a farm module needs <farm> with at least one <lan name="LAN"/>',
    );
  }
  if (config.errd !== undefined && config.user === undefined) {
    problems.error(
      'missing-value',
      serviceSite,
      '<errd> needs <user/>: without <user> no script runs',
      'add <user/>',
    );
  }
  if (config.user === undefined && context.packageFiles?.some((file) => file.startsWith('bin/')) === true) {
    problems.warning(
      'missing-value',
      serviceSite,
      'no <user> element: the scripts in bin/ never run',
      'add <user/> to run them',
    );
  }
}

function checkHeartbeats(config: ModuleConfig, context: ModuleValidationContext): void {
  const { problems } = context;
  const heartbeats = config.heart?.heartbeats ?? [];
  const idents = new Map<string, SourceRef>();
  const lans = new Map<string, SourceRef>();
  for (const heartbeat of heartbeats) {
    const first = idents.get(heartbeat.ident);
    if (first !== undefined && heartbeat.ident !== '') {
      problems.error(
        'duplicate-name',
        attributeSiteOf(heartbeat.source, heartbeat.source.attributes.ident === undefined ? 'name' : 'ident'),
        `two heartbeats have the ident ${heartbeat.ident} (the other is at line ${first.line})`,
      );
    } else idents.set(heartbeat.ident, heartbeat.source);
    const sameLan = lans.get(heartbeat.lan);
    if (sameLan !== undefined && heartbeat.lan !== '') {
      problems.warning(
        'duplicate-name',
        attributeSiteOf(heartbeat.source, 'name'),
        `two heartbeats use lan ${heartbeat.lan} (the other is at line ${sameLan.line}); they fail together`,
      );
    } else lans.set(heartbeat.lan, heartbeat.source);
  }
  const flow = heartbeats.find((heartbeat) => heartbeat.ident === 'flow');
  if (flow !== undefined && config.rfs === undefined) {
    problems.error(
      'flow-without-rfs',
      attributeSiteOf(flow.source, flow.source.attributes.ident === undefined ? 'name' : 'ident'),
      'ident="flow" marks the replication network but the module has no <rfs>: it would stay in WAIT',
      'remove ident="flow" or add <rfs>',
    );
  }
}

function checkPathStyle(
  path: NormalizedPath,
  site: ProblemSite,
  problems: ProblemCollector,
  what: string,
): void {
  if (path.style === 'windows') {
    problems.warning(
      'replicated-dir',
      site,
      `${what} is a Windows path; hakit agents run on Linux nodes for now`,
      'on Linux nodes write an absolute POSIX path such as /srv/data',
    );
  }
}

function checkRfs(config: ModuleConfig, context: ModuleValidationContext): void {
  const rfs = config.rfs;
  if (rfs === undefined) return;
  const { problems } = context;
  if (rfs.replicated.length === 0) {
    problems.warning(
      'replicated-dir',
      elementSite(rfs.source),
      '<rfs> has no <replicated dir="..."/>: nothing is replicated',
    );
  }
  const seen: { path: NormalizedPath; source: SourceRef; dir: string }[] = [];
  for (const replicated of rfs.replicated) {
    const site = attributeSiteOf(replicated.source, 'dir');
    if (replicated.dir === '') continue; // reported as an empty placeholder
    const path = normalizePath(replicated.dir);
    if (path.style === 'relative') {
      problems.error(
        'replicated-dir',
        site,
        `replicated directory ${replicated.dir} is not an absolute path`,
      );
      continue;
    }
    if (path.hasParentSegment) {
      problems.error(
        'replicated-dir',
        site,
        `replicated directory ${replicated.dir} contains '..'`,
        'write the path without ..',
      );
      continue;
    }
    if (path.isRoot) {
      problems.error('replicated-dir', site, `the root directory ${replicated.dir} cannot be replicated`);
      continue;
    }
    checkPathStyle(path, site, problems, `replicated directory ${replicated.dir}`);
    const conflict =
      seen.find((other) => other.path.key === path.key) ??
      seen.find((other) => isSameOrInside(other.path, path) || isSameOrInside(path, other.path));
    for (const other of conflict === undefined ? [] : [conflict]) {
      if (other.path.key === path.key) {
        problems.error(
          'replicated-dir',
          site,
          `replicated directory ${replicated.dir} is listed twice (also at line ${other.source.line})`,
        );
      } else if (isSameOrInside(other.path, path)) {
        problems.error(
          'replicated-dir',
          site,
          `replicated directory ${replicated.dir} is inside ${other.dir} (line ${other.source.line}), already replicated`,
          `use <notreplicated> inside ${other.dir} or keep only one of them`,
        );
      } else if (isSameOrInside(path, other.path)) {
        problems.error(
          'replicated-dir',
          site,
          `replicated directory ${replicated.dir} contains ${other.dir} (line ${other.source.line}), listed separately`,
          'keep only the outer directory',
        );
      }
    }
    seen.push({ path, source: replicated.source, dir: replicated.dir });
    for (const exclusion of replicated.notReplicated) {
      if (exclusion.kind === 'path') {
        const problem = relativePathProblem(exclusion.path);
        if (problem !== undefined) {
          problems.error(
            'replicated-dir',
            attributeSiteOf(exclusion.source, 'path'),
            `notreplicated path ${problem}`,
          );
        }
      } else {
        try {
          new RegExp(exclusion.regex);
        } catch (error) {
          problems.error(
            'invalid-value',
            attributeSiteOf(exclusion.source, 'regexpath'),
            `regexpath is not a valid regular expression: ${(error as Error).message}`,
          );
        }
      }
    }
    for (const check of replicated.toCheck) {
      const problem = relativePathProblem(check.path);
      if (problem !== undefined && check.path.trim() !== '') {
        problems.error(
          'replicated-dir',
          attributeSiteOf(check.source, 'path'),
          `tocheck path ${check.path} ${problem}`,
        );
      }
    }
  }
  if (rfs.ruzoneBlocksizeBytes % rfs.reipacketsizeBytes !== 0) {
    problems.error(
      'invalid-value',
      attributeSiteOf(
        rfs.source,
        rfs.source.attributes.ruzone_blocksize === undefined ? 'reipacketsize' : 'ruzone_blocksize',
      ),
      `ruzone_blocksize (${rfs.ruzoneBlocksizeBytes}) must be a multiple of reipacketsize (${rfs.reipacketsizeBytes})`,
    );
  }
  if (![0, 1, 3, 4].includes(rfs.namespacepolicy)) {
    problems.error(
      'invalid-value',
      attributeSiteOf(rfs.source, 'namespacepolicy'),
      `namespacepolicy must be 0, 1, 3 or 4, not ${rfs.namespacepolicy}`,
    );
  }
  if (rfs.syncdeltaMin === 1) {
    problems.error(
      'invalid-value',
      attributeSiteOf(rfs.source, 'syncdelta'),
      'syncdelta must be 0 (disabled) or more than 1 minute',
    );
  }
  if (rfs.flowLan !== undefined && context.cluster !== undefined) {
    checkLanName(rfs.flowLan, elementSite(rfs.source), context.cluster, context.problems, '<flow>');
  }
}

function checkLanName(
  name: string,
  site: ProblemSite,
  cluster: ClusterConfig,
  problems: ProblemCollector,
  what: string,
): boolean {
  if (name === '') return false;
  if (cluster.lans.some((lan) => lan.name === name)) return true;
  const names = cluster.lans.map((lan) => lan.name);
  problems.error(
    'unknown-lan',
    site,
    `${what} name ${name} is not a lan of cluster.xml (lans: ${names.join(', ') || 'none'})`,
    didYouMean(name, names),
  );
  return false;
}

/** The nodes a module runs on: every node of the lans it uses. */
function moduleNodes(config: ModuleConfig, cluster: ClusterConfig): Set<string> {
  const lanNames =
    config.mode === 'mirror'
      ? (config.heart?.heartbeats ?? []).map((heartbeat) => heartbeat.lan)
      : (config.farm?.lans ?? []).map((lan) => lan.name);
  const nodes = new Set<string>();
  for (const lan of cluster.lans) {
    if (lanNames.includes(lan.name)) for (const node of lan.nodes) nodes.add(node.name);
  }
  return nodes;
}

function checkAgainstCluster(config: ModuleConfig, context: ModuleValidationContext): void {
  const cluster = context.cluster;
  if (cluster === undefined) return;
  const { problems } = context;
  const uses =
    config.mode === 'mirror'
      ? (config.heart?.heartbeats ?? []).map((heartbeat) => ({
          name: heartbeat.lan,
          source: heartbeat.source,
          what: 'heartbeat',
        }))
      : (config.farm?.lans ?? []).map((lan) => ({ name: lan.name, source: lan.source, what: 'farm lan' }));
  let allKnown = true;
  for (const use of uses) {
    if (!checkLanName(use.name, attributeSiteOf(use.source, 'name'), cluster, problems, use.what))
      allKnown = false;
  }
  if (config.mode === 'light') return;
  const nodes = moduleNodes(config, cluster);
  if (allKnown && uses.length > 0) {
    if (config.mode === 'mirror' && nodes.size !== 2) {
      problems.error(
        'node-count',
        elementSite(context.service),
        `a mirror module runs on exactly 2 nodes; its lans have ${nodes.size} (${[...nodes].join(', ') || 'none'})`,
      );
    }
    if (config.mode === 'farm' && nodes.size < 2) {
      problems.error(
        'node-count',
        elementSite(context.service),
        `a farm module needs at least 2 nodes; its lans have ${nodes.size} (${[...nodes].join(', ') || 'none'})`,
      );
    }
    for (const use of uses) {
      const lan = cluster.lans.find((candidate) => candidate.name === use.name);
      if (lan === undefined) continue;
      const missing = [...nodes].filter((node) => !lan.nodes.some((lanNode) => lanNode.name === node));
      if (missing.length === 0) continue;
      const message = `lan ${lan.name} has no address for ${missing.join(', ')}: the ${use.what} on it cannot reach ${missing.length === 1 ? 'that node' : 'those nodes'}`;
      if (config.mode === 'mirror')
        problems.error('node-count', attributeSiteOf(use.source, 'name'), message);
      else problems.warning('node-count', attributeSiteOf(use.source, 'name'), message);
    }
  }
  const primary = config.service.defaultPrimary;
  if (config.mode === 'mirror' && primary.kind === 'node' && !nodes.has(primary.node) && nodes.size > 0) {
    problems.error(
      'unknown-node',
      attributeSiteOf(context.service, 'defaultprim'),
      `defaultprim ${primary.node} is not a node of this module (${[...nodes].join(', ')})`,
      didYouMean(primary.node, [...nodes, 'alone', 'lastprim']),
    );
  }
  for (const group of config.vip?.groups ?? []) {
    for (const host of group.hosts) {
      if (host.node !== '' && !cluster.nodes.includes(host.node)) {
        problems.error(
          'unknown-node',
          attributeSiteOf(host.source, 'name'),
          `host ${host.node} is not a node of cluster.xml (${cluster.nodes.join(', ')})`,
          didYouMean(host.node, cluster.nodes),
        );
      }
    }
  }
}

function checkVip(config: ModuleConfig, context: ModuleValidationContext): void {
  const vip = config.vip;
  if (vip === undefined) return;
  const { problems } = context;
  const seen = new Map<string, SourceRef>();
  for (const entry of vip.interfaces) {
    const count =
      entry.realAddresses.length + entry.virtualInterfaces.reduce((sum, v) => sum + v.addresses.length, 0);
    if (count === 0)
      problems.warning('missing-value', elementSite(entry.source), '<interface> has no <virtual_addr>');
    for (const address of entry.realAddresses) {
      if (config.mode === 'farm') {
        problems.error(
          'mode-mismatch',
          elementSite(address.source),
          'a farm VIP is set on every node: put it in <virtual_interface type="vmac_directed">, not <real_interface>',
        );
      } else if (address.where === 'alias') {
        problems.error(
          'invalid-value',
          attributeSiteOf(address.source, 'where'),
          'where="alias" is for farm modules; a mirror VIP uses one_side_alias or one_side',
        );
      }
    }
    for (const virtual of entry.virtualInterfaces) {
      for (const address of virtual.addresses) {
        if (address.where !== 'alias') {
          problems.error(
            'invalid-value',
            attributeSiteOf(address.source, 'where'),
            `where="${address.where}" is for <real_interface>; inside <virtual_interface> use where="alias"`,
          );
        }
      }
    }
  }
  for (const address of allAddresses(config)) {
    if (address.addr === '') continue;
    const key = address.addr.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      problems.error(
        'duplicate-name',
        attributeSiteOf(address.source, 'addr'),
        `virtual address ${address.addr} is set twice (also at line ${first.line})`,
      );
    } else seen.set(key, address.source);
  }
  const groupNames = new Map<string, SourceRef>();
  const addresses = allAddresses(config).map((address) => address.addr);
  for (const group of vip.groups) {
    const first = groupNames.get(group.name);
    if (first !== undefined && group.name !== '') {
      problems.error(
        'duplicate-name',
        attributeSiteOf(group.source, 'name'),
        `group ${group.name} is defined twice (also at line ${first.line})`,
      );
    } else groupNames.set(group.name, group.source);
    const hosts = new Set<string>();
    for (const host of group.hosts) {
      if (hosts.has(host.node)) {
        problems.error(
          'duplicate-name',
          attributeSiteOf(host.source, 'name'),
          `host ${host.node} is listed twice in group ${group.name}`,
        );
      }
      hosts.add(host.node);
    }
    if (group.rules.length === 0) {
      problems.warning(
        'missing-value',
        elementSite(group.source),
        `group ${group.name} has no <rule>: no traffic is balanced`,
      );
    }
    for (const rule of group.rules) {
      if (
        rule.virtualAddr !== '*' &&
        !addresses.some((addr) => addr.toLowerCase() === rule.virtualAddr.toLowerCase())
      ) {
        problems.error(
          'unknown-resource',
          attributeSiteOf(rule.source, 'virtual_addr'),
          `rule virtual_addr ${rule.virtualAddr} is not a virtual address of this module`,
          addresses.length > 0 ? `virtual addresses: ${addresses.join(', ')}` : undefined,
        );
      }
      if (rule.filter === 'on_ipid' && rule.proto === 'tcp') {
        problems.warning(
          'invalid-value',
          attributeSiteOf(rule.source, 'filter'),
          'filter="on_ipid" is meant for UDP; for TCP use on_addr or on_port',
        );
      }
      if (rule.proto === 'arp' && rule.filter !== 'on_addr') {
        problems.error(
          'invalid-value',
          attributeSiteOf(rule.source, 'filter'),
          'proto="arp" needs filter="on_addr"',
        );
      }
    }
  }
  if (config.mode === 'farm' && vip.groups.length === 0 && addresses.length > 0) {
    problems.warning(
      'missing-value',
      elementSite(context.service),
      'the farm VIP has no <loadbalancing_list> group: every node accepts no traffic',
      'add <loadbalancing_list><group name="G"><rule port="*" proto="tcp" filter="on_addr"/></group></loadbalancing_list>',
    );
  }
}

function checkRegex(
  value: string | undefined,
  site: ProblemSite,
  what: string,
  problems: ProblemCollector,
): void {
  if (value === undefined) return;
  try {
    new RegExp(value);
  } catch (error) {
    problems.error(
      'invalid-value',
      site,
      `${what} is not a valid regular expression: ${(error as Error).message}`,
    );
  }
}

function hasBinFile(context: ModuleValidationContext, name: string): boolean | undefined {
  if (context.packageFiles === undefined) return undefined;
  const wanted = `bin/${name}`;
  return context.packageFiles.some((file) => file === wanted || file.startsWith(`${wanted}.`));
}

function checkErrd(config: ModuleConfig, context: ModuleValidationContext): void {
  const { problems } = context;
  const names = new Map<string, SourceRef>();
  for (const process of config.errd?.processes ?? []) {
    const nameSite = attributeSiteOf(process.source, 'name');
    if (process.name === 'PROCESS_NAME') {
      problems.warning(
        'template-placeholder',
        nameSite,
        'PROCESS_NAME is the template placeholder',
        'replace it with the name of the process to monitor',
      );
    } else if (
      !process.service &&
      process.nameregex === undefined &&
      process.name.length > linuxCommandNameCharsMax
    ) {
      problems.warning(
        'invalid-value',
        nameSite,
        `process name ${process.name} is longer than ${linuxCommandNameCharsMax} characters; Linux truncates command names`,
        `write the first ${linuxCommandNameCharsMax} characters or use nameregex`,
      );
    }
    const first = names.get(process.name);
    if (first !== undefined && process.name !== '') {
      problems.warning(
        'duplicate-name',
        nameSite,
        `process ${process.name} is monitored twice (also at line ${first.line}); both set proc.${process.name}`,
      );
    } else names.set(process.name, process.source);
    if (process.atmax !== -1 && process.atmax < process.atleast) {
      problems.error(
        'invalid-value',
        attributeSiteOf(process.source, 'atmax'),
        `atmax (${process.atmax}) is below atleast (${process.atleast})`,
      );
    }
    checkRegex(process.nameregex, attributeSiteOf(process.source, 'nameregex'), 'nameregex', problems);
    checkRegex(process.argregex, attributeSiteOf(process.source, 'argregex'), 'argregex', problems);
    const builtIn = ['restart', 'stopstart', 'stop', 'noaction'];
    if (!builtIn.includes(process.action) && hasBinFile(context, process.action) === false) {
      problems.error(
        'missing-file',
        attributeSiteOf(process.source, 'action'),
        `action handler bin/${process.action} is not in the module`,
        didYouMean(process.action, builtIn),
      );
    }
    if (process.restartServices.length > 0 && process.action !== 'restart') {
      problems.warning(
        'invalid-value',
        attributeSiteOf(process.source, 'restart_services'),
        'restart_services is only used with action="restart"',
      );
    }
  }
}

function checkCheckers(config: ModuleConfig, context: ModuleValidationContext): void {
  const { problems } = context;
  const resources = new Map<string, Checker>();
  let splitBrain: Checker | undefined;
  for (const checker of config.checkers) {
    const first = resources.get(checker.resource);
    if (first !== undefined && checker.ident !== '') {
      const site = attributeSiteOf(checker.source, checker.generated ? 'addr' : 'ident');
      problems.error(
        'duplicate-name',
        site,
        `two checkers define ${checker.resource} (the other is at line ${first.source.line})`,
        checker.generated || first.generated
          ? 'a virtual_addr with check="on" already makes an ip checker for it'
          : 'give each checker its own ident',
      );
    } else resources.set(checker.resource, checker);
    if (checker.generated) continue;
    const site = elementSite(checker.source);
    switch (checker.type) {
      case 'tcp':
      case 'ping':
      case 'ip':
        if (checker.targets.length === 0)
          problems.error('missing-value', site, `<${checker.type}> needs a <to .../> target`);
        if (
          (checker.type === 'tcp' || checker.type === 'ping') &&
          checker.when === 'pre' &&
          (checker.action === 'restart' || checker.action === 'stopstart')
        ) {
          problems.warning(
            'invalid-value',
            attributeSiteOf(checker.source, 'action'),
            `action="${checker.action}" with when="pre" restarts nothing useful: the application is not started yet`,
            'use action="wait"',
          );
        }
        break;
      case 'intf':
        if (checker.localAddrs.length === 0)
          problems.error('missing-value', site, '<intf> needs a <to local_addr="..."/> target');
        break;
      case 'custom': {
        if (checker.source.attributes.action === undefined) {
          problems.warning(
            'missing-value',
            site,
            `custom checker ${checker.ident} has no action: when it reports down nothing happens (noaction)`,
            'set action="restart", "stopstart", "stop" or "wait"',
          );
        }
        const relative = !checker.exec.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(checker.exec);
        if (checker.exec !== '' && relative && hasBinFile(context, checker.exec) === false) {
          problems.error(
            'missing-file',
            attributeSiteOf(checker.source, 'exec'),
            `checker executable bin/${checker.exec} is not in the module`,
          );
        }
        break;
      }
      case 'module':
        if (context.moduleName !== undefined && checker.module === context.moduleName) {
          problems.error(
            'invalid-value',
            attributeSiteOf(checker.source, 'name'),
            'a module checker cannot watch its own module',
          );
        }
        for (const target of checker.targets) {
          if (target.port !== 9010 && target.port !== 9453) {
            problems.warning(
              'invalid-value',
              site,
              `module checker port ${target.port}: the API listens on 9010 (HTTP) or 9453 (HTTPS)`,
            );
          }
        }
        break;
      case 'splitbrain':
        if (splitBrain !== undefined) {
          problems.error(
            'duplicate-element',
            site,
            `only one <splitbrain> checker is allowed (the other is at line ${splitBrain.source.line})`,
          );
        }
        splitBrain = checker;
        for (const witness of checker.witnesses) {
          const parsed = parseAddress(witness, false);
          if (!parsed.ok)
            problems.error(
              'invalid-value',
              attributeSiteOf(checker.source, 'arg'),
              `witness ${parsed.message}`,
            );
        }
        break;
    }
  }
}

function checkVariables(config: ModuleConfig, context: ModuleValidationContext): void {
  const { problems } = context;
  const seen = new Map<string, SourceRef>();
  for (const variable of config.user?.vars ?? []) {
    if (reservedVariableNames.includes(variable.name)) {
      problems.error(
        'invalid-value',
        attributeSiteOf(variable.source, 'name'),
        `${variable.name} is set by the agent for every script; a <var> cannot replace it`,
      );
    }
    const first = seen.get(variable.name);
    if (first !== undefined && variable.name !== '') {
      problems.warning(
        'duplicate-name',
        attributeSiteOf(variable.source, 'name'),
        `variable ${variable.name} is set twice (also at line ${first.line}); the later value wins`,
      );
    } else seen.set(variable.name, variable.source);
  }
}

function checkFailover(config: ModuleConfig, context: ModuleValidationContext): void {
  const failover = config.failover;
  if (failover === undefined) return;
  const source = failover.source;
  const { problems } = context;
  if (failover.handleTimeMs % failover.periodMs !== 0) {
    problems.error(
      'invalid-value',
      attributeSiteOf(source, source.attributes.handle_time === undefined ? 'period' : 'handle_time'),
      `handle_time (${failover.handleTimeMs}ms) must be a multiple of period (${failover.periodMs}ms)`,
    );
  }
  if (!failover.extends) {
    problems.warning(
      'invalid-value',
      attributeSiteOf(source, 'extends'),
      'extends="no" replaces the default failover rules (heartbeat, rfs, checkers); this is discouraged',
    );
  }
  const resources = moduleResources(config);
  const labels = new Set<string>();
  for (const rule of failover.rules) {
    const ruleSite = { start: source.start, end: source.end, path: source.path };
    if (labels.has(rule.label)) {
      problems.error(
        'duplicate-name',
        ruleSite,
        `failover rule ${rule.label} (line ${rule.line}) is defined twice`,
      );
    }
    labels.add(rule.label);
    if (rule.action.kind === 'command' && rule.action.command === 'swap' && config.mode !== 'mirror') {
      problems.error(
        'invalid-value',
        ruleSite,
        `rule ${rule.label} (line ${rule.line}): swap() only exists in mirror modules`,
      );
    }
    for (const resource of ruleResources(rule)) {
      const site = { start: resource.start, end: resource.end, path: source.path };
      if (resource.scope === 'remote' && config.mode !== 'mirror') {
        problems.warning(
          'unknown-resource',
          site,
          `rule ${rule.label}: a ${config.mode} module sees only local resources`,
        );
      }
      const names = resources.get(resource.class);
      const full = `${resource.class}.${resource.name}`;
      if (names === undefined) {
        problems.error(
          'unknown-resource',
          site,
          `rule ${rule.label} uses ${full}: there is no resource class ${resource.class}`,
          didYouMean(resource.class, resources.keys()),
        );
        continue;
      }
      if (names === 'any' || resource.name === '*' || resource.name === '?' || names.has(resource.name))
        continue;
      const suggestion = closestName(resource.name, names);
      problems.error(
        'unknown-resource',
        site,
        `rule ${rule.label} uses ${full}, but this module has no such resource`,
        suggestion !== undefined
          ? `did you mean ${resource.class}.${suggestion}?`
          : names.size > 0
            ? `known: ${[...names].map((name) => `${resource.class}.${name}`).join(', ')}`
            : `no ${resource.class} resource is defined`,
      );
    }
  }
}

/** Checks one loaded module; problems go to `context.problems`. */
export function validateModule(config: ModuleConfig, context: ModuleValidationContext): void {
  checkStructure(config, context);
  checkHeartbeats(config, context);
  checkRfs(config, context);
  checkAgainstCluster(config, context);
  checkVip(config, context);
  checkErrd(config, context);
  checkCheckers(config, context);
  checkVariables(config, context);
  checkFailover(config, context);
}
