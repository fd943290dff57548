// Serves the control socket. Each connection carries one request (JSON, then end of stream)
// and gets one response; sizes are bounded so a stuck or hostile client cannot grow memory.
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import {
  type ControlRequest,
  type ControlResponse,
  controlMessageBytesMax,
  isControlRequest,
} from './control-protocol.ts';

export type ControlHandler = (request: ControlRequest) => Promise<ControlResponse>;

const requestTimeoutMs = 10_000;

function reply(socket: Socket, response: ControlResponse): void {
  socket.end(`${JSON.stringify(response)}\n`);
}

export function serveControl(socketPath: string, handler: ControlHandler): Promise<Server> {
  // A socket file left by a crashed daemon would make listen() fail with EADDRINUSE; the pid
  // file lock taken before this call proves no live daemon owns it.
  if (existsSync(socketPath)) rmSync(socketPath);
  // allowHalfOpen: the client ends its side after the request and still waits for the answer.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const chunks: Buffer[] = [];
    let receivedBytes = 0;
    socket.setTimeout(requestTimeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      receivedBytes += chunk.length;
      if (receivedBytes > controlMessageBytesMax) {
        reply(socket, {
          exitCode: 2,
          text: '',
          error: `request larger than ${controlMessageBytesMax} bytes`,
        });
        socket.destroy();
        return;
      }
      chunks.push(chunk);
    });
    socket.on('end', () => {
      let request: unknown;
      try {
        request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        reply(socket, { exitCode: 2, text: '', error: 'control request is not JSON' });
        return;
      }
      if (!isControlRequest(request)) {
        reply(socket, { exitCode: 2, text: '', error: 'control request has the wrong shape' });
        return;
      }
      // Commands such as waitstate may last long: the idle timeout no longer applies once asked.
      socket.setTimeout(0);
      handler(request).then(
        (response) => reply(socket, response),
        (error: unknown) =>
          reply(socket, {
            exitCode: 1,
            text: '',
            error: `internal error: ${error instanceof Error ? error.message : String(error)}`,
          }),
      );
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      chmodSync(socketPath, 0o600);
      server.off('error', reject);
      resolve(server);
    });
  });
}
