/**
 * Heads besides canopy height that run on the same backbone pass (issue 8: land cover).
 *
 * A split model (backbone graph + head graphs) lets `runHeads` compute the backbone once per
 * batch and feed CHMv2 and every extra head from the same features. This module is the hook the
 * pipeline calls at each stage; the heads themselves are plain data (`ExtraHeadSpec`), made by
 * the package that owns them (`@geo-dino/landcover`'s `loadLandcoverHead`), so this package does
 * not depend on it.
 *
 * - plan: `plannedExtraHeads` checks each head fits the model (split layout, same backbone
 *   weights) and records it in the plan (its graph, hash, class table);
 * - open: `openPlanModel` opens the plan's model with its head graphs attached (checked against
 *   the plan's hashes) — the one way `runChm`, monitoring's local executor and BullMQ tile
 *   workers open a runner;
 * - predict: `runPlannedHeads` runs the batch (`runChm` when there is no extra head, else
 *   `runHeads`: one backbone run for all heads) and `extraTilePlanes` turns a land-cover head's
 *   class probabilities into tile-store planes (`<name>_<k>`, uint16: p·65535, 0 where there is
 *   no valid imagery);
 * - assemble: a `ClassMapLayer` blends those planes with the same stitcher windows as the
 *   heights (raised-cosine weights of the whole tile), takes the most probable class per pixel
 *   and writes `landcover.tif` (uint8 COG, colour table, nodata where chm.tif has none, mode
 *   overviews), counting pixels per class for run.json and the STAC Item.
 */
import { join } from 'node:path';
import { GEO_DINO_VERSION, GeoDinoError, type Logger } from '@geo-dino/core';
import { openModel, type ChmResult, type ModelDir, type ModelRunner, type OpenModelOptions, type RunCallOptions } from '@geo-dino/model';
import type { HostTensor } from '@geo-dino/runtime';
import { tileVariants } from './scene-feather.js';
import { Stitcher } from '@geo-dino/stitcher';
import type { OutputAsset } from '@geo-dino/stac';
import { createCogWriter, type CogWriter } from '@geo-dino/tiling';
import { hashFile } from './hash.js';
import type { PlaneArray, TileRecord } from './tile-store.js';
import type { ChmRequest, ExtraHeadSpec, PlannedHead, RunPlan } from './types.js';

/** Land-cover probabilities are stored as p × this (uint16). */
export const PROBABILITY_SCALE = 65535;

/** The output file of a land-cover head (DEVELOPERS.md's run-directory contract). */
export const LANDCOVER_FILE = 'landcover.tif';

/** What the request hash records of the extra heads (nothing when there are none). */
export function extraHeadsIdentity(request: Pick<ChmRequest, 'extraHeads'>): { name: string; sha256: string }[] | null {
  const heads = request.extraHeads ?? [];
  return heads.length ? heads.map((h) => ({ name: h.name, sha256: h.sha256 })) : null;
}

/** Check the request's extra heads against the model and turn them into planned heads. */
export function plannedExtraHeads(request: Pick<ChmRequest, 'extraHeads'>, md: ModelDir): PlannedHead[] {
  const heads = request.extraHeads ?? [];
  if (!heads.length) return [];
  const meta = md.meta;
  if (!meta.features) {
    throw new GeoDinoError(
      'E_ARGUMENT',
      `--landcover: ${meta.name} is a ${meta.layout} model, so its backbone cannot feed a second head; build a split model from the same weights: geo-dino model build --from <hf-dir> --out <dir> --split`,
      { details: { field: '--landcover', model: md.dir } },
    );
  }
  const seen = new Set<string>([md.chmHead()?.name ?? 'chm']);
  let landcover = 0;
  return heads.map((h) => {
    if (seen.has(h.name)) throw new GeoDinoError('E_ARGUMENT', `--landcover: head name ${JSON.stringify(h.name)} is used twice`, { details: { field: '--landcover' } });
    seen.add(h.name);
    if (h.kind === 'land-cover' && ++landcover > 1) throw new GeoDinoError('E_ARGUMENT', '--landcover: one land-cover head per run', { details: { field: '--landcover' } });
    if (h.backboneWeightsSha256 !== meta.source.weightsSha256) {
      throw new GeoDinoError(
        'E_BAD_MODEL',
        `--landcover: ${h.source} was trained on the features of another backbone (weights ${h.backboneWeightsSha256.slice(0, 12)}); ${meta.name} has weights ${meta.source.weightsSha256.slice(0, 12)}`,
        { details: { field: '--landcover', head: h.source } },
      );
    }
    if (h.classes.length < 2) throw new GeoDinoError('E_BAD_MODEL', `--landcover: ${h.source}: a land-cover head needs at least 2 classes`, { details: { field: '--landcover' } });
    return { name: h.name, kind: h.kind, planes: h.classes.map((_, k) => planeName(h.name, k)), spec: { ...h, classes: h.classes.map((c) => ({ ...c })) } };
  });
}

