// Who may use the API: users with scrypt-hashed passwords and bearer API keys, each with one
// role (reference 9.3): Admin (configure + act + read), Control (act + read), Monitor (read).
// Stored in $SAFEVAR/web/credentials.json (0600); a key's token is shown once and only its hash
// is kept.
import { randomBytes, scryptSync, timingSafeEqual, createHash } from 'node:crypto';
import { join } from 'node:path';
import { readJsonFile, writeJsonDurably } from '../daemon/durable-file.ts';
import type { NodePaths } from '../daemon/paths.ts';

export const roles = ['Monitor', 'Control', 'Admin'] as const;
export type Role = (typeof roles)[number];

export function roleAllows(role: Role, needed: Role): boolean {
  return roles.indexOf(role) >= roles.indexOf(needed);
}

export function parseRole(text: string): Role | null {
  const found = roles.find((role) => role.toLowerCase() === text.toLowerCase());
  return found ?? null;
}

interface StoredUser {
  role: Role;
  /** scrypt parameters and output, hex. */
  salt: string;
  hash: string;
}

interface StoredKey {
  role: Role;
  /** sha256 of the token: tokens are 32 random bytes, so a fast hash is enough. */
  tokenHash: string;
  createdAtMs: number;
}

interface CredentialFile {
  version: 1;
  users: Record<string, StoredUser>;
  keys: Record<string, StoredKey>;
}

function isCredentialFile(value: unknown): value is CredentialFile {
  const candidate = value as CredentialFile;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    candidate.version === 1 &&
    typeof candidate.users === 'object'
  );
}

const namePattern = /^[A-Za-z0-9_.@-]{1,64}$/;
export const passwordCharsMin = 8;
export const passwordCharsMax = 1024;
const scryptKeyBytes = 32;
/** Key tokens start with a prefix so a leaked one is recognisable in logs and scanners. */
const tokenPrefix = 'hk_';

export class CredentialError extends Error {
  override name = 'CredentialError';
}

export function credentialsFile(paths: NodePaths): string {
  return join(paths.safeVar, 'web', 'credentials.json');
}

export class Credentials {
  constructor(private readonly file: string) {}

  private read(): CredentialFile {
    const read = readJsonFile(this.file, isCredentialFile);
    if (read.kind === 'corrupt') throw new CredentialError(`${this.file} is damaged (${read.reason})`);
    return read.kind === 'ok' ? read.value : { version: 1, users: {}, keys: {} };
  }

  private write(content: CredentialFile): void {
    writeJsonDurably(this.file, content);
  }

  hasUsers(): boolean {
    return Object.keys(this.read().users).length > 0;
  }

  setPassword(user: string, password: string, role: Role): void {
    if (!namePattern.test(user))
      throw new CredentialError(`bad user name '${user}': 1 to 64 letters, digits or _.@-`);
    if (password.length < passwordCharsMin || password.length > passwordCharsMax) {
      throw new CredentialError(
        `the password must have ${passwordCharsMin} to ${passwordCharsMax} characters`,
      );
    }
    const salt = randomBytes(16);
    const hash = scryptSync(password, salt, scryptKeyBytes);
    const content = this.read();
    content.users[user] = { role, salt: salt.toString('hex'), hash: hash.toString('hex') };
    this.write(content);
  }

  /** The user's role when the password is right, null otherwise (same time either way). */
  checkPassword(user: string, password: string): Role | null {
    const stored = this.read().users[user];
    const salt = stored ? Buffer.from(stored.salt, 'hex') : randomBytes(16);
    const actual = scryptSync(password.slice(0, passwordCharsMax), salt, scryptKeyBytes);
    if (!stored) return null;
    return timingSafeEqual(actual, Buffer.from(stored.hash, 'hex')) ? stored.role : null;
  }

  deleteUser(user: string): boolean {
    const content = this.read();
    if (!content.users[user]) return false;
    delete content.users[user];
    this.write(content);
    return true;
  }

  listUsers(): { user: string; role: Role }[] {
    return Object.entries(this.read().users).map(([user, stored]) => ({ user, role: stored.role }));
  }

  /** Creates a key and returns its token: the only time the token exists outside its holder. */
  createKey(name: string, role: Role, nowMs: number): string {
    if (!namePattern.test(name))
      throw new CredentialError(`bad key name '${name}': 1 to 64 letters, digits or _.@-`);
    const content = this.read();
    if (content.keys[name]) throw new CredentialError(`an API key named ${name} exists; delete it first`);
    const token = `${tokenPrefix}${randomBytes(32).toString('base64url')}`;
    content.keys[name] = {
      role,
      tokenHash: createHash('sha256').update(token).digest('hex'),
      createdAtMs: nowMs,
    };
    this.write(content);
    return token;
  }

  /** Installs a key made elsewhere (node-to-node credentials pushed by `-G`). */
  importKey(name: string, role: Role, token: string, nowMs: number): void {
    const content = this.read();
    content.keys[name] = {
      role,
      tokenHash: createHash('sha256').update(token).digest('hex'),
      createdAtMs: nowMs,
    };
    this.write(content);
  }

  checkToken(token: string): { name: string; role: Role } | null {
    if (!token.startsWith(tokenPrefix) || token.length > 256) return null;
    const hash = Buffer.from(createHash('sha256').update(token).digest('hex'));
    for (const [name, key] of Object.entries(this.read().keys)) {
      if (timingSafeEqual(hash, Buffer.from(key.tokenHash))) return { name, role: key.role };
    }
    return null;
  }

  deleteKey(name: string): boolean {
    const content = this.read();
    if (!content.keys[name]) return false;
    delete content.keys[name];
    this.write(content);
    return true;
  }

  listKeys(): { name: string; role: Role; createdAtMs: number }[] {
    return Object.entries(this.read().keys).map(([name, key]) => ({
      name,
      role: key.role,
      createdAtMs: key.createdAtMs,
    }));
  }
}
