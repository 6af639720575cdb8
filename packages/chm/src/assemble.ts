/**
 * `assembleRun`: the tile store → the run directory.
 *
 * chm.tif is written block row by block row. For each row of 512-pixel output blocks, the output
 * width is cut into chunks of at most `chunkWidth` pixels (multiples of the block size); for each
 * chunk a stitcher of that width blends every stored tile overlapping the window (raised-cosine
 * weights of the *whole* tile, so the result does not depend on where chunks are cut) and hands
 * its blocks to the streaming COG writer. Memory, whatever the AOI:
 *
 * - blending: (bands + 1) × (tileSize + 512) × min(width, chunkWidth) × 4 bytes
 *   (3 × 1024 × 4096 × 4 = 48 MiB at the defaults), plus a few tiles being read;
 * - COG writer: ≤ 16 blocks waiting for compression and a few overview blocks being built,
 *   whatever the width (overviews come from quarters spilled to its temporary file);
 * - provenance: a row of cells plus rectangles along scene boundaries;
 * - imagery (for imagery.pmtiles, imagery.ts): an RGBA window, 4 bytes per window pixel.
 *
 * Then provenance.geojson, run.json, item.json (STAC) and the web layers (the pmtiles package's
 * `writeRunTiles`) are written into a staging directory, which is renamed into place only when
 * everything is complete. A failure leaves `out` as it was.
 */
import { rename, rm, stat, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { GEO_DINO_VERSION, GeoDinoError, ensureDir, fileExists, fsError, readJsonFile, silentLogger, silentProgress, throwIfAborted, writeJsonAtomic, type Logger } from '@geo-dino/core';
import { intersection, parseAoi, union, type MultiPolygonCoords } from '@geo-dino/geometry';
import { writeRunTiles, type RunTilesResult } from '@geo-dino/pmtiles';
import { portableHref, publicHref, writeOutputItem, type OutputAsset, type SourceRef, type StacItem } from '@geo-dino/stac';
import { LruCache, crsLabel } from '@geo-dino/tiling';
import { layoutOf, planHasTile, planTileIds } from './plan.js';
import type { ProvenanceCollection } from './provenance.js';
import type { TileRecord, TileStore } from './tile-store.js';
import type { TileFeed } from './feed.js';
import { chunkWidthWithExtraHeads, classMapAssets, classMapRunInfo, classMapTileOptions, type ClassMapResult } from './extra-heads.js';
import { BandAccumulator, chmAssetBands, openHeadLayers, ProvenanceLayer, type BandStats, type WindowLayer } from './layers.js';
import { ImageryLayer, type ImageryMosaic } from './imagery.js';
import { NODATA, type CommonOptions, type RunPlan } from './types.js';
import { publishedSource, tileAttributions, tileServiceProperties } from './sources.js';

export const DEFAULT_CHUNK_WIDTH = 4096;


export interface AssembleOptions extends CommonOptions {
  /** The run directory to create (renamed into place when complete). */
  out: string;
  /** Where to build it; must be on out's file system (default: a hidden sibling of out). */
  staging?: string;
  /** Widest blending window, pixels (a multiple of 512; default 4096). Does not change the output. */
  chunkWidth?: number;
  /** Write chm.pmtiles and the other web layers (default true). */
  webTiles?: boolean;
  /** Replace an existing `out` (default false: refuse). */
  replace?: boolean;
  /** More run.json fields from the caller (command, execution, tile counts, timings); a function is called when run.json is written. */
  runInfo?: Record<string, unknown> | (() => Record<string, unknown>);
  /** Decoded tiles kept between block rows (default: two rows of a chunk's tiles, at most 64 MiB). */
  tileCacheBytes?: number;
  /** `performance.now()` when the run started, for run.json's total time. */
  startedAt?: number;
  /**
   * Assemble while tiles are still being predicted: wait for each tile on this feed instead of
   * requiring a complete store.
   */
  feed?: TileFeed;
  /** Where the run directory is published (absolute URL): item.json gets its `self` link. */
  stacBaseUrl?: string;
}

export interface AssembleResult {
  out: string;
  files: { name: string; bytes: number }[];
  width: number;
  height: number;
  validPixels: number;
  stats: { height: BandStats | null; uncertainty: BandStats | null };
  scenes: { id: string; datetime: string | null; pixels: number }[];
  webTiles: string[];
  item: StacItem;
  /** The run.json written. */
  run: Record<string, unknown>;
  seconds: number;
}

/**
 * Peak resident memory of this process (worker threads included). Linux: VmHWM of
 * /proc/self/status, the high-water mark of this program's own address space; getrusage's maxrss
 * would also count the parent's memory copied at fork (a child of a 3 GB process reports 3 GB).
 */
export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS * 1024;
}

