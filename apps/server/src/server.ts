/**
 * `geo-dino serve`: the viewer, the run files (PMTiles and friends, with HTTP Range), and a JSON API.
 *
 *   GET  /                      the viewer (apps/viewer's build)
 *   GET  /assets/<file>         viewer assets
 *   GET  /data/<run>/<file>     run files: .pmtiles .tif .json .geojson (Range, ETag)
 *   GET  /tiles/<run>/<layer>/tilejson.json, /tiles/<run>/<layer>/{z}/{x}/{y}.png|webp
 *                               XYZ tiles and TileJSON 3.0 for GIS clients (xyz.ts); coloured PNG
 *                               with ?colormap_name=&rescale=min,max
 *   GET  /site.json             { mode: 'server', version, basemap } (a published site has a static one)
 *   GET  /api/config            version, basemap
 *   GET  /api/runs              runs, layers and their metadata
 *   GET  /api/point?run=&lon=&lat=   height ± uncertainty (and land cover) from the COG, and the scene
 *   POST /api/stats?run=        statistics of a GeoJSON polygon over the run's chm.tif
 *
 * The directory may be `s3://bucket/prefix`: runs published there (manifest.json present) are
 * served by proxying their objects (object-store.ts).
 *
 * Safe by default: binds to 127.0.0.1; every request must name this server by an IP address,
 * `localhost` or an `allowHosts` name (DNS rebinding: a page whose own name resolves to this
 * machine cannot read it); only files provably inside the directory are served (see files.ts);
 * bodies and polygons are capped, and polygon work runs in worker threads behind a concurrency
 * limit taken before the body is read (stats-pool.ts); no endpoint fetches a URL; every response
 * carries a CSP and nosniff; nothing from a request is ever written into HTML; error messages name
 * files relative to the served directory.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { realpath, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { GEO_DINO_VERSION, GeoDinoError, isGeoDinoError, silentLogger, type Logger } from '@geo-dino/core';
import type { PointResponse, SiteConfig, StatsResponse } from './api-types.js';
import { contentSecurityPolicy, HttpError, readBody, securityHeaders, sendError, sendJson } from './http.js';
import { resolveInside, safeSegments, serveFile } from './files.js';
import { discoverRuns, runDir, type RunInfo } from './runs.js';
import { ObjectRunTree } from './object-store.js';
import { isS3Url, s3Defaults } from '@geo-dino/storage';
import type { RasterSource } from '@geo-dino/tiling';
import { RasterPool, valueAt } from './raster.js';
export { chmRasterFor } from './raster.js';
import { StatsPool } from './stats-pool.js';
import { blendAt, sceneAt } from './provenance.js';
import { parseTilesPath, serveTiles, TileArchives } from './xyz.js';

export interface ServerOptions {
  /** The directory to serve (runs under it), or `s3://bucket/prefix` of published runs. */
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
  /** Most polygon vertices accepted by /api/stats, counted at every nesting depth (default 20000). */
  maxVertices?: number;
  /** Most edge pairs the validity check of a /api/stats polygon may compare (default 5 million). */
  maxEdgePairs?: number;
  /**
   * Statistics requests running at once, each in its own worker thread (default 2, and never more
   * than the cores minus one, so one core is left for the event loop); more are answered 503
   * before their body is read.
   */
  statsConcurrency?: number;
  /** Longest one statistics request may run, ms (default 60000). */
  statsDeadlineMs?: number;
  /**
   * Host names (besides IP addresses and `localhost`) that requests may address this server by,
   * e.g. `geo.example.lan` when it listens beyond this machine (`--allow-host`).
   */
  allowHosts?: readonly string[];
  /** Most raster pixels in a stats polygon's bounding box (default 50 million). */
  maxStatsPixels?: number;
  /** Send `Access-Control-Allow-Origin: *` on /tiles/ (web maps on other origins; default false). */
  corsTiles?: boolean;
  log?: Logger;
}

export interface RunningServer {
  url: string;
  /** The bound address. */
  host: string;
  port: number;
  /** Whether the bound address is a loopback one (reachable from this machine only). */
  loopback: boolean;
  server: Server;
  close(): Promise<void>;
}

const DATA_EXTENSIONS = new Set(['.pmtiles', '.tif', '.tiff', '.json', '.geojson']);
const VIEWER_EXTENSIONS = new Set(['.html', '.js', '.mjs', '.css', '.svg', '.png', '.ico', '.woff2', '.map', '.txt', '.json']);
/** Whether an address as bound (`server.address()`) is loopback: 127.0.0.0/8, ::1, ::ffff:127.x. */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, '');
  return a === 'localhost' || a === '::1' || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(a);
}

/**
 * The host part of a Host header, lower-cased, without port (IPv6 keeps its brackets); null when
 * it is not a well-formed host.
 */
export function hostOf(header: string | undefined): string | null {
  const h = (header ?? '').trim().toLowerCase();
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d{1,5})?$/.exec(h);
  return m ? m[1]! : null;
}

