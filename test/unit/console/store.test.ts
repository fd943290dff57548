// The console store: versioned migrations that never leave a store half-migrated, refuse a newer
// store, back up before migrating; transactional writes; export/import of a whole site.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { consoleMigrations, type Migration, migrate } from '../../../main/services/store/migrations.ts';
import { exportSite, importSite } from '../../../main/services/store/site-file.ts';
import { SiteStore } from '../../../main/services/store/site-store.ts';
import type { ConsoleError } from '../../../main/services/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'hakit-console-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fill(store: SiteStore) {
  const site = store.createSite('branch-lyon', 'two ERP nodes in the basement');
  const clusterId = store.createCluster(site.id, 'erp');
  const n1 = store.addNode(clusterId, {
    name: 'n1',
    address: '10.0.0.1',
    sshPort: 22,
    sshUser: 'root',
    sshAuth: 'password',
    sshSecret: 'ssh-ref-1',
  });
  const n2 = store.addNode(clusterId, {
    name: 'n2',
    address: '10.0.0.2',
    sshPort: 2222,
    sshUser: 'admin',
    sshAuth: 'key',
    sshSecret: 'ssh-ref-2',
  });
  store.pinHostKey(n1.id, Buffer.from('fake-host-key-blob').toString('base64'));
  store.setLan(clusterId, 'repli', [
    { nodeId: n1.id, addr: '192.168.0.1' },
    { nodeId: n2.id, addr: '192.168.0.2' },
  ]);
  const module = store.createModule({
    clusterId,
    name: 'erp',
    kind: 'light',
    template: 'generic-light',
    userconfig: '<safe><service mode="light"/></safe>',
    files: [{ path: 'bin/start_both', text: '#!/bin/sh\nexit 0\n', executable: true }],
  });
  store.recordDeployment(module.id, n1.id, module.signature, 'push');
  return { site, clusterId, n1, n2, module };
}

