/**
 * Web tiles from many rasters at once: the shards of a national run, in one or several UTM zones,
 * become one pyramid per layer.
 *
 * `RasterMosaic.open(paths)` reads each raster's header once (its Web Mercator footprint and
 * declared statistics) and closes it again; rendering a tile of the finest zoom asks only the
 * rasters whose footprint meets the tile (a bucket index over Mercator cells), each through the
 * same renderer as a single raster (`createTileRenderer`), and takes each pixel from the first
 * raster valid there (shards do not overlap within a zone; across a zone border the western
 * zone's shard comes first). At most `maxOpen` rasters are open at a time (least recently used
 * closed first), so memory does not grow with the number of shards.
 */
import { GeoDinoError, silentLogger, type Logger } from '@geo-dino/core';
import { openRaster, type RasterInfo, type RasterSource } from '@geo-dino/tiling';
import type { MercatorBounds } from './mercator.js';
import { ORIGIN_SHIFT } from './mercator.js';
import { createTileRenderer, footprintOf, zoomGrid, type RenderOptions, type SourceFootprint, type TileRenderer } from './render.js';
import type { TileData } from './tiles.js';

interface Entry {
  path: string;
  bounds: MercatorBounds;
}

interface Open {
  /** Opened once, shared by concurrent renders (set before the first await). */
  ready: Promise<{ source: RasterSource; renderer: TileRenderer }>;
  users: number;
}

/** Several rasters of one layer, rendered as one. */
export class RasterMosaic {
  private readonly open = new Map<string, Open>();
  private readonly buckets = new Map<string, number[]>();
  private readonly cell: number;

  private constructor(
    readonly name: string,
    readonly info: RasterInfo,
    readonly footprint: SourceFootprint,
    private readonly entries: Entry[],
    private readonly log: Logger,
    private readonly maxOpen: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    // Buckets about the size of the largest raster: a tile meets at most a few of them.
    this.cell = Math.max(1, ...entries.map((e) => Math.max(e.bounds.maxX - e.bounds.minX, e.bounds.maxY - e.bounds.minY)));
    entries.forEach((e, i) => {
      for (const key of this.keys(e.bounds)) {
        const b = this.buckets.get(key);
        if (b) b.push(i);
        else this.buckets.set(key, [i]);
      }
    });
  }

  private *keys(b: MercatorBounds): Generator<string> {
    const c = this.cell;
    for (let i = Math.floor(b.minX / c); i <= Math.floor(b.maxX / c); i++) for (let j = Math.floor(b.minY / c); j <= Math.floor(b.maxY / c); j++) yield `${i},${j}`;
  }

