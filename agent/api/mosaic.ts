// The load-balancing test page of the reference (`/safekit/mosaic.html`, served here as
// `/hakit/mosaic.html` too): a grid of tiles, each fetched through the VIP and painted in the
// colour of the node that served it. Every tile answer closes its connection, so each tile is a
// new TCP connection with a new client port, and on_port balancing shows as a mosaic. Public like
// the health check (load balancers and testers have no credentials); nothing the client sends is
// echoed back except its own address and port, as JSON.
import type { IncomingMessage, ServerResponse } from 'node:http';

export const mosaicPagePaths: readonly string[] = ['/hakit/mosaic.html', '/safekit/mosaic.html'];
export const mosaicScriptPath = '/hakit/mosaic.js';
export const mosaicTilePath = '/hakit/mosaic/tile';
export const mosaicTilesDefault = 100;
export const mosaicTilesMax = 400;
/** Connections the page keeps in flight: browsers allow 6 per host over HTTP/1.1. */
export const mosaicParallel = 6;
export const mosaicRepeatMsDefault = 3000;

/** FNV-1a 32-bit: a small stable hash, the same in the page and in tests. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

function hex2(value: number): string {
  return Math.round(value * 255)
    .toString(16)
    .padStart(2, '0');
}

/** The golden angle: hues k * 137.5 degrees apart stay far from each other for small k. */
const goldenAngleDegrees = 137.508;

/**
 * The hue of a node's tiles. Nodes are usually numbered (n1, n2, node03): the number picks the
 * hue by the golden angle, so neighbours never look alike (a hash alone often gives two of three
 * nodes nearly the same colour); other names are hashed.
 */
export function nodeHue(node: string): number {
  const numbered = /(\d{1,6})$/.exec(node);
  const index =
    numbered?.[1] !== undefined
      ? Number(numbered[1]) + fnv1a(node.slice(0, -numbered[1].length))
      : fnv1a(node);
  return (index * goldenAngleDegrees) % 360;
}

/** `#rrggbb` for a node name: its hue (nodeHue), saturated and mid-light so white text reads on it. */
export function nodeColour(node: string): string {
  const hue = nodeHue(node);
  const saturation = 0.65;
  const lightness = 0.5;
  const chroma = (1 - Math.abs(2 * lightness - 1)) * saturation;
  const x = chroma * (1 - Math.abs(((hue / 60) % 2) - 1));
  const m = lightness - chroma / 2;
  const [r, g, b] =
    hue < 60
      ? [chroma, x, 0]
      : hue < 120
        ? [x, chroma, 0]
        : hue < 180
          ? [0, chroma, x]
          : hue < 240
            ? [0, x, chroma]
            : hue < 300
              ? [x, 0, chroma]
              : [chroma, 0, x];
  return `#${hex2(r + m)}${hex2(g + m)}${hex2(b + m)}`;
}

/** The tile count asked in `?tiles=N`, bounded; the default when absent or not a whole number. */
export function tileCountOf(text: string | null): number {
  if (text === null || !/^\d{1,4}$/.test(text)) return mosaicTilesDefault;
  return Math.min(mosaicTilesMax, Math.max(1, Number(text)));
}

/** The repeat interval asked in `?repeat=MS` (0 = load once), bounded to 0.5 s .. 60 s. */
export function repeatMsOf(text: string | null): number {
  if (text === null || !/^\d{1,6}$/.test(text)) return mosaicRepeatMsDefault;
  const value = Number(text);
  return value === 0 ? 0 : Math.min(60_000, Math.max(500, value));
}

export interface TileAnswer {
  node: string;
  colour: string;
  /** The client as this node saw it: the address and port the bucket was computed from. */
  clientAddress: string;
  clientPort: number;
}

export function tileAnswer(node: string, clientAddress: string, clientPort: number): TileAnswer {
  return { node, colour: nodeColour(node), clientAddress, clientPort };
}

