// Every module template, filled with its defaults, passes the shared validator (the same one
// `hakit config check` uses) against a two-node cluster; parameters are filled and XML-escaped.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { checkModule, clusterXmlOf } from '../../../main/services/modules/module-config.ts';
import { TemplateLibrary } from '../../../main/services/modules/templates.ts';
import type { ClusterView } from '../../../main/api/contract.ts';

const library = new TemplateLibrary(resolve(import.meta.dirname, '..', '..', '..', 'resources', 'modules'));
const cluster: ClusterView = {
  id: 1,
  siteId: 1,
  name: 'c',
  nodes: [],
  lans: [
    {
      id: 1,
      name: 'default',
      addresses: [
        { nodeId: 1, addr: '10.0.0.1' },
        { nodeId: 2, addr: '10.0.0.2' },
      ],
    },
  ],
  modules: [],
};
cluster.nodes = [1, 2].map((id) => ({
  id,
  clusterId: 1,
  name: `n${id}`,
  address: `10.0.0.${id}`,
  sshPort: 22,
  sshUser: 'root',
  sshAuth: 'password',
  hostKeyFingerprint: null,
  apiPort: 9453,
  apiFingerprint: null,
  hasApiToken: false,
  apiCertificateByCa: false,
  agentVersion: null,
  installedMs: null,
}));

describe('module templates', () => {
  test('generic mirror, generic farm and generic light are there', () => {
    const names = library.list().map((template) => `${template.name}:${template.kind}`);
    for (const expected of ['generic-mirror:mirror', 'generic-farm:farm', 'generic-light:light'])
      assert.ok(names.includes(expected), expected);
  });

  for (const template of library.list()) {
    test(`${template.name} with its defaults has no validation error`, () => {
      const made = library.instantiate(template.name, {});
      assert.ok(!made.userconfig.includes('{{'), 'every placeholder filled');
      for (const file of made.files) assert.ok(!file.text.includes('{{'), `${file.path} filled`);
      const check = checkModule('demo', made.userconfig, made.files, clusterXmlOf(cluster), 1);
      const errors = check.diagnostics.filter((diagnostic) => diagnostic.severity === 'error');
      assert.deepEqual(errors, [], JSON.stringify(errors));
      assert.equal(check.kind, template.kind);
    });
  }

  test('a value with XML characters is escaped in userconfig.xml and kept as is in scripts', () => {
    const made = library.instantiate('generic-light', {
      PROCESS_ARGS: '^a&b<c$',
      APP_STOP: 'pkill -f "a&b" || true',
    });
    assert.match(made.userconfig, /argregex="\^a&amp;b&lt;c\$"/);
    assert.match(
      made.files.find((file) => file.path === 'bin/stop_both')?.text ?? '',
      /pkill -f "a&b" \|\| true/,
    );
    assert.throws(() => library.instantiate('generic-light', { NOPE: 'x' }), /no parameter NOPE/);
    assert.throws(() => library.instantiate('generic-light', { APP_STOP: 'a\nb' }), /one line/);
  });

  test('the validator locates a mistake by line and column', () => {
    const made = library.instantiate('generic-light', {});
    const broken = made.userconfig.replace('maxloop="3"', 'maxloop="many"');
    const check = checkModule('demo', broken, made.files, null, 1);
    const error = check.diagnostics.find((diagnostic) => diagnostic.severity === 'error');
    assert.ok(error, 'an error is reported');
    assert.equal(error.line, broken.split('\n').findIndex((line) => line.includes('maxloop')) + 1);
    assert.ok(error.column > 1);
  });
});
