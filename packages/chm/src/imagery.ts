/**
 * The run's imagery layer (`imagery.pmtiles`): the mosaic the model saw, for every run — one scene
 * or many, local files, STAC, signed URLs, 16-bit scenes after their 8-bit stretch.
 *
 * - predict: `imageryPlanes` keeps the 8-bit RGB of each tile's model input (the tiler's mosaic:
 *   per pixel the first valid scene in priority order) as three tile-store planes `red`, `green`,
 *   `blue` (uint8, 0 where the tile's `valid` is 0: no imagery, or outside the AOI). The scenes
 *   are not read again, so the layer costs no second download of remote imagery.
 * - assemble: an `ImageryLayer` fills the same blending windows as the heights from the same
 *   stored tiles in the same order, under the same rule as the provenance's source index (a pixel
 *   takes the last tile, in row-major order, that has it valid), so the colour of a pixel comes
 *   from the very tile whose `source` plane `provenance.geojson` counts there. It writes a
 *   temporary RGBA COG on the run's grid (`IMAGERY_MOSAIC_FILE`: alpha 255 = valid imagery inside
 *   the AOI, DEFLATE level 1, no overviews: the pyramid reduces its own coarser zooms), which the
 *   pmtiles package tiles like any imagery raster and `assembleRun` deletes afterwards.
 *
 * Memory: 4 bytes per pixel of the blending window (8 MiB at the default 4096-pixel chunks); the
 * COG writer without overviews holds nothing per row. Disk: 3 bytes per tile pixel more in the
 * tile store (deflated), and the mosaic COG while the web layers are written.
 */
import { join } from 'node:path';
import { GEO_DINO_VERSION, GeoDinoError, type Logger } from '@geo-dino/core';
import { createCogWriter, type CogWriter } from '@geo-dino/tiling';
import type { TileRecord, TileRecordSpec } from './tile-store.js';
import type { RunPlan } from './types.js';

/** Tile-store planes holding the model's 8-bit input imagery. */
export const IMAGERY_PLANES = ['red', 'green', 'blue'] as const;

/** The temporary mosaic COG written in the staging directory and tiled into imagery.pmtiles. */
export const IMAGERY_MOSAIC_FILE = 'imagery-mosaic.tif';

/** `red`, `green`, `blue` planes of a tile from the tiler's planar CHW `rgb`, zero where not `valid`. */
export function imageryPlanes(rgb: Uint8Array, valid: Uint8Array): Record<(typeof IMAGERY_PLANES)[number], Uint8Array> {
  const n = valid.length;
  if (rgb.length !== 3 * n) throw new GeoDinoError('E_INTERNAL', `imagery planes: rgb has ${rgb.length} samples for a ${n}-pixel tile`);
  const planes = IMAGERY_PLANES.map((_, c) => {
    const p = rgb.slice(c * n, (c + 1) * n);
    for (let i = 0; i < n; i++) if (!valid[i]) p[i] = 0;
    return p;
  });
  return { red: planes[0]!, green: planes[1]!, blue: planes[2]! };
}

/** The part of a tile inside a window of `width` × `rows` pixels at (x0, y0), in window pixels. */
export function tileWindowOverlap(spec: TileRecordSpec, x0: number, y0: number, width: number, rows: number): { xa: number; xb: number; ya: number; yb: number } {
  return {
    xa: Math.max(0, spec.x - x0),
    xb: Math.min(width, spec.x + spec.width - x0),
    ya: Math.max(0, spec.y - y0),
    yb: Math.min(rows, spec.y + spec.height - y0),
  };
}

export interface ImageryMosaic {
  path: string;
  bytes: number;
  validPixels: number;
}

/** Writes the mosaic COG window by window (see the module comment). */
export class ImageryLayer {
  private window: Uint8Array[] = [];
  private width = 0;
  private rows = 0;
  private blocks = 0;
  private validPixels = 0;
  /** Non-empty tiles stored without imagery planes (a state left by an older geo-dino). */
  private missing = 0;

  private constructor(
    private readonly plan: RunPlan,
    private readonly cog: CogWriter,
    private readonly log: Logger | undefined,
  ) {}