let ortVersion: string | null | undefined;
/** onnxruntime-node's version, for run.json and the STAC Item. */
export function onnxruntimeVersion(): string | null {
  if (ortVersion === undefined) {
    try {
      ortVersion = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
    } catch {
      ortVersion = null;
    }
  }
  return ortVersion;
}

export function gridCode(plan: RunPlan): { code: string | null; wkt2?: string } {
  const c = plan.grid.crs;
  return c.epsg !== null ? { code: `EPSG:${c.epsg}` } : { code: null, wkt2: c.definition ?? c.name };
}

/** The part of the AOI the run mapped (AOI ∩ provenance), falling back to the AOI. */
export function mappedFootprint(plan: RunPlan, parts: MultiPolygonCoords[]): MultiPolygonCoords {
  try {
    const covered = intersection(plan.aoi.geometry, union(...parts));
    if (covered.length) return parseAoi({ type: 'MultiPolygon', coordinates: covered }, 'mapped area').geometry;
  } catch {
    /* fall back below */
  }
  return plan.aoi.geometry;
}

export async function listFiles(dir: string): Promise<{ name: string; bytes: number }[]> {
  const out: { name: string; bytes: number }[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const st = await stat(join(dir, name));
    if (st.isFile()) out.push({ name, bytes: st.size });
  }
  return out;
}

/** Move a complete staging directory into place (replacing `out` only when asked). */
export async function moveIntoPlace(staging: string, out: string, replace: boolean, log: Logger): Promise<void> {
  await ensureDir(dirname(out));
  let trash: string | null = null;
  if (await fileExists(out)) {
    if (!replace) throw new GeoDinoError('E_ARGUMENT', `${out}: already exists; choose another --out, or pass --force to replace it`, { details: { path: out } });
    trash = join(dirname(out), `.${basename(out)}.replaced-${process.pid}`);
    try {
      await rename(out, trash);
    } catch (err) {
      throw fsError(err, out, 'write');
    }
  }
  try {
    await rename(staging, out);
  } catch (err) {
    if (trash) await rename(trash, out).catch(() => undefined);
    throw fsError(err, out, 'write');
  }
  if (trash) {
    await rm(trash, { recursive: true, force: true }).catch((err: unknown) => log.warn({ path: trash, err }, 'could not remove the replaced run directory'));
  }
}

