// The SSH transport (ssh2): key or password authentication, the host key checked against the pin
// before authenticating (first use: pinned by the caller once the session is up), commands with
// bounded output and time, SFTP uploads with progress.
import { Client, type ClientChannel, type SFTPWrapper } from 'ssh2';
import { decideHostKey, type HostKeyDecision } from '../store/host-keys.ts';
import {
  HostKeyChangedError,
  type ExecOptions,
  type RemoteResult,
  type RemoteSession,
  type RemoteTarget,
  type RemoteTransport,
  TransportError,
} from './transport.ts';

export const remoteOutputBytesMax = 1024 * 1024;

class SshSession implements RemoteSession {
  constructor(
    private readonly client: Client,
    private readonly where: string,
    readonly hostKey: { blobBase64: string; decision: HostKeyDecision },
  ) {}

  exec(command: string, options: ExecOptions): Promise<RemoteResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error: Error | undefined, stream: ClientChannel) => {
        if (error) {
          reject(new TransportError(`${this.where}: cannot run a command: ${error.message}`));
          return;
        }
        let stdout = '';
        let stderr = '';
        let code = 255;
        const keep = (text: string, chunk: Buffer) =>
          (text + chunk.toString('utf8')).slice(-remoteOutputBytesMax);
        const timer = setTimeout(() => {
          stream.close();
          reject(
            new TransportError(`${this.where}: command did not finish within ${options.timeoutMs / 1000} s`),
          );
        }, options.timeoutMs);
        stream.on('data', (chunk: Buffer) => {
          stdout = keep(stdout, chunk);
        });
        stream.stderr.on('data', (chunk: Buffer) => {
          stderr = keep(stderr, chunk);
        });
        stream.on('exit', (exitCode: number | null, signal?: string) => {
          code = exitCode ?? (signal ? 128 : 255);
        });
        stream.on('close', () => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
        if (options.stdin !== undefined) stream.write(options.stdin);
        stream.end();
      });
    });
  }

  private sftp(): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) => {
      this.client.sftp((error, sftp) =>
        error
          ? reject(new TransportError(`${this.where}: cannot open SFTP: ${error.message}`))
          : resolve(sftp),
      );
    });
  }

  async upload(
    localFile: string,
    remotePath: string,
    onProgress: (sentBytes: number, totalBytes: number) => void,
  ): Promise<void> {
    const sftp = await this.sftp();
    try {
      await new Promise<void>((resolve, reject) => {
        sftp.fastPut(
          localFile,
          remotePath,
          { step: (sent: number, _chunk: number, total: number) => onProgress(sent, total), mode: 0o600 },
          (error) =>
            error
              ? reject(new TransportError(`${this.where}: SFTP upload to ${remotePath}: ${error.message}`))
              : resolve(),
        );
      });
    } finally {
      sftp.end();
    }
  }

  close(): void {
    this.client.end();
  }
}

export class SshTransport implements RemoteTransport {
  readonly name = 'ssh';

  connect(target: RemoteTarget): Promise<RemoteSession> {
    const where = `${target.user}@${target.host}:${target.port}`;
    return new Promise((resolve, reject) => {
      const client = new Client();
      let presented: { blobBase64: string; decision: HostKeyDecision } | null = null;
      let refused: Error | null = null;
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        client.end();
        reject(error);
      };
      client
        .on('ready', () => {
          if (settled) return;
          settled = true;
          if (presented === null) {
            client.end();
            reject(new TransportError(`${where}: connected without seeing a host key`));
            return;
          }
          resolve(new SshSession(client, where, presented));
        })
        .on('error', (error: Error & { level?: string }) => {
          if (refused) return fail(refused);
          const reason =
            error.level === 'client-authentication'
              ? `authentication refused for ${target.user} (wrong password or key)`
              : error.message;
          fail(new TransportError(`ssh to ${where}: ${reason}`));
        })
        .on('close', () =>
          fail(refused ?? new TransportError(`ssh to ${where}: connection closed during setup`)),
        );
      const auth =
        target.auth.kind === 'password'
          ? { password: target.auth.password, tryKeyboard: false }
          : { privateKey: target.auth.privateKey, passphrase: target.auth.passphrase };
      try {
        client.connect({
          host: target.host,
          port: target.port,
          username: target.user,
          ...auth,
          readyTimeout: target.connectTimeoutMs,
          keepaliveInterval: 10_000,
          keepaliveCountMax: 3,
          hostVerifier: (key: Buffer) => {
            const decision = decideHostKey(target.pinnedHostKey, key);
            presented = { blobBase64: key.toString('base64'), decision };
            if (decision.kind === 'changed') {
              refused = new HostKeyChangedError(where, decision.fingerprint, decision.pinnedFingerprint);
              return false;
            }
            return true;
          },
        });
      } catch (error) {
        // Bad key format and the like are thrown synchronously by ssh2.
        fail(new TransportError(`ssh to ${where}: ${(error as Error).message}`));
      }
    });
  }
}
