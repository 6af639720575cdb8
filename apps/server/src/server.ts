/**
 * `geo-dino serve`: the viewer, the run files (PMTiles and friends, with HTTP Range), and a JSON API.
 *
 *   GET  /                      the viewer (apps/viewer's build)
 *   GET  /assets/<file>         viewer assets
 *   GET  /data/<run>/<file>     run files: .pmtiles .tif .json .geojson (Range, ETag)
 *   GET  /tiles/<run>/<layer>/tilejson.json, /tiles/<run>/<layer>/{z}/{x}/{y}.png|webp
 *                               XYZ tiles and TileJSON 3.0 for GIS clients (xyz.ts); coloured PNG
 *                               with ?colormap_name=&rescale=min,max
 *   GET  /api/config            version, basemap
 *   GET  /api/runs              runs, layers and their metadata
 *   GET  /api/point?run=&lon=&lat=   height ± uncertainty (and land cover) from the COG, and the scene
 *   POST /api/stats?run=        statistics of a GeoJSON polygon over the run's chm.tif
 *
 * Safe by default: binds to 127.0.0.1; when bound to loopback, requests must name a loopback host
 * (DNS-rebinding); only files provably inside the directory are served (see files.ts); bodies and
 * polygons are capped; no endpoint fetches a URL; every response carries a CSP and nosniff; nothing
 * from a request is ever written into HTML.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { realpath, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { GEO_DINO_VERSION, GeoDinoError, isGeoDinoError, silentLogger, type Logger } from '@geo-dino/core';
import { parseAoi } from '@geo-dino/geometry';
import type { PointResponse, StatsResponse } from './api-types.js';
import { contentSecurityPolicy, HttpError, readBody, securityHeaders, sendError, sendJson } from './http.js';
import { resolveInside, safeSegments, serveFile } from './files.js';
import { discoverRuns, runDir, type RunInfo } from './runs.js';
import { polygonStats, RasterPool, valueAt } from './raster.js';
import { sceneAt } from './provenance.js';
import { parseTilesPath, serveTiles, TileArchives } from './xyz.js';

export interface ServerOptions {
  /** The directory to serve (runs under it). */
  root: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** The viewer's build directory (default: @geo-dino/viewer's dist). */
  viewerDir?: string;
  /** A MapLibre style URL for a basemap (off by default: the viewer works offline). */
  basemap?: string | null;
  /** Largest request body, bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Most polygon vertices accepted by /api/stats (default 20000). */
  maxVertices?: number;
  /** Most raster pixels in a stats polygon's bounding box (default 50 million). */
  maxStatsPixels?: number;
  /** Send `Access-Control-Allow-Origin: *` on /tiles/ (web maps on other origins; default false). */
  corsTiles?: boolean;
  log?: Logger;
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

const DATA_EXTENSIONS = new Set(['.pmtiles', '.tif', '.tiff', '.json', '.geojson']);
const VIEWER_EXTENSIONS = new Set(['.html', '.js', '.mjs', '.css', '.svg', '.png', '.ico', '.woff2', '.map', '.txt', '.json']);
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * The raster of a run's heights for a place: chm.tif, or for a sharded run the VRT of the UTM zone
 * (and hemisphere) of that place, else the first zone's.
 */
export function chmRasterFor(run: RunInfo, [lon, lat]: [number, number]): string {
  const names = run.chmRasters ?? ['chm.tif'];
  if (names.length <= 1) return names[0] ?? 'chm.tif';
  const zone = `${Math.min(60, Math.max(1, Math.floor((lon + 180) / 6) + 1))}${lat >= 0 ? 'N' : 'S'}`;
  return names.find((n) => n === `chm-${zone}.vrt`) ?? names[0]!;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Where the viewer's build lives when installed. */
export function defaultViewerDir(): string | null {
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve('@geo-dino/viewer/package.json')), 'dist');
  } catch {
    return null;
  }
}

function countPositions(v: unknown, limit: number, depth = 0): number {
  // Count coordinate pairs without trusting the structure (bounded recursion).
  if (depth > 12 || !Array.isArray(v)) {
    if (v && typeof v === 'object' && depth <= 12) {
      let n = 0;
      for (const x of Object.values(v as Record<string, unknown>)) {
        n += countPositions(x, limit, depth + 1);
        if (n > limit) return n;
      }
      return n;
    }
    return 0;
  }
  if (v.length >= 2 && typeof v[0] === 'number' && typeof v[1] === 'number') return 1;
  let n = 0;
  for (const x of v) {
    n += countPositions(x, limit, depth + 1);
    if (n > limit) return n;
  }
  return n;
}