/** A pixel window of a zone grid (a shard, or the whole grid). */
export interface PixelWindow {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The plan of a window of a zone's grid: the same tiles, on a grid shifted to the window. */
export function windowPlan(plan: RunPlan, w: PixelWindow): RunPlan {
  const t = plan.grid.transform;
  const gsd = plan.grid.gsd;
  if (w.x === 0 && w.y === 0 && w.width === plan.grid.width && w.height === plan.grid.height) return plan;
  return { ...plan, grid: { ...plan.grid, width: w.width, height: w.height, transform: [t[0] + w.x * gsd, t[1], t[2], t[3] - w.y * gsd, t[4], t[5]] } };
}

/** What blending a window wrote into its directory. */
export interface WindowRasters {
  width: number;
  height: number;
  bandNames: string[];
  stats: BandAccumulator[];
  validPixels: number;
  provenance: ProvenanceCollection;
  classMaps: ClassMapResult[];
  mosaic: ImageryMosaic | null;
}

/** Read a stored tile (by id), from a cache, a feed or the store. */
export type TileReader = (id: number) => Promise<TileRecord>;

/** A tile reader over a store (and a feed while prediction runs), with a cache of decoded tiles. */
export function tileReader(plan: RunPlan, store: TileStore, options: { feed?: TileFeed; chunkWidth?: number; cacheBytes?: number } = {}): TileReader {
  const T = plan.tiling.tileSize;
  const C = Math.min(options.chunkWidth ?? DEFAULT_CHUNK_WIDTH, plan.grid.width);
  // Tiles are read again for the next block row: keep two rows of a chunk's tiles (≤ 64 MiB).
  // Bytes per pixel: height 4, uncertainty 4, valid 1, source 2, imagery 3.
  const cache = new LruCache<number, TileRecord>(options.cacheBytes ?? Math.min(64 * 1024 * 1024, 2 * (Math.ceil(C / plan.tiling.stride) + 2) * T * T * 14));
  const sizeOf = (r: TileRecord): number => 256 + Object.values(r.planes).reduce((s, p) => s + p.byteLength, 0);
  return async (id) => {
    const hit = cache.get(id);
    if (hit) return hit;
    const offered = options.feed ? await options.feed.wait(id) : null;
    const r = offered ?? (await store.read(id));
    if (!r) throw new GeoDinoError('E_INTERNAL', `${store.pathOf(id)}: tile disappeared from the store during assembly`);
    cache.set(id, r, sizeOf(r));
    return r;
  };
}

/**
 * Blend the stored tiles over a window of a zone's grid into `dir`: one layer per head (chm.tif,
 * landcover.tif), the model's input mosaic when `imagery`, and the provenance, all driven alike
 * (layers.ts). Tiles are shifted into the window, so a window's pixels equal the same pixels of
 * the whole grid.
 */
export async function blendWindow(
  zone: RunPlan,
  win: PixelWindow,
  dir: string,
  readTile: TileReader,
  options: { chunkWidth?: number; imagery: boolean; log?: Logger; signal?: AbortSignal; task?: { tick(): void } },
): Promise<WindowRasters> {
  const signal = options.signal;
  const plan = windowPlan(zone, win);
  const B = plan.tiling.blockSize;
  const C = chunkWidthWithExtraHeads(plan, options.chunkWidth ?? DEFAULT_CHUNK_WIDTH, B);
  if (!Number.isInteger(C) || C < B || C % B !== 0) throw new GeoDinoError('E_ARGUMENT', `--chunk-width: must be a multiple of ${B} (got ${C})`, { details: { field: '--chunk-width' } });
  const { width: W, height: H } = plan.grid;
  const T = plan.tiling.tileSize;
  const stride = plan.tiling.stride;
  const layout = layoutOf(zone);
  await ensureDir(dir);
  const opts = { ...(options.log ? { log: options.log } : {}), ...(signal ? { signal } : {}) };
  const heads = await openHeadLayers(plan, dir, opts);
  let imagery: ImageryLayer | null = null;
  try {
    imagery = options.imagery ? await ImageryLayer.open(plan, dir, opts) : null;
  } catch (err) {
    await Promise.all([heads.height, ...heads.classMaps].map((l) => l.abort().catch(() => undefined)));
    throw err;
  }
  const provenance = new ProvenanceLayer(plan);
  // Provenance and imagery take each pixel from the same tile: the last one valid there.
  const layers: WindowLayer[] = [heads.height, ...heads.classMaps, ...(imagery ? [imagery] : []), provenance];
  const shifted = async (id: number): Promise<TileRecord> => {
    const r = await readTile(id);
    return win.x === 0 && win.y === 0 ? r : { ...r, spec: { ...r.spec, x: r.spec.x - win.x, y: r.spec.y - win.y } };
  };
  const blockRows = Math.ceil(H / B);
  const chunks = Math.ceil(W / C);
  try {
    for (let br = 0; br < blockRows; br++) {
      const y0 = br * B;
      const rows = Math.min(B, H - y0);
      const i0 = Math.max(0, Math.ceil((win.y + y0 - T + 1) / stride));
      const i1 = Math.min(layout.rows - 1, Math.floor((win.y + y0 + rows - 1) / stride));
      for (const l of layers) l.beginRow?.(y0, rows);
      for (let ch = 0; ch < chunks; ch++) {
        throwIfAborted(signal);
        const cx0 = ch * C;
        const cw = Math.min(C, W - cx0);
        const j0 = Math.max(0, Math.ceil((win.x + cx0 - T + 1) / stride));
        const j1 = Math.min(layout.cols - 1, Math.floor((win.x + cx0 + cw - 1) / stride));
        const ids: number[] = [];
        for (let i = i0; i <= i1; i++) for (let j = j0; j <= j1; j++) if (planHasTile(zone, layout, i * layout.cols + j)) ids.push(i * layout.cols + j);
        for (const l of layers) l.begin(cw, rows);
        // Read a few tiles ahead, add them in row-major order (the stitcher wants non-decreasing y).
        const ahead: Promise<TileRecord>[] = [];
        let k = 0;
        const pump = (): void => {
          while (ahead.length < 4 && k < ids.length) {
            const p = shifted(ids[k++]!);
            p.catch(() => undefined);
            ahead.push(p);
          }
        };
        pump();
        while (ahead.length) {
          const rec = await ahead.shift()!;
          pump();
          if (rec.empty) continue;
          for (const l of layers) l.add(rec, cx0, y0);
        }
        for (const l of layers) await l.end(br, cx0);
        options.task?.tick();
      }
      for (const l of layers) l.endRow?.();
    }
    const height = await heads.height.close();
    const classMaps: ClassMapResult[] = [];
    for (const l of heads.classMaps) classMaps.push(await l.close());
    const mosaic = imagery ? await imagery.close() : null;
    const prov = await provenance.close();
    return { width: W, height: H, bandNames: height.bandNames, stats: height.stats, validPixels: height.stats[0]!.n, provenance: prov, classMaps, mosaic };
  } catch (err) {
    await Promise.all(layers.map((l) => l.abort().catch(() => undefined)));
    throw err;
  }
}

/** Assemble a run's outputs from its complete tile store (see the module comment). */
export async function assembleRun(plan: RunPlan, store: TileStore, options: AssembleOptions): Promise<AssembleResult> {
  const t0 = performance.now();
  const log = options.log ?? silentLogger();
  const progress = options.progress ?? silentProgress;
  const signal = options.signal;
  const out = options.out;
  const staging = options.staging ?? join(dirname(out), `.${basename(out)}.staging`);
  const { width: W, height: H } = plan.grid;
  const layout = layoutOf(plan);

  // Every planned tile must be in the store (or on its way, with a feed).
  const done = options.feed ? null : await store.completed();
  let missing = 0;
  let firstMissing = -1;
  for (const id of done ? planTileIds(plan, layout) : []) {
    if (!done!.has(id)) {
      missing++;
      if (firstMissing < 0) firstMissing = id;
    }
  }
  if (missing) {
    throw new GeoDinoError('E_ARGUMENT', `${store.dir}: ${missing} of ${plan.tiling.tiles} tiles are not predicted yet (first: ${firstMissing}); predict them before assembling`, {
      details: { missing },
    });
  }

  await rm(staging, { recursive: true, force: true });
  await ensureDir(staging);
  const B = plan.tiling.blockSize;
  const C = chunkWidthWithExtraHeads(plan, options.chunkWidth ?? DEFAULT_CHUNK_WIDTH, B);
  // With a feed, blending follows prediction, whose progress is the one shown.
  const task = (options.feed ? silentProgress : progress).start('blending', { total: Math.ceil(H / B) * Math.ceil(W / C), unit: 'windows' });
  let rasters: WindowRasters;
  try {
    rasters = await blendWindow(plan, { x: 0, y: 0, width: W, height: H }, staging, tileReader(plan, store, { ...(options.feed ? { feed: options.feed } : {}), ...(options.chunkWidth !== undefined ? { chunkWidth: options.chunkWidth } : {}), ...(options.tileCacheBytes !== undefined ? { cacheBytes: options.tileCacheBytes } : {}) }), {
      ...(options.chunkWidth !== undefined ? { chunkWidth: options.chunkWidth } : {}),
      imagery: options.webTiles !== false,
      log,
      ...(signal ? { signal } : {}),
      task,
    });
    task.finish();
  } catch (err) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  const { bandNames, classMaps, mosaic } = rasters;
  const stats = rasters.stats;
  const prov = rasters.provenance;

  try {
    const total = W * H;
    const bandStats = stats.map((s) => s.stats(total));
    const validPixels = stats[0]!.n;
    if (validPixels === 0) {
      throw new GeoDinoError('E_NO_OVERLAP', `${plan.aoi.source}: no valid imagery inside the AOI (every pixel is masked or outside the scenes)`, { details: { aoi: plan.aoi.source } });
    }
    // Portable hrefs: local scenes and items relative to the run directory, URLs kept.
    for (const f of prov.features) {
      f.properties.href = portableHref(f.properties.href, options.out);
      if (f.properties.item) f.properties.item = portableHref(f.properties.item, options.out);
    }
    await writeJsonAtomic(join(staging, 'provenance.geojson'), prov);

    const byName = (n: string): BandStats | null => bandStats[(bandNames as string[]).indexOf(n)] ?? null;
    const used = prov.features.map((f) => plan.sources[f.properties.priority]!);
    const stacSources: SourceRef[] = used
      .filter((s) => s.itemHref)
      .map((s) => ({
        itemId: s.id,
        ...(s.collection ? { collection: s.collection } : {}),
        itemHref: s.itemHref!,
        datetime: s.datetime,
        ...(s.startDatetime ? { startDatetime: s.startDatetime } : {}),
        ...(s.endDatetime ? { endDatetime: s.endDatetime } : {}),
      }));
    const rasterTimes = used.filter((s) => !s.itemHref).flatMap((s) => (s.datetime ? [s.datetime] : [s.startDatetime, s.endDatetime].filter((d): d is string => !!d))).map((d) => Date.parse(d));
    const acquisition =
      stacSources.length || !rasterTimes.length
        ? undefined
        : rasterTimes.length === 1 || Math.min(...rasterTimes) === Math.max(...rasterTimes)
          ? { datetime: new Date(rasterTimes[0]!).toISOString() }
          : { start: new Date(Math.min(...rasterTimes)).toISOString(), end: new Date(Math.max(...rasterTimes)).toISOString() };

    const itemPath = join(staging, 'item.json');
    const footprint = mappedFootprint(
      plan,
      prov.features.map((f) => f.geometry.coordinates),
    );
    const itemId = `geo-dino-chm-${plan.configHash.slice(0, 16)}`;
    const chmAsset: OutputAsset = {
      key: 'chm',
      path: join(staging, 'chm.tif'),
      roles: ['data'],
      title: plan.demo ? 'Canopy height and uncertainty (DEMO model, not real heights)' : 'Canopy height and uncertainty',
      bands: chmAssetBands(bandNames, (i) => byName(bandNames[i]!)),
    };
    const baseAssets: OutputAsset[] = [
      chmAsset,
      ...classMapAssets(classMaps, plan.demo),
      { key: 'provenance', path: join(staging, 'provenance.geojson'), roles: ['metadata'], title: 'Source scene and acquisition time of every part of the map' },
      { key: 'run', path: join(staging, 'run.json'), roles: ['metadata'], title: 'How this run was made', type: 'application/json' },
    ];
    const itemInput = (assets: OutputAsset[]): Parameters<typeof writeOutputItem>[0] => ({
      id: itemId,
      itemPath,
      finalDir: out,
      ...(options.stacBaseUrl ? { selfHref: publicHref(options.stacBaseUrl, 'item.json') } : {}),
      geometry: footprint.length === 1 ? { type: 'Polygon', coordinates: footprint[0]! } : { type: 'MultiPolygon', coordinates: footprint },
      grid: { ...gridCode(plan), shape: [H, W], transform: [plan.grid.transform[1], plan.grid.transform[2], plan.grid.transform[0], plan.grid.transform[4], plan.grid.transform[5], plan.grid.transform[3]] },
      assets,
      sources: stacSources,
      model: { name: plan.model.name, weightsSha256: plan.model.weightsSha256 },
      demo: plan.demo,
      ...(onnxruntimeVersion() ? { software: { 'onnxruntime-node': onnxruntimeVersion()! } } : {}),
      ...(acquisition ? { acquisition } : {}),
      title: plan.demo ? 'DEMO canopy height (random-weight model)' : 'Canopy height',
      properties: { 'geo-dino:config_hash': plan.configHash, 'geo-dino:tiles': plan.tiling.tiles, 'geo-dino:resampling': plan.tiling.resampling, 'gsd': plan.grid.gsd * plan.grid.crs.metresPerUnit, ...tileServiceProperties(plan) },
    });
    // A first item.json: the pmtiles package reads the acquisition date from it.
    await writeOutputItem(itemInput(baseAssets.filter((a) => a.key !== 'run')));

    // Web layers (the pmtiles package's run-directory writer: chm.pmtiles, chm-uncertainty.pmtiles,
    // imagery.pmtiles from the temporary mosaic COG, which is not an output).
    let web: RunTilesResult = {};
    if (options.webTiles !== false) {
      web = await writeRunTiles(staging, { demo: plan.demo, ...(tileAttributions(plan.sources).length ? { imageryAttribution: tileAttributions(plan.sources).join('; ') } : {}), log, progress, ...(signal ? { signal } : {}), ...(mosaic ? { imagery: mosaic.path } : {}), ...classMapTileOptions(classMaps) });
    }
    if (mosaic) await rm(mosaic.path, { force: true });
    throwIfAborted(signal);
    const webAssets: OutputAsset[] = Object.entries(web)
      .filter(([, s]) => s)
      .map(([layer, s]) => ({ key: `${layer}-pmtiles`, path: s!.path, roles: ['visual'], title: `${layer} web tiles (PMTiles)` }));

    const run: Record<string, unknown> = {
      format: 'geo-dino-run',
      formatVersion: 1,
      kind: 'chm',
      status: 'complete',
      demo: plan.demo,
      ...(plan.demo ? { warning: 'DEMO: random-weight model; heights are not real canopy heights' } : {}),
      ...(typeof options.runInfo === 'function' ? options.runInfo() : (options.runInfo ?? {})),
      versions: { 'geo-dino': GEO_DINO_VERSION, node: process.version, 'onnxruntime-node': onnxruntimeVersion() },
      model: { name: plan.model.name, weightsSha256: plan.model.weightsSha256, demo: plan.model.demo, family: plan.model.family, layout: plan.model.layout, dtype: plan.model.dtype },
      requestHash: plan.requestHash,
      configHash: plan.configHash,
      aoi: { source: plan.aoi.source, areaKm2: plan.aoi.areaM2 / 1e6 },
      grid: { crs: crsLabel(plan.grid.crs), epsg: plan.grid.crs.epsg, width: W, height: H, gsd: plan.grid.gsd, transform: plan.grid.transform },
      tiling: { ...plan.tiling },
      sources: plan.sources.map((s, i) => ({ id: s.id, ...publishedSource(s), collection: s.collection, datetime: s.datetime, item: s.itemHref, pixels: prov.features.find((f) => f.properties.priority === i)?.properties.pixels ?? 0 })),
      pixels: { total, valid: validPixels },
      statistics: { height: byName('height'), uncertainty: byName('uncertainty') },
      ...classMapRunInfo(classMaps),
      outputs: [...(await listFiles(staging)).filter((f) => f.name !== 'item.json').map((f) => f.name), 'item.json', 'run.json'],
    };
    const timings = { ...((run['timings'] as Record<string, unknown> | undefined) ?? {}), assemble_s: Number(((performance.now() - t0) / 1000).toFixed(3)), total_s: Number(((performance.now() - (options.startedAt ?? t0)) / 1000).toFixed(3)) };
    run['timings'] = timings;
    run['memory'] = { maxRssBytes: peakRssBytes() };
    await writeJsonAtomic(join(staging, 'run.json'), run);

    await writeOutputItem(itemInput([...baseAssets, ...webAssets]));
    const item = (await readJsonFile(itemPath)) as StacItem;
    const seconds = (performance.now() - t0) / 1000;
    await moveIntoPlace(staging, out, options.replace ?? false, log);
    const files = await listFiles(out);
    return {
      out,
      files,
      width: W,
      height: H,
      validPixels,
      stats: { height: byName('height'), uncertainty: byName('uncertainty') },
      scenes: prov.features.map((f) => ({ id: f.properties.scene_id, datetime: f.properties.datetime, pixels: f.properties.pixels })),
      webTiles: Object.values(web).filter((s) => s).map((s) => basename(s!.path)),
      item,
      run,
      seconds,
    };
  } catch (err) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}
