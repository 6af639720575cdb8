/**
 * The tile stream: model-ready tiles of a layout, mosaicked from several scenes in the
 * caller's priority order.
 *
 * For each tile touching the AOI (row-major order): every source whose footprint meets the
 * tile is warped onto it (see warp.ts) until all pixels are filled; a pixel takes the first
 * source (in priority order) that has valid imagery there, and remembers which one. Tiles with
 * no valid pixel inside the AOI are skipped. Up to `lookahead` tiles are in progress at once
 * (their blocks decode in worker threads meanwhile); tiles are yielded in order, so memory is
 * bounded by the look-ahead, the decoded-block cache and the HTTP chunk cache, never by the AOI.
 *
 * Tile layout (what the model wants):
 * - `rgb`: Uint8Array of 3 × T × T, planar CHW: `rgb[c·T·T + y·T + x]`, c = 0 red, 1 green,
 *   2 blue. Pixels without imagery are 0. Imagery outside the AOI is kept (useful context for
 *   the model); the `valid` mask says what belongs to the output.
 * - `valid`: Uint8Array T × T, 1 where there is valid imagery AND the pixel centre is inside the
 *   AOI (and inside the grid).
 * - `source`: Uint16Array T × T, the index in `sources` of the scene each pixel came from,
 *   `NO_SOURCE` (65535) where no scene had valid imagery.
 */
import { GeoDinoError, silentLogger, silentProgress, throwIfAborted, type Logger, type Progress } from '@geo-dino/core';
import type { TileLayout, TileSpec } from '../grid/grid.js';
import type { RasterSource } from '../raster/source.js';
import { resolveStretch, rgbPlanFor, type ResolvedStretch, type RgbPlan, type Stretch } from '../raster/rgb.js';
import { meshFor, prepareWarpSource, windowFromMesh, type Resampling, type WarpSource } from './warp.js';
import { sharedDecoderPool, type WarpRunner } from '../codec/pool.js';

export const NO_SOURCE = 0xffff;

export interface TileSource {
  /** Stable id (e.g. the STAC item id); also in `Tile.sources`. */
  id: string;
  raster: RasterSource;
  /** Anything the caller wants carried to provenance (scene id, datetime, href, collection ...). */
  metadata?: Record<string, unknown>;
  /** Explicit 0-based bands: [red, green, blue] or [gray]. Default: by colour interpretation. */
  bands?: readonly number[];
  /** 8-bit conversion for non-8-bit data (default: percentile 2-98, see raster/rgb.ts). */
  stretch?: Stretch;
}

export interface Tile {
  spec: TileSpec;
  /** 3 × T × T, planar CHW (red, green, blue planes). */
  rgb: Uint8Array;
  /** T × T: 1 = valid imagery inside the AOI. */
  valid: Uint8Array;
  /** T × T: index into the sources, NO_SOURCE where none. */
  source: Uint16Array;
  validCount: number;
  /** Indexes of the sources that contributed pixels to this tile. */
  sourcesUsed: number[];
}

export interface TileStreamOptions {
  resampling?: Resampling;
  /** Tiles in progress at once (default 4). */
  lookahead?: number;
  /** Yield tiles with no valid pixel too (default false). */
  keepEmpty?: boolean;
  /** 'auto' (default) reads overviews when a scene is much finer than the grid. */
  overviews?: 'auto' | 'none';
  /** Where warp steps run (default: the shared worker pool; `inlineWarp` for the calling thread). */
  warp?: WarpRunner;
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
}

export interface PreparedTileSource {
  source: TileSource;
  raster: RasterSource;
  index: number;
  warp: WarpSource;
  plan: RgbPlan;
  /** The 8-bit conversion in use (null for 8-bit data). */
  to8: ResolvedStretch | null;
}

/** Resolve band plans, stretches, transforms and footprints of the sources for a layout. */
export async function prepareTileSources(layout: TileLayout, sources: readonly TileSource[], options: Pick<TileStreamOptions, 'log' | 'signal' | 'overviews'> = {}): Promise<PreparedTileSource[]> {
  if (sources.length >= NO_SOURCE) throw new GeoDinoError('E_ARGUMENT', `too many sources (${sources.length}); at most ${NO_SOURCE - 1}`);
  const log = options.log ?? silentLogger();
  const out: PreparedTileSource[] = [];
  for (let i = 0; i < sources.length; i++) {
    throwIfAborted(options.signal);
    const s = sources[i]!;
    const plan = rgbPlanFor(s.raster.info, s.bands);
    if (plan.warning) log.warn({ source: s.id }, plan.warning);
    const warp = prepareWarpSource(s.raster, layout.grid, { overviews: options.overviews ?? 'auto' });
    const stretch = await resolveStretch(s.raster, plan, s.stretch, { log, ...(options.signal ? { signal: options.signal } : {}) });
    if (!warp.footprint) log.warn({ source: s.id }, 'the scene does not project onto the grid; it is skipped');
    log.debug({ source: s.id, level: warp.level, ratio: Number(warp.ratio.toFixed(3)), bands: plan.bands }, 'source prepared');
    out.push({ source: s, raster: s.raster, index: i, warp, plan, to8: stretch });
  }
  return out;
}