function queryNumber(q: URLSearchParams, name: string, min: number, max: number): number {
  const raw = q.get(name);
  const v = raw === null || raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) throw new HttpError(400, `${name} must be a number between ${min} and ${max}`);
  return v;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.log ?? silentLogger();
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8080;
  let rootReal: string;
  try {
    rootReal = await realpath(options.root);
    if (!(await stat(rootReal)).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new GeoDinoError('E_FILE_NOT_FOUND', `${options.root}: no such directory`, { details: { path: options.root } });
  }
  const viewerDir = options.viewerDir ?? defaultViewerDir();
  let viewerReal: string | null = null;
  if (viewerDir) {
    try {
      viewerReal = await realpath(viewerDir);
    } catch {
      viewerReal = null;
    }
  }
  if (!viewerReal) log.warn('the viewer is not built (run `npm run build`); serving the API and files only');
  let basemapOrigin: string[] = [];
  if (options.basemap) {
    let u: URL;
    try {
      u = new URL(options.basemap);
    } catch {
      throw new GeoDinoError('E_ARGUMENT', `--basemap: not a URL: ${JSON.stringify(options.basemap)}`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new GeoDinoError('E_ARGUMENT', '--basemap: must be an http(s) URL of a MapLibre style');
    basemapOrigin = [u.origin];
  }
  const csp = contentSecurityPolicy(basemapOrigin);
  const maxBody = options.maxBodyBytes ?? 1 << 20;
  const maxVertices = options.maxVertices ?? 20_000;
  const maxStatsPixels = options.maxStatsPixels ?? 50_000_000;
  const loopbackOnly = isLoopback(host);
  const rasters = new RasterPool();
  const tileArchives = new TileArchives();
  let statsRunning = 0;

  let runsCache: { at: number; runs: Promise<RunInfo[]> } | null = null;
  const runs = (): Promise<RunInfo[]> => {
    const now = Date.now();
    if (!runsCache || now - runsCache.at > 2000) {
      runsCache = { at: now, runs: discoverRuns(rootReal, log) };
      runsCache.runs.catch(() => (runsCache = null));
    }
    return runsCache.runs;
  };
  const findRun = async (q: URLSearchParams): Promise<RunInfo> => {
    const id = q.get('run') ?? '.';
    const run = (await runs()).find((r) => r.id === id);
    if (!run) throw new HttpError(404, 'unknown run');
    return run;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    securityHeaders(res, csp);
    const method = req.method ?? 'GET';
    const head = method === 'HEAD';
    // DNS rebinding: a page on another site that resolves its name to 127.0.0.1 must not read us.
    if (loopbackOnly) {
      const h = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
      if (!LOOPBACK_HOSTS.has(h)) return sendError(res, 421, 'this server only answers requests addressed to localhost', head);
    }
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));

    if (rawPath.startsWith('/api/')) {
      const route = rawPath.slice(5);
      if (route === 'stats') {
        if (method !== 'POST') {
          res.setHeader('Allow', 'POST');
          return sendError(res, 405);
        }
        return stats(req, res, query);
      }
      if (method !== 'GET' && method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        return sendError(res, 405, undefined, head);
      }
      if (route === 'config') return sendJson(res, 200, { version: GEO_DINO_VERSION, basemap: options.basemap ?? null }, head);
      if (route === 'runs') return sendJson(res, 200, { runs: await runs() }, head);
      if (route === 'point') return point(res, query, head);
      return sendError(res, 404, undefined, head);
    }
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendError(res, 405, undefined, head);
    }
    if (rawPath.startsWith('/tiles/')) {
      const route = parseTilesPath(rawPath.slice(7));
      if (!route) return sendError(res, 404, undefined, head);
      // Tiles may be shown by pages of other origins (Leaflet's <img>); reading them from script needs --cors.
      res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
      if (options.corsTiles) res.setHeader('Access-Control-Allow-Origin', '*');
      const origin = `http://${req.headers.host ?? `${host}:${port}`}`;
      return serveTiles(res, route, query, { root: rootReal, runs, archives: tileArchives, origin, head });
    }
    if (rawPath.startsWith('/data/')) {
      const segs = safeSegments(rawPath.slice(6));
      const file = segs ? await resolveInside(rootReal, segs, DATA_EXTENSIONS) : null;
      if (!file) return sendError(res, 404, undefined, head);
      return serveFile(req, res, file, { cacheControl: 'no-cache' });
    }
    if (!viewerReal) {
      if (rawPath === '/' || rawPath === '/index.html') return sendError(res, 503, 'the viewer is not built: run `npm run build`', head);
      return sendError(res, 404, undefined, head);
    }
    const segs = rawPath === '/' ? ['index.html'] : safeSegments(rawPath.slice(1));
    const file = segs ? await resolveInside(viewerReal, segs, VIEWER_EXTENSIONS) : null;
    if (!file) return sendError(res, 404, undefined, head);
    const hashed = segs![0] === 'assets';
    return serveFile(req, res, file, { cacheControl: hashed ? 'public, max-age=31536000, immutable' : 'no-cache' });
  };

  const point = async (res: ServerResponse, q: URLSearchParams, head: boolean): Promise<void> => {
    const run = await findRun(q);
    const lon = queryNumber(q, 'lon', -180, 180);
    const lat = queryNumber(q, 'lat', -90, 90);
    const dir = runDir(rootReal, run);
    const out: PointResponse = { run: run.id, lon, lat, inside: false, pixel: null, height_m: null, uncertainty_m: null, scene: null };
    for (const name of run.files.chm ? (run.chmRasters ?? ['chm.tif']) : []) {
      // A sharded run: the first zone whose grid holds the point.
      const v = await valueAt(await rasters.get(join(dir, name)), lon, lat, [0, 1]);
      if (!v.inside && name !== run.chmRasters?.at(-1)) continue;
      out.inside = v.inside;
      out.pixel = v.inside && v.col !== null && v.row !== null ? { col: v.col, row: v.row } : null;
      out.height_m = v.values[0] ?? null;
      out.uncertainty_m = v.values[1] ?? null;
      break;
    }
    if (run.files.landcover) {
      const v = await valueAt(await rasters.get(join(dir, 'landcover.tif')), lon, lat, [0]);
      const value = v.values[0] ?? null;
      const classes = run.layers.find((l) => l.layer === 'landcover')?.geoDino?.classes ?? [];
      out.landcover = value === null ? null : { value, name: classes.find((c) => c.value === value)?.name ?? null };
    }
    out.scene = run.files.provenance ? await sceneAt(join(dir, 'provenance.geojson'), lon, lat) : null;
    sendJson(res, 200, out, head);
  };

  const stats = async (req: IncomingMessage, res: ServerResponse, q: URLSearchParams): Promise<void> => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json' && type !== 'application/geo+json') {
      req.resume();
      throw new HttpError(415, 'send the polygon as application/json or application/geo+json');
    }
    const body = await readBody(req, maxBody);
    const run = await findRun(q);
    if (!run.files.chm) throw new HttpError(404, 'this run has no chm.tif');
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new HttpError(400, 'the body is not valid JSON');
    }
    const vertices = countPositions(json, maxVertices);
    if (vertices > maxVertices) throw new HttpError(413, `the polygon has more than ${maxVertices} vertices`);
    const aoi = parseAoi(json, 'polygon');
    if (statsRunning >= 2) throw new HttpError(503, 'busy: two statistics requests are already running; retry shortly');
    statsRunning++;
    try {
      const ac = new AbortController();
      res.on('close', () => ac.abort());
      const s = await polygonStats(await rasters.get(join(runDir(rootReal, run), chmRasterFor(run, aoi.centroid))), aoi, { maxPixels: maxStatsPixels }, ac.signal);
      const body: StatsResponse = { run: run.id, polygon: { areaM2: aoi.areaM2, vertices, bbox: aoi.bbox }, ...s };
      sendJson(res, 200, body);
    } finally {
      statsRunning--;
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) return sendError(res, err.status, err.message);
      if (isGeoDinoError(err)) {
        if (err.code === 'E_CANCELLED') return res.destroy();
        const status = err.code === 'E_LIMIT' ? 413 : err.category === 'input' ? 400 : 500;
        if (status === 500) log.error({ err, url: req.url }, 'request failed');
        return sendError(res, status, status === 500 ? undefined : err.message);
      }
      log.error({ err, url: req.url }, 'request failed');
      sendError(res, 500);
    });
  });
  server.requestTimeout = 120_000;
  server.headersTimeout = 20_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 100;

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        new GeoDinoError(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? 'E_ARGUMENT' : 'E_UNAVAILABLE', `cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'the port is in use (try --port)' : err.message}`, {
          cause: err,
        }),
      );
    });
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  if (!loopbackOnly) log.warn({ host }, 'listening beyond this machine: anyone who can reach it can read every run under the directory');
  return {
    url: `http://${urlHost}:${addr.port}/`,
    host: addr.address,
    port: addr.port,
    server,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await rasters.closeAll();
    },
  };
}