  /**
   * Read the headers of `paths` (in priority order). `name` names the set in messages and metadata.
   * The first raster's info stands for the set (band layout, colour table); the declared
   * statistics (STATISTICS_MINIMUM/MAXIMUM) are the union of all.
   */
  static async open(paths: readonly string[], options: { name: string; log?: Logger; signal?: AbortSignal; maxOpen?: number }): Promise<RasterMosaic> {
    const log = options.log ?? silentLogger();
    if (!paths.length) throw new GeoDinoError('E_ARGUMENT', `${options.name}: no rasters to tile`);
    const entries: Entry[] = [];
    let first: RasterInfo | null = null;
    let lo = Infinity;
    let hi = -Infinity;
    let fp: SourceFootprint | null = null;
    for (const path of paths) {
      const src = await openRaster(path, { log, ...(options.signal ? { signal: options.signal } : {}) });
      try {
        const f = footprintOf(src);
        entries.push({ path, bounds: f.mercator });
        first ??= src.info;
        const min = Number(src.info.metadata['STATISTICS_MINIMUM'] ?? NaN);
        const max = Number(src.info.metadata['STATISTICS_MAXIMUM'] ?? NaN);
        if (Number.isFinite(min)) lo = Math.min(lo, min);
        if (Number.isFinite(max)) hi = Math.max(hi, max);
        fp = fp
          ? {
              mercator: { minX: Math.min(fp.mercator.minX, f.mercator.minX), minY: Math.min(fp.mercator.minY, f.mercator.minY), maxX: Math.max(fp.mercator.maxX, f.mercator.maxX), maxY: Math.max(fp.mercator.maxY, f.mercator.maxY) },
              lonLat: [Math.min(fp.lonLat[0], f.lonLat[0]), Math.min(fp.lonLat[1], f.lonLat[1]), Math.max(fp.lonLat[2], f.lonLat[2]), Math.max(fp.lonLat[3], f.lonLat[3])],
              mercatorPixelSize: Math.min(fp.mercatorPixelSize, f.mercatorPixelSize),
              groundPixelSize: Math.min(fp.groundPixelSize, f.groundPixelSize),
            }
          : f;
      } finally {
        await src.close();
      }
    }
    if (fp!.mercator.maxX - fp!.mercator.minX > ORIGIN_SHIFT) {
      throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${options.name}: the rasters lie on both sides of the antimeridian (±180°); one web pyramid across it is not supported yet`);
    }
    const metadata = { ...first!.metadata };
    if (Number.isFinite(lo)) metadata['STATISTICS_MINIMUM'] = String(lo);
    if (Number.isFinite(hi)) metadata['STATISTICS_MAXIMUM'] = String(hi);
    return new RasterMosaic(options.name, { ...first!, metadata }, fp!, entries, log, options.maxOpen ?? 16, options.signal);
  }

  get size(): number {
    return this.entries.length;
  }

  private candidates(b: MercatorBounds): number[] {
    const seen = new Set<number>();
    for (const key of this.keys(b)) for (const i of this.buckets.get(key) ?? []) seen.add(i);
    return [...seen]
      .filter((i) => {
        const e = this.entries[i]!.bounds;
        return e.minX < b.maxX && e.maxX > b.minX && e.minY < b.maxY && e.maxY > b.minY;
      })
      .sort((a, c) => a - c);
  }

  private async acquire(path: string, z: number, opts: RenderOptions): Promise<{ o: Open; renderer: TileRenderer }> {
    let o = this.open.get(path);
    if (o) {
      this.open.delete(path);
      this.open.set(path, o); // most recently used last
    } else {
      const ready = openRaster(path, { log: this.log, ...(this.signal ? { signal: this.signal } : {}) }).then((source) => ({ source, renderer: createTileRenderer(source, z, opts) }));
      o = { ready, users: 0 };
      this.open.set(path, o);
      ready.catch(() => this.open.delete(path));
      for (const [p, x] of this.open) {
        if (this.open.size <= this.maxOpen) break;
        if (x.users === 0 && p !== path) {
          this.open.delete(p);
          await x.ready.then((r) => r.source.close()).catch(() => undefined);
        }
      }
    }
    o.users++;
    try {
      return { o, renderer: (await o.ready).renderer };
    } catch (err) {
      o.users--;
      throw err;
    }
  }

  /** A renderer of zoom `z` over every raster of the mosaic. */
  renderer(z: number, opts: RenderOptions): TileRenderer {
    const grid = zoomGrid(z);
    const px = grid.gsd;
    const range = { min: Infinity, max: -Infinity };
    const render = async (x: number, y: number): Promise<TileData | null> => {
      const N = 256;
      const b = { minX: -ORIGIN_SHIFT + x * N * px, maxX: -ORIGIN_SHIFT + (x + 1) * N * px, maxY: ORIGIN_SHIFT - y * N * px, minY: ORIGIN_SHIFT - (y + 1) * N * px };
      const found = this.candidates(b);
      if (!found.length) return null;
      let out: TileData | null = null;
      for (const i of found) {
        const { o, renderer } = await this.acquire(this.entries[i]!.path, z, opts);
        let t: TileData | null;
        try {
          t = await renderer.render(x, y);
        } finally {
          o.users--;
        }
        range.min = Math.min(range.min, renderer.range.min);
        range.max = Math.max(range.max, renderer.range.max);
        if (!t) continue;
        if (!out) {
          out = t;
          continue;
        }
        mergeInto(out, t);
      }
      return out;
    };
    return { render, range };
  }

  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    for (const o of all) await o.ready.then((r) => r.source.close()).catch(() => undefined);
  }
}

/** Fill the nodata pixels of `a` from `b` (the first valid raster wins). */
function mergeInto(a: TileData, b: TileData): void {
  if (a.kind === 'value' && b.kind === 'value') {
    for (let i = 0; i < a.values.length; i++) if (Number.isNaN(a.values[i]!) && !Number.isNaN(b.values[i]!)) a.values[i] = b.values[i]!;
  } else if (a.kind === 'class' && b.kind === 'class') {
    for (let i = 0; i < a.valid.length; i++) {
      if (!a.valid[i] && b.valid[i]) {
        a.valid[i] = 1;
        a.classes[i] = b.classes[i]!;
      }
    }
  } else if (a.kind === 'rgb' && b.kind === 'rgb') {
    for (let i = 0; i < a.rgba.length; i += 4) if (a.rgba[i + 3] === 0 && b.rgba[i + 3] !== 0) a.rgba.set(b.rgba.subarray(i, i + 4), i);
  }
}
