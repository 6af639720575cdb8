/**
 * `planRun`: everything a run needs decided before any pixel is read — the model, the AOI, the
 * scenes (priority order), the target grid and tile layout, and the hashes that identify the run.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { GEO_DINO_VERSION, GeoDinoError, silentLogger, throwIfAborted } from '@geo-dino/core';
import { loadAoi, type Aoi } from '@geo-dino/geometry';
import { defaultDemoDir, ensureDemoModel, openModelDir, type ModelDir } from '@geo-dino/model';
import { crsLabel, gridForAoi, gridLonLatBbox, isTileServiceHref, lonLatToPixels, prepareWarpSource, TileLayout, type Grid, type TileSpec } from '@geo-dino/tiling';
import { hashFile, hashJson } from './hash.js';
import { ensureDemoScene, DEMO_SCENE_SEED, DEMO_SCENE_SIZE } from './demo-scene.js';
import { extraHeadsIdentity, plannedExtraHeads } from './extra-heads.js';
import { resolveImagery, SourceOpener } from './sources.js';
import { BLOCK_SIZE, NODATA, PLAN_FORMAT, PLAN_FORMAT_VERSION, type ChmRequest, type CommonOptions, type RunPlan } from './types.js';

/** Default provenance cell: one ViT patch (16 px, 9.6 m at 0.6 m). */
export const DEFAULT_PROVENANCE_CELL = 16;

/** The model directory a request names (`demo` is created on first use). */
export async function resolveModel(model: string, options: CommonOptions = {}): Promise<ModelDir> {
  const env = options.env ?? process.env;
  const log = options.log ?? silentLogger();
  const md = model === 'demo' ? await openModelDir(await ensureDemoModel({ dir: defaultDemoDir(env), log })) : await openModelDir(resolve(options.cwd ?? process.cwd(), model));
  if (!md.chmHead()) {
    throw new GeoDinoError('E_BAD_MODEL', `${md.dir}: ${md.meta.name} has no canopy-height head (it is a ${md.meta.family} ${md.meta.layout} model); give a CHMv2 model`, {
      details: { dir: md.dir },
    });
  }
  return md;
}

/** True when the request runs on the built-in demo scene (demo model, no AOI, no imagery). */
export function usesDemoScene(request: ChmRequest): boolean {
  return request.model === 'demo' && request.aoi === undefined && !request.imagery?.length;
}

/**
 * The request hash: the arguments that define a run's output, with the AOI file's content, local
 * imagery's size and modification time, and the model's weights hash. It needs no network, so a
 * re-run can be recognised (and skipped) before any search or read.
 */
