/**
 * Test helpers: synthetic imagery as a static STAC catalog (GDAL, make_scenes.py), a webhook
 * receiver, and a static file server that can be told to fail (a STAC source going down).
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GDAL_PYTHON, requireGdal } from '../../../../test/support/tools.js';
import type { RegionInput } from '../../src/store.js';

const MAKE = fileURLToPath(new URL('./make_scenes.py', import.meta.url));

export interface SceneSpec {
  id: string;
  datetime: string;
  /** Cleared rectangles [x0, y0, x1, y1] in metres from the scene's top-left corner (x right, y down). */
  clear?: [number, number, number, number][];
  /** Only this part of the area [x0, y0, x1, y1] (metres from the top-left corner, whole pixels). */
  extent?: [number, number, number, number];
}

export const ORIGIN: [number, number] = [698_400, 32_400];

/** Write scenes + catalog.json + aoi.geojson into `dir` (the catalog lists exactly `scenes`). */
export function makeScenes(dir: string, scenes: SceneSpec[], size: [number, number] = [700, 700], seed = 3, origin: [number, number] = ORIGIN): { catalog: string; aoi: string } {
  requireGdal();
  const spec = { epsg: 32636, origin, gsd: 0.6, size, seed, scenes, aoi_inset_m: 30 };
  const out = execFileSync(GDAL_PYTHON, [MAKE, dir, JSON.stringify(spec)], { encoding: 'utf8', timeout: 300_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as { catalog: string; aoi: string };
}

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

export async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
}

export async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

/** A webhook receiver answering the statuses in `plan` in order, then 200. */
export async function webhookReceiver(): Promise<{ url: string; received: Received[]; plan: number[]; server: Server }> {
  const received: Received[] = [];
  const plan: number[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const status = plan.length ? plan.shift()! : 200;
      received.push({ headers: req.headers, body, status });
      res.writeHead(status).end(status === 200 ? 'ok' : 'nope');
    });
  });
  const base = await listen(server);
  return { url: `${base}/hook`, received, plan, server };
}

/** Serves the files of `root`; while `state.fail` is true, every request gets a 500. */
export async function fileServer(root: string): Promise<{ base: string; state: { fail: boolean; requests: number }; server: Server }> {
  const state = { fail: false, requests: 0 };
  const rootAbs = resolve(root);
  const server = createServer((req, res) => {
    state.requests++;
    if (state.fail) return void res.writeHead(500).end('STAC source down');
    const path = normalize(join(rootAbs, decodeURIComponent((req.url ?? '/').split('?')[0]!)));
    if (!path.startsWith(rootAbs + sep) || !existsSync(path) || !statSync(path).isFile()) return void res.writeHead(404).end('not found');
    const size = statSync(path).size;
    const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
    const type = path.endsWith('.json') ? 'application/json' : 'image/tiff';
    if (range) {
      const start = Number(range[1]);
      const end = Math.min(size - 1, range[2] ? Number(range[2]) : size - 1);
      res.writeHead(206, { 'content-type': type, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${size}`, 'accept-ranges': 'bytes' });
      createReadStream(path, { start, end }).pipe(res);
    } else {
      res.writeHead(200, { 'content-type': type, 'content-length': size, 'accept-ranges': 'bytes' });
      createReadStream(path).pipe(res);
    }
  });
  return { base: await listen(server), state, server };
}

/** A region for store and scheduler tests: defaults for every field, overridden by `extra`. */
export function regionInput(name: string, schedule: string, extra: Partial<RegionInput> = {}): RegionInput {
  return {
    name,
    aoiPath: `/nowhere/${name}.geojson`,
    aoiAreaM2: 1e6,
    aoiBbox: [0, 0, 0.01, 0.01],
    schedule,
    timezone: 'UTC',
    imagery: 'https://stac.example/api',
    model: null,
    landcover: null,
    collections: null,
    maxCloud: null,
    lossThresholdM: 5,
    minAreaM2: 500,
    webhookUrl: null,
    webhookSecret: null,
    ...extra,
  };
}