describe('console store', () => {
  test('a new store is created at the latest schema version with foreign keys on', () => {
    const store = new SiteStore(join(dir, 'fresh.db'));
    assert.equal(store.db.pragma('user_version', { simple: true }), consoleMigrations.length);
    assert.equal(store.db.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(store.migration.backupFile, null, 'no backup of an empty store');
    store.close();
  });

  test('sites > clusters > nodes, lans and modules round-trip; deleting a site cascades', () => {
    const store = new SiteStore(null);
    const { site, clusterId, n1 } = fill(store);
    const cluster = store.cluster(clusterId);
    assert.deepEqual(
      cluster.nodes.map((node) => node.name),
      ['n1', 'n2'],
    );
    assert.match(cluster.nodes[0]?.hostKeyFingerprint ?? '', /^SHA256:/);
    assert.deepEqual(
      cluster.lans.map((lan) => lan.name),
      ['default', 'repli'],
    );
    assert.equal(cluster.modules[0]?.deployed[0]?.nodeId, n1.id);
    assert.equal(store.listSites()[0]?.nodeCount, 2);
    assert.throws(
      () => store.createSite('branch-lyon', ''),
      (error: unknown) => (error as ConsoleError).code === 'conflict',
    );
    assert.throws(
      () =>
        store.addNode(clusterId, {
          name: 'bad name!',
          address: 'x',
          sshPort: 22,
          sshUser: 'root',
          sshAuth: 'password',
          sshSecret: null,
        }),
      /not valid/,
    );
    store.deleteSite(site.id);
    for (const table of [
      'clusters',
      'nodes',
      'lans',
      'lan_addresses',
      'modules',
      'module_files',
      'module_deployments',
    ])
      assert.equal(
        (store.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n,
        0,
        table,
      );
    store.close();
  });

  test('a failing write leaves nothing half-applied', () => {
    const store = new SiteStore(null);
    const { clusterId, module } = fill(store);
    const before = store.module(module.id);
    // A file name that breaks a constraint inside saveModule's transaction, after the userconfig update.
    assert.throws(() =>
      store.saveModule(module.id, '<safe>changed</safe>', [
        { path: 'bin/a', text: 'x', executable: true },
        { path: 'bin/a', text: 'y', executable: true },
      ]),
    );
    assert.deepEqual(store.module(module.id).userconfig, before.userconfig);
    assert.deepEqual(store.module(module.id).files, before.files);
    assert.equal(store.cluster(clusterId).modules.length, 1);
    store.close();
  });

  test('migrating an existing store backs it up first and keeps its data', () => {
    const file = join(dir, 'upgrade.db');
    const v1 = new SiteStore(file);
    fill(v1);
    v1.close();
    const v2: Migration[] = [
      ...consoleMigrations,
      {
        version: consoleMigrations.length + 1,
        description: 'test: sites get a region',
        up: (db) => db.exec("ALTER TABLE sites ADD COLUMN region TEXT NOT NULL DEFAULT 'eu'"),
      },
    ];
    const upgraded = new SiteStore(file, v2);
    assert.equal(upgraded.migration.from, consoleMigrations.length);
    assert.equal(upgraded.migration.to, v2.length);
    assert.ok(upgraded.migration.backupFile && existsSync(upgraded.migration.backupFile), 'backup written');
    assert.equal((upgraded.db.prepare('SELECT region FROM sites').get() as { region: string }).region, 'eu');
    assert.equal(upgraded.listSites()[0]?.name, 'branch-lyon');
    upgraded.close();
    // The backup is the store as it was, openable by the old console.
    const backup = new Database(upgraded.migration.backupFile as string, { readonly: true });
    assert.equal(backup.pragma('user_version', { simple: true }), consoleMigrations.length);
    assert.equal((backup.prepare('SELECT COUNT(*) AS n FROM nodes').get() as { n: number }).n, 2);
    backup.close();
  });

  test('a version 1 store (before the console CA) migrates: nodes keep their fingerprint pin', () => {
    const file = join(dir, 'from-v1.db');
    const v1 = new SiteStore(file, consoleMigrations.slice(0, 1));
    const { clusterId } = fill(v1);
    v1.close();
    const current = new SiteStore(file);
    assert.equal(current.migration.from, 1);
    assert.equal(current.migration.to, consoleMigrations.length);
    const nodes = current.nodesOf(clusterId);
    assert.equal(nodes.length, 2);
    for (const node of nodes) assert.equal(node.api_ca, 0);
    assert.equal(current.clusterRow(clusterId).cluster_key_secret, null);
    current.recordCaCertificate(nodes[0]!.id, 'AA:BB');
    assert.equal(current.nodeRow(nodes[0]!.id).api_fingerprint, 'AA:BB');
    assert.equal(
      current.cluster(clusterId).nodes.find((node) => node.id === nodes[0]!.id)?.apiCertificateByCa,
      true,
    );
    current.close();
  });

  test('a migration that fails is rolled back whole and the store stays at the previous version', () => {
    const file = join(dir, 'broken.db');
    const v1 = new SiteStore(file);
    fill(v1);
    v1.close();
    const broken: Migration[] = [
      ...consoleMigrations,
      {
        version: consoleMigrations.length + 1,
        description: 'test: half-done change',
        up: (db) => {
          db.exec('ALTER TABLE sites ADD COLUMN colour TEXT');
          db.exec('UPDATE sites SET colour = 1 WHERE no_such_column = 2');
        },
      },
    ];
    assert.throws(
      () => new SiteStore(file, broken),
      new RegExp(
        `migration to version ${consoleMigrations.length + 1} .* failed and was rolled back; the store stays at version ${consoleMigrations.length}`,
      ),
    );
    const db = new Database(file);
    assert.equal(db.pragma('user_version', { simple: true }), consoleMigrations.length);
    const columns = (db.prepare('PRAGMA table_info(sites)').all() as { name: string }[]).map(
      (column) => column.name,
    );
    assert.ok(!columns.includes('colour'), 'the half-done column is not there');
    assert.equal((db.prepare('SELECT COUNT(*) AS n FROM sites').get() as { n: number }).n, 1);
    db.close();
  });

  test('a store made by a newer console is refused and left untouched', () => {
    const file = join(dir, 'newer.db');
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    const before = readFileSync(file);
    assert.throws(
      () => new SiteStore(file),
      (error: unknown) =>
        (error as ConsoleError).code === 'refused' &&
        /newer than this console/.test((error as Error).message),
    );
    assert.deepEqual(readFileSync(file), before, 'not a byte changed');
    const after = new Database(file);
    assert.equal(after.pragma('user_version', { simple: true }), 99);
    assert.deepEqual(
      after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all(),
      [],
      'no table was created',
    );
    after.close();
  });

  test('migrate() refuses a migration list with a gap', () => {
    const db = new Database(':memory:');
    assert.throws(
      () => migrate(db, null, [{ version: 2, description: 'gap', up: () => undefined }]),
      /expected 1/,
    );
    db.close();
  });

  test('a site exported as one file imports elsewhere with the same content, and no secret', () => {
    const source = new SiteStore(null);
    const { site } = fill(source);
    const exported = exportSite(source, site.id, 1_700_000_000_000);
    assert.match(exported.fileName, /^branch-lyon\.hakit-site\.json$/);
    assert.ok(!exported.content.includes('ssh-ref-'), 'secret references are not exported');
    const target = new SiteStore(null);
    const importedId = importSite(target, exported.content);
    const again = exportSite(target, importedId, 1_700_000_000_000);
    const body = (text: string) => (JSON.parse(text) as { body: unknown }).body;
    assert.deepEqual(body(again.content), body(exported.content));
    const node = target.nodesOf(target.clusterIdsOfSite(importedId)[0] ?? 0)[0];
    assert.equal(node?.ssh_secret, null, 'the SSH secret has to be entered again');
    assert.throws(() => importSite(target, exported.content), /already exists/);
    assert.equal(target.listSites().length, 1, 'the refused import left nothing behind');
    const tampered = exported.content.replace('10.0.0.2', '10.6.6.6');
    assert.throws(() => importSite(target, tampered, 'other'), /damaged or was edited/);
    assert.equal(target.listSites().length, 1);
    source.close();
    target.close();
  });

  test('the audit log is bounded and newest first', () => {
    const store = new SiteStore(null);
    for (let index = 0; index < 5; index += 1)
      store.audit('start', `web on n${index}`, `hakit start -m web`, 'ok');
    const entries = store.auditLog(3);
    assert.equal(entries.length, 3);
    assert.equal(entries[0]?.target, 'web on n4');
    store.close();
  });
});
