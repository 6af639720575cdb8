/**
 * The layers of a run's output, blended window by window from the stored tiles (assemble.ts's
 * `blendWindow` drives them all alike): one per head of the plan — canopy height (`HeightLayer`:
 * chm.tif, height and uncertainty) and land cover (`ClassMapLayer`, extra-heads.ts: landcover.tif)
 * — plus the model's input imagery (`ImageryLayer`, imagery.ts) and the provenance
 * (`ProvenanceLayer`). A head is a head: the window loop knows none of them by name.
 *
 * Each layer sees the same windows: `beginRow` for a row of output blocks, then per window of that
 * row `begin` (its size), `add` for every stored tile that overlaps it (in row-major order),
 * `end` (write the window's blocks), then `endRow`; `close` finishes its file, `abort` removes it.
 */
import { join } from 'node:path';
import { GEO_DINO_VERSION, GeoDinoError, type Logger } from '@geo-dino/core';
import { Stitcher } from '@geo-dino/stitcher';
import { NO_SOURCE, createCogWriter, type CogWriter } from '@geo-dino/tiling';
import { ClassMapLayer, extraHeadsOf } from './extra-heads.js';
import { tileWindowOverlap } from './imagery.js';
import { ProvenanceBuilder, type ProvenanceCollection } from './provenance.js';
import { SCENE_ZONE_PLANE, tileVariants } from './scene-feather.js';
import type { TileRecord } from './tile-store.js';
import { NODATA, type RunPlan } from './types.js';

export interface WindowLayer<R = unknown> {
  beginRow?(y0: number, rows: number): void;
  begin(width: number, rows: number): void;
  add(rec: TileRecord, x0: number, y0: number): void;
  end(blockRow: number, x0: number): Promise<void>;
  endRow?(): void;
  close(): Promise<R>;
  abort(): Promise<void>;
}

/** Running statistics of one band (count, sum, sum of squares, min, max). */
export class BandAccumulator {
  n = 0;
  sum = 0;
  sumSq = 0;
  min = Infinity;
  max = -Infinity;
  add(v: number): void {
    this.n++;
    this.sum += v;
    this.sumSq += v * v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }
  stats(total: number): BandStats | null {
    if (this.n === 0) return null;
    const mean = this.sum / this.n;
    const round = (v: number): number => Math.round(v * 1e4) / 1e4;
    return {
      minimum: round(this.min),
      maximum: round(this.max),
      mean: round(mean),
      stddev: round(Math.sqrt(Math.max(0, this.sumSq / this.n - mean * mean))),
      count: this.n,
      valid_percent: round((100 * this.n) / total),
    };
  }
}

export interface BandStats {
  minimum: number;
  maximum: number;
  mean: number;
  stddev: number;
  count: number;
  valid_percent: number;
}

export interface HeightResult {
  path: string;
  bytes: number;
  /** `height`, `uncertainty` (the planes blended into chm.tif's bands, in order). */
  bandNames: string[];
  stats: BandAccumulator[];
}

/**
 * The canopy-height head's layer: height and uncertainty blended with the stitcher's window
 * (uncertainty as the spread of the overlapping tiles' mixture) into chm.tif.
 */
export class HeightLayer implements WindowLayer<HeightResult> {
  private stitcher: Stitcher | null = null;
  readonly bandNames: string[];
  readonly stats: BandAccumulator[];
  private readonly spread: { mean: number; std: number } | null;

  private constructor(
    private readonly plan: RunPlan,
    private readonly cog: CogWriter,
  ) {
    this.bandNames = plan.heads[0]!.planes.filter((p) => p === 'height' || p === 'uncertainty');
    this.stats = this.bandNames.map(() => new BandAccumulator());
    this.spread = this.bandNames.length === 2 ? { mean: this.bandNames.indexOf('height'), std: this.bandNames.indexOf('uncertainty') } : null;
  }

