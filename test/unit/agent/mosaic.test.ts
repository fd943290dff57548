// The mosaic test page served by the agent: node colours, bounded parameters, nothing echoed, and
// over a real HTTP server every tile closes its connection so the next one comes from a new
// client port (what makes on_port balancing visible through a farm's VIP).
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  mosaicPage,
  mosaicTilesMax,
  nodeColour,
  nodeHue,
  repeatMsOf,
  serveMosaic,
  tileCountOf,
  type TileAnswer,
} from '../../../agent/api/mosaic.ts';

describe('mosaic: pure parts', () => {
  test('a node colour is a stable #rrggbb, different for n1, n2, n3', () => {
    const colours = ['n1', 'n2', 'n3'].map(nodeColour);
    for (const colour of colours) assert.match(colour, /^#[0-9a-f]{6}$/);
    assert.equal(new Set(colours).size, 3);
    assert.equal(nodeColour('n1'), nodeColour('n1'));
    assert.match(nodeColour('<script>'), /^#[0-9a-f]{6}$/);
  });

  test('numbered nodes get hues far apart: n1..n3 at least 60 degrees, node1..node8 at least 25', () => {
    const distance = (a: number, b: number) => Math.min(Math.abs(a - b), 360 - Math.abs(a - b));
    const minimum = (names: string[]) => {
      let smallest = 360;
      for (const a of names)
        for (const b of names) if (a < b) smallest = Math.min(smallest, distance(nodeHue(a), nodeHue(b)));
      return smallest;
    };
    assert.ok(minimum(['n1', 'n2', 'n3']) >= 60, String(minimum(['n1', 'n2', 'n3'])));
    const eight = Array.from({ length: 8 }, (_, index) => `node${index + 1}`);
    assert.ok(minimum(eight) >= 25, String(minimum(eight)));
  });

  test('tile count and repeat interval are bounded; junk gives the default', () => {
    assert.equal(tileCountOf(null), 100);
    assert.equal(tileCountOf('60'), 60);
    assert.equal(tileCountOf('0'), 1);
    assert.equal(tileCountOf('99999'), 100);
    assert.equal(tileCountOf('5000'), mosaicTilesMax);
    assert.equal(tileCountOf('12<b>'), 100);
    assert.equal(repeatMsOf('0'), 0);
    assert.equal(repeatMsOf('10'), 500);
    assert.equal(repeatMsOf('9999999'), 3000);
    assert.equal(repeatMsOf('600000'), 60_000);
  });

  test('the page carries only numbers computed by the agent', () => {
    const page = mosaicPage(60, 0);
    assert.match(page, /data-tiles="60" data-repeat-ms="0"/);
    assert.doesNotMatch(page, /<script>[^<]/, 'no inline script (the page forbids it)');
  });
});

interface Fetched {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  localPort: number;
}

describe('mosaic over HTTP', () => {
  let server: Server;
  let port = 0;
  before(async () => {
    server = createServer((incoming, response) => {
      const url = new URL(incoming.url ?? '/', 'http://localhost');
      if (!serveMosaic(incoming, response, url.pathname, url.searchParams, 'node-a')) {
        response.writeHead(404);
        response.end();
      }
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((done) => server.close(() => done())));

  // A keep-alive agent: the server's `Connection: close` is what forces a new connection.
  function get(path: string, method = 'GET'): Promise<Fetched> {
    return new Promise((resolvePromise, reject) => {
      const outgoing = request(
        { host: '127.0.0.1', port, path, method, headers: { connection: 'keep-alive' } },
        (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => {
            body += chunk.toString();
          });
          response.on('end', () =>
            resolvePromise({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body,
              localPort: outgoing.socket?.localPort ?? 0,
            }),
          );
        },
      );
      outgoing.on('error', reject);
      outgoing.end();
    });
  }

  test('tiles: JSON with the node, its colour and the client port as the server saw it; connection closed', async () => {
    const ports: number[] = [];
    for (let index = 0; index < 5; index += 1) {
      const tile = await get(`/hakit/mosaic/tile?round=1&tile=${index}`);
      assert.equal(tile.status, 200);
      assert.equal(tile.headers.connection, 'close');
      assert.equal(tile.headers['cache-control'], 'no-store');
      const answer = JSON.parse(tile.body) as TileAnswer;
      assert.equal(answer.node, 'node-a');
      assert.equal(answer.colour, nodeColour('node-a'));
      assert.equal(answer.clientAddress.replace(/^::ffff:/, ''), '127.0.0.1');
      ports.push(answer.clientPort);
    }
    assert.equal(new Set(ports).size, 5, `each tile on a new connection: ports ${ports.join(' ')}`);
  });

  test('the page (hakit and reference paths) and its script, with a CSP forbidding inline script', async () => {
    for (const path of ['/hakit/mosaic.html?tiles=60', '/safekit/mosaic.html?tiles=60']) {
      const page = await get(path);
      assert.equal(page.status, 200);
      assert.match(String(page.headers['content-type']), /text\/html/);
      assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
      assert.match(page.body, /data-tiles="60"/);
      assert.match(page.body, /src="\/hakit\/mosaic\.js"/);
    }
    const script = await get('/hakit/mosaic.js');
    assert.equal(script.status, 200);
    assert.match(String(script.headers['content-type']), /javascript/);
    assert.match(script.body, /\/hakit\/mosaic\/tile\?round=/);
    const reflected = await get('/hakit/mosaic.html?tiles=%3Cscript%3Ealert(1)%3C/script%3E');
    assert.doesNotMatch(reflected.body, /alert/);
  });

  test("other methods are refused; other paths are not the mosaic's", async () => {
    assert.equal((await get('/hakit/mosaic/tile', 'POST')).status, 405);
    assert.equal((await get('/hakit/other')).status, 404);
  });
});
