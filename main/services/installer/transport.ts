// How the installer reaches a node: a session that runs commands and uploads files. SSH (ssh2) is
// the one implementation today; a WinRM transport for Windows nodes plugs in behind the same
// interface.
import type { HostKeyDecision } from '../store/host-keys.ts';

export type RemoteAuth =
  { kind: 'password'; password: string } | { kind: 'key'; privateKey: string; passphrase?: string };

export interface RemoteTarget {
  host: string;
  port: number;
  user: string;
  auth: RemoteAuth;
  /** The pinned host key (base64 blob), null on first use. */
  pinnedHostKey: string | null;
  connectTimeoutMs: number;
}

export interface RemoteResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Written to the command's standard input, then closed (passwords go here, never in argv). */
  stdin?: string;
  timeoutMs: number;
}

export interface RemoteSession {
  /** What the host presented and how it compares with the pin. */
  readonly hostKey: { blobBase64: string; decision: HostKeyDecision };
  exec(command: string, options: ExecOptions): Promise<RemoteResult>;
  upload(
    localFile: string,
    remotePath: string,
    onProgress: (sentBytes: number, totalBytes: number) => void,
  ): Promise<void>;
  close(): void;
}

export interface RemoteTransport {
  readonly name: string;
  connect(target: RemoteTarget): Promise<RemoteSession>;
}

/** The host key changed since it was pinned: the connection is refused before authenticating. */
export class HostKeyChangedError extends Error {
  override name = 'HostKeyChangedError';
  constructor(
    readonly host: string,
    readonly presented: string,
    readonly pinned: string,
  ) {
    super(
      `the SSH host key of ${host} changed: it presents ${presented}, the pinned key is ${pinned}. ` +
        'Refused (this may be an attack, or the node was reinstalled: check it, then forget the pinned key to accept the new one)',
    );
  }
}

export class TransportError extends Error {
  override name = 'TransportError';
}
