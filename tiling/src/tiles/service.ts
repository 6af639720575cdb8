/**
 * Tile services as raster sources: `xyz:<template>` (XYZ/TMS/quadkey URL templates on the Web
 * Mercator quad) and `wmts:<GetCapabilities URL>` (OGC WMTS, any tile matrix set in a CRS
 * geo-dino knows). `openTileService` returns a `RasterSource` like `openRaster` does, so the
 * tile stream warps it onto the output grid like any scene: nothing is mosaicked to disk first.
 *
 * - The source is one level of the tile matrix set (chosen by `zoom`, or from a target GSD at
 *   the area's centre: the nearest level at least as fine), cut to the tiles around a lon/lat
 *   box (the area to read), with 4 bands (R, G, B, alpha) of uint8; validity = alpha > 0.
 * - Tiles are fetched with bounded concurrency through core's `fetchBytes` (deadline, retries
 *   with backoff, `Retry-After` on 429/503), with a descriptive User-Agent and the caller's
 *   headers; a 404 or 204, an empty body or a tile whose SHA-256 is a declared "blank tile"
 *   signature is nodata, never black pixels. Anything else that is not a JPEG/PNG/WebP image
 *   (an HTML error page served with status 200) is an error naming the URL.
 * - Fetched tiles go to the on-disk cache (`disk-cache.ts`); decoded tiles to the shared
 *   decoded-block LRU, so overlapping windows decode a tile once. Decoding runs in the tiler's
 *   worker pool with the decompression guards of `codec/image.ts`.
 */
import { createHash } from 'node:crypto';
import { fetchBytes, GEO_DINO_VERSION, GeoDinoError, silentLogger, throwIfAborted, type Logger } from '@geo-dino/core';
import { crsLabel, transformBetween, WGS84 } from '../crs/crs.js';
import { sharedDecoderPool, type ImageDecoder } from '../codec/pool.js';
import { describeNonImage, tileImageFormat } from '../codec/image.js';
import { LruCache, Semaphore } from '../io/lru.js';
import { sharedBlockCache, type BlockCache, type ReadOptions, type RasterSource } from '../raster/source.js';
import type { PixelWindow, RasterData, RasterInfo } from '../raster/types.js';
import { chooseMatrix, findMatrix, groundResolution, webMercatorQuad, type TileMatrix, type TileMatrixSet } from './matrix.js';
import { parseXyzTemplate, redactTileUrl, xyzTileUrl, TILE_SERVICE_PREFIX } from './template.js';
import { parseWmtsCapabilities, type WmtsChoice } from './wmts.js';
import { TileDiskCache, tileCacheFromEnv, type TileDiskCacheOptions } from './disk-cache.js';

export const TILE_USER_AGENT = `geo-dino/${GEO_DINO_VERSION} (canopy-height mapping; tile reader with on-disk cache)`;

export interface TileServiceHttp {
  /** Deadline for one tile request (default 30 s). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 4). */
  retries?: number;
  /** First backoff (default 250 ms, doubling, jittered). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Longest wait a `Retry-After` may impose (default 60 s). */
  maxRetryAfterMs?: number;
  /** Tile requests in flight per service (default 8). */
  maxConcurrency?: number;
}

/** What the user chooses about a tile service (CLI flags). Plain data. */
export interface TileServiceParams extends WmtsChoice {
  /** Level to read: the matrix identifier (the zoom for XYZ) or its position; default from `gsd`. */
  zoom?: string | number;
  /** Attribution / licence to record (default: what a WMTS declares). */
  attribution?: string;
  /** SHA-256 (hex) of tiles that mean "no data here" (e.g. a service's blank tile). */
  blankTiles?: readonly string[];
  /** XYZ tile size in pixels (default 256). */
  tileSize?: number;
  /** XYZ: the finest zoom the template may be asked for (default 23). */
  maxZoom?: number;
}

export interface OpenTileServiceOptions extends TileServiceParams {
  /** The area to read, lon/lat [west, south, east, north]; tiles beyond it (plus `marginTiles`) are not read. */
  bbox: readonly [number, number, number, number];
  /** Target pixel size in metres, to choose the level when `zoom` is not given. */
  gsd?: number;
  /** Tiles of margin around the box (default 1). */
  marginTiles?: number;
  headers?: Record<string, string>;
  http?: TileServiceHttp;
  /** On-disk cache (default: from the environment, see `tileCacheFromEnv`); null: none. */
  diskCache?: TileDiskCacheOptions | null;
  env?: NodeJS.ProcessEnv;
  decoder?: ImageDecoder;
  cache?: BlockCache;
  log?: Logger;
  signal?: AbortSignal;
}