export async function requestHashOf(request: ChmRequest, md: ModelDir, options: CommonOptions = {}): Promise<string> {
  const cwd = options.cwd ?? process.cwd();
  let aoi: unknown = null;
  if (typeof request.aoi === 'string') aoi = { file: await hashFile(resolve(cwd, request.aoi)) };
  else if (request.aoi) aoi = { geometry: request.aoi.geometry };
  const imagery: unknown[] = [];
  for (const s of request.imagery ?? []) {
    if (/^https?:\/\//i.test(s) || isTileServiceHref(s)) imagery.push(s);
    else {
      const p = resolve(cwd, s);
      const st = await stat(p).catch(() => null);
      imagery.push(st ? { path: p, size: st.size, mtimeMs: Math.round(st.mtimeMs) } : p);
    }
  }
  return hashJson({
    v: PLAN_FORMAT_VERSION,
    aoi,
    imagery,
    demoScene: usesDemoScene(request) ? { seed: DEMO_SCENE_SEED, size: DEMO_SCENE_SIZE } : null,
    collections: request.collections ?? null,
    datetime: request.datetime ?? null,
    ...(request.newerThan ? { newerThan: request.newerThan } : {}),
    ...(request.tileService ? { tileService: request.tileService } : {}),
    maxCloud: request.maxCloud ?? null,
    model: { name: md.meta.name, weights: md.meta.source.weightsSha256 },
    gsd: request.gsd ?? null,
    crs: request.crs ?? null,
    tileSize: request.tileSize ?? null,
    overlap: request.overlap ?? null,
    blend: request.blend ?? 'raised-cosine',
    provenanceCell: request.provenanceCell ?? DEFAULT_PROVENANCE_CELL,
    ...(extraHeadsIdentity(request) ? { extraHeads: extraHeadsIdentity(request) } : {}),
  });
}

/** The grid and tile layout of a plan (rebuilt exactly from its JSON). */
export function layoutOf(plan: RunPlan): TileLayout {
  const grid: Grid = { crs: plan.grid.crs, transform: plan.grid.transform, width: plan.grid.width, height: plan.grid.height, gsd: plan.grid.gsd };
  return new TileLayout(grid, plan.tiling.tileSize, plan.tiling.overlap, lonLatToPixels(plan.aoi.geometry, grid));
}

function meetsAnySource(plan: RunPlan, t: Pick<TileSpec, 'x' | 'y' | 'width' | 'height'>): boolean {
  return plan.sources.some((s) => s.gridBbox !== null && s.gridBbox[0] < t.x + t.width && s.gridBbox[2] > t.x && s.gridBbox[1] < t.y + t.height && s.gridBbox[3] > t.y);
}

/**
 * The ids (row-major layout indexes) of the tiles a run predicts: those touching the AOI and some
 * scene's extent. Lazy: a continental AOI costs no memory per tile.
 */
export function* planTileIds(plan: RunPlan, layout: TileLayout = layoutOf(plan)): Generator<number> {
  for (const t of layout.tiles()) if (meetsAnySource(plan, t)) yield t.index;
}

/** The tile spec of an id. */
export function tileSpecOf(layout: TileLayout, id: number): TileSpec {
  if (!Number.isInteger(id) || id < 0 || id >= layout.tileCount) throw new GeoDinoError('E_ARGUMENT', `no tile ${id} in a layout of ${layout.tileCount} tiles`);
  return layout.tile(Math.floor(id / layout.cols), id % layout.cols);
}

/** Is this tile part of the plan (touching the AOI and some scene)? */
export function planHasTile(plan: RunPlan, layout: TileLayout, id: number): boolean {
  const t = tileSpecOf(layout, id);
  return t.touchesAoi && meetsAnySource(plan, t);
}

export interface PlanOptions extends CommonOptions {
  /** The model directory, when already opened. */
  modelDir?: ModelDir;
}

/** The hash of a plan's output-defining content. */
export function configHashOf(plan: Omit<RunPlan, 'configHash' | 'requestHash'> | RunPlan): string {
  const { configHash: _c, requestHash: _r, geoDino: _g, ...rest } = plan as RunPlan;
  void _c;
  void _r;
  void _g;
  return hashJson(rest);
}

/**
 * Plan a run: resolve the model, the AOI, the scenes and the grid. Checks everything a user can
 * get wrong before any pixel is processed (AOI, imagery reachable and georeferenced, overlap).
 */
export async function planRun(request: ChmRequest, options: PlanOptions = {}): Promise<RunPlan> {
  const log = options.log ?? silentLogger();
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const ctx = { log, env, cwd, ...(options.progress ? { progress: options.progress } : {}), ...(options.signal ? { signal: options.signal } : {}), ...(request.headers ? { headers: request.headers } : {}) };
  const md = options.modelDir ?? (await resolveModel(request.model, ctx));
  const requestHash = await requestHashOf(request, md, ctx);
  const extraHeads = plannedExtraHeads(request, md);
  throwIfAborted(options.signal);

  let aoi: Aoi | null = typeof request.aoi === 'string' ? await loadAoi(resolve(cwd, request.aoi)) : (request.aoi ?? null);
  let imagery = (request.imagery ?? []).map((s) => s);
  let demoDatetime: string | null = null;
  let demoId: string | null = null;
  if (usesDemoScene(request)) {
    const scene = await ensureDemoScene({ env, log });
    aoi = scene.aoi;
    imagery = [scene.path];
    demoDatetime = scene.datetime;
    demoId = scene.id;
    log.info({ scene: scene.path }, 'demo run: synthetic scene and random-weight model (outputs are labelled DEMO)');
  } else if (!imagery.length) {
    throw new GeoDinoError('E_ARGUMENT', '--imagery: is required (a GeoTIFF/COG path or URL, a STAC API URL, or a STAC catalog/item); `--model demo` alone runs on the built-in demo scene', {
      details: { field: '--imagery' },
    });
  }

  const resolved = await resolveImagery(request, imagery, aoi, ctx);
  aoi = resolved.aoi;
  if (demoId) resolved.sources[0]!.id = demoId;

  const modelGsd = md.meta.gsd;
  const fixed = md.meta.input.tileSize;
  const tileSize = request.tileSize ?? fixed?.[0] ?? 512;
  if (fixed && (fixed[0] !== tileSize || fixed[1] !== tileSize)) {
    throw new GeoDinoError('E_ARGUMENT', `--tile-size: ${md.meta.name} was built for ${fixed[0]}×${fixed[1]} tiles (got ${tileSize}); omit --tile-size or rebuild the model without --tile-size`, {
      details: { field: '--tile-size' },
    });
  }
  const overlap = request.overlap ?? Math.min(64, Math.max(0, tileSize / 2 - 2) & ~1);
  const layout = gridForAoi(aoi, {
    tileSize,
    overlap,
    ...(request.crs ? { crs: request.crs } : {}),
    ...(request.gsd !== undefined ? { gsd: request.gsd } : {}),
  });
  const grid = layout.grid;
  if (Math.abs(grid.gsd * grid.crs.metresPerUnit - modelGsd) / modelGsd > 0.25) {
    log.warn({ gsd: grid.gsd, modelGsd }, `the output pixel size differs from the ${modelGsd} m the model was trained at; heights may be biased`);
  }

  // Tile services are read over the grid, at the level its pixel size needs.
  for (const s of resolved.sources) if (s.tiles) Object.assign(s.tiles, { bbox: gridLonLatBbox(grid), gsd: grid.gsd * grid.crs.metresPerUnit });

  // Open every scene once: reachable, georeferenced, and where it falls on the grid.
  const opener = new SourceOpener(ctx, 16 * 1024 * 1024);
  for (const s of resolved.sources) {
    throwIfAborted(options.signal);
    const raster = await opener.open(s);
    try {
      const warp = prepareWarpSource(raster, grid);
      const fp = warp.footprint;
      s.gridBbox = fp ? [Math.floor(fp[0]), Math.floor(fp[1]), Math.ceil(fp[2]), Math.ceil(fp[3])] : null;
    } finally {
      await raster.close();
    }
    if (demoDatetime && s.datetime === null) s.datetime = demoDatetime;
  }

  const base: Omit<RunPlan, 'configHash' | 'requestHash'> = {
    format: PLAN_FORMAT,
    formatVersion: PLAN_FORMAT_VERSION,
    geoDino: GEO_DINO_VERSION,
    demo: md.meta.demo,
    aoi: { source: aoi.source, geometry: aoi.geometry, areaM2: aoi.areaM2 },
    sources: resolved.sources,
    grid: { crs: grid.crs, transform: [...grid.transform] as RunPlan['grid']['transform'], width: grid.width, height: grid.height, gsd: grid.gsd },
    tiling: {
      tileSize,
      overlap,
      stride: layout.stride,
      rows: layout.rows,
      cols: layout.cols,
      tiles: 0,
      blockSize: BLOCK_SIZE,
      window: request.blend ?? 'raised-cosine',
      resampling: 'bilinear',
    },
    model: {
      name: md.meta.name,
      weightsSha256: md.meta.source.weightsSha256,
      demo: md.meta.demo,
      family: md.meta.family,
      layout: md.meta.layout,
      dtype: md.meta.dtype,
      gsd: md.meta.gsd,
    },
    heads: [{ name: md.chmHead()!.name, kind: 'canopy-height', planes: md.chmHead()!.outputs.uncertainty ? ['height', 'uncertainty'] : ['height'] }, ...extraHeads],
    provenanceCell: request.provenanceCell ?? DEFAULT_PROVENANCE_CELL,
    nodata: NODATA,
  };
  const plan: RunPlan = { ...base, requestHash, configHash: '' };
  let n = 0;
  for (const _ of planTileIds(plan, layout)) n++;
  plan.tiling.tiles = n;
  if (n === 0) {
    throw new GeoDinoError('E_NO_OVERLAP', `${aoi.source}: the AOI does not overlap the imagery (${resolved.sources.map((s) => s.id).slice(0, 5).join(', ')})`, {
      details: { aoi: aoi.source },
    });
  }
  plan.configHash = configHashOf(plan);
  log.info(
    {
      grid: `${grid.width}×${grid.height}`,
      crs: crsLabel(grid.crs),
      gsd: grid.gsd,
      tiles: n,
      tileSize,
      overlap,
      scenes: resolved.sources.length,
      model: md.meta.name,
    },
    'run planned',
  );
  return plan;
}