export function planeName(head: string, k: number): string {
  return `${head}_${k}`;
}

/** The extra heads of a plan (every head but canopy height). */
export function extraHeadsOf(plan: RunPlan): (PlannedHead & { spec: ExtraHeadSpec })[] {
  return plan.heads.filter((h): h is PlannedHead & { spec: ExtraHeadSpec } => h.kind !== 'canopy-height' && h.spec !== undefined);
}

/** Head graphs to attach to the runner (`openModel(dir, { heads })`). */
export function extraHeadGraphs(plan: RunPlan): Record<string, string> {
  return Object.fromEntries(extraHeadsOf(plan).map((h) => [h.name, h.spec.graph]));
}

/**
 * Open `modelDir` to predict tiles of `plan`: the runner with the plan's extra head graphs
 * attached. Each graph is checked against the hash recorded in the plan first, so a head replaced
 * since planning (or another file at that path on a worker machine) fails clearly instead of
 * mixing two heads in one map.
 */
export async function openPlanModel(modelDir: string, plan: RunPlan, options: Omit<OpenModelOptions, 'heads'> = {}): Promise<ModelRunner> {
  for (const h of extraHeadsOf(plan)) {
    const sha = await hashFile(h.spec.graph).catch((err: unknown) => {
      throw new GeoDinoError('E_MODEL_NOT_FOUND', `head ${h.name}: cannot read ${h.spec.graph} (the head graph this run was planned with, from ${h.spec.source})`, { cause: err, details: { head: h.name, path: h.spec.graph } });
    });
    if (sha !== h.spec.sha256) {
      throw new GeoDinoError('E_BAD_MODEL', `head ${h.name}: ${h.spec.graph} has changed since the run was planned (sha256 ${sha.slice(0, 12)}, planned ${h.spec.sha256.slice(0, 12)})`, {
        details: { head: h.name, path: h.spec.graph },
      });
    }
  }
  return openModel(modelDir, { ...options, heads: extraHeadGraphs(plan) });
}

export interface HeadsResult extends ChmResult {
  /** Outputs of the extra heads, by head name. */
  extra: Record<string, Record<string, HostTensor>>;
}

/** Run a batch through canopy height and the plan's extra heads (one backbone pass for all). */
export async function runPlannedHeads(runner: ModelRunner, plan: RunPlan, pixels: Float32Array, batch: number, size: number, options: RunCallOptions = {}): Promise<HeadsResult> {
  const extra = extraHeadsOf(plan);
  if (!extra.length) return { ...(await runner.runChm(pixels, batch, size, size, options)), extra: {} };
  const chm = runner.dir.chmHead();
  if (!chm) throw new GeoDinoError('E_BAD_MODEL', `${runner.meta.name} has no canopy-height head`);
  const r = await runner.runHeads(pixels, batch, size, size, [chm.name, ...extra.map((h) => h.name)], options);
  const c = r[chm.name]!;
  const h = c[chm.outputs.height!];
  if (!h) throw new GeoDinoError('E_INTERNAL', `head ${chm.name} returned no ${chm.outputs.height}`);
  const u = chm.outputs.uncertainty ? c[chm.outputs.uncertainty] : undefined;
  const dims = h.dims.length === 4 ? [h.dims[0]!, h.dims[2]!, h.dims[3]!] : [h.dims[0]!, h.dims[1]!, h.dims[2]!];
  const out: Record<string, Record<string, HostTensor>> = {};
  for (const e of extra) out[e.name] = r[e.name]!;
  return { height: h.data as Float32Array, uncertainty: u ? (u.data as Float32Array) : null, dims: dims as [number, number, number], extra: out };
}

/** Tile-store planes of tile `k` of a batch for every extra head (probabilities as uint16, 0 where invalid). */
export function extraTilePlanes(plan: RunPlan, extra: HeadsResult['extra'], k: number, size: number, valid: Uint8Array): Record<string, PlaneArray> {
  const planes: Record<string, PlaneArray> = {};
  const n = size * size;
  for (const h of extraHeadsOf(plan)) {
    const t = extra[h.name]?.[h.spec.output];
    const K = h.spec.classes.length;
    if (!t || t.type !== 'float32' || t.dims.length !== 4 || t.dims[1] !== K || t.dims[2] !== size || t.dims[3] !== size) {
      throw new GeoDinoError('E_BAD_MODEL', `head ${h.name}: output ${h.spec.output} is ${t ? `${t.type} [${t.dims.join(', ')}]` : 'missing'}; expected float32 [batch, ${K}, ${size}, ${size}]`);
    }
    const data = t.data as Float32Array;
    for (let c = 0; c < K; c++) {
      const plane = new Uint16Array(n);
      const off = (k * K + c) * n;
      for (let i = 0; i < n; i++) if (valid[i]) plane[i] = Math.round(Math.min(1, Math.max(0, data[off + i]!)) * PROBABILITY_SCALE);
      planes[planeName(h.name, c)] = plane;
    }
  }
  return planes;
}

