// Checks across the modules of one cluster: names, ids, replicated directories, VIPs and ports.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ModuleConfig } from '../../../agent/config/model.ts';
import { loadUserconfig } from '../../../agent/config/userconfig.ts';
import { type ClusterModule, validateClusterModules } from '../../../agent/config/validate-cluster.ts';
import { lineOf } from './helpers.ts';

function module(
  inner: string,
  heart = '<heart><heartbeat name="default"/></heart>',
): { text: string; config: ModuleConfig } {
  const text = `<!DOCTYPE safe>\n<safe>\n<service mode="mirror">\n  ${heart}\n${inner}\n</service>\n</safe>\n`;
  const loaded = loadUserconfig(text);
  assert.ok(loaded.ok && loaded.config, loaded.problems.map((problem) => problem.message).join('; '));
  return { text, config: loaded.config };
}

function vip(addr: string): string {
  return `  <vip><interface_list><interface><real_interface><virtual_addr addr="${addr}" where="one_side_alias"/></real_interface></interface></interface_list></vip>`;
}

describe('modules of one cluster', () => {
  test('distinct modules pass', () => {
    const a = module(`  <rfs><replicated dir="/srv/a"/></rfs>\n${vip('10.0.0.100')}`);
    const b = module(`  <rfs><replicated dir="/srv/b"/></rfs>\n${vip('10.0.0.101')}`);
    assert.deepEqual(
      validateClusterModules([
        { name: 'a', id: 1, file: 'a.xml', config: a.config },
        { name: 'b', id: 2, file: 'b.xml', config: b.config },
      ]),
      [],
    );
  });

  test('a shared or nested replicated directory is an error at the later module', () => {
    const a = module('  <rfs><replicated dir="/srv/data"/></rfs>');
    const b = module('  <rfs><replicated dir="/srv/data/"/></rfs>');
    const c = module('  <rfs><replicated dir="/srv/data/sub"/></rfs>');
    const problems = validateClusterModules([
      { name: 'a', file: 'a.xml', config: a.config },
      { name: 'b', file: 'b.xml', config: b.config },
      { name: 'c', file: 'c.xml', config: c.config },
    ]);
    assert.deepEqual(
      problems.map((problem) => [problem.file, problem.line, problem.message]),
      [
        [
          'b.xml',
          lineOf(b.text, '<replicated'),
          'replicated directory /srv/data/ is also replicated by module a',
        ],
        [
          'c.xml',
          lineOf(c.text, '<replicated'),
          'replicated directory /srv/data/sub overlaps /srv/data of module a',
        ],
        [
          'c.xml',
          lineOf(c.text, '<replicated'),
          'replicated directory /srv/data/sub overlaps /srv/data/ of module b',
        ],
      ],
    );
  });

  test('a shared VIP is an error', () => {
    const a = module(vip('10.0.0.100'));
    const b = module(vip('10.0.0.100'));
    const [problem, ...rest] = validateClusterModules([
      { name: 'a', file: 'a.xml', config: a.config },
      { name: 'b', file: 'b.xml', config: b.config },
    ]);
    assert.deepEqual(rest, []);
    assert.equal(problem?.message, 'virtual IP 10.0.0.100 is also used by module a');
    assert.equal(problem?.line, lineOf(b.text, 'virtual_addr'));
  });

  test('module names and ids are unique; ids are in range', () => {
    const a = module('');
    const modules: ClusterModule[] = [
      { name: 'a', id: 1, file: 'a.xml', config: a.config },
      { name: 'a', id: 2, file: 'a2.xml', config: a.config },
      { name: 'b', id: 1, file: 'b.xml', config: a.config },
      { name: 'c', id: 0, file: 'c.xml', config: a.config },
    ];
    assert.deepEqual(
      validateClusterModules(modules).map((problem) => problem.message),
      [
        'module name a is used twice (also a.xml)',
        'module b has id 1, already used by module a',
        'module c: id 0 is not an integer from 1 to 255',
      ],
    );
  });

  test('an explicit heartbeat port that another module derives from its id is an error', () => {
    const a = module('');
    const b = module('', '<heart port="8889"><heartbeat name="default"/></heart>');
    const problems = validateClusterModules([
      { name: 'a', id: 2, file: 'a.xml', config: a.config },
      { name: 'b', id: 3, file: 'b.xml', config: b.config },
    ]);
    assert.deepEqual(
      problems.map((problem) => problem.message),
      ['UDP port 8889 (heartbeat port of module b) is also the heartbeat port of module a'],
    );
  });
});