/** Where the pixels of a tile service come from, for provenance and STAC. Plain data. */
export interface TileServiceInfo {
  kind: 'xyz' | 'wmts';
  /** The imagery string with secrets redacted. */
  service: string;
  /** The tile URL template (WMTS: the ResourceURL or KVP GetTile form), redacted. */
  template: string;
  layer: string | null;
  tileMatrixSet: string;
  crs: string;
  /** The matrix read (the zoom level for XYZ) and its position in the set (0 = coarsest). */
  zoom: string;
  zoomIndex: number;
  /** Pixel size on the ground at the centre of the area, metres. */
  groundResolutionM: number;
  tileWidth: number;
  tileHeight: number;
  format: string | null;
  attribution: string | null;
}

export interface TileFetchStats {
  requested: number;
  fetched: number;
  fromDiskCache: number;
  missing: number;
  bytesFetched: number;
  decoded: number;
}

export interface TileServiceRaster extends RasterSource {
  readonly service: TileServiceInfo;
  readonly tiles: TileFetchStats;
}

interface Resolved {
  kind: 'xyz' | 'wmts';
  set: TileMatrixSet;
  template: string;
  layer: string | null;
  format: string | null;
  attribution: string | null;
  tileUrl(m: TileMatrix, col: number, row: number): string;
}