/**
 * The blending window width to use when extra heads are blended beside the heights: the
 * requested width scaled down so the class stitcher (K + 1 planes) and the height stitcher
 * (3 planes) together use no more memory than the heights alone would (never below one block).
 */
export function chunkWidthWithExtraHeads(plan: RunPlan, requested: number, blockSize: number): number {
  const planes = extraHeadsOf(plan).reduce((s, h) => s + h.spec.classes.length + 1, 0);
  // An invalid width is returned as is, for the caller's check to report.
  if (!planes || !Number.isInteger(requested) || requested < blockSize || requested % blockSize !== 0) return requested;
  return Math.max(blockSize, Math.floor((requested * 3) / (3 + planes) / blockSize) * blockSize);
}

/** 256 RGBA entries for a uint8 class map (unused values black, nodata transparent). */
export function classColorTable(classes: readonly { value: number; color: string }[], nodata: number): number[][] {
  const table: number[][] = Array.from({ length: 256 }, () => [0, 0, 0, 255]);
  table[nodata] = [0, 0, 0, 0];
  for (const c of classes) {
    const hex = c.color.replace('#', '');
    table[c.value] = [parseInt(hex.slice(0, 2), 16), parseInt(hex.slice(2, 4), 16), parseInt(hex.slice(4, 6), 16), 255];
  }
  return table;
}

export interface ClassMapResult {
  head: string;
  spec: ExtraHeadSpec;
  path: string;
  bytes: number;
  /** Pixels per class (same order as spec.classes). */
  counts: number[];
  validPixels: number;
}

/** Blends one land-cover head's planes window by window and writes its class map (see the module comment). */
export class ClassMapLayer {
  private stitcher: Stitcher | null = null;
  private readonly counts: number[];
  private readonly K: number;

  private constructor(
    private readonly plan: RunPlan,
    private readonly head: PlannedHead & { spec: ExtraHeadSpec },
    private readonly cog: CogWriter,
  ) {
    this.K = head.spec.classes.length;
    this.counts = new Array<number>(this.K).fill(0);
  }

