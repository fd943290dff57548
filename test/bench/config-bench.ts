// Benchmark: parse + validate + expand a generated cluster of 32 modules (cluster.xml, 32
// userconfig.xml with macros, VIPs, replication, checkers and rules, plus the cross-module
// checks). Prints figures in ms; the target is < 50 ms per whole cluster. Asserts nothing timed.
//   node --import tsx test/bench/config-bench.ts
import { loadClusterXml } from '../../agent/config/cluster-config.ts';
import { loadUserconfig } from '../../agent/config/userconfig.ts';
import { validateClusterModules } from '../../agent/config/validate-cluster.ts';

const moduleCount = 32;
const warmupRuns = 20;
const measuredRuns = 100;

function clusterXml(): string {
  const lan = (name: string, base: number) =>
    `    <lan name="${name}">\n${[1, 2, 3, 4]
      .map((node) => `      <node name="node${node}" addr="10.${base}.0.${node}"/>`)
      .join('\n')}\n    </lan>`;
  return `<cluster>\n  <lans>\n${lan('default', 0)}\n${lan('repli', 1)}\n${lan('admin', 2)}\n  </lans>\n</cluster>\n`;
}

/** Mirror modules use a two-node cluster view (their own file), farms the four-node one. */
function twoNodeClusterXml(): string {
  const lan = (name: string, base: number) =>
    `    <lan name="${name}">\n      <node name="node1" addr="10.${base}.0.1"/>\n      <node name="node2" addr="10.${base}.0.2"/>\n    </lan>`;
  return `<cluster>\n  <lans>\n${lan('default', 0)}\n${lan('repli', 1)}\n  </lans>\n</cluster>\n`;
}

function mirrorModule(index: number): string {
  return `<!DOCTYPE safe>
<!-- generated mirror module ${index} -->
<safe>
<macro name="VIP" value="10.0.${index}.100"/>
<macro name="DATA" value="/srv/m${index}"/>
<service mode="mirror" boot="auto" defaultprim="node1" maxloop="3" loop_interval="24h">
  <heart pulse="700ms" timeout="30s">
    <heartbeat name="default"/>
    <heartbeat name="repli" ident="flow"/>
  </heart>
  <vip>
    <interface_list>
      <interface check="on">
        <real_interface>
          <virtual_addr addr="%VIP%" where="one_side_alias" netmask="255.255.255.0"/>
        </real_interface>
      </interface>
    </interface_list>
  </vip>
  <rfs async="second" nbrei="3" locktimeout="200">
    <replicated dir="%DATA%/db" mode="read_only"><notreplicated path="tmp"/><tocheck path="VERSION"/></replicated>
    <replicated dir="%DATA%/logs"/>
  </rfs>
  <user nicestoptimeout="300" forcestoptimeout="300" logging="userlog">
    <var name="SERVICES" value="db${index}, app${index}"/>
  </user>
  <errd polltimer="10">
    <proc name="db${index}" atleast="1" action="restart" class="prim"/>
    <proc name="app${index}" service="yes" action="restart" class="prim"/>
  </errd>
  <check>
    <tcp ident="db" when="prim"><to addr="%VIP%" port="5432" interval="10" timeout="5"/></tcp>
    <ping ident="gw"><to addr="10.0.0.254"/></ping>
    <custom ident="app" when="prim" exec="/opt/app/check" action="restart"/>
  </check>
  <failover>
<![CDATA[
gw_wait: if (ping.gw == down) then wait();
db_restart: if (tcp.db == down && heartbeat.flow == up) then restart();
]]>
  </failover>
</service>
</safe>
`;
}

function farmModule(index: number): string {
  return `<!DOCTYPE safe>
<!-- generated farm module ${index} -->
<safe>
<macro name="VIP" value="10.2.${index}.126"/>
<service mode="farm" boot="on">
  <farm><lan name="default"/><lan name="admin"/></farm>
  <vip>
    <interface_list><interface check="on"><virtual_interface type="vmac_directed">
      <virtual_addr addr="%VIP%" where="alias"/>
    </virtual_interface></interface></interface_list>
    <loadbalancing_list><group name="G${index}">
      <cluster><host name="node1" power="1"/><host name="node2" power="1"/><host name="node3" power="2"/></cluster>
      <rule port="${8000 + index}" proto="tcp" filter="on_addr"/>
    </group></loadbalancing_list>
  </vip>
  <user/>
  <errd polltimer="10"><proc name="web${index}" action="restart" class="both"/></errd>
  <check><tcp ident="http" when="both"><to addr="%VIP%" port="${8000 + index}"/></tcp></check>
</service>
</safe>
`;
}

const cluster4 = clusterXml();
const cluster2 = twoNodeClusterXml();
const modules = Array.from({ length: moduleCount }, (_, index) =>
  index % 2 === 0 ? { text: mirrorModule(index), mirror: true } : { text: farmModule(index), mirror: false },
);
const totalChars =
  modules.reduce((sum, module) => sum + module.text.length, 0) + cluster4.length + cluster2.length;

function loadCluster(): number {
  const farmCluster = loadClusterXml(cluster4, { file: 'cluster.xml' });
  const mirrorCluster = loadClusterXml(cluster2, { file: 'cluster-mirror.xml' });
  if (farmCluster.cluster === undefined || mirrorCluster.cluster === undefined)
    throw new Error('cluster.xml does not load');
  let problems = 0;
  const members = modules.map((module, index) => {
    const loaded = loadUserconfig(module.text, {
      file: `m${index}.xml`,
      cluster: module.mirror ? mirrorCluster.cluster : farmCluster.cluster,
      moduleId: index + 1,
      environment: {},
    });
    problems += loaded.problems.filter((problem) => problem.severity === 'error').length;
    if (loaded.config === undefined) throw new Error(`module ${index} does not load`);
    return { name: `m${index}`, id: index + 1, file: `m${index}.xml`, config: loaded.config };
  });
  problems += validateClusterModules(members).length;
  return problems;
}

const errorsFound = loadCluster();
if (errorsFound !== 0) {
  process.stderr.write(
    `config-bench: the generated cluster has ${errorsFound} errors; the figures would not mean much\n`,
  );
  process.exitCode = 1;
}
for (let i = 0; i < warmupRuns; i++) loadCluster();
const timesMs: number[] = [];
for (let i = 0; i < measuredRuns; i++) {
  const startedNs = process.hrtime.bigint();
  loadCluster();
  timesMs.push(Number(process.hrtime.bigint() - startedNs) / 1e6);
}
timesMs.sort((a, b) => a - b);
const at = (fraction: number) =>
  timesMs[Math.min(timesMs.length - 1, Math.floor(fraction * timesMs.length))] ?? 0;
process.stdout.write(
  `config-bench: ${moduleCount} modules + cluster.xml (${(totalChars / 1024).toFixed(1)} KiB), parse + validate + expand + cross-module checks\n` +
    `  first (cold) run included in warm-up; ${measuredRuns} measured runs\n` +
    `  median ${at(0.5).toFixed(2)} ms, p95 ${at(0.95).toFixed(2)} ms, min ${(timesMs[0] ?? 0).toFixed(2)} ms (target < 50 ms)\n`,
);
