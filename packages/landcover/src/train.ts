/**
 * `trainLandcover`: imagery + labels + a backbone → a land-cover head directory.
 *
 * 1. **Area.** The labels' extent (∩ `--aoi`) is the area; the imagery is resolved for it (files,
 *    URLs or STAC, `@geo-dino/chm`'s sources); the area is cut to the rasters' extents. The grid is
 *    the one `geo-dino chm` would use there (UTM of the area, 0.6 m, snapped), tiled without
 *    overlap, so the head learns from features computed exactly as at inference.
 * 2. **Labels pass.** Labels are rendered onto every tile (no model yet): class values counted per
 *    tile. Every error a user can make with labels is reported here, before any backbone run:
 *    no overlap, no labelled pixel, values missing from the class table, a single class.
 * 3. **Split.** Labelled tiles are split into training and validation *by tile* (seeded shuffle,
 *    `valFraction` of them, at least one of each): neighbouring pixels never straddle the split.
 * 4. **Features pass.** Each labelled tile is rendered (the tiler's renderTile), normalised and run
 *    through the backbone once; the selected feature maps and the tile's class indexes go to a
 *    disk cache (cache.ts); per-channel means/stds of the training tiles are accumulated.
 * 5. **Training.** Multinomial logistic regression (probe.ts) with L2, class weights
 *    (`balanced`: n/(K·n_c), capped at 100; `sqrt`; `none`), Adam with a cosine-decayed step,
 *    mini-batches of `batchTiles` tiles streamed from the cache in a seeded order; every labelled
 *    pixel of a tile contributes. Deterministic: zero initialisation, seeded order, fixed
 *    summation order.
 * 6. **Report and export.** The exported head (float32) is evaluated on the validation tiles
 *    (confusion matrix, OA, IoU, mIoU, against a majority-class baseline) and written with its
 *    class table into the head directory, which appears only when complete.
 */
import { rm, readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  GEO_DINO_VERSION,
  GeoDinoError,
  ensureDir,
  fileExists,
  silentLogger,
  silentProgress,
  temporaryPathFor,
  throwIfAborted,
  writeFileAtomic,
  writeJsonAtomic,
  type Logger,
  type Progress,
} from '@geo-dino/core';
import { intersection, loadAoi, parseAoi, union, type Aoi, type MultiPolygonCoords } from '@geo-dino/geometry';
import { Rng, normalizeRgb, openModel, openModelDir, replaceDirectory, type ModelDir, type ModelRunner } from '@geo-dino/model';
import type { Device } from '@geo-dino/runtime';
import { SourceOpener, batchFor, executionFor, hashFile, publishedSource, resolveImagery, type SignMode } from '@geo-dino/chm';
import { NO_SOURCE, footprintFromBounds, gridForAoi, prepareTileSources, renderTile, type PreparedTileSource, type TileLayout, type TileServiceParams, type TileSource, type TileSpec } from '@geo-dino/tiling';
import { defaultColor, loadClassTable, nodataFor, type LandcoverClass } from './classes.js';
import { NO_LABEL, openLabels, PolygonLabels, type LabelSource } from './labels.js';
import { Probe, UNLABELLED, toFloat32, type LinearHead } from './probe.js';
import { ProbePool, defaultProbeWorkers } from './probe-pool.js';
import { constantPredictionConfusion, metricsFrom, type Metrics } from './metrics.js';
import { FeatureCache } from './cache.js';
import { HEAD_FORMAT, HEAD_FORMAT_VERSION, HEAD_GRAPH_FILE, HEAD_META_FILE, HEAD_OUTPUT, selectFeatures, writeHeadGraph, type HeadMeta } from './head.js';
import { renderReportMarkdown, type TrainReport } from './report.js';

export type ClassWeighting = 'balanced' | 'sqrt' | 'none';