/** The page: only numbers computed here go into it; tile text is set with textContent. */
export function mosaicPage(tiles: number, repeatMs: number): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hakit mosaic</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 16px; background: #f4f4f4; color: #222; }
  h1 { font-size: 18px; margin: 0 0 4px; }
  p { margin: 4px 0 12px; font-size: 13px; }
  #grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(64px, 1fr)); gap: 3px; }
  .tile { height: 40px; border-radius: 3px; background: #ccc; color: #fff; font-size: 12px;
          display: flex; align-items: center; justify-content: center; overflow: hidden;
          text-shadow: 0 1px 1px rgba(0,0,0,.5); }
  .tile.failed { background: #333; }
  #legend span { display: inline-block; margin-right: 12px; padding: 2px 8px; border-radius: 3px; color: #fff; }
</style>
</head>
<body>
<h1>hakit load-balancing mosaic</h1>
<p>Each tile is one HTTP request on a new TCP connection to the address in the browser's bar,
painted in the colour of the node that answered. Black: no answer. Round <span id="round">0</span>.</p>
<div id="legend"></div>
<div id="grid" data-tiles="${tiles}" data-repeat-ms="${repeatMs}" data-parallel="${mosaicParallel}"></div>
<script src="${mosaicScriptPath}"></script>
</body>
</html>
`;
}

/** The page's script: served as a file so the page can forbid inline script (CSP). */
export const mosaicScript = `'use strict';
(function () {
  var grid = document.getElementById('grid');
  var tiles = Number(grid.dataset.tiles);
  var repeatMs = Number(grid.dataset.repeatMs);
  var parallel = Number(grid.dataset.parallel);
  var elements = [];
  for (var i = 0; i < tiles; i += 1) {
    var element = document.createElement('div');
    element.className = 'tile';
    element.dataset.index = String(i);
    grid.appendChild(element);
    elements.push(element);
  }
  var round = 0;
  function paint(element, answer) {
    if (answer === null) {
      element.className = 'tile failed';
      element.textContent = '-';
      element.dataset.node = '';
      return;
    }
    element.className = 'tile';
    element.style.background = /^#[0-9a-f]{6}$/.test(answer.colour) ? answer.colour : '#888';
    element.textContent = String(answer.node);
    element.title = answer.node + ' (client port ' + answer.clientPort + ')';
    element.dataset.node = String(answer.node);
    element.dataset.clientPort = String(answer.clientPort);
  }
  function legend() {
    var counts = {};
    var colours = {};
    elements.forEach(function (element) {
      var node = element.dataset.node;
      if (!node) return;
      counts[node] = (counts[node] || 0) + 1;
      colours[node] = element.style.background;
    });
    var box = document.getElementById('legend');
    box.textContent = '';
    Object.keys(counts).sort().forEach(function (node) {
      var span = document.createElement('span');
      span.style.background = colours[node];
      span.textContent = node + ': ' + counts[node];
      box.appendChild(span);
    });
  }
  function one(index) {
    var url = '${mosaicTilePath}?round=' + round + '&tile=' + index + '&t=' + Date.now();
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, 3000);
    return fetch(url, { cache: 'no-store', signal: controller.signal })
      .then(function (response) { return response.ok ? response.json() : null; })
      .catch(function () { return null; })
      .then(function (answer) { clearTimeout(timer); paint(elements[index], answer); });
  }
  function loadRound() {
    round += 1;
    document.getElementById('round').textContent = String(round);
    var next = 0;
    function worker() {
      if (next >= tiles) return Promise.resolve();
      var index = next;
      next += 1;
      return one(index).then(worker);
    }
    var workers = [];
    for (var w = 0; w < parallel; w += 1) workers.push(worker());
    return Promise.all(workers).then(function () {
      legend();
      document.body.dataset.rounds = String(round);
      if (repeatMs > 0) setTimeout(loadRound, repeatMs);
    });
  }
  loadRound();
})();
`;

const securityHeaders = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'",
};

/**
 * Serves the mosaic's paths (GET only); false for any other path. `node` is this node's name.
 * Every answer closes its connection: the next tile must come on a new one.
 */
export function serveMosaic(
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
  query: URLSearchParams,
  node: string,
): boolean {
  const known = mosaicPagePaths.includes(path) || path === mosaicScriptPath || path === mosaicTilePath;
  if (!known) return false;
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', connection: 'close', ...securityHeaders });
    response.end();
    return true;
  }
  let type: string;
  let body: string;
  if (path === mosaicTilePath) {
    type = 'application/json; charset=utf-8';
    body = JSON.stringify(
      tileAnswer(node, request.socket.remoteAddress ?? '', request.socket.remotePort ?? 0),
    );
  } else if (path === mosaicScriptPath) {
    type = 'text/javascript; charset=utf-8';
    body = mosaicScript;
  } else {
    type = 'text/html; charset=utf-8';
    body = mosaicPage(tileCountOf(query.get('tiles')), repeatMsOf(query.get('repeat')));
  }
  response.writeHead(200, {
    'content-type': type,
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
    ...securityHeaders,
  });
  response.end(request.method === 'HEAD' ? undefined : body);
  return true;
}
