// Module encryption keys (reference 7.5 `module genkey|delkey -m AM`): `conf/modulekey.dat` in the
// module's editable folder, 32 random bytes in hex (the cluster key's format), mode 600. `config`
// copies it into the applied module, where it turns the replication stream into TLS
// (runtime-config-loader.ts moduleKeyFileOf, docs/replication.md). Both nodes need the same file.
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { moduleKeyPath } from '../config/module-package.ts';
import { signatureOf } from './cluster-files.ts';
import { writeFileDurably } from './durable-file.ts';

const moduleKeyBytes = 32;
/** A key file is one line of hex; anything much larger is not a key. */
const moduleKeyFileBytesMax = 1024;

/** Why `text` is not a module key, or null when it is one. */
export function moduleKeyProblem(text: string): string | null {
  const hex = text.trim();
  return /^[0-9a-fA-F]{64}$/.test(hex)
    ? null
    : `expected ${moduleKeyBytes * 2} hex digits, found ${hex.length} characters`;
}

/**
 * A short public name of a key (a hash, which does not reveal it): the same on both nodes exactly
 * when they hold the same key, so `confinfo` can be compared without copying the key around.
 */
export function moduleKeySignature(text: string): string {
  return signatureOf(Buffer.from(text.trim().toLowerCase(), 'hex'));
}

/** Reads and checks a key file; throws with the file and what is wrong. */
export function readModuleKeyFile(file: string, module: string): string {
  const { mode, size } = statSync(file);
  if ((mode & 0o077) !== 0)
    throw new Error(
      `module key ${file}: mode ${(mode & 0o777).toString(8)} lets others read it; chmod 600 it`,
    );
  if (size > moduleKeyFileBytesMax)
    throw new Error(`module key ${file}: ${size} bytes, over ${moduleKeyFileBytesMax}`);
  const text = readFileSync(file, 'utf8');
  const problem = moduleKeyProblem(text);
  if (problem !== null)
    throw new Error(`module key ${file}: ${problem} (make one with: hakit module genkey -m ${module})`);
  return text;
}

export function editableModuleKeyFile(modulesDir: string, module: string): string {
  return join(modulesDir, module, ...moduleKeyPath.split('/'));
}

function howToShare(module: string, file: string): string {
  return (
    `The other node needs the same key: push the module with hakit -H "*" -E ${module} ` +
    `(installs it there with the key, mode 600, and configures it where it is configured here), ` +
    `or copy ${file} keeping mode 600 (scp -p) and run hakit config -m ${module} there; ` +
    `hakit confinfo -m ${module} shows the key's signature on each node.`
  );
}

/** `module genkey -m AM`: a fresh key in the editable module, for the next `config`. */
export function generateModuleKey(modulesDir: string, module: string): string {
  const file = editableModuleKeyFile(modulesDir, module);
  const replaced = existsSync(file);
  const text = `${randomBytes(moduleKeyBytes).toString('hex')}\n`;
  writeFileDurably(file, text, 0o600);
  return [
    `module ${module}: encryption key ${replaced ? 'replaced' : 'generated'} in ${file} ` +
      `(signature ${moduleKeySignature(text)})`,
    `It takes effect at the next hakit config -m ${module} (with the module stopped).`,
    howToShare(module, file),
  ].join('\n');
}

/** `module delkey -m AM`: removes the key from the editable module; `config` then turns encryption off. */
export function deleteModuleKey(modulesDir: string, module: string): string {
  const file = editableModuleKeyFile(modulesDir, module);
  if (!existsSync(file)) return `module ${module}: no encryption key (${file}); nothing to delete`;
  rmSync(file);
  // The removal survives a crash like genkey's write does.
  const dirFd = openSync(dirname(file), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return [
    `module ${module}: encryption key ${file} deleted`,
    `Encryption goes off at the next hakit config -m ${module} (with the module stopped); ` +
      `do the same on the other node (hakit -H "*" -E ${module}, or delkey and config there): ` +
      `a node with a key and one without do not replicate.`,
  ].join('\n');
}
