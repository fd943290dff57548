// Sends one request to the local hakitd over its control socket.
import { connect } from 'node:net';
import {
  type ControlRequest,
  type ControlResponse,
  controlMessageBytesMax,
} from '../daemon/control-protocol.ts';

export class DaemonUnreachableError extends Error {
  override name = 'DaemonUnreachableError';
}

export function sendControl(
  socketPath: string,
  request: ControlRequest,
  timeoutMs: number,
): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    let receivedBytes = 0;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            socket.destroy();
            reject(new DaemonUnreachableError(`hakitd did not answer within ${timeoutMs} ms`));
          }, timeoutMs)
        : undefined;
    socket.on('connect', () => socket.end(JSON.stringify(request)));
    socket.on('data', (chunk: Buffer) => {
      receivedBytes += chunk.length;
      if (receivedBytes > controlMessageBytesMax) {
        socket.destroy();
        reject(new Error(`hakitd answer larger than ${controlMessageBytesMax} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
        reject(new DaemonUnreachableError(`hakitd is not running (no daemon on ${socketPath})`));
      } else reject(error);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ControlResponse);
      } catch {
        reject(new Error('hakitd sent an answer that is not JSON'));
      }
    });
  });
}
