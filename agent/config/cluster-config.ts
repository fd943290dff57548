// cluster.xml: text in, ClusterConfig and located problems out (reference §4.14). Pure.
import { leaseMsMax, leaseMsMin } from '../core/arbitrator-lease.ts';
import { parseAddress } from './addresses.ts';
import { clusterRootName, clusterSchema } from './cluster-schema.ts';
import type {
  ClusterArbitrator,
  ClusterConfig,
  ClusterLan,
  LanNode,
  NodeAddress,
  OnOff,
  SourceRef,
} from './model.ts';
import { LineIndex } from './positions.ts';
import { type ConfigProblem, ProblemCollector } from './problems.ts';
import { elementHomes } from './schema.ts';
import { site, type WalkContext, walkDocument } from './schema-walk.ts';
import { attributeSiteOf, elementSite, SourceRefs } from './source-refs.ts';
import { elementPathAt, parseXml, type XmlDocument } from './xml.ts';

export interface LoadedCluster {
  readonly document: XmlDocument;
  readonly cluster: ClusterConfig | undefined;
  readonly problems: readonly ConfigProblem[];
  readonly ok: boolean;
}

const homes = elementHomes(clusterSchema, clusterRootName);

function addressOf(raw: string | undefined): NodeAddress | undefined {
  if (raw === undefined) return undefined;
  const parsed = parseAddress(raw, true);
  return parsed.ok ? { raw: raw.trim(), kind: parsed.address.kind, host: parsed.address.host } : undefined;
}

function validateCluster(cluster: ClusterConfig, root: SourceRef, problems: ProblemCollector): void {
  if (cluster.lans.length === 0) {
    problems.error(
      'cluster',
      elementSite(root),
      'cluster.xml defines no <lan>',
      'add <lans><lan name="default">...</lan></lans>',
    );
    return;
  }
  const lanNames = new Map<string, SourceRef>();
  for (const lan of cluster.lans) {
    const first = lanNames.get(lan.name);
    if (first !== undefined && lan.name !== '') {
      problems.error(
        'duplicate-name',
        attributeSiteOf(lan.source, 'name'),
        `lan ${lan.name} is defined twice (also at line ${first.line})`,
      );
    } else lanNames.set(lan.name, lan.source);
    const names = new Map<string, SourceRef>();
    const addresses = new Map<string, LanNode>();
    for (const node of lan.nodes) {
      const sameName = names.get(node.name);
      if (sameName !== undefined && node.name !== '') {
        problems.error(
          'duplicate-name',
          attributeSiteOf(node.source, 'name'),
          `node ${node.name} appears twice in lan ${lan.name} (also at line ${sameName.line})`,
        );
      } else names.set(node.name, node.source);
      const key = node.addr.host.toLowerCase();
      const sameAddress = addresses.get(key);
      if (sameAddress !== undefined && node.addr.host !== '') {
        problems.error(
          'duplicate-name',
          attributeSiteOf(node.source, 'addr'),
          `nodes ${sameAddress.name} and ${node.name} have the same address ${node.addr.raw} on lan ${lan.name}`,
        );
      } else addresses.set(key, node);
    }
    if (lan.nodes.length === 0) {
      problems.warning('cluster', elementSite(lan.source), `lan ${lan.name} has no <node>`);
    }
  }
  const complete = cluster.lans.filter((lan) =>
    cluster.nodes.every((node) => lan.nodes.some((entry) => entry.name === node)),
  );
  if (complete.length === 0) {
    problems.error(
      'cluster',
      elementSite(root),
      `no lan contains every node (${cluster.nodes.join(', ')}); at least one must`,
    );
  }
  const arbitrator = cluster.arbitrator;
  if (arbitrator !== undefined && (arbitrator.leaseMs < leaseMsMin || arbitrator.leaseMs > leaseMsMax)) {
    problems.error(
      'invalid-value',
      attributeSiteOf(arbitrator.source, 'lease'),
      `arbitrator lease ${arbitrator.leaseMs} ms is out of ${leaseMsMin} ms..${leaseMsMax / 1000} s`,
      'a few seconds suits most clusters (default 4s)',
    );
  }
  for (const lan of cluster.lans) {
    const clash = lan.nodes.find(
      (node) => arbitrator !== undefined && node.addr.host === arbitrator.addr.host,
    );
    if (clash !== undefined && arbitrator !== undefined) {
      problems.error(
        'cluster',
        attributeSiteOf(arbitrator.source, 'addr'),
        `the arbitrator ${arbitrator.addr.raw} is node ${clash.name} of lan ${lan.name}: it must be a third host`,
      );
    }
  }
  const commandLans = cluster.lans.filter((lan) => lan.command === 'on');
  for (const extra of commandLans.slice(1)) {
    problems.error(
      'cluster',
      attributeSiteOf(extra.source, 'command'),
      `only one lan may have command="on" (lan ${commandLans[0]?.name} has it too)`,
    );
  }
  const commandLan = cluster.lans.find((lan) => lan.name === cluster.commandLan);
  if (commandLan !== undefined && complete.length > 0 && !complete.includes(commandLan)) {
    const missing = cluster.nodes.filter((node) => !commandLan.nodes.some((entry) => entry.name === node));
    problems.error(
      'cluster',
      commandLan.command === 'on'
        ? attributeSiteOf(commandLan.source, 'command')
        : elementSite(commandLan.source),
      `lan ${commandLan.name} carries distributed commands${commandLan.command === 'on' ? '' : ' (it is the first lan)'} but lacks ${missing.join(', ')}`,
      `set command="on" on a lan with every node, such as ${complete[0]?.name}`,
    );
  }
}