export interface TrainOptions {
  /** Imagery: GeoTIFF/COG paths or URLs, STAC API URLs, catalogs (as `geo-dino chm --imagery`). */
  imagery: readonly string[];
  /** A categorical label raster, or GeoJSON polygons with a class property. */
  labels: string;
  /** A split (or bare backbone) model directory. */
  model: string;
  /** The head directory to create. */
  out: string;
  /** Class table: `worldcover`, or a .json/.csv file. Default: the classes found in the labels. */
  classes?: string;
  /** Polygons: the class property (default `class`). */
  classProperty?: string;
  /** Raster labels: 1-based band (default 1). */
  labelBand?: number;
  /** Label values to treat as "no label". */
  ignoreValues?: readonly number[];
  /** Restrict training to this AOI (GeoJSON path, or an AOI such as one from `--bbox`). */
  aoi?: string | Aoi;
  seed?: number;
  /** Passes over the training tiles (default 30). */
  epochs?: number;
  /** Adam step size at the start of the cosine schedule (default 0.02). */
  learningRate?: number;
  /** L2 penalty on the (standardised) weights (default 1e-4). */
  l2?: number;
  classWeights?: ClassWeighting;
  /** Share of labelled tiles held out for validation (default 0.2). */
  valFraction?: number;
  /** Backbone feature outputs: `last` (default), `all`, or indexes (0 = first selected layer). */
  layers?: 'last' | 'all' | readonly number[];
  tileSize?: number;
  gsd?: number;
  crs?: string;
  /** Tiles per optimisation step (default 4). */
  batchTiles?: number;
  /** Tiles with fewer labelled pixels are not used (default: one patch, 256 px; sparse polygons still count). */
  minLabelledPixels?: number;
  /** Head name recorded in the metadata (default: the output directory's name). */
  name?: string;
  force?: boolean;
  device?: Device;
  threads?: number;
  /** Tiles per backbone call (default 1 on CPU, 4 on GPU). */
  batch?: number;
  /** Worker threads for the probe's per-tile work (default: cores − 1, at most 8; 1 = this thread). Does not change the result. */
  probeWorkers?: number;
  /** STAC imagery options. */
  collections?: readonly string[];
  datetime?: string;
  maxCloud?: number;
  sign?: SignMode;
  headers?: Record<string, string>;
  /** Tile services (`xyz:`/`wmts:` imagery): level, layer, tile matrix set, attribution. */
  tileService?: TileServiceParams;
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface TrainResult {
  out: string;
  meta: HeadMeta;
  report: TrainReport;
  files: string[];
}

/** Balanced weights are capped: a class of a handful of pixels must not dominate the loss. */
export const MAX_CLASS_WEIGHT = 100;

/** Class weights from training pixel counts (normalised so Σ n_c w_c = Σ n_c). */
export function classWeightsFor(counts: readonly number[], mode: ClassWeighting): Float64Array {
  const K = counts.length;
  const N = counts.reduce((a, b) => a + b, 0);
  const w = new Float64Array(K).fill(1);
  if (mode !== 'none') {
    for (let k = 0; k < K; k++) w[k] = counts[k]! > 0 ? (mode === 'balanced' ? N / (K * counts[k]!) : Math.sqrt(N / (K * counts[k]!))) : 0;
    for (let k = 0; k < K; k++) w[k] = Math.min(MAX_CLASS_WEIGHT, w[k]!);
    const s = counts.reduce((a, n, k) => a + n * w[k]!, 0);
    if (s > 0) for (let k = 0; k < K; k++) w[k]! *= N / s;
  }
  return w;
}

/** Fisher–Yates with the project's seeded generator. */
function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.nextU32() % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

interface LabelledTile {
  spec: TileSpec;
  counts: Map<number, number>;
}

function fmtCounts(m: Map<number, number>): string {
  return [...m.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([v, n]) => `${v} (${n} px)`)
    .join(', ');
}

/** The class table of the head: the table's classes present in the training tiles, or classes derived from the labels. */
function headClasses(table: LandcoverClass[] | null, labels: LabelSource, values: number[]): LandcoverClass[] {
  if (table) return table.filter((c) => values.includes(c.value));
  if (labels instanceof PolygonLabels && labels.derivedClasses) return labels.derivedClasses.filter((c) => values.includes(c.value));
  return values.map((v, i) => ({ value: v, name: `class_${v}`, color: labels.colors.get(v) ?? defaultColor(i) }));
}

/** Train a land-cover head (see the module comment). */
export async function trainLandcover(o: TrainOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const log = o.log ?? silentLogger();
  const progress = o.progress ?? silentProgress;
  const signal = o.signal;
  const env = o.env ?? process.env;
  const cwd = o.cwd ?? process.cwd();
  const seed = o.seed ?? 0;
  const epochs = o.epochs ?? 30;
  const lr = o.learningRate ?? 0.02;
  const l2 = o.l2 ?? 1e-4;
  const weighting = o.classWeights ?? 'balanced';
  const valFraction = o.valFraction ?? 0.2;
  const batchTiles = o.batchTiles ?? 4;
  const ignore = new Set(o.ignoreValues ?? []);
  const check = (ok: boolean, field: string, what: string): void => {
    if (!ok) throw new GeoDinoError('E_ARGUMENT', `${field}: ${what}`, { details: { field } });
  };
  check(Number.isInteger(seed), '--seed', `must be an integer (got ${seed})`);
  check(Number.isInteger(epochs) && epochs >= 1 && epochs <= 10000, '--epochs', `must be 1-10000 (got ${epochs})`);
  check(Number.isFinite(lr) && lr > 0, '--learning-rate', `must be > 0 (got ${lr})`);
  check(Number.isFinite(l2) && l2 >= 0, '--l2', `must be ≥ 0 (got ${l2})`);
  check(valFraction > 0 && valFraction < 1, '--val-fraction', `must be between 0 and 1 (got ${valFraction})`);
  check(Number.isInteger(batchTiles) && batchTiles >= 1, '--batch-tiles', `must be a positive integer (got ${batchTiles})`);
  check(o.imagery.length > 0, '--imagery', 'is required');

  const out = resolve(cwd, o.out);
  if ((await fileExists(out)) && !o.force) {
    const entries = await readdir(out).catch(() => ['?']);
    if (entries.length) throw new GeoDinoError('E_ARGUMENT', `--out ${out}: already exists; choose another --out or pass --force to replace it`, { details: { field: '--out', path: out } });
  }

  // Model: its backbone's features.
  const md: ModelDir = await openModelDir(resolve(cwd, o.model));
  const sel = selectFeatures(md.meta, o.layers ?? 'last');
  const patch = md.meta.features!.patchSize;
  const fixed = md.meta.input.tileSize;
  const T = o.tileSize ?? fixed?.[0] ?? 512;
  if (fixed && (fixed[0] !== T || fixed[1] !== T)) {
    throw new GeoDinoError('E_ARGUMENT', `--tile-size: ${md.meta.name} was built for ${fixed[0]}×${fixed[1]} tiles (got ${T})`, { details: { field: '--tile-size' } });
  }

  const table = o.classes ? await loadClassTable(o.classes, cwd) : null;
  const labelsPath = /^https?:\/\//i.test(o.labels) ? o.labels : resolve(cwd, o.labels);
  const labels = await openLabels(labelsPath, {
    ...(o.classProperty ? { classProperty: o.classProperty } : {}),
    ...(o.labelBand !== undefined ? { band: o.labelBand } : {}),
    ...(table ? { classes: table } : {}),
    log,
    ...(signal ? { signal } : {}),
  });
  const tileSources: TileSource[] = [];
  const ctx = { log, env, cwd, ...(signal ? { signal } : {}), ...(o.headers ? { headers: o.headers } : {}) };
  const staging = temporaryPathFor(out);
  let pool: ProbePool | null = null;
  try {
    // 1. Area: labels (∩ --aoi) ∩ imagery.
    let area: MultiPolygonCoords = labels.extent;
    let userAoi: Aoi | null = null;
    if (o.aoi) {
      userAoi = typeof o.aoi === 'string' ? await loadAoi(resolve(cwd, o.aoi)) : o.aoi;
      area = intersection(area, userAoi.geometry);
      if (!area.length) throw new GeoDinoError('E_NO_OVERLAP', `${labels.path}: the labels do not overlap the AOI ${userAoi.source}`, { details: { labels: labels.path } });
    }
    const labelAoi = parseAoi({ type: 'MultiPolygon', coordinates: area }, `extent of ${labels.path}`);
    const resolved = await resolveImagery(
      {
        model: o.model,
        ...(o.collections?.length ? { collections: o.collections } : {}),
        ...(o.datetime ? { datetime: o.datetime } : {}),
        ...(o.maxCloud !== undefined ? { maxCloud: o.maxCloud } : {}),
        ...(o.sign ? { sign: o.sign } : {}),
        ...(o.tileService ? { tileService: o.tileService } : {}),
        ...(o.gsd !== undefined ? { gsd: o.gsd } : {}),
      },
      o.imagery,
      labelAoi,
      ctx,
    );
    const opener = new SourceOpener(ctx, 16 * 1024 * 1024);
    const rasterParts: MultiPolygonCoords[] = [];
    for (const s of resolved.sources) {
      throwIfAborted(signal);
      const raster = await opener.open(s);
      tileSources.push({ id: s.id, raster, ...(s.bands ? { bands: s.bands } : {}) });
      if (s.kind === 'raster') rasterParts.push(footprintFromBounds(raster).geometry);
    }
    if (rasterParts.length === resolved.sources.length) {
      area = intersection(area, union(...rasterParts));
      if (!area.length) {
        throw new GeoDinoError('E_NO_OVERLAP', `${labels.path}: the labels do not overlap the imagery (${o.imagery.join(', ')})`, { details: { labels: labels.path, imagery: o.imagery } });
      }
    }
    const trainAoi = parseAoi({ type: 'MultiPolygon', coordinates: area }, `labels ∩ imagery`);
    const layout: TileLayout = gridForAoi(trainAoi, { tileSize: T, overlap: 0, ...(o.crs ? { crs: o.crs } : {}), ...(o.gsd !== undefined ? { gsd: o.gsd } : {}) });
    labels.bind(layout.grid);
    log.info({ labels: labels.path, method: labels.method, grid: `${layout.grid.width}×${layout.grid.height}`, tiles: layout.countTouching() }, 'labels aligned to the imagery grid');

    // 2. Labels pass.
    const minPixels = Math.max(1, o.minLabelledPixels ?? patch * patch);
    const labelled: LabelledTile[] = [];
    const total = new Map<number, number>();
    const scan = progress.start('reading labels', { total: layout.countTouching(), unit: 'tiles' });
    for (const spec of layout.tiles()) {
      throwIfAborted(signal);
      const lab = await labels.render(spec, signal);
      const inside = layout.aoiMask(spec);
      const counts = new Map<number, number>();
      let n = 0;
      for (let i = 0; i < lab.length; i++) {
        const v = lab[i]!;
        if (v === NO_LABEL || !inside[i] || ignore.has(v)) continue;
        counts.set(v, (counts.get(v) ?? 0) + 1);
        n++;
      }
      scan.tick();
      if (n < minPixels) continue;
      labelled.push({ spec, counts });
      for (const [v, c] of counts) total.set(v, (total.get(v) ?? 0) + c);
    }
    scan.finish();
    if (!labelled.length) {
      throw new GeoDinoError('E_NO_OVERLAP', `${labels.path}: no labelled pixel falls on the imagery (${o.imagery.join(', ')})${ignore.size ? ` once values ${[...ignore].join(', ')} are ignored` : ''}`, {
        details: { labels: labels.path },
      });
    }
    if (table) {
      const known = new Set(table.map((c) => c.value));
      const missing = new Map([...total].filter(([v]) => !known.has(v)).sort((a, b) => a[0] - b[0]));
      if (missing.size) {
        throw new GeoDinoError(
          'E_BAD_LABELS',
          `${labels.path}: label value(s) ${fmtCounts(missing)} are not in the class table ${o.classes} (it has ${table.map((c) => `${c.value} ${c.name}`).join(', ')}); add them to the table, or pass --ignore-values ${[...missing.keys()].join(',')}`,
          { details: { labels: labels.path, missing: [...missing.keys()] } },
        );
      }
    }
    if (total.size < 2) {
      const [v] = [...total.keys()];
      throw new GeoDinoError('E_BAD_LABELS', `${labels.path}: the labels on the imagery hold a single class (${v}, ${total.get(v!)} px); a classifier needs at least two`, { details: { labels: labels.path, value: v } });
    }
    if (labelled.length < 2) {
      throw new GeoDinoError('E_BAD_LABELS', `${labels.path}: the labels cover only 1 tile of ${T}×${T} px; a validation split by tiles needs at least 2 (label a larger area or use a smaller --tile-size)`, { details: { labels: labels.path } });
    }

    // 3. Split by tiles.
    const rng = new Rng(seed);
    const order = shuffled(labelled, rng);
    const nVal = Math.min(labelled.length - 1, Math.max(1, Math.round(valFraction * labelled.length)));
    const byId = (a: LabelledTile, b: LabelledTile): number => a.spec.index - b.spec.index;
    const valTiles = order.slice(0, nVal).sort(byId);
    const trainTiles = order.slice(nVal).sort(byId);
    const sum = (tiles: LabelledTile[], v: number): number => tiles.reduce((s, t) => s + (t.counts.get(v) ?? 0), 0);
    const trainValues = [...total.keys()].filter((v) => sum(trainTiles, v) > 0).sort((a, b) => a - b);
    if (trainValues.length < 2) {
      throw new GeoDinoError('E_BAD_LABELS', `${labels.path}: the training tiles hold a single class (${trainValues[0]}); label more classes or a larger area`, { details: { labels: labels.path } });
    }
    const classes = headClasses(table, labels, trainValues);
    const onlyVal = [...total.keys()].filter((v) => !trainValues.includes(v));
    if (onlyVal.length) log.warn({ values: onlyVal }, 'classes present only in validation tiles cannot be learnt; they are left out of the head and of the metrics');
    if (table) {
      const absent = table.filter((c) => !trainValues.includes(c.value)).map((c) => c.name);
      if (absent.length) log.info({ classes: absent }, 'classes of the table absent from the training labels are left out of the head');
    }
    const K = classes.length;
    const indexOf = new Map(classes.map((c, k) => [c.value, k]));
    const nodata = nodataFor(classes);
    log.info({ classes: classes.map((c) => c.name), train: trainTiles.length, validation: valTiles.length }, 'tiles split');
    // Pixels used (labelled, in a head class, over valid imagery), counted as the cache is written.
    const trainCounts = new Array<number>(K).fill(0);
    const valCounts = new Array<number>(K).fill(0);

    // 4. Features pass.
    await rm(staging, { recursive: true, force: true });
    await ensureDir(staging);
    const cache = await FeatureCache.create(join(staging, 'features'));
    const prepared: PreparedTileSource[] = await prepareTileSources(layout, tileSources, { log, ...(signal ? { signal } : {}) });
    const exec = executionFor(o.device ?? 'auto', { ...(o.threads !== undefined ? { threads: o.threads } : {}) });
    const runner: ModelRunner = await openModel(md.dir, { device: exec.device, threads: exec.threads, workers: 1, log });
    const C = sel.channels;
    const mean = new Float64Array(C);
    const sq = new Float64Array(C);
    let patches = 0;
    const kept = new Set<number>();
    const isTrain = new Set(trainTiles.map((t) => t.spec.index));
    let backboneSeconds = 0;
    try {
      const B = batchFor(runner.provider, o.batch);
      const all = [...labelled].sort(byId);
      const task = progress.start('computing features', { total: all.length, unit: 'tiles' });
      const gh = T / patch;
      const P = gh * gh;
      for (let s0 = 0; s0 < all.length; s0 += B) {
        throwIfAborted(signal);
        const group = all.slice(s0, s0 + B);
        const tiles = await Promise.all(group.map((t) => renderTile(layout, prepared, t.spec, { resampling: 'bilinear', ...(signal ? { signal } : {}) })));
        const idx: Uint8Array[] = [];
        for (let k = 0; k < group.length; k++) {
          const lab = await labels.render(group[k]!.spec, signal);
          const valid = tiles[k]!.valid;
          const cls = new Uint8Array(T * T).fill(UNLABELLED);
          for (let i = 0; i < cls.length; i++) {
            const v = lab[i]!;
            if (v === NO_LABEL || !valid[i] || ignore.has(v)) continue;
            const c = indexOf.get(v);
            if (c !== undefined) cls[i] = c;
          }
          idx.push(cls);
        }
        const use = group.map((_, k) => idx[k]!.some((v) => v !== UNLABELLED));
        const n = group.length;
        const px = new Float32Array(n * 3 * T * T);
        tiles.forEach((t, k) => {
          const mask = new Uint8Array(T * T);
          for (let i = 0; i < mask.length; i++) mask[i] = t.source[i] !== NO_SOURCE ? 1 : 0;
          normalizeRgb(t.rgb, { height: T, width: T, layout: 'chw', mask, out: px.subarray(k * 3 * T * T, (k + 1) * 3 * T * T) });
        });
        const m0 = performance.now();
        const feats = await runner.runBackbone(px, n, T, T);
        backboneSeconds += (performance.now() - m0) / 1000;
        const D = md.meta.features!.channels;
        for (let k = 0; k < n; k++) {
          task.tick();
          if (!use[k]) continue;
          const f = new Float32Array(C * P);
          sel.names.forEach((name, j) => {
            const t = feats.byName[name]!;
            f.set((t.data as Float32Array).subarray(k * D * P, (k + 1) * D * P), j * D * P);
          });
          const id = group[k]!.spec.index;
          await cache.write(id, { features: f, gh, gw: gh, patch, labels: idx[k]! }, C);
          kept.add(id);
          const counts = isTrain.has(id) ? trainCounts : valCounts;
          for (const c of idx[k]!) if (c !== UNLABELLED) counts[c]!++;
          if (isTrain.has(id)) {
            for (let c = 0; c < C; c++) {
              let s = 0;
              let s2 = 0;
              for (let p = 0; p < P; p++) {
                const v = f[c * P + p]!;
                s += v;
                s2 += v * v;
              }
              mean[c]! += s;
              sq[c]! += s2;
            }
            patches += P;
          }
        }
      }
      task.finish();
    } finally {
      await runner.close();
    }
    const trainIds = trainTiles.map((t) => t.spec.index).filter((id) => kept.has(id));
    const valIds = valTiles.map((t) => t.spec.index).filter((id) => kept.has(id));
    if (!trainIds.length || !valIds.length) {
      throw new GeoDinoError('E_NO_OVERLAP', `${labels.path}: the labelled tiles have no valid imagery under their labels (${trainIds.length} training, ${valIds.length} validation tiles left)`, { details: { labels: labels.path } });
    }
    const std = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      mean[c]! /= patches;
      std[c] = Math.sqrt(Math.max(sq[c]! / patches - mean[c]! * mean[c]!, 0)) || 1;
      if (std[c]! < 1e-6) std[c] = 1;
    }

    const unscored = classes.filter((_, k) => valCounts[k] === 0).map((c) => c.name);
    if (unscored.length) log.warn({ classes: unscored }, 'classes absent from the held-out tiles cannot be scored (label more of them, or try another --seed)');
    // 5. Training.
    const weights = classWeightsFor(trainCounts, weighting);
    log.info({ weights: Object.fromEntries(classes.map((c, k) => [c.name, Number(weights[k]!.toFixed(4))])) }, 'class weights');
    const probe = new Probe(K, C, mean, std);
    const stepsPerEpoch = Math.ceil(trainIds.length / batchTiles);
    const totalSteps = epochs * stepsPerEpoch;
    const history: TrainReport['history'] = [];
    // Tiles go to the probe pool a group at a time; results are added in tile order (deterministic).
    pool = new ProbePool(o.probeWorkers ?? defaultProbeWorkers());
    const probes = pool;
    const group = Math.max(batchTiles, 2 * probes.size);
    const evaluate = async (head: LinearHead, ids: number[]): Promise<{ confusion: Float64Array; loss: number }> => {
      const confusion = new Float64Array(K * K);
      let loss = 0;
      let n = 0;
      for (let s = 0; s < ids.length; s += group) {
        throwIfAborted(signal);
        const parts = await Promise.all(ids.slice(s, s + group).map(async (id) => probes.confusion(head, await cache.read(id))));
        for (const r of parts) {
          for (let i = 0; i < confusion.length; i++) confusion[i]! += r.confusion[i]!;
          loss += r.pass.loss;
          n += r.pass.weight;
        }
      }
      return { confusion, loss: n > 0 ? loss / n : Number.NaN };
    };
    const tTrain = performance.now();
    const task = progress.start('training', { total: totalSteps, unit: 'steps' });
    let step = 0;
    for (let e = 0; e < epochs; e++) {
      const ids = shuffled(trainIds, rng);
      let loss = 0;
      let weight = 0;
      for (let s = 0; s < ids.length; s += batchTiles) {
        throwIfAborted(signal);
        const gW = new Float64Array(K * C);
        const gb = new Float64Array(K);
        let w = 0;
        const raw = probe.raw();
        const parts = await Promise.all(ids.slice(s, s + batchTiles).map(async (id) => probes.gradient(raw, await cache.read(id), weights)));
        for (const r of parts) {
          for (let i = 0; i < gW.length; i++) gW[i]! += r.gW[i]!;
          for (let k = 0; k < K; k++) gb[k]! += r.gb[k]!;
          loss += r.pass.loss;
          w += r.pass.weight;
        }
        weight += w;
        const rate = 0.5 * lr * (1 + Math.cos((Math.PI * step) / totalSteps));
        probe.step(gW, gb, w, rate, l2);
        step++;
        task.tick();
      }
      const v = await evaluate(probe.raw(), valIds);
      const vm = metricsFrom(v.confusion, classes);
      history.push({ epoch: e + 1, trainLoss: weight > 0 ? loss / weight : Number.NaN, valLoss: v.loss, valOverallAccuracy: vm.overallAccuracy, valMeanIou: vm.meanIou });
      log.info({ epoch: e + 1, trainLoss: Number((loss / weight).toFixed(5)), valLoss: Number(v.loss.toFixed(5)), valMeanIou: vm.meanIou === null ? null : Number(vm.meanIou.toFixed(4)) }, 'epoch');
    }
    task.finish();
    const trainSeconds = (performance.now() - tTrain) / 1000;

    // 6. Export and report.
    const head = toFloat32(probe.raw());
    const val = await evaluate(head, valIds);
    const train = await evaluate(head, trainIds);
    const valMetrics = metricsFrom(val.confusion, classes);
    const trainMetrics = metricsFrom(train.confusion, classes);
    const majority = trainCounts.indexOf(Math.max(...trainCounts));
    const valRef = valMetrics.classes.map((c) => c.support);
    const baseline = metricsFrom(constantPredictionConfusion(valRef, majority), classes);

    const description = `land-cover head (${K} classes) on ${md.meta.name} features ${sel.names.join('+')}`;
    const graphPath = join(staging, HEAD_GRAPH_FILE);
    await writeHeadGraph(graphPath, head, { inputs: sel.names, channels: C, inputChannels: md.meta.features!.channels, patch, tileSize: md.meta.input.tileSize }, description);
    const sha = await hashFile(graphPath);
    const short = (m: Metrics): Record<string, unknown> => ({ overallAccuracy: m.overallAccuracy, meanIou: m.meanIou, pixels: m.pixels });
    const meta: HeadMeta = {
      format: HEAD_FORMAT,
      formatVersion: HEAD_FORMAT_VERSION,
      name: o.name ?? out.split(/[\\/]/).pop()!,
      kind: 'land-cover',
      demo: md.meta.demo,
      graph: { file: HEAD_GRAPH_FILE, sha256: sha, inputs: sel.names, output: HEAD_OUTPUT },
      classes,
      nodata,
      features: { outputs: sel.outputs, layers: sel.layers, channels: C, patchSize: patch, upsampling: 'bilinear: ONNX Resize, mode linear, half_pixel' },
      backbone: { name: md.meta.name, family: md.meta.family, weightsSha256: md.meta.source.weightsSha256, gsd: md.meta.gsd, demo: md.meta.demo },
      training: {
        seed,
        epochs,
        learningRate: lr,
        schedule: 'cosine',
        optimizer: 'adam',
        l2,
        classWeighting: weighting,
        classWeights: Array.from(weights),
        batchTiles,
        valFraction,
        tileSize: T,
        grid: { crs: layout.grid.crs.epsg !== null ? `EPSG:${layout.grid.crs.epsg}` : layout.grid.crs.name, gsd: layout.grid.gsd, width: layout.grid.width, height: layout.grid.height, transform: [...layout.grid.transform] },
        tiles: { train: trainIds.length, validation: valIds.length },
        pixels: { train: trainCounts, validation: valCounts },
        labels: { path: labels.path, kind: labels.kind, method: labels.method, ...(o.classProperty ? { classProperty: o.classProperty } : {}), ...(ignore.size ? { ignoreValues: [...ignore] } : {}) },
        imagery: resolved.sources.map((s) => ({ id: s.id, ...publishedSource(s) })),
        ...(userAoi ? { aoi: userAoi.source } : {}),
      },
      metrics: { validation: short(valMetrics), train: short(trainMetrics), majorityBaseline: { class: classes[majority]!.name, ...short(baseline) } },
      createdBy: `geo-dino ${GEO_DINO_VERSION}`,
    };
    const report: TrainReport = {
      head: meta.name,
      createdAt: new Date().toISOString(),
      classes: classes.map((c, k) => ({ ...c, trainPixels: trainCounts[k]!, validationPixels: valCounts[k]!, weight: weights[k]! })),
      validation: valMetrics,
      train: trainMetrics,
      baseline: { class: classes[majority]!.name, metrics: baseline },
      history,
      settings: meta.training,
      backbone: meta.backbone,
      features: meta.features,
      timings: { total_s: (performance.now() - t0) / 1000, backbone_s: backboneSeconds, train_s: trainSeconds },
      excludedValidationPixels: onlyVal.reduce((s, v) => s + sum(valTiles, v), 0),
      split: {
        train: trainTiles.filter((t) => kept.has(t.spec.index)).map((t) => [t.spec.x, t.spec.y, t.spec.width, t.spec.height]),
        validation: valTiles.filter((t) => kept.has(t.spec.index)).map((t) => [t.spec.x, t.spec.y, t.spec.width, t.spec.height]),
      },
    };
    await rm(join(staging, 'features'), { recursive: true, force: true });
    await writeJsonAtomic(join(staging, HEAD_META_FILE), meta);
    await writeJsonAtomic(join(staging, 'classes.json'), { classes });
    await writeJsonAtomic(join(staging, 'report.json'), report);
    await writeFileAtomic(join(staging, 'report.md'), renderReportMarkdown(report));
    throwIfAborted(signal);
    await ensureDir(dirname(out));
    await replaceDirectory(staging, out);
    log.info({ out, meanIou: valMetrics.meanIou, overallAccuracy: valMetrics.overallAccuracy, baselineMeanIou: baseline.meanIou }, 'land-cover head written');
    return { out, meta, report, files: [HEAD_META_FILE, HEAD_GRAPH_FILE, 'classes.json', 'report.json', 'report.md'] };
  } catch (err) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  } finally {
    await pool?.close();
    await Promise.all(tileSources.map((s) => s.raster.close().catch(() => undefined)));
    await labels.close();
  }
}