  /** The layer of one land-cover head of the plan, writing landcover.tif into `dir`. */
  static async open(plan: RunPlan, h: PlannedHead & { spec: ExtraHeadSpec }, dir: string, options: { log?: Logger; signal?: AbortSignal } = {}): Promise<ClassMapLayer> {
    const s = h.spec;
    const cog = await createCogWriter(join(dir, LANDCOVER_FILE), {
      width: plan.grid.width,
      height: plan.grid.height,
      bands: 1,
      dtype: 'uint8',
      blockSize: plan.tiling.blockSize,
      nodata: s.nodata,
      crs: plan.grid.crs,
      transform: plan.grid.transform,
      bandDescriptions: ['land_cover'],
      colorTable: classColorTable(s.classes, s.nodata),
      overviewResampling: 'mode',
      metadata: {
        GEO_DINO_VERSION,
        GEO_DINO_MODEL: plan.model.name,
        GEO_DINO_WEIGHTS_SHA256: plan.model.weightsSha256,
        GEO_DINO_LANDCOVER_HEAD_SHA256: s.sha256,
        GEO_DINO_DEMO: plan.demo ? 'YES' : 'NO',
        GEO_DINO_CONFIG_HASH: plan.configHash,
        GEO_DINO_CLASSES: JSON.stringify(s.classes.map((c) => ({ value: c.value, name: c.name, color: c.color }))),
      },
      ...(options.log ? { log: options.log } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return new ClassMapLayer(plan, h, cog);
  }

  /** Start a blending window of `width` × `rows` pixels (same windows as the heights). */
  begin(width: number, rows: number): void {
    const t = this.plan.tiling;
    this.stitcher = new Stitcher({ width, height: rows, bands: this.K, blockSize: t.blockSize, tileSize: t.tileSize, overlap: t.overlap, window: t.window, nodata: Number.NaN });
  }

  /** Add a stored tile to the window whose top-left is (x0, y0). */
  add(rec: TileRecord, x0: number, y0: number): void {
    const n = rec.spec.width * rec.spec.height;
    // A feathered tile holds one prediction per scene, each with its share (scene-feather.ts).
    for (const v of tileVariants(rec)) {
      const bands: Float32Array[] = [];
      for (let k = 0; k < this.K; k++) {
        const name = `${planeName(this.head.name, k)}${v.suffix}`;
        const p = rec.planes[name];
        if (!(p instanceof Uint16Array) || p.length !== n) throw new GeoDinoError('E_INTERNAL', `tile ${rec.id}: no ${name} plane (was it predicted without the ${this.head.name} head?)`);
        const f = new Float32Array(n);
        for (let i = 0; i < n; i++) f[i] = p[i]! / PROBABILITY_SCALE;
        bands.push(f);
      }
      this.stitcher!.add({ x: rec.spec.x - x0, y: rec.spec.y - y0, width: rec.spec.width, height: rec.spec.height, bands, valid: rec.planes['valid'] as Uint8Array, ...(v.weight ? { weight: v.weight } : {}) });
    }
  }

  /** Finish the window: most probable class per pixel, blocks to the COG (block row `row`, first column x0). */
  async end(row: number, x0: number): Promise<void> {
    const B = this.plan.tiling.blockSize;
    const { classes, nodata } = this.head.spec;
    const K = this.K;
    for (const blk of this.stitcher!.finish()) {
      const out = new Uint8Array(B * B).fill(nodata);
      const p0 = blk.bands[0]!;
      for (let y = 0; y < blk.height; y++) {
        for (let x = 0; x < blk.width; x++) {
          const i = y * B + x;
          if (Number.isNaN(p0[i]!)) continue;
          let best = 0;
          let bv = p0[i]!;
          for (let k = 1; k < K; k++) {
            const v = blk.bands[k]![i]!;
            if (v > bv) {
              bv = v;
              best = k;
            }
          }
          out[i] = classes[best]!.value;
          this.counts[best]!++;
        }
      }
      await this.cog.writeBlock(blk.col + x0 / B, row, [out]);
    }
    this.stitcher = null;
  }

  async close(): Promise<ClassMapResult> {
    const r = await this.cog.close();
    return { head: this.head.name, spec: this.head.spec, path: r.path, bytes: r.bytes, counts: [...this.counts], validPixels: this.counts.reduce((a, b) => a + b, 0) };
  }

  abort(): Promise<void> {
    return this.cog.abort();
  }
}

/** Per-class pixel counts and shares of a class map, in class-table order. */
function classShares(r: ClassMapResult): { value: number; name: string; title?: string; color: string; count: number; percentage: number }[] {
  return r.spec.classes.map((c, k) => ({
    value: c.value,
    name: c.name,
    ...(c.title ? { title: c.title } : {}),
    color: c.color,
    count: r.counts[k]!,
    percentage: r.validPixels > 0 ? Math.round((1e6 * r.counts[k]!) / r.validPixels) / 1e4 : 0,
  }));
}

/** STAC assets of the class maps (classification extension: the class table with counts, and the nodata value). */
export function classMapAssets(maps: readonly ClassMapResult[], demo: boolean): OutputAsset[] {
  return maps.map((m) => ({
    key: m.head,
    path: m.path,
    roles: ['data'],
    title: demo ? 'Land cover (DEMO model)' : 'Land cover',
    description: `most probable class of the land-cover head ${m.spec.source} (sha256 ${m.spec.sha256.slice(0, 12)}) on the backbone's features`,
    bands: [
      {
        name: 'land_cover',
        dataType: 'uint8' as const,
        nodata: m.spec.nodata,
        classes: [
          ...classShares(m).map((c) => ({ value: c.value, name: c.name, ...(c.title ? { title: c.title } : {}), colorHint: c.color.replace('#', ''), count: c.count, percentage: c.percentage })),
          { value: m.spec.nodata, name: 'no_data', nodata: true },
        ],
      },
    ],
  }));
}

/** `writeRunTiles` options for the class maps (their class tables). */
export function classMapTileOptions(maps: readonly ClassMapResult[]): { landcoverClasses?: { value: number; name: string; color: string }[] } {
  const lc = maps.find((m) => m.spec.kind === 'land-cover');
  return lc ? { landcoverClasses: lc.spec.classes.map((c) => ({ value: c.value, name: c.name, color: c.color })) } : {};
}

/** run.json fields for the class maps: the head, its class table with pixel counts. */
export function classMapRunInfo(maps: readonly ClassMapResult[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const m of maps) {
    out[m.head] = { head: m.spec.source, sha256: m.spec.sha256, file: LANDCOVER_FILE, nodata: m.spec.nodata, validPixels: m.validPixels, classes: classShares(m) };
  }
  return out;
}
