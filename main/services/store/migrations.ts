// Versioned schema of the console store. The version is SQLite's `user_version`. Each migration
// runs in one transaction together with the version bump, so a store is always exactly at one
// version; before migrating an existing store a backup copy is written beside it. A store made by
// a newer console is refused rather than opened (its schema may mean something this one does not
// know). Migrations are append-only: never edit one that has shipped.
import { copyFileSync, existsSync } from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';
import { ConsoleError } from '../errors.ts';

export interface Migration {
  version: number;
  description: string;
  up(db: BetterSqlite3.Database): void;
}

export const consoleMigrations: readonly Migration[] = [
  {
    version: 1,
    description: 'sites, clusters, nodes, lans, modules, install history, audit log, snapshot index',
    up(db) {
      db.exec(`
        CREATE TABLE sites (
          id INTEGER PRIMARY KEY,
          name TEXT NOT NULL UNIQUE,
          notes TEXT NOT NULL DEFAULT '',
          created_ms INTEGER NOT NULL,
          updated_ms INTEGER NOT NULL
        );
        CREATE TABLE clusters (
          id INTEGER PRIMARY KEY,
          site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
          name TEXT NOT NULL,
          node_key_secret TEXT,
          created_ms INTEGER NOT NULL,
          updated_ms INTEGER NOT NULL,
          UNIQUE (site_id, name)
        );
        CREATE TABLE nodes (
          id INTEGER PRIMARY KEY,
          cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
          name TEXT NOT NULL,
          address TEXT NOT NULL,
          ssh_port INTEGER NOT NULL DEFAULT 22,
          ssh_user TEXT NOT NULL DEFAULT 'root',
          ssh_auth TEXT NOT NULL CHECK (ssh_auth IN ('password', 'key')),
          ssh_secret TEXT,
          host_key TEXT,
          api_port INTEGER NOT NULL DEFAULT 9453,
          api_fingerprint TEXT,
          api_token_secret TEXT,
          agent_version TEXT,
          installed_ms INTEGER,
          UNIQUE (cluster_id, name)
        );
        CREATE TABLE lans (
          id INTEGER PRIMARY KEY,
          cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
          name TEXT NOT NULL,
          UNIQUE (cluster_id, name)
        );
        CREATE TABLE lan_addresses (
          lan_id INTEGER NOT NULL REFERENCES lans(id) ON DELETE CASCADE,
          node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
          addr TEXT NOT NULL,
          PRIMARY KEY (lan_id, node_id)
        );
        CREATE TABLE modules (
          id INTEGER PRIMARY KEY,
          cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
          name TEXT NOT NULL,
          kind TEXT NOT NULL CHECK (kind IN ('mirror', 'farm', 'light')),
          module_id INTEGER NOT NULL CHECK (module_id BETWEEN 1 AND 255),
          template TEXT NOT NULL,
          userconfig TEXT NOT NULL,
          created_ms INTEGER NOT NULL,
          updated_ms INTEGER NOT NULL,
          UNIQUE (cluster_id, name),
          UNIQUE (cluster_id, module_id)
        );
        CREATE TABLE module_files (
          module_id INTEGER NOT NULL REFERENCES modules(id) ON DELETE CASCADE,
          path TEXT NOT NULL,
          content TEXT NOT NULL,
          executable INTEGER NOT NULL CHECK (executable IN (0, 1)),
          PRIMARY KEY (module_id, path)
        );
        CREATE TABLE module_deployments (
          module_id INTEGER NOT NULL REFERENCES modules(id) ON DELETE CASCADE,
          node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
          signature TEXT NOT NULL,
          at_ms INTEGER NOT NULL,
          how TEXT NOT NULL CHECK (how IN ('push', 'pull')),
          PRIMARY KEY (module_id, node_id)
        );
        CREATE TABLE module_history (
          id INTEGER PRIMARY KEY,
          module_id INTEGER NOT NULL REFERENCES modules(id) ON DELETE CASCADE,
          at_ms INTEGER NOT NULL,
          event TEXT NOT NULL,
          signature TEXT NOT NULL,
          userconfig TEXT NOT NULL
        );
        CREATE TABLE install_runs (
          id INTEGER PRIMARY KEY,
          cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
          started_ms INTEGER NOT NULL,
          finished_ms INTEGER,
          ok INTEGER,
          report TEXT NOT NULL DEFAULT '[]'
        );
        CREATE TABLE audit_log (
          id INTEGER PRIMARY KEY,
          at_ms INTEGER NOT NULL,
          action TEXT NOT NULL,
          target TEXT NOT NULL,
          cli TEXT NOT NULL,
          result TEXT NOT NULL
        );
        CREATE TABLE snapshots (
          id INTEGER PRIMARY KEY,
          cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
          module TEXT NOT NULL,
          file TEXT NOT NULL,
          created_ms INTEGER NOT NULL,
          bytes INTEGER NOT NULL,
          nodes TEXT NOT NULL
        );
        CREATE INDEX audit_log_time ON audit_log (at_ms);
      `);
    },
  },
  {
    version: 2,
    description:
      'nodes: whether the API certificate was issued by the console CA; clusters: the heartbeat key secret',
    up(db) {
      db.exec(`
        ALTER TABLE nodes ADD COLUMN api_ca INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE clusters ADD COLUMN cluster_key_secret TEXT;
      `);
    },
  },
];

export interface MigrationReport {
  from: number;
  to: number;
  backupFile: string | null;
}

function checkList(migrations: readonly Migration[]): void {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1)
      throw new Error(
        `console store: migration ${index} has version ${migration.version}, expected ${index + 1}`,
      );
  });
}

/**
 * Brings the store at `file` (already open as `db`) to the last version of `migrations`.
 * Throws ConsoleError('refused') for a store newer than this console; a failing migration leaves
 * the store at the version before it (its transaction is rolled back) and says which one failed.
 */
export function migrate(
  db: BetterSqlite3.Database,
  file: string | null,
  migrations: readonly Migration[] = consoleMigrations,
  nowMs: number = Date.now(),
): MigrationReport {
  checkList(migrations);
  const latest = migrations.length;
  const from = Number(db.pragma('user_version', { simple: true }));
  if (from > latest) {
    throw new ConsoleError(
      'refused',
      `the console store ${file ?? '(memory)'} is at schema version ${from}, newer than this console knows (${latest}): ` +
        'use a newer console; the store was left untouched',
    );
  }
  if (from === latest) return { from, to: from, backupFile: null };
  let backupFile: string | null = null;
  if (from > 0 && file !== null && existsSync(file)) {
    // Fold the write-ahead log in first so the copy is the whole store.
    db.pragma('wal_checkpoint(TRUNCATE)');
    backupFile = `${file}.v${from}.${nowMs}.bak`;
    copyFileSync(file, backupFile);
  }
  for (const migration of migrations.slice(from)) {
    const apply = db.transaction(() => {
      migration.up(db);
      db.pragma(`user_version = ${migration.version}`);
    });
    try {
      apply();
    } catch (error) {
      throw new ConsoleError(
        'internal',
        `console store: migration to version ${migration.version} (${migration.description}) failed and was rolled back; ` +
          `the store stays at version ${migration.version - 1}: ${(error as Error).message}`,
      );
    }
  }
  return { from, to: latest, backupFile };
}