/** Parse an `xyz:`/`wmts:` string and read what it needs (WMTS capabilities), without choosing a level. */
export async function describeTileService(
  spec: string,
  options: Pick<OpenTileServiceOptions, 'layer' | 'tileMatrixSet' | 'style' | 'format' | 'tileSize' | 'maxZoom' | 'headers' | 'http' | 'log' | 'signal'> = {},
): Promise<Resolved> {
  const m = TILE_SERVICE_PREFIX.exec(spec.trim());
  if (!m) throw new GeoDinoError('E_ARGUMENT', `${redactTileUrl(spec)}: not a tile service (give xyz:<template> or wmts:<capabilities URL>)`);
  const kind = m[1]!.toLowerCase() as 'xyz' | 'wmts';
  const rest = spec.trim().slice(m[0].length);
  if (kind === 'xyz') {
    const t = parseXyzTemplate(rest);
    const set = webMercatorQuad(options.maxZoom ?? 23, options.tileSize ?? 256);
    return { kind, set, template: redactTileUrl(rest), layer: null, format: null, attribution: null, tileUrl: (mx, col, row) => xyzTileUrl(t, Number(mx.id), col, row) };
  }
  if (!/^https?:\/\//i.test(rest)) throw new GeoDinoError('E_ARGUMENT', `--imagery: ${redactTileUrl(spec)}: a WMTS must be given by the http(s) URL of its GetCapabilities document`);
  const res = await fetchBytes(rest, {
    headers: { 'User-Agent': TILE_USER_AGENT, Accept: 'application/xml, text/xml', ...(options.headers ?? {}) },
    maxBytes: 32 * 1024 * 1024,
    ...httpRetryOptions(options.http),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const w = parseWmtsCapabilities(new TextDecoder().decode(res.bytes), rest, options);
  return { kind, set: w.set, template: w.template, layer: w.layer, format: w.format, attribution: w.attribution, tileUrl: w.tileUrl };
}

function httpRetryOptions(h: TileServiceHttp | undefined): Record<string, number> {
  const o: Record<string, number> = {};
  if (h?.timeoutMs !== undefined) o['timeoutMs'] = h.timeoutMs;
  if (h?.retries !== undefined) o['retries'] = h.retries;
  if (h?.backoffMs !== undefined) o['backoffMs'] = h.backoffMs;
  if (h?.maxBackoffMs !== undefined) o['maxBackoffMs'] = h.maxBackoffMs;
  if (h?.maxRetryAfterMs !== undefined) o['maxRetryAfterMs'] = h.maxRetryAfterMs;
  return o;
}

/** The centre of a lon/lat box (the box may cross the antimeridian: west > east). */
function centreOf(b: readonly [number, number, number, number]): [number, number] {
  const east = b[2] < b[0] ? b[2] + 360 : b[2];
  let lon = (b[0] + east) / 2;
  if (lon > 180) lon -= 360;
  return [lon, (b[1] + b[3]) / 2];
}

let nextUid = 1;

class TileRaster implements TileServiceRaster {
  readonly stats = { blocksDecoded: 0, bytesRead: 0 };
  readonly tiles: TileFetchStats = { requested: 0, fetched: 0, fromDiskCache: 0, missing: 0, bytesFetched: 0, decoded: 0 };
  private readonly uid = `tiles${nextUid++}`;
  private readonly inflight = new Map<string, Promise<Uint8Array | null>>();
  private readonly sem: Semaphore;
  private readonly blank: Set<string>;
  private closed = false;

  constructor(
    readonly info: RasterInfo,
    readonly name: string,
    readonly service: TileServiceInfo,
    private readonly svc: Resolved,
    private readonly matrix: TileMatrix,
    /** Matrix column and row of the raster's top-left tile. */
    private readonly col0: number,
    private readonly row0: number,
    private readonly options: OpenTileServiceOptions,
    private readonly disk: TileDiskCache | null,
    private readonly decoder: ImageDecoder,
    private readonly cache: BlockCache,
    private readonly log: Logger,
  ) {
    this.sem = new Semaphore(options.http?.maxConcurrency ?? 8);
    this.blank = new Set((options.blankTiles ?? []).map((h) => h.toLowerCase()));
  }

  private hasTile(col: number, row: number): boolean {
    const m = this.matrix;
    if (col < 0 || row < 0 || col >= m.matrixWidth || row >= m.matrixHeight) return false;
    const l = m.limits;
    return !l || (col >= l.minCol && col <= l.maxCol && row >= l.minRow && row <= l.maxRow);
  }

  /** The tile's bytes from the disk cache or the network; null: no tile there. */
  private async fetchTile(url: string, signal?: AbortSignal): Promise<Uint8Array | null> {
    const shown = redactTileUrl(url);
    const key = this.disk ? TileDiskCache.keyOf(shown) : '';
    if (this.disk) {
      const hit = await this.disk.get(key);
      if (hit) {
        this.tiles.fromDiskCache++;
        return hit.length ? hit : null;
      }
    }
    const res = await this.sem.run(() => {
      throwIfAborted(signal);
      return fetchBytes(url, {
        headers: { 'User-Agent': TILE_USER_AGENT, Accept: 'image/webp, image/jpeg, image/png, image/*;q=0.8', ...(this.options.headers ?? {}) },
        acceptStatus: [404],
        maxBytes: 16 * 1024 * 1024,
        ...httpRetryOptions(this.options.http),
        onRetry: (i) => this.log.debug({ url: i.url, attempt: i.attempt, delayMs: i.delayMs, reason: i.reason }, 'retrying a tile'),
        ...(signal ? { signal } : {}),
      });
    });
    this.tiles.fetched++;
    this.tiles.bytesFetched += res.bytes.length;
    let bytes: Uint8Array | null = res.bytes;
    if (res.status === 404 || res.status === 204 || res.bytes.length === 0) bytes = null;
    else if (this.blank.size && this.blank.has(createHash('sha256').update(res.bytes).digest('hex'))) bytes = null;
    else if (!tileImageFormat(res.bytes)) {
      const type = res.headers.get('content-type');
      throw new GeoDinoError(
        'E_BAD_RASTER',
        `${shown}: HTTP ${res.status} but not a tile image${type ? ` (Content-Type ${type})` : ''}: ${describeNonImage(res.bytes)}; check the template, the key and the zoom level`,
        { details: { url: shown, status: res.status } },
      );
    }
    if (this.disk) await this.disk.put(key, bytes ?? new Uint8Array(0));
    return bytes;
  }

  /** Decoded planar RGBA of a tile (null: no tile there), through the decoded-tile LRU. */
  private tile(col: number, row: number, signal?: AbortSignal): Promise<Uint8Array | null> {
    const key = `${this.uid}:${col}:${row}`;
    const hit = this.cache.get(key);
    if (hit) return Promise.resolve(hit.length ? hit : null);
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = (async () => {
      this.tiles.requested++;
      const mc = this.col0 + col;
      const mr = this.row0 + row;
      let out: Uint8Array | null = null;
      if (this.hasTile(mc, mr)) {
        const url = this.svc.tileUrl(this.matrix, mc, mr);
        const bytes = await this.fetchTile(url, signal);
        if (bytes) {
          this.stats.bytesRead += bytes.length;
          out = await this.decoder({ name: redactTileUrl(url), data: bytes, width: this.matrix.tileWidth, height: this.matrix.tileHeight });
          this.stats.blocksDecoded++;
          this.tiles.decoded++;
        }
      }
      if (!out) this.tiles.missing++;
      const value = out ?? new Uint8Array(0);
      if (!this.closed) this.cache.set(key, value, Math.max(64, value.length));
      return out;
    })();
    this.inflight.set(key, p);
    p.then(
      () => this.inflight.delete(key),
      () => this.inflight.delete(key),
    );
    return p;
  }

  async read(window: PixelWindow, options: ReadOptions = {}): Promise<RasterData> {
    if (this.closed) throw new GeoDinoError('E_INTERNAL', `${this.name}: read after close`);
    if ((options.level ?? 0) !== 0) throw new GeoDinoError('E_ARGUMENT', `${this.name}: a tile service source has one level (0)`);
    const { x, y, width, height } = window;
    if (![x, y, width, height].every(Number.isInteger) || width < 1 || height < 1) {
      throw new GeoDinoError('E_ARGUMENT', `${this.name}: invalid window ${JSON.stringify(window)}`);
    }
    const bands = options.bands ?? [0, 1, 2, 3];
    for (const b of bands) if (!Number.isInteger(b) || b < 0 || b > 3) throw new GeoDinoError('E_ARGUMENT', `${this.name}: no band ${b + 1} (a tile service has 4: red, green, blue, alpha)`);
    const n = width * height;
    if (n * (bands.length + 1) > 1024 * 1024 * 1024) throw new GeoDinoError('E_LIMIT', `${this.name}: a ${width}×${height} read is above the 1 GiB limit`);
    const out = bands.map(() => new Uint8Array(n));
    const valid = new Uint8Array(n);
    const tw = this.matrix.tileWidth;
    const th = this.matrix.tileHeight;
    const x0 = Math.max(0, x);
    const y0 = Math.max(0, y);
    const x1 = Math.min(this.info.width, x + width);
    const y1 = Math.min(this.info.height, y + height);
    if (x1 <= x0 || y1 <= y0) return { width, height, dtype: 'uint8', bands: out, valid };
    const c0 = Math.floor(x0 / tw);
    const c1 = Math.floor((x1 - 1) / tw);
    const r0 = Math.floor(y0 / th);
    const r1 = Math.floor((y1 - 1) / th);
    const jobs: Promise<Uint8Array | null>[] = [];
    for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) jobs.push(this.tile(c, r, options.signal));
    const tiles = await Promise.all(jobs);
    throwIfAborted(options.signal);
    const plane = tw * th;
    let k = 0;
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        const t = tiles[k++];
        if (!t) continue;
        const bx = c * tw;
        const by = r * th;
        const cx0 = Math.max(x0, bx);
        const cx1 = Math.min(x1, bx + tw);
        const cy0 = Math.max(y0, by);
        const cy1 = Math.min(y1, by + th);
        const alpha = t.subarray(3 * plane, 4 * plane);
        for (let yy = cy0; yy < cy1; yy++) {
          const s0 = (yy - by) * tw + (cx0 - bx);
          const d0 = (yy - y) * width + (cx0 - x);
          for (let bi = 0; bi < bands.length; bi++) out[bi]!.set(t.subarray(bands[bi]! * plane + s0, bands[bi]! * plane + s0 + (cx1 - cx0)), d0);
          for (let i = 0; i < cx1 - cx0; i++) valid[d0 + i] = alpha[s0 + i]! > 0 ? 1 : 0;
        }
      }
    }
    return { width, height, dtype: 'uint8', bands: out, valid };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const prefix = `${this.uid}:`;
    this.cache.deleteWhere((k) => k.startsWith(prefix));
  }
}