/**
 * Whether a request addressed to `host` may be answered. An IP address or `localhost` cannot be a
 * rebinding attacker's name; any other name must be allowed explicitly.
 */
export function hostAllowed(host: string | null, allowed: ReadonlySet<string>): boolean {
  if (host === null) return false;
  if (host === 'localhost' || allowed.has(host)) return true;
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  // Canonical IP literals only: browsers send 127.0.0.1, never 127.1 or 0x7f000001.
  return host.startsWith('[') ? isIP(bare) === 6 : isIP(bare) === 4;
}

/** The warning of a server bound beyond loopback: who can read what, and what the Host check allows. */
export function exposureWarning(address: string, allowHosts: readonly string[]): string {
  return (
    `listening beyond this machine: anyone who can reach ${address} can read every run under the directory. ` +
    `Requests must address the server by IP address, localhost${allowHosts.length ? ' or ' + allowHosts.join(', ') : ''}; ` +
    'add the names it is reached by with --allow-host (allowing a name a web page controls would let that page read the runs through your browser by DNS rebinding)'
  );
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

function queryNumber(q: URLSearchParams, name: string, min: number, max: number): number {
  const raw = q.get(name);
  const v = raw === null || raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) throw new HttpError(400, `${name} must be a number between ${min} and ${max}`);
  return v;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.log ?? silentLogger();
  // `[::1]` as in a URL is the address ::1.
  const host = (options.host ?? '127.0.0.1').replace(/^\[(.*)\]$/, '$1');
  const port = options.port ?? 8080;
  let rootReal = '';
  const tree = isS3Url(options.root) ? await ObjectRunTree.open(options.root, log) : null;
  if (!tree) {
    try {
      rootReal = await realpath(options.root);
      if (!(await stat(rootReal)).isDirectory()) throw new Error('not a directory');
    } catch {
      throw new GeoDinoError('E_FILE_NOT_FOUND', `${options.root}: no such directory`, { details: { path: options.root } });
    }
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
  const maxEdgePairs = options.maxEdgePairs ?? 5_000_000;
  const maxStatsPixels = options.maxStatsPixels ?? 50_000_000;
  const allowHosts = new Set<string>();
  for (const h of options.allowHosts ?? []) {
    const name = hostOf(h);
    if (!name) throw new GeoDinoError('E_ARGUMENT', `--allow-host: ${JSON.stringify(h)} is not a host name`, { details: { field: '--allow-host' } });
    allowHosts.add(name);
  }
  const rasters = new RasterPool();
  const tileArchives = new TileArchives();
  const statsPool = new StatsPool(options.statsConcurrency ?? Math.max(1, Math.min(2, availableParallelism() - 1)), options.statsDeadlineMs ?? 60_000);
  // Messages name files relative to the served directory: no absolute path of this machine leaves it.
  const publicMessage = (message: string): string => scrubPaths(message, [rootReal, options.root]);

  let runsCache: { at: number; runs: Promise<RunInfo[]> } | null = null;
  const runs = (): Promise<RunInfo[]> => {
    const now = Date.now();
    if (!runsCache || now - runsCache.at > 2000) {
      runsCache = { at: now, runs: tree ? tree.discover() : discoverRuns(rootReal, log) };
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
    // DNS rebinding: a page on another site that resolves its name to this machine must not read
    // us, whatever address we are bound to.
    if (!hostAllowed(hostOf(req.headers.host), allowHosts)) {
      return sendError(res, 421, 'this server only answers requests addressed to an IP address, localhost or an --allow-host name', head);
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
      if (tree) {
        await runs();
        const object = segs ? tree.resolve(segs, DATA_EXTENSIONS) : null;
        if (!object) return sendError(res, 404, undefined, head);
        return tree.serve(req, res, object, 'no-cache');
      }
      const file = segs ? await resolveInside(rootReal, segs, DATA_EXTENSIONS) : null;
      if (!file) return sendError(res, 404, undefined, head);
      return serveFile(req, res, file, { cacheControl: 'no-cache' });
    }
    // The viewer asks which mode it runs in; a published static site answers from its own site.json.
    if (rawPath === '/site.json') {
      const site: SiteConfig = { mode: 'server', version: GEO_DINO_VERSION, basemap: options.basemap ?? null };
      return sendJson(res, 200, site, head);
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

  /** A run's file: its path, or its object URL with the version the listing gave. */
  const fileOf = (run: RunInfo, name: string): { path: string; version?: { mtimeMs: number; size: number } } => {
    if (!tree) return { path: join(runDir(rootReal, run), name) };
    const e = tree.entry(run.id, name);
    if (!e) throw new HttpError(404, `this run has no ${name}`);
    return { path: e.url, version: { mtimeMs: e.lastModified.getTime(), size: e.size } };
  };
  const raster = (run: RunInfo, name: string): Promise<RasterSource> => {
    const f = fileOf(run, name);
    return rasters.get(f.path, f.version);
  };

  const point = async (res: ServerResponse, q: URLSearchParams, head: boolean): Promise<void> => {
    const run = await findRun(q);
    const lon = queryNumber(q, 'lon', -180, 180);
    const lat = queryNumber(q, 'lat', -90, 90);
    const out: PointResponse = { run: run.id, lon, lat, inside: false, pixel: null, height_m: null, uncertainty_m: null, scene: null };
    for (const name of run.files.chm ? (run.chmRasters ?? ['chm.tif']) : []) {
      // A sharded run: the first zone whose grid holds the point.
      const v = await valueAt(await raster(run, name), lon, lat, [0, 1]);
      if (!v.inside && name !== run.chmRasters?.at(-1)) continue;
      out.inside = v.inside;
      out.pixel = v.inside && v.col !== null && v.row !== null ? { col: v.col, row: v.row } : null;
      out.height_m = v.values[0] ?? null;
      out.uncertainty_m = v.values[1] ?? null;
      break;
    }
    if (run.files.landcover) {
      const v = await valueAt(await raster(run, 'landcover.tif'), lon, lat, [0]);
      const value = v.values[0] ?? null;
      const classes = run.layers.find((l) => l.layer === 'landcover')?.geoDino?.classes ?? [];
      out.landcover = value === null ? null : { value, name: classes.find((c) => c.value === value)?.name ?? null };
    }
    if (run.files.provenance) {
      const f = fileOf(run, 'provenance.geojson');
      out.scene = await sceneAt(f.path, lon, lat, f.version);
      out.blend = await blendAt(f.path, lon, lat, f.version);
    }
    sendJson(res, 200, out, head);
  };

  const stats = async (req: IncomingMessage, res: ServerResponse, q: URLSearchParams): Promise<void> => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json' && type !== 'application/geo+json') {
      throw new HttpError(415, 'send the polygon as application/json or application/geo+json');
    }
    // The slot is taken before the body is read or parsed: a busy server spends nothing on more.
    const lease = statsPool.tryAcquire();
    if (!lease) throw new HttpError(503, 'busy: statistics requests are already running; retry shortly');
    try {
      const body = await readBody(req, maxBody);
      const run = await findRun(q);
      if (!run.files.chm) throw new HttpError(404, 'this run has no chm.tif');
      const ac = new AbortController();
      res.on('close', () => ac.abort());
      const r = await lease.run({ dir: tree ? tree.prefixOf(run.id) : runDir(rootReal, run), ...(tree ? { s3: s3Defaults() } : {}), chmRasters: run.chmRasters ?? ['chm.tif'], body, maxVertices, maxEdgePairs, maxPixels: maxStatsPixels }, ac.signal);
      const out: StatsResponse = { run: run.id, polygon: r.polygon, ...r.stats };
      sendJson(res, 200, out);
    } finally {
      lease.release();
    }
  };

  const server = createServer((req, res) => {
    handle(req, res)
      .catch((err: unknown) => {
        if (!req.complete && !res.headersSent) res.setHeader('Connection', 'close');
        if (err instanceof HttpError) return sendError(res, err.status, publicMessage(err.message));
        if (isGeoDinoError(err)) {
          if (err.code === 'E_CANCELLED') return res.destroy();
          const status = err.code === 'E_LIMIT' ? 413 : err.category === 'input' ? 400 : 500;
          if (status === 500) log.error({ err, url: req.url }, 'request failed');
          return sendError(res, status, status === 500 ? undefined : publicMessage(err.message));
        }
        log.error({ err, url: req.url }, 'request failed');
        sendError(res, 500);
      })
      .finally(() => {
        // A request whose body was not read (refused before reading, or cut at the cap) is not
        // drained: the connection is closed once the answer is out.
        if (!req.complete) closeAfterResponse(req, res);
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
  // The bound address, not the spelling of --host, says who can reach us.
  const loopback = isLoopback(addr.address);
  if (!loopback) log.warn({ host: addr.address, allowHosts: [...allowHosts] }, exposureWarning(addr.address, [...allowHosts]));
  return {
    url: `http://${urlHost}:${addr.port}/`,
    host: addr.address,
    port: addr.port,
    loopback,
    server,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await statsPool.close();
      await rasters.closeAll();
    },
  };
}

/**
 * Close the connection once the response has been written, without reading the rest of the
 * request: the socket stops being read at once (the client's sends stall) and is destroyed
 * shortly after, leaving the client time to read the answer.
 */
function closeAfterResponse(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket;
  const close = (): void => {
    socket.pause();
    setTimeout(() => socket.destroy(), 200).unref();
  };
  if (res.writableFinished) close();
  else res.once('finish', close);
  res.once('close', () => socket.pause());
}

/** `message` with `roots` (and anything below them) shown relative to the served directory, and other absolute paths cut to their last part. */
export function scrubPaths(message: string, roots: readonly string[]): string {
  let m = message;
  for (const r of roots) {
    if (!r) continue;
    const root = r.replace(/[\\/]+$/, '');
    m = m.split(root + '/').join('').split(root).join('.');
  }
  return m.replace(/(^|[\s"'(=])(\/[^\s"'():]+)/g, (_all, pre: string, path: string) => `${pre}${path.split('/').filter(Boolean).pop() ?? ''}`);
}
