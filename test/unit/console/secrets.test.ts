// Secrets: the encrypted-file fallback (no keychain service runs on this machine), wrong
// passphrase refused, tampering detected, nothing in clear on disk, redaction of logged text.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  EncryptedFileSecrets,
  openKeychain,
  SecretStore,
} from '../../../main/services/secrets/secret-store.ts';
import type { ConsoleError } from '../../../main/services/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'hakit-console-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('secret store', () => {
  test('where no keychain service answers, the console falls back to the encrypted file and says why', async () => {
    const keychain = await openKeychain();
    const store = await SecretStore.open(join(dir, 'auto.enc.json'));
    if (keychain.backend === null) {
      assert.equal(store.status().backend, 'file');
      assert.match(store.status().detail, /encrypted with the master passphrase/);
      assert.equal(store.status().locked, true);
    } else {
      assert.equal(store.status().backend, 'keychain');
    }
  });

  test('the file is locked until the passphrase is given; values round-trip; the file holds no clear text', async () => {
    const file = join(dir, 'a.enc.json');
    const secrets = new EncryptedFileSecrets(file);
    await assert.rejects(secrets.get('x'), (error: unknown) => (error as ConsoleError).code === 'locked');
    await secrets.unlock('correct horse battery');
    await secrets.set('ssh-1', 'S3cret-SSH-password');
    await secrets.set('token-1', 'hk_abcdefghijklmnopqrstuvwxyz');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const raw = readFileSync(file, 'utf8');
    assert.ok(
      !raw.includes('S3cret') && !raw.includes('hk_abc') && !raw.includes('ssh-1'),
      'nothing readable in the file',
    );
    const reopened = new EncryptedFileSecrets(file);
    await reopened.unlock('correct horse battery');
    assert.equal(await reopened.get('ssh-1'), 'S3cret-SSH-password');
    await reopened.delete('ssh-1');
    assert.equal(await reopened.get('ssh-1'), null);
  });

  test('a wrong passphrase and a tampered file are refused', async () => {
    const file = join(dir, 'b.enc.json');
    const secrets = new EncryptedFileSecrets(file);
    await secrets.unlock('first passphrase');
    await secrets.set('k', 'value-1234');
    await assert.rejects(
      new EncryptedFileSecrets(file).unlock('other passphrase'),
      /wrong master passphrase/,
    );
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { data: string };
    const data = Buffer.from(parsed.data, 'base64');
    data[0] = (data[0] ?? 0) ^ 1;
    writeFileSync(file, JSON.stringify({ ...parsed, data: data.toString('base64') }));
    await assert.rejects(
      new EncryptedFileSecrets(file).unlock('first passphrase'),
      /wrong master passphrase \(or the secrets file was altered\)/,
    );
    await assert.rejects(new EncryptedFileSecrets(join(dir, 'c.enc.json')).unlock('short'), /8 to 1024/);
  });

  test('every secret value the store handled is redacted from text', async () => {
    const store = await SecretStore.open(join(dir, 'r.enc.json'), { forceFile: true });
    await store.unlock('redaction passphrase');
    await store.set('p', 'pa55word-xyz');
    assert.equal(store.redact('ssh said: pa55word-xyz is wrong'), 'ssh said: *** is wrong');
    await assert.rejects(
      store.require(null, 'the SSH password of n1'),
      /the SSH password of n1 is not in the secret store/,
    );
  });
});
