// Secrets (SSH passwords and keys, API tokens, the node-to-node key) live in the OS keychain
// through @napi-rs/keyring, or, where no keychain service runs (a server without a desktop
// session, this test machine), in one file encrypted with AES-256-GCM under a key derived by
// scrypt from a master passphrase. The store (SQLite) holds only references; values never reach a
// log: `redact` replaces every secret this process has seen by `***`.
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCallback } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import type { SecretsStatus } from '../../api/contract.ts';
import { badInput, ConsoleError } from '../errors.ts';

export const keychainService = 'hakit-console';
const fileFormat = 'hakit-secrets';
const scryptCost = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
export const secretBytesMax = 64 * 1024;
export const passphraseLengthMin = 8;

export interface SecretBackend {
  readonly kind: 'keychain' | 'file';
  get(ref: string): Promise<string | null>;
  set(ref: string, value: string): Promise<void>;
  delete(ref: string): Promise<void>;
}

interface KeyringEntry {
  setPassword(password: string): void;
  getPassword(): string | null | undefined;
  deletePassword(): boolean;
}

type KeyringModule = { Entry: new (service: string, account: string) => KeyringEntry };

/** The OS keychain, when a keychain service answers; null (with the reason) when not. */
export async function openKeychain(): Promise<{ backend: SecretBackend | null; reason: string }> {
  // On Linux the library can fall back to the kernel's session keyring, which forgets everything
  // at logout or reboot: only a Secret Service on a D-Bus session bus keeps secrets, so without one
  // the console uses its encrypted file instead.
  if (process.platform === 'linux' && !process.env.DBUS_SESSION_BUS_ADDRESS)
    return {
      backend: null,
      reason: 'no keychain service runs here (no D-Bus session bus for a Secret Service)',
    };
  let keyring: KeyringModule;
  try {
    keyring = (await import('@napi-rs/keyring')) as unknown as KeyringModule;
  } catch (error) {
    return { backend: null, reason: `the keychain library does not load here: ${(error as Error).message}` };
  }
  const probe = `probe-${randomBytes(6).toString('hex')}`;
  try {
    const entry = new keyring.Entry(keychainService, probe);
    entry.setPassword('probe');
    const back = entry.getPassword();
    entry.deletePassword();
    if (back !== 'probe') return { backend: null, reason: 'the keychain did not give back what was stored' };
  } catch (error) {
    return { backend: null, reason: `no keychain service answers (${(error as Error).message})` };
  }
  const entryOf = (ref: string) => new keyring.Entry(keychainService, ref);
  return {
    reason: 'OS keychain',
    backend: {
      kind: 'keychain',
      async get(ref) {
        try {
          return entryOf(ref).getPassword() ?? null;
        } catch (error) {
          if (/No matching entry|NoEntry/i.test((error as Error).message)) return null;
          throw new ConsoleError('internal', `keychain: cannot read ${ref}: ${(error as Error).message}`);
        }
      },
      async set(ref, value) {
        entryOf(ref).setPassword(value);
      },
      async delete(ref) {
        try {
          entryOf(ref).deletePassword();
        } catch {
          // Already gone.
        }
      },
    },
  };
}