function overlaps(fp: [number, number, number, number] | null, t: TileSpec): boolean {
  return fp !== null && fp[0] < t.x + t.width && fp[2] > t.x && fp[1] < t.y + t.height && fp[3] > t.y;
}

/** Build one tile (exported for callers that want a single tile, e.g. a server). */
export async function renderTile(layout: TileLayout, prepared: readonly PreparedTileSource[], spec: TileSpec, options: TileStreamOptions = {}): Promise<Tile> {
  const resampling = options.resampling ?? 'bilinear';
  const T = spec.width * spec.height;
  const rgb = new Uint8Array(3 * T);
  const source = new Uint16Array(T).fill(NO_SOURCE);
  const aoi = layout.aoiMask(spec);
  // Pixels still wanted: everything in the grid (imagery outside the AOI is context).
  const todo = new Uint8Array(T);
  const gw = Math.min(spec.width, layout.grid.width - spec.x);
  const gh = Math.min(spec.height, layout.grid.height - spec.y);
  for (let j = 0; j < gh; j++) todo.fill(1, j * spec.width, j * spec.width + gw);
  let remaining = gw * gh;
  const used: number[] = [];
  const warp = options.warp ?? sharedDecoderPool().warp;
  let rgbBuf: Uint8Array = rgb;
  let sourceBuf: Uint16Array = source;
  let todoBuf: Uint8Array = todo;
  for (const s of prepared) {
    if (remaining === 0) break;
    if (!overlaps(s.warp.footprint, spec)) continue;
    throwIfAborted(options.signal);
    const mesh = meshFor(s.warp, layout.grid, spec);
    const resamp: Resampling = s.plan.kind === 'palette' ? 'nearest' : resampling;
    const win = windowFromMesh(mesh, s.warp, resamp);
    if (!win) continue;
    const data = await s.raster.read(win, { level: s.warp.level, bands: s.plan.bands, ...(options.signal ? { signal: options.signal } : {}) });
    const r = await warp({
      mesh,
      window: win,
      levelWidth: s.warp.levelWidth,
      levelHeight: s.warp.levelHeight,
      bands: data.bands,
      valid: data.valid,
      resampling: resamp,
      stretch: s.to8 ? { offset: s.to8.offset, scale: s.to8.scale } : null,
      palette: s.plan.palette,
      index: s.index,
      rgb: rgbBuf,
      source: sourceBuf,
      todo: todoBuf,
    });
    rgbBuf = r.rgb;
    sourceBuf = r.source;
    todoBuf = r.todo;
    if (r.count > 0) used.push(s.index);
    remaining -= r.count;
  }
  const valid = aoi;
  let validCount = 0;
  for (let i = 0; i < T; i++) {
    const v = valid[i]! & (sourceBuf[i] !== NO_SOURCE ? 1 : 0);
    valid[i] = v;
    validCount += v;
  }
  return { spec, rgb: rgbBuf, valid, source: sourceBuf, validCount, sourcesUsed: used };
}

/**
 * Stream the tiles of a layout that touch the AOI and have valid imagery, mosaicked from
 * `sources` (first = highest priority).
 */
export async function* tileStream(layout: TileLayout, sources: readonly TileSource[], options: TileStreamOptions = {}): AsyncGenerator<Tile> {
  const lookahead = options.lookahead ?? 4;
  if (!Number.isInteger(lookahead) || lookahead < 1 || lookahead > 64) throw new GeoDinoError('E_ARGUMENT', `lookahead must be 1-64 (got ${lookahead})`);
  const log = options.log ?? silentLogger();
  const progress = options.progress ?? silentProgress;
  const prepared = await prepareTileSources(layout, sources, options);
  const task = progress.start('tiles', { unit: 'tiles', total: layout.countTouching() });
  const specs = layout.tiles();
  const queue: Promise<Tile>[] = [];
  const fill = (): void => {
    while (queue.length < lookahead) {
      const n = specs.next();
      if (n.done) return;
      const p = renderTile(layout, prepared, n.value, options);
      p.catch(() => undefined); // handled when awaited
      queue.push(p);
    }
  };
  let yielded = 0;
  let skipped = 0;
  try {
    fill();
    while (queue.length) {
      throwIfAborted(options.signal);
      const tile = await queue.shift()!;
      fill();
      task.tick();
      if (tile.validCount === 0 && !options.keepEmpty) {
        skipped++;
        continue;
      }
      yielded++;
      yield tile;
    }
  } finally {
    // Stopped early (break, error, abort): let in-flight tiles settle before returning.
    await Promise.allSettled(queue);
    task.finish();
    log.debug({ yielded, skipped }, 'tile stream finished');
  }
}