/** Open a tile service as a raster source over a lon/lat box (see the module comment). */
export async function openTileService(spec: string, options: OpenTileServiceOptions): Promise<TileServiceRaster> {
  const log = options.log ?? silentLogger();
  const svc = await describeTileService(spec, options);
  const set = svc.set;
  const bbox = options.bbox;
  const [clon, clat] = centreOf(bbox);
  let index: number;
  if (options.zoom !== undefined && String(options.zoom).trim() !== '') index = findMatrix(set, options.zoom);
  else if (options.gsd !== undefined) {
    const c = chooseMatrix(set, options.gsd, clon, clat);
    index = c.index;
    if (c.coarser) log.warn({ service: redactTileUrl(spec), gsd: options.gsd, finest: c.groundM }, 'the tile service has no level as fine as the target pixel size; reading its finest');
  } else throw new GeoDinoError('E_ARGUMENT', `${redactTileUrl(spec)}: give a zoom level (--zoom) or a target pixel size to choose one`, { details: { field: '--zoom' } });
  const m = set.matrices[index]!;
  const groundM = groundResolution(set, m, clon, clat);

  // Tiles around the box: its outline (densified) in the matrix CRS.
  const t = transformBetween(WGS84, set.crs, redactTileUrl(spec));
  const east = bbox[2] < bbox[0] ? bbox[2] + 360 : bbox[2];
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  const N = 16;
  for (let i = 0; i <= N; i++) {
    for (let j = 0; j <= N; j++) {
      if (i !== 0 && i !== N && j !== 0 && j !== N) continue;
      let lon = bbox[0] + ((east - bbox[0]) * i) / N;
      if (lon > 180) lon -= 360;
      const lat = bbox[1] + ((bbox[3] - bbox[1]) * j) / N;
      const [X, Y] = t.forward(lon, lat);
      if (!Number.isFinite(X) || !Number.isFinite(Y)) continue;
      minX = Math.min(minX, X);
      maxX = Math.max(maxX, X);
      minY = Math.min(minY, Y);
      maxY = Math.max(maxY, Y);
    }
  }
  if (!Number.isFinite(minX)) throw new GeoDinoError('E_NO_OVERLAP', `${redactTileUrl(spec)}: the area [${bbox.join(', ')}] cannot be placed in ${crsLabel(set.crs)}`);
  const margin = options.marginTiles ?? 1;
  const spanX = m.tileWidth * m.resolution;
  const spanY = m.tileHeight * m.resolution;
  let c0 = Math.floor((minX - m.x0) / spanX) - margin;
  let c1 = Math.floor((maxX - m.x0) / spanX) + margin;
  let r0 = Math.floor((m.y0 - maxY) / spanY) - margin;
  let r1 = Math.floor((m.y0 - minY) / spanY) + margin;
  c0 = Math.max(c0, 0);
  r0 = Math.max(r0, 0);
  c1 = Math.min(c1, m.matrixWidth - 1);
  r1 = Math.min(r1, m.matrixHeight - 1);
  if (c1 < c0 || r1 < r0) throw new GeoDinoError('E_NO_OVERLAP', `${redactTileUrl(spec)}: level ${m.id} of ${set.id} does not cover the area [${bbox.join(', ')}]`, { details: { service: redactTileUrl(spec) } });
  const width = (c1 - c0 + 1) * m.tileWidth;
  const height = (r1 - r0 + 1) * m.tileHeight;
  const name = redactTileUrl(spec.trim());
  const info: RasterInfo = {
    source: name,
    fileBytes: 0,
    bigTiff: false,
    width,
    height,
    bandCount: 4,
    dtype: 'uint8',
    bands: (['red', 'green', 'blue', 'alpha'] as const).map((c, i) => ({ index: i, colorInterp: c, description: null, nodata: null })),
    crs: set.crs,
    geoTransform: [m.x0 + c0 * spanX, m.resolution, 0, m.y0 - r0 * spanY, 0, -m.resolution],
    rotated: false,
    nodata: null,
    mask: 'alpha',
    alphaBand: 3,
    levels: [{ level: 0, width, height, blockWidth: m.tileWidth, blockHeight: m.tileHeight, factorX: 1, factorY: 1, hasMask: false }],
    tiled: true,
    blockWidth: m.tileWidth,
    blockHeight: m.tileHeight,
    interleave: 'pixel',
    compression: svc.format ?? 'tiles',
    predictor: 1,
    photometric: 'RGB',
    colorTable: null,
    metadata: {},
    problems: [],
  };
  const service: TileServiceInfo = {
    kind: svc.kind,
    service: name,
    template: svc.template,
    layer: svc.layer,
    tileMatrixSet: set.id,
    crs: crsLabel(set.crs),
    zoom: m.id,
    zoomIndex: index,
    groundResolutionM: Number(groundM.toFixed(4)),
    tileWidth: m.tileWidth,
    tileHeight: m.tileHeight,
    format: svc.format,
    attribution: options.attribution ?? svc.attribution,
  };
  const diskOpts = options.diskCache === undefined ? tileCacheFromEnv(options.env) : options.diskCache;
  const disk = diskOpts ? diskCacheFor(diskOpts) : null;
  log.debug({ service: name, zoom: m.id, tiles: `${c1 - c0 + 1}×${r1 - r0 + 1}`, groundM }, 'tile service opened');
  return new TileRaster(info, name, service, svc, m, c0, r0, options, disk, options.decoder ?? sharedDecoderPool().decodeImage, options.cache ?? sharedBlockCache(), log);
}

/** One cache object per directory in a process, so its index and eviction are shared by every source. */
const diskCaches = new LruCache<string, TileDiskCache>(64);
function diskCacheFor(o: TileDiskCacheOptions): TileDiskCache {
  const key = `${o.dir}\u0000${o.maxBytes}`;
  let c = diskCaches.get(key);
  if (!c) {
    c = new TileDiskCache(o);
    diskCaches.set(key, c, 1);
  }
  return c;
}