  static async open(plan: RunPlan, dir: string, options: { log?: Logger; signal?: AbortSignal } = {}): Promise<HeightLayer> {
    const head = plan.heads.find((h) => h.kind === 'canopy-height');
    if (!head) throw new GeoDinoError('E_INTERNAL', 'the plan has no canopy-height head');
    const bandNames = head.planes.filter((p) => p === 'height' || p === 'uncertainty');
    const cog = await createCogWriter(join(dir, 'chm.tif'), {
      width: plan.grid.width,
      height: plan.grid.height,
      bands: bandNames.length,
      dtype: 'float32',
      blockSize: plan.tiling.blockSize,
      nodata: NODATA,
      crs: plan.grid.crs,
      transform: plan.grid.transform,
      bandDescriptions: bandNames.map((n) => (n === 'height' ? 'canopy_height' : 'uncertainty')),
      bandMetadata: bandNames.map((n) => ({ UNITS: 'm', DESCRIPTION_LONG: n === 'height' ? 'canopy height above ground' : 'standard deviation of the height bin distribution (of the blended mixture where tiles overlap)' })),
      bandUnits: bandNames.map(() => 'm'),
      statistics: true,
      overviewResampling: 'average',
      metadata: {
        GEO_DINO_VERSION,
        GEO_DINO_MODEL: plan.model.name,
        GEO_DINO_WEIGHTS_SHA256: plan.model.weightsSha256,
        GEO_DINO_DEMO: plan.demo ? 'YES' : 'NO',
        GEO_DINO_CONFIG_HASH: plan.configHash,
        ...(plan.demo ? { GEO_DINO_WARNING: 'DEMO: random-weight model, heights are not real canopy heights' } : {}),
      },
      ...(options.log ? { log: options.log } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return new HeightLayer(plan, cog);
  }

  begin(width: number, rows: number): void {
    const t = this.plan.tiling;
    this.stitcher = new Stitcher({ width, height: rows, bands: this.bandNames.length, blockSize: t.blockSize, tileSize: t.tileSize, overlap: t.overlap, window: t.window, nodata: NODATA, spread: this.spread });
  }

  add(rec: TileRecord, x0: number, y0: number): void {
    // A feathered tile holds one prediction per scene, each with its share (scene-feather.ts).
    for (const v of tileVariants(rec)) {
      this.stitcher!.add({
        x: rec.spec.x - x0,
        y: rec.spec.y - y0,
        width: rec.spec.width,
        height: rec.spec.height,
        bands: this.bandNames.map((n) => rec.planes[`${n}${v.suffix}`] as Float32Array),
        valid: rec.planes['valid'] as Uint8Array,
        ...(v.weight ? { weight: v.weight } : {}),
      });
    }
  }

  async end(blockRow: number, x0: number): Promise<void> {
    const B = this.plan.tiling.blockSize;
    for (const blk of this.stitcher!.finish()) {
      for (let b = 0; b < this.bandNames.length; b++) {
        const a = blk.bands[b]!;
        const acc = this.stats[b]!;
        for (let y = 0; y < blk.height; y++) {
          for (let x = 0; x < blk.width; x++) {
            const v = a[y * B + x]!;
            if (v !== NODATA) acc.add(v);
          }
        }
      }
      await this.cog.writeBlock(blk.col + x0 / B, blockRow, blk.bands);
    }
    this.stitcher = null;
  }

  async close(): Promise<HeightResult> {
    const r = await this.cog.close();
    return { path: r.path, bytes: r.bytes, bandNames: this.bandNames, stats: this.stats };
  }

  abort(): Promise<void> {
    return this.cog.abort();
  }
}

/**
 * Which scene supplied each output pixel (the last tile valid there), aggregated by
 * `ProvenanceBuilder`; with scene feathering also the transition zones (the tiles' `scene_zone`
 * plane: the seam whose zone a pixel lies in, under the same last-tile rule).
 */
export class ProvenanceLayer implements WindowLayer<ProvenanceCollection> {
  private readonly builder: ProvenanceBuilder;
  private readonly zones: ProvenanceBuilder | null;
  private source = new Uint16Array(0);
  private zone = new Uint16Array(0);
  private width = 0;
  private rows = 0;

  constructor(plan: RunPlan) {
    this.builder = new ProvenanceBuilder(plan, plan.tiling.blockSize);
    this.zones = plan.sceneFeather?.seams.length ? new ProvenanceBuilder(plan, plan.tiling.blockSize, 'seams') : null;
  }

  beginRow(y0: number, rows: number): void {
    this.builder.beginRow(y0, rows);
    this.zones?.beginRow(y0, rows);
  }

  begin(width: number, rows: number): void {
    this.width = width;
    this.rows = rows;
    if (this.source.length < width * rows) this.source = new Uint16Array(width * rows);
    this.source.fill(NO_SOURCE, 0, width * rows);
    if (this.zones) {
      if (this.zone.length < width * rows) this.zone = new Uint16Array(width * rows);
      this.zone.fill(NO_SOURCE, 0, width * rows);
    }
  }

  add(rec: TileRecord, x0: number, y0: number): void {
    const valid = rec.planes['valid'] as Uint8Array;
    const src = rec.planes['source'] as Uint16Array;
    const zone = this.zones ? (rec.planes[SCENE_ZONE_PLANE] as Uint16Array | undefined) : undefined;
    const { xa, xb, ya, yb } = tileWindowOverlap(rec.spec, x0, y0, this.width, this.rows);
    for (let y = ya; y < yb; y++) {
      const t = (y + y0 - rec.spec.y) * rec.spec.width - rec.spec.x + x0;
      const o = y * this.width;
      for (let x = xa; x < xb; x++) {
        if (!valid[t + x]) continue;
        this.source[o + x] = src[t + x]!;
        if (this.zones) this.zone[o + x] = zone ? zone[t + x]! : NO_SOURCE;
      }
    }
  }

  async end(_blockRow: number, x0: number): Promise<void> {
    this.builder.addWindow(x0, this.width, this.rows, this.source.subarray(0, this.width * this.rows));
    this.zones?.addWindow(x0, this.width, this.rows, this.zone.subarray(0, this.width * this.rows));
  }

  endRow(): void {
    this.builder.endRow();
    this.zones?.endRow();
  }

  async close(): Promise<ProvenanceCollection> {
    const fc = this.builder.finish();
    const zones = this.zones?.finishTransitions() ?? [];
    return zones.length ? { ...fc, transition_zones: zones } : fc;
  }

  async abort(): Promise<void> {}
}

/** The STAC raster bands of chm.tif (height, uncertainty), with their statistics. */
export function chmAssetBands(bandNames: readonly string[], statsOf: (band: number) => BandStats | null): { name: string; description: string; dataType: 'float32'; nodata: number; unit: string; statistics?: BandStats }[] {
  return bandNames.map((n, i) => {
    const s = statsOf(i);
    return {
      name: n === 'height' ? 'canopy_height' : 'uncertainty',
      description: n === 'height' ? 'canopy height above ground' : 'standard deviation of the height bin distribution',
      dataType: 'float32' as const,
      nodata: NODATA,
      unit: 'm',
      ...(s ? { statistics: s } : {}),
    };
  });
}

/** One layer per head of the plan, in the plan's order (canopy height first). */
export async function openHeadLayers(plan: RunPlan, dir: string, options: { log?: Logger; signal?: AbortSignal } = {}): Promise<{ height: HeightLayer; classMaps: ClassMapLayer[] }> {
  const height = await HeightLayer.open(plan, dir, options);
  try {
    const classMaps: ClassMapLayer[] = [];
    try {
      for (const h of extraHeadsOf(plan)) if (h.kind === 'land-cover') classMaps.push(await ClassMapLayer.open(plan, h, dir, options));
    } catch (err) {
      await Promise.all(classMaps.map((l) => l.abort().catch(() => undefined)));
      throw err;
    }
    return { height, classMaps };
  } catch (err) {
    await height.abort();
    throw err;
  }
}
