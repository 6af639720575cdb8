/**
 * `predictTiles`: read, warp and mosaic each tile (the tiler's `renderTile`), normalise it (the
 * model package's `normalizeRgb`), run the model in batches (sessions in worker threads), and
 * write each tile's prediction to the tile store.
 *
 * Reading runs ahead of inference: up to `lookahead` tiles are being read/warped while a batch is
 * in the model, and up to `inflight` batches are queued on the runner, so the model never waits
 * for input when reading is faster than inference. Tiles are written as their batch completes
 * (compression on libuv's thread pool). Memory is bounded by the look-ahead, the batches in
 * flight and the decoded-block cache, never by the number of tiles.
 *
 * An abort stops at a tile boundary: no new tile is read or batch submitted, batches queued on
 * the runner are cancelled before they start, and the batch in the model finishes and is stored.
 */
import { GeoDinoError, TaskGroup, silentLogger, silentProgress, throwIfAborted, type ProgressTask } from '@geo-dino/core';
import { normalizeRgb, type ModelRunner } from '@geo-dino/model';
import { NO_SOURCE, prepareTileSources, renderTile, type RasterSource, type Tile, type TileSource, type TileSpec } from '@geo-dino/tiling';
import { layoutOf, tileSpecOf } from './plan.js';
import { extraHeadsOf, extraTilePlanes, runPlannedHeads } from './extra-heads.js';
import { imageryPlanes } from './imagery.js';
import { SourceOpener } from './sources.js';
import { composeTile, footprintEdgeDistance, footprintHalo, harmoniseTile, SCENE_WEIGHT_PLANE, SCENE_ZONE_PLANE, seamsMeeting, variantSuffix } from './scene-feather.js';
import type { TileRecord, TileStore } from './tile-store.js';
import type { CommonOptions, RunPlan, SceneSeam } from './types.js';

export interface PredictOptions extends CommonOptions {
  /** Tiles per model call (default 1; more helps on GPUs). */
  batch?: number;
  /** Tiles read ahead of the model (default max(4, 2 × batch)). */
  lookahead?: number;
  /** Batches queued on the runner at once (default 2: one running, one ready). */
  inflight?: number;
  /** Decoded-block cache budget for the scenes (default 16 MiB). */
  cacheBytes?: number;
  /** Progress totals when this call is part of a larger run. */
  progressTotal?: number;
  progressDone?: number;
  headers?: Record<string, string>;
  /** Called after each tile is stored. */
  onTile?: (record: TileRecord) => void;
}

export interface PredictSummary {
  /** Tiles written (including empty ones). */
  tiles: number;
  /** Tiles without any valid pixel (stored as empty, no model call). */
  empty: number;
  validPixels: number;
  modelCalls: number;
  /** Tiles predicted once per scene across a scene seamline (scene-feather.ts). */
  featheredTiles: number;
  /** Model inputs those tiles cost beyond one per tile (the extra inference of feathering). */
  extraTileInferences: number;
  /** Seconds the model calls took (sum over calls; overlaps reading). */
  modelSeconds: number;
  seconds: number;
}

/** One model input of a feathered tile: a scene's pixels alone, and that scene's weight per pixel. */
interface Variant {
  rgb: Uint8Array;
  mask: Uint8Array;
  weight: Float32Array;
}

/** A tile to predict: its mosaic, and when it is feathered one input per scene (else null: the mosaic is the input). */
interface Job {
  tile: Tile;
  variants: Variant[] | null;
  zone: Uint16Array | null;
}

/** The scenes meeting a set of tiles, opened in plan order, with their plan indexes. */
async function openSourcesFor(plan: RunPlan, boxes: [number, number, number, number], opener: SourceOpener): Promise<{ sources: TileSource[]; planIndex: number[] }> {
  const sources: TileSource[] = [];
  const planIndex: number[] = [];
  try {
    for (let i = 0; i < plan.sources.length; i++) {
      const s = plan.sources[i]!;
      const b = s.gridBbox;
      if (!b || b[0] >= boxes[2] || b[2] <= boxes[0] || b[1] >= boxes[3] || b[3] <= boxes[1]) continue;
      const raster = await opener.open({ ...s });
      sources.push({ id: s.id, raster, ...(s.bands ? { bands: s.bands } : {}) });
      planIndex.push(i);
    }
  } catch (err) {
    await Promise.all(sources.map((s) => s.raster.close()));
    throw err;
  }
  return { sources, planIndex };
}