function deriveKey(passphrase: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(passphrase, salt, 32, scryptCost, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

interface EncryptedFile {
  format: string;
  version: 1;
  kdf: { name: 'scrypt'; salt: string; N: number; r: number; p: number };
  iv: string;
  tag: string;
  data: string;
}

/** The encrypted-file backend: locked until `unlock(passphrase)`; the first unlock sets the passphrase. */
export class EncryptedFileSecrets implements SecretBackend {
  readonly kind = 'file';
  private key: Buffer | null = null;
  private salt: Buffer | null = null;
  private values = new Map<string, string>();

  constructor(readonly file: string) {}

  get initialised(): boolean {
    return existsSync(this.file);
  }

  get locked(): boolean {
    return this.key === null;
  }

  async unlock(passphrase: string): Promise<void> {
    if (typeof passphrase !== 'string' || passphrase.length < passphraseLengthMin || passphrase.length > 1024)
      throw badInput(`the master passphrase has ${passphraseLengthMin} to 1024 characters`);
    if (!this.initialised) {
      this.salt = randomBytes(16);
      this.key = await deriveKey(passphrase, this.salt);
      this.values = new Map();
      this.write();
      return;
    }
    let parsed: EncryptedFile;
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8')) as EncryptedFile;
    } catch (error) {
      throw new ConsoleError(
        'refused',
        `the secrets file ${this.file} is damaged: ${(error as Error).message}`,
      );
    }
    if (parsed.format !== fileFormat || parsed.version !== 1 || parsed.kdf?.name !== 'scrypt')
      throw new ConsoleError('refused', `${this.file} is not a hakit secrets file this console reads`);
    const salt = Buffer.from(parsed.kdf.salt, 'base64');
    const key = await deriveKey(passphrase, salt);
    let plain: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(parsed.iv, 'base64'));
      decipher.setAuthTag(Buffer.from(parsed.tag, 'base64'));
      plain = Buffer.concat([decipher.update(Buffer.from(parsed.data, 'base64')), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw new ConsoleError('locked', 'wrong master passphrase (or the secrets file was altered)');
    }
    this.values = new Map(Object.entries(JSON.parse(plain) as Record<string, string>));
    this.salt = salt;
    this.key = key;
  }

  lock(): void {
    this.key = null;
    this.values = new Map();
  }

  private requireKey(): Buffer {
    if (this.key === null)
      throw new ConsoleError('locked', 'the secrets are locked: enter the master passphrase first');
    return this.key;
  }

  /** Encrypts the whole map with a fresh IV; temporary file, fsync, rename: never half-written. */
  private write(): void {
    const key = this.requireKey();
    if (this.salt === null) throw new Error('secrets salt missing while unlocked');
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const data = Buffer.concat([
      cipher.update(JSON.stringify(Object.fromEntries(this.values)), 'utf8'),
      cipher.final(),
    ]);
    const content: EncryptedFile = {
      format: fileFormat,
      version: 1,
      kdf: {
        name: 'scrypt',
        salt: this.salt.toString('base64'),
        N: scryptCost.N,
        r: scryptCost.r,
        p: scryptCost.p,
      },
      iv: iv.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
      data: data.toString('base64'),
    };
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const temporary = `${this.file}.${process.pid}.tmp`;
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(content));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, this.file);
  }

  async get(ref: string): Promise<string | null> {
    this.requireKey();
    return this.values.get(ref) ?? null;
  }

  async set(ref: string, value: string): Promise<void> {
    this.requireKey();
    this.values.set(ref, value);
    this.write();
  }

  async delete(ref: string): Promise<void> {
    this.requireKey();
    if (this.values.delete(ref)) this.write();
  }
}

/** What the services use: the chosen backend, plus redaction of every secret value seen. */
export class SecretStore {
  private readonly seen = new Set<string>();

  constructor(
    private readonly backend: SecretBackend,
    private readonly detail: string,
  ) {}

  static async open(fallbackFile: string, options: { forceFile?: boolean } = {}): Promise<SecretStore> {
    if (!options.forceFile) {
      const keychain = await openKeychain();
      if (keychain.backend) return new SecretStore(keychain.backend, keychain.reason);
      return new SecretStore(
        new EncryptedFileSecrets(fallbackFile),
        `${keychain.reason}: secrets are kept in ${fallbackFile}, encrypted with the master passphrase`,
      );
    }
    return new SecretStore(
      new EncryptedFileSecrets(fallbackFile),
      `secrets are kept in ${fallbackFile} (forced)`,
    );
  }

  status(): SecretsStatus {
    const backend = this.backend;
    if (backend instanceof EncryptedFileSecrets)
      return {
        backend: 'file',
        locked: backend.locked,
        initialised: backend.initialised,
        detail: this.detail,
      };
    return { backend: 'keychain', locked: false, initialised: true, detail: this.detail };
  }

  async unlock(passphrase: string): Promise<SecretsStatus> {
    if (this.backend instanceof EncryptedFileSecrets) await this.backend.unlock(passphrase);
    return this.status();
  }

  private remember(value: string): void {
    // Short values would redact ordinary words; every secret the console makes is longer.
    if (value.length >= 6) this.seen.add(value);
  }

  async get(ref: string): Promise<string | null> {
    const value = await this.backend.get(ref);
    if (value !== null) this.remember(value);
    return value;
  }

  async require(ref: string | null, what: string): Promise<string> {
    const value = ref === null ? null : await this.get(ref);
    if (value === null)
      throw new ConsoleError('not-found', `${what} is not in the secret store: enter it again`);
    return value;
  }

  async set(ref: string, value: string): Promise<void> {
    if (typeof value !== 'string' || value.length === 0 || value.length > secretBytesMax)
      throw badInput(`a secret is 1 to ${secretBytesMax} characters`);
    this.remember(value);
    await this.backend.set(ref, value);
  }

  async delete(ref: string | null): Promise<void> {
    if (ref !== null) await this.backend.delete(ref);
  }

  /** The text with every secret value this process has handled replaced by `***`. */
  redact(text: string): string {
    let out = text;
    for (const value of this.seen) if (out.includes(value)) out = out.split(value).join('***');
    return out;
  }
}