export function loadClusterXml(text: string, options: { readonly file?: string } = {}): LoadedCluster {
  const file = options.file ?? 'cluster.xml';
  const lines = new LineIndex(text);
  const problems = new ProblemCollector(file, lines);
  const document = parseXml(text);
  for (const problem of document.problems) {
    problems.add(
      problem.severity,
      'xml-syntax',
      { ...problem.span, path: elementPathAt(document, problem.span.start) },
      problem.message,
      problem.hint,
    );
  }
  const context: WalkContext = { source: text, problems, mode: undefined, expander: undefined, homes };
  const root = walkDocument(document, clusterSchema, clusterRootName, context);
  let cluster: ClusterConfig | undefined;
  if (root !== undefined) {
    const refs = new SourceRefs(lines);
    const lansElement = root.child('lans');
    if (lansElement === undefined) {
      problems.error('cluster', site(root.element.nameSpan, root.path), 'cluster.xml needs a <lans> element');
    }
    const lans: ClusterLan[] = (lansElement?.childrenNamed('lan') ?? []).map((lan) => {
      const command = lan.value('command');
      return {
        name: String(lan.value('name') ?? '').trim(),
        command: command === 'on' || command === 'off' ? (command as OnOff) : undefined,
        nodes: lan.childrenNamed('node').flatMap((node): LanNode[] => {
          const addr = addressOf(node.given.get('addr') as string | undefined);
          const laddr = addressOf(node.given.get('laddr') as string | undefined);
          const name = String(node.value('name') ?? '').trim();
          // An invalid or empty address was reported by the walk; keep the node so names still count.
          return [
            {
              name,
              addr: addr ?? { raw: String(node.expanded.get('addr')?.value ?? ''), kind: 'dns', host: '' },
              laddr,
              source: refs.of(node),
            },
          ];
        }),
        source: refs.of(lan),
      };
    });
    const nodes: string[] = [];
    for (const lan of lans)
      for (const node of lan.nodes) if (node.name !== '' && !nodes.includes(node.name)) nodes.push(node.name);
    const numberOf = (name: string): number => {
      const value = lansElement?.value(name);
      return typeof value === 'number' ? value : 0;
    };
    const arbitratorElement = root.child('arbitrator');
    const arbitratorAddr = addressOf(arbitratorElement?.given.get('addr') as string | undefined);
    const arbitrator: ClusterArbitrator | undefined =
      arbitratorElement === undefined || arbitratorAddr === undefined
        ? undefined
        : {
            addr: arbitratorAddr,
            portUdp: Number(arbitratorElement.value('port')),
            leaseMs: Number(arbitratorElement.value('lease')),
            source: refs.of(arbitratorElement),
          };
    cluster = {
      ...(arbitrator === undefined ? {} : { arbitrator }),
      portUdp: lansElement === undefined ? 4800 : numberOf('port'),
      pulseMs: lansElement === undefined ? 100 : numberOf('pulse'),
      mlostCount: lansElement === undefined ? 20 : numberOf('mlost_count'),
      slostCount: lansElement === undefined ? 10 : numberOf('slost_count'),
      lans,
      nodes,
      commandLan: (lans.find((lan) => lan.command === 'on') ?? lans[0])?.name,
    };
    validateCluster(cluster, refs.of(lansElement ?? root), problems);
  }
  const list = problems.list();
  return { document, cluster, problems: list, ok: !list.some((problem) => problem.severity === 'error') };
}