/** Predict `tileIds` of `plan` with `runner` and store them. */
export async function predictTiles(plan: RunPlan, tileIds: Iterable<number>, runner: ModelRunner, store: TileStore, options: PredictOptions = {}): Promise<PredictSummary> {
  const t0 = performance.now();
  const log = options.log ?? silentLogger();
  const progress = options.progress ?? silentProgress;
  const signal = options.signal;
  const B = options.batch ?? 1;
  if (!Number.isInteger(B) || B < 1 || B > 64) throw new GeoDinoError('E_ARGUMENT', `--batch: must be 1-64 (got ${B})`, { details: { field: '--batch' } });
  const lookahead = options.lookahead ?? Math.max(4, 2 * B);
  const maxInflight = options.inflight ?? 2;
  const head = plan.heads.find((h) => h.kind === 'canopy-height');
  if (!head || plan.heads.length !== 1 + extraHeadsOf(plan).length) throw new GeoDinoError('E_ARGUMENT', `heads ${plan.heads.map((h) => h.name).join(', ')}: one canopy-height head (and extra heads) expected`);
  if (runner.meta.source.weightsSha256 !== plan.model.weightsSha256) {
    throw new GeoDinoError('E_ARGUMENT', `model ${runner.meta.name} (weights ${runner.meta.source.weightsSha256.slice(0, 12)}) is not the plan's ${plan.model.name} (${plan.model.weightsSha256.slice(0, 12)})`);
  }
  const layout = layoutOf(plan);
  const T = plan.tiling.tileSize;
  const [ho, wo] = runner.outputSize(T, T);
  if (ho !== T || wo !== T) throw new GeoDinoError('E_ARGUMENT', `tile size ${T}: the model's output would be ${ho}×${wo}; use a multiple of 32`);
  const ids = [...tileIds];
  const summary: PredictSummary = { tiles: 0, empty: 0, validPixels: 0, modelCalls: 0, featheredTiles: 0, extraTileInferences: 0, modelSeconds: 0, seconds: 0 };
  if (ids.length === 0) return summary;

  // Only the scenes that meet these tiles are opened (a worker with a few tiles of a big run).
  const specs = ids.map((id) => tileSpecOf(layout, id));
  const box: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const s of specs) {
    box[0] = Math.min(box[0], s.x);
    box[1] = Math.min(box[1], s.y);
    box[2] = Math.max(box[2], s.x + s.width);
    box[3] = Math.max(box[3], s.y + s.height);
  }
  const opener = new SourceOpener({ log, ...(signal ? { signal } : {}), ...(options.env ? { env: options.env } : {}), ...(options.headers ? { headers: options.headers } : {}) }, options.cacheBytes ?? 16 * 1024 * 1024);
  const { sources, planIndex } = await openSourcesFor(plan, box, opener);
  const rasters: RasterSource[] = sources.map((s) => s.raster);
  const task: ProgressTask = progress.start('predicting', { total: options.progressTotal ?? ids.length, done: options.progressDone ?? 0, unit: 'tiles' });

  const renderQ: Promise<Job>[] = [];
  const allSeams = plan.sceneFeather?.seams ?? [];
  let featherTask: ProgressTask | null = null;
  const inflight = new TaskGroup(maxInflight);
  let next = 0;
  try {
    const prepared = await prepareTileSources(layout, sources, { log, ...(signal ? { signal } : {}) });
    const renderOptions = { resampling: plan.tiling.resampling, ...(signal ? { signal } : {}) };
    // A tile meeting a scene overlap with a seamline: each scene rendered alone, then the
    // seamline mosaic and, inside a transition zone, one model input per scene (scene-feather.ts).
    const renderJob = async (spec: TileSpec): Promise<Job> => {
      const seams = seamsMeeting(plan, spec);
      const radiometry = plan.sceneFeather?.radiometry;
      if (!seams.length) {
        const tile = await renderTile(layout, prepared, spec, renderOptions);
        harmoniseTile(tile, planIndex, radiometry);
        return { tile, variants: null, zone: null };
      }
      const renders = await Promise.all(prepared.map((p) => renderTile(layout, [p], spec, renderOptions)));
      for (const r of renders) harmoniseTile(r, planIndex, radiometry);
      const renderSource = prepared.map((p) => p.index);
      // Footprint seams (a scene inside another's extent): the inner scene's validity over the tile
      // and F + 1 px around it gives the distance inward from its footprint edge. Only an edge the
      // outer scene shows through is a seam: where the outer scene has no data either (the two
      // footprints share that edge), the inner scene counts as continuing, so it keeps its pixels.
      const edge = new Map<SceneSeam, Float32Array>();
      for (const seam of seams) {
        if (!seam.footprint) continue;
        const p = prepared.find((q) => planIndex[q.index] === seam.a);
        if (!p) continue;
        const halo = footprintHalo(spec, seam.featherPx, layout.grid);
        if (halo.width === 0 || halo.height === 0) continue;
        const inner = await renderTile(layout, [p], halo, renderOptions);
        const o = prepared.find((q) => planIndex[q.index] === seam.b);
        const outer = o ? await renderTile(layout, [o], halo, renderOptions) : null;
        const valid = new Uint8Array(inner.source.length);
        for (let i = 0; i < valid.length; i++) valid[i] = inner.source[i] !== NO_SOURCE || (outer !== null && outer.source[i] === NO_SOURCE) ? 1 : 0;
        edge.set(seam, footprintEdgeDistance(spec, halo, valid));
      }
      const c = composeTile(spec, renders, renderSource, planIndex, seams, allSeams, edge);
      if (c.zonePixels === 0) return { tile: c.tile, variants: null, zone: null };
      const variants: Variant[] = [];
      for (const [k, weight] of [...c.weights.entries()].sort((a, b) => a[0] - b[0])) {
        const r = renders[renderSource.indexOf(k)]!;
        const mask = new Uint8Array(r.source.length);
        for (let i = 0; i < mask.length; i++) mask[i] = r.source[i] !== NO_SOURCE ? 1 : 0;
        variants.push({ rgb: r.rgb, mask, weight });
      }
      return { tile: c.tile, variants, zone: c.zone };
    };
    const fill = (): void => {
      while (renderQ.length < lookahead && next < specs.length) {
        const p = renderJob(specs[next++]!);
        p.catch(() => undefined); // observed when awaited
        renderQ.push(p);
      }
    };
    const remap = (tile: Tile): Uint16Array => {
      const src = tile.source;
      const out = new Uint16Array(src.length).fill(NO_SOURCE);
      for (let i = 0; i < src.length; i++) if (tile.valid[i] && src[i] !== NO_SOURCE) out[i] = planIndex[src[i]!]!;
      return out;
    };
    const specOf = (tile: Tile): TileRecord['spec'] => ({ row: tile.spec.row, col: tile.spec.col, x: tile.spec.x, y: tile.spec.y, width: tile.spec.width, height: tile.spec.height });
    const stored = (record: TileRecord): void => {
      summary.tiles++;
      if (record.empty) summary.empty++;
      summary.validPixels += record.validCount;
      task.tick();
      options.onTile?.(record);
    };

    const submit = async (jobs: Job[]): Promise<void> => {
      await inflight.room();
      throwIfAborted(signal);
      const per = 3 * T * T;
      const inputs = jobs.reduce((n, j) => n + (j.variants?.length ?? 1), 0);
      const px = new Float32Array(inputs * per);
      const first: number[] = [];
      let k = 0;
      for (const j of jobs) {
        first.push(k);
        for (const v of j.variants ?? [{ rgb: j.tile.rgb, mask: null }]) {
          let mask = v.mask;
          if (!mask) {
            mask = new Uint8Array(T * T);
            for (let i = 0; i < mask.length; i++) mask[i] = j.tile.source[i] !== NO_SOURCE ? 1 : 0;
          }
          normalizeRgb(v.rgb, { height: T, width: T, layout: 'chw', mask, out: px.subarray(k * per, (k + 1) * per) });
          k++;
        }
      }
      inflight.add((async (): Promise<void> => {
        const m0 = performance.now();
        // An interruption cancels the batches still waiting for the model (they never start) and
        // lets the one in the model finish and be stored (a tile boundary). Dropping that one
        // would not end the run sooner: onnxruntime cannot be interrupted, so closing the runner
        // waits for the session in progress anyway (runtime README); it would only be recomputed.
        const res = await runPlannedHeads(runner, plan, px, inputs, T, { ...(signal ? { signal } : {}), finishIfStarted: true });
        summary.modelSeconds += (performance.now() - m0) / 1000;
        summary.modelCalls++;
        const [rb, rh, rw] = res.dims;
        if (rb !== inputs || rh !== T || rw !== T) throw new GeoDinoError('E_INTERNAL', `model returned [${res.dims.join(', ')}] for a batch of ${inputs} ${T}² tiles`);
        await Promise.all(
          jobs.map(async (job, j) => {
            const t = job.tile;
            const n = T * T;
            const planes: TileRecord['planes'] = {};
            // One set of head planes per model input: variant v (v ≥ 1) has its planes suffixed `@v`.
            const variants = job.variants ?? [null];
            variants.forEach((v, vi) => {
              const k = first[j]! + vi;
              const sfx = variantSuffix(vi);
              const height = res.height.slice(k * n, (k + 1) * n);
              const uncertainty = res.uncertainty ? res.uncertainty.slice(k * n, (k + 1) * n) : null;
              for (let i = 0; i < n; i++) {
                if (t.valid[i]) continue;
                height[i] = 0;
                if (uncertainty) uncertainty[i] = 0;
              }
              planes[`height${sfx}`] = height;
              if (uncertainty && head.planes.includes('uncertainty')) planes[`uncertainty${sfx}`] = uncertainty;
              for (const [name, a] of Object.entries(extraTilePlanes(plan, res.extra, k, T, t.valid))) planes[`${name}${sfx}`] = a;
              if (v) planes[`${SCENE_WEIGHT_PLANE}${sfx}`] = v.weight;
            });
            if (job.variants && job.zone) {
              planes[SCENE_ZONE_PLANE] = job.zone;
              summary.featheredTiles++;
              summary.extraTileInferences += job.variants.length - 1;
              featherTask ??= progress.start('scene feathering', { unit: 'extra tiles' });
              featherTask.tick(job.variants.length - 1);
            }
            planes['valid'] = t.valid;
            planes['source'] = remap(t);
            // The model's 8-bit input, for imagery.pmtiles (imagery.ts).
            Object.assign(planes, imageryPlanes(t.rgb, t.valid));
            const record: TileRecord = { id: t.spec.index, spec: specOf(t), empty: false, validCount: t.validCount, sourcesUsed: t.sourcesUsed.map((i) => planIndex[i]!), planes };
            await store.write(record);
            stored(record);
          }),
        );
      })());
    };

    fill();
    let batch: Job[] = [];
    let batchInputs = 0;
    while (renderQ.length) {
      throwIfAborted(signal);
      inflight.check();
      const job = await renderQ.shift()!;
      const tile = job.tile;
      fill();
      if (tile.validCount === 0) {
        const record: TileRecord = { id: tile.spec.index, spec: specOf(tile), empty: true, validCount: 0, sourcesUsed: [], planes: {} };
        await store.write(record);
        stored(record);
        continue;
      }
      // A batch holds B model inputs (a feathered tile brings one per scene), or one tile with more.
      if (batch.length && batchInputs + (job.variants?.length ?? 1) > B) {
        const b = batch;
        batch = [];
        batchInputs = 0;
        await submit(b);
      }
      batch.push(job);
      batchInputs += job.variants?.length ?? 1;
      if (batchInputs >= B) {
        const b = batch;
        batch = [];
        batchInputs = 0;
        await submit(b);
      }
    }
    if (batch.length) await submit(batch);
    await inflight.drain();
    throwIfAborted(signal);
  } finally {
    await Promise.allSettled(renderQ);
    await inflight.settle();
    await Promise.all(rasters.map((r) => r.close()));
    task.finish();
    (featherTask as ProgressTask | null)?.finish();
  }
  summary.seconds = (performance.now() - t0) / 1000;
  log.debug({ ...summary }, 'tiles predicted');
  return summary;
}