  static async open(plan: RunPlan, dir: string, options: { log?: Logger; signal?: AbortSignal } = {}): Promise<ImageryLayer> {
    const cog = await createCogWriter(join(dir, IMAGERY_MOSAIC_FILE), {
      width: plan.grid.width,
      height: plan.grid.height,
      bands: 4,
      dtype: 'uint8',
      blockSize: plan.tiling.blockSize,
      crs: plan.grid.crs,
      transform: plan.grid.transform,
      colorInterp: ['red', 'green', 'blue', 'alpha'],
      bandDescriptions: ['red', 'green', 'blue', 'valid'],
      // Temporary and read once at full resolution: fast compression, no overviews.
      deflateLevel: 1,
      overviews: 0,
      metadata: { GEO_DINO_VERSION, GEO_DINO_CONFIG_HASH: plan.configHash, GEO_DINO_CONTENT: 'model input imagery (mosaic in priority order), alpha = valid imagery inside the AOI' },
      ...(options.log ? { log: options.log } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return new ImageryLayer(plan, cog, options.log);
  }

  /** Start a window of `width` × `rows` pixels (the heights' blending window). */
  begin(width: number, rows: number): void {
    if (this.missing) return;
    this.width = width;
    this.rows = rows;
    const n = width * rows;
    if (this.window.length === 0 || this.window[0]!.length < n) this.window = Array.from({ length: 4 }, () => new Uint8Array(n));
    else for (const p of this.window) p.fill(0, 0, n);
  }

  /** Add a stored tile to the window at (x0, y0): where it is valid, its colour replaces earlier tiles'. */
  add(rec: TileRecord, x0: number, y0: number): void {
    if (this.missing) return;
    const [r, g, b] = IMAGERY_PLANES.map((k) => rec.planes[k]);
    if (!(r instanceof Uint8Array) || !(g instanceof Uint8Array) || !(b instanceof Uint8Array)) {
      this.missing++;
      this.window = [];
      return;
    }
    const valid = rec.planes['valid'] as Uint8Array;
    const [R, G, Bl, A] = this.window as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    const w = this.width;
    const { xa, xb, ya, yb } = tileWindowOverlap(rec.spec, x0, y0, w, this.rows);
    for (let y = ya; y < yb; y++) {
      const t = (y + y0 - rec.spec.y) * rec.spec.width - rec.spec.x + x0;
      const o = y * w;
      for (let x = xa; x < xb; x++) {
        if (!valid[t + x]) continue;
        R[o + x] = r[t + x]!;
        G[o + x] = g[t + x]!;
        Bl[o + x] = b[t + x]!;
        A[o + x] = 255;
      }
    }
  }

  /** Write the window's blocks (block row `row`, first column x0); blocks without valid pixels stay sparse. */
  async end(row: number, x0: number): Promise<void> {
    if (this.missing) return;
    const B = this.plan.tiling.blockSize;
    const w = this.width;
    for (let k = 0; k * B < w; k++) {
      const bw = Math.min(B, w - k * B);
      const planes = this.window.map(() => new Uint8Array(B * B));
      let valid = 0;
      for (let y = 0; y < this.rows; y++) {
        const o = y * w + k * B;
        for (let c = 0; c < 4; c++) planes[c]!.set(this.window[c]!.subarray(o, o + bw), y * B);
        const a = planes[3]!;
        for (let x = y * B; x < y * B + bw; x++) if (a[x]) valid++;
      }
      if (!valid) continue;
      this.validPixels += valid;
      this.blocks++;
      await this.cog.writeBlock(x0 / B + k, row, planes);
    }
  }

  /** Finish the COG; null (and nothing left) when tiles lacked imagery planes or nothing was valid. */
  async close(): Promise<ImageryMosaic | null> {
    if (this.missing || this.blocks === 0) {
      await this.cog.abort();
      if (this.missing) {
        this.log?.warn({ tiles: this.missing }, 'imagery.pmtiles not written: tiles of this run were stored without their imagery (predicted by an older geo-dino); rerun without --resume to get the layer');
      }
      return null;
    }
    const r = await this.cog.close();
    return { path: r.path, bytes: r.bytes, validPixels: this.validPixels };
  }

  abort(): Promise<void> {
    return this.cog.abort();
  }
}
