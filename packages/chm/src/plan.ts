/**
 * `planRun`: everything a run needs decided before any pixel is read — the model, the AOI, the
 * scenes (priority order), the target grid and tile layout, and the hashes that identify the run.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { GEO_DINO_VERSION, GeoDinoError, isRemoteUrl, silentLogger, throwIfAborted, type Logger } from '@geo-dino/core';
import { loadAoi, parseAoi, type Aoi } from '@geo-dino/geometry';
import { defaultDemoDir, ensureDemoModel, openModelDir, type ModelDir } from '@geo-dino/model';
import {
  alignedGrid,
  checkShardSize,
  crsLabel,
  DEFAULT_BAND_SHARDS,
  DEFAULT_SHARD_SIZE,
  gridForAoi,
  gridLonLatBbox,
  isTileServiceHref,
  lonLatToPixels,
  prepareWarpSource,
  ShardGrid,
  TileLayout,
  zoneLabel,
  zonePartsOf,
  type Crs,
  type Grid,
  type ShardRef,
  type TileSpec,
} from '@geo-dino/tiling';
import { hashFile, hashJson } from './hash.js';
import { ensureDemoScene, DEMO_SCENE_SEED, DEMO_SCENE_SIZE } from './demo-scene.js';
import { extraHeadsIdentity, plannedExtraHeads } from './extra-heads.js';
import { resolveImagery, SourceOpener } from './sources.js';
import { planSeams, resolveSceneFeather } from './scene-feather.js';
import {
  BLOCK_SIZE,
  NODATA,
  PLAN_FORMAT,
  PLAN_FORMAT_VERSION,
  RUN_PLAN_FORMAT,
  RUN_PLAN_FORMAT_VERSION,
  type ChmPlan,
  type ChmRequest,
  type CommonOptions,
  type PlannedHead,
  type PlannedSource,
  type RunPlan,
} from './types.js';

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
    if (isRemoteUrl(s) || isTileServiceHref(s)) imagery.push(s);
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
    ...(request.preferHttps ? { preferHttps: true } : {}),
    model: { name: md.meta.name, weights: md.meta.source.weightsSha256 },
    gsd: request.gsd ?? null,
    crs: request.crs ?? null,
    tileSize: request.tileSize ?? null,
    overlap: request.overlap ?? null,
    blend: request.blend ?? 'raised-cosine',
    // Only when not the default, so runs planned before the option keep their hash.
    ...(request.resampling && request.resampling !== 'bilinear' ? { resampling: request.resampling } : {}),
    provenanceCell: request.provenanceCell ?? DEFAULT_PROVENANCE_CELL,
    shardSize: request.shardSize ?? DEFAULT_SHARD_SIZE,
    ...(request.sceneFeather !== undefined ? { sceneFeather: request.sceneFeather } : {}),
    ...(request.harmonise ? { harmonise: true } : {}),
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
  /** Accept a plan larger than `MAX_SHARDS_WITHOUT_FORCE`. */
  force?: boolean;
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
 *
 * The AOI is split by UTM zone and hemisphere (unless `crs` is given); each part gets a grid on
 * the global pixel lattice of its zone (tiles laid from its corner), limited to the part ∩ the imagery, and the shards of the
 * global shard grid that hold planned pixels (`@geo-dino/tiling` shards.ts).
 */
export async function planRun(request: ChmRequest, options: PlanOptions = {}): Promise<ChmPlan> {
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
  const shardSize = checkShardSize(request.shardSize ?? DEFAULT_SHARD_SIZE);
  // A bad --scene-feather is refused before any scene is read (the zones' pixel sizes differ from it only by the CRS's unit).
  resolveSceneFeather(request.sceneFeather, tileSize, overlap, request.gsd ?? modelGsd);
  const parts: { aoi: Aoi; crs: string | Crs | undefined }[] = [];
  if (request.crs) parts.push({ aoi, crs: request.crs });
  else {
    const zoneParts = zonePartsOf(aoi.geometry);
    for (const p of zoneParts) {
      let partAoi: Aoi;
      try {
        // An AOI in one zone keeps its name (run.json's `aoi.source`, the viewer's area name).
        partAoi = zoneParts.length === 1 ? aoi : parseAoi({ type: 'MultiPolygon', coordinates: p.geometry }, `${aoi.source} (zone ${p.zone})`);
      } catch {
        continue; // a sliver along a zone border with no area
      }
      parts.push({ aoi: partAoi, crs: p.crs });
    }
  }
  if (!parts.length) throw new GeoDinoError('E_BAD_AOI', `${aoi.source}: the AOI has no area in any UTM zone`, { details: { aoi: aoi.source } });

  const opener = new SourceOpener(ctx, 16 * 1024 * 1024);
  const zones: RunPlan[] = [];
  let counted = 0;
  for (const part of parts) {
    throwIfAborted(options.signal);
    // Without --force, counting stops as soon as the plan is over the limit (an absurd plan is
    // refused in seconds, not after enumerating millions of shards).
    const budget = options.force ? Infinity : MAX_SHARDS_WITHOUT_FORCE - counted;
    const zone = await planZone(part.aoi, part.crs, { request, md, sources: resolved.sources, tileSize, overlap, shardSize, extraHeads, requestHash, opener, demoDatetime, log, signal: options.signal, shardBudget: budget });
    if (zone) {
      zones.push(zone);
      counted += zone.shards.count;
    }
    if (counted > MAX_SHARDS_WITHOUT_FORCE && !options.force) break;
  }
  const tiles = zones.reduce((n, z) => n + z.tiling.tiles, 0);
  const shards = zones.reduce((n, z) => n + z.shards.count, 0);
  if (tiles === 0 || shards === 0) {
    const hint = aoi.crossesAntimeridian
      ? ' — the AOI was read as crossing the antimeridian (an edge from 179° to -179° goes the short way across ±180°); to go around the world instead, write it as parts within [-180, 180] or use --bbox'
      : '';
    throw new GeoDinoError('E_NO_OVERLAP', `${aoi.source}: the AOI does not overlap the imagery (${resolved.sources.map((s) => s.id).slice(0, 5).join(', ')})${hint}`, {
      details: { aoi: aoi.source },
    });
  }
  if (shards > MAX_SHARDS_WITHOUT_FORCE && !options.force) {
    throw new GeoDinoError(
      'E_LIMIT',
      `${aoi.source}: the plan has ${shards}${shards > MAX_SHARDS_WITHOUT_FORCE ? '+' : ''} shards and ${tiles} tiles (${(aoi.areaM2 / 1e6).toFixed(0)} km² at ${zones[0]!.grid.gsd} m, shards of ${shardSize} px); more than ${MAX_SHARDS_WITHOUT_FORCE} shards needs --force (check the AOI, or use a larger --shard-size)`,
      { details: { shards, tiles } },
    );
  }
  const plan: ChmPlan = {
    format: RUN_PLAN_FORMAT,
    formatVersion: RUN_PLAN_FORMAT_VERSION,
    requestHash,
    configHash: hashJson(zones.map((z) => z.configHash)),
    geoDino: GEO_DINO_VERSION,
    demo: md.meta.demo,
    aoi: { source: aoi.source, geometry: aoi.geometry, areaM2: aoi.areaM2 },
    shardSize,
    layout: shards === 1 ? 'single' : 'sharded',
    zones,
    shards,
    tiles,
  };
  log.info({ zones: zones.map((z) => z.shards.zone), shards, tiles, layout: plan.layout, scenes: resolved.sources.length, model: md.meta.name }, 'run planned');
  return plan;
}

/** More shards than this (≈ 2.4 million km² at the default size and 0.6 m) need `force`. */
export const MAX_SHARDS_WITHOUT_FORCE = 100_000;

interface ZoneContext {
  request: ChmRequest;
  md: ModelDir;
  sources: readonly PlannedSource[];
  tileSize: number;
  overlap: number;
  shardSize: number;
  extraHeads: PlannedHead[];
  requestHash: string;
  opener: SourceOpener;
  demoDatetime: string | null;
  log: Logger;
  signal: AbortSignal | undefined;
  /** Stop counting shards past this many (the plan is refused anyway). */
  shardBudget: number;
}

/** Where each scene falls on a grid (pixel bbox), or null where it misses it. */
async function sceneBoxes(sources: readonly PlannedSource[], grid: Grid, ctx: ZoneContext): Promise<PlannedSource[]> {
  const out: PlannedSource[] = [];
  for (const s of sources) {
    throwIfAborted(ctx.signal);
    // A tile service is read over this grid, at the level its pixel size needs (a copy per zone).
    const zs: PlannedSource = s.tiles ? { ...s, tiles: { ...s.tiles, bbox: gridLonLatBbox(grid), gsd: grid.gsd * grid.crs.metresPerUnit } } : s;
    const raster = await ctx.opener.open(zs);
    try {
      const fp = prepareWarpSource(raster, grid).footprint;
      const box: PlannedSource['gridBbox'] = fp ? [Math.floor(fp[0]), Math.floor(fp[1]), Math.ceil(fp[2]), Math.ceil(fp[3])] : null;
      out.push({ ...zs, gridBbox: box && box[0] < grid.width && box[2] > 0 && box[1] < grid.height && box[3] > 0 ? box : null, datetime: s.datetime ?? ctx.demoDatetime });
    } finally {
      await raster.close();
    }
  }
  return out;
}

/** One zone part's plan (null when no scene meets it). */
async function planZone(aoi: Aoi, crs: string | Crs | undefined, ctx: ZoneContext): Promise<RunPlan | null> {
  const { request, md, tileSize, overlap } = ctx;
  const aoiLayout = gridForAoi(aoi, { tileSize, overlap, ...(crs ? { crs } : {}), ...(request.gsd !== undefined ? { gsd: request.gsd } : {}) });
  const g0 = aoiLayout.grid;
  if (Math.abs(g0.gsd * g0.crs.metresPerUnit - md.meta.gsd) / md.meta.gsd > 0.25) {
    ctx.log.warn({ gsd: g0.gsd, modelGsd: md.meta.gsd }, `the output pixel size differs from the ${md.meta.gsd} m the model was trained at; heights may be biased`);
  }
  const crsBox = (g: Grid, b: readonly [number, number, number, number]): [number, number, number, number] => [
    g.transform[0] + b[0] * g.gsd,
    g.transform[3] - b[3] * g.gsd,
    g.transform[0] + b[2] * g.gsd,
    g.transform[3] - b[1] * g.gsd,
  ];
  // The AOI's extent on the global pixel lattice, then limited to AOI ∩ the scenes' extents.
  const aoiGrid = alignedGrid(g0.crs, g0.gsd, crsBox(g0, [0, 0, g0.width, g0.height]), 1);
  const onAoi = await sceneBoxes(ctx.sources, aoiGrid, ctx);
  const boxes = onAoi.map((s) => s.gridBbox).filter((b): b is [number, number, number, number] => b !== null);
  if (!boxes.length) return null;
  const u: [number, number, number, number] = [
    Math.max(0, Math.min(...boxes.map((b) => b[0]))),
    Math.max(0, Math.min(...boxes.map((b) => b[1]))),
    Math.min(aoiGrid.width, Math.max(...boxes.map((b) => b[2]))),
    Math.min(aoiGrid.height, Math.max(...boxes.map((b) => b[3]))),
  ];
  const grid = alignedGrid(aoiGrid.crs, aoiGrid.gsd, crsBox(aoiGrid, u), 1);
  // Both grids are on the same pixel lattice: scene boxes move by a whole number of pixels.
  const dx = Math.round((grid.transform[0] - aoiGrid.transform[0]) / grid.gsd);
  const dy = Math.round((aoiGrid.transform[3] - grid.transform[3]) / grid.gsd);
  const sources = onAoi.map((s) => ({ ...s, gridBbox: s.gridBbox ? ([s.gridBbox[0] - dx, s.gridBbox[1] - dy, s.gridBbox[2] - dx, s.gridBbox[3] - dy] as [number, number, number, number]) : null }));
  const layout = new TileLayout(grid, tileSize, overlap, lonLatToPixels(aoi.geometry, grid));
  const base: Omit<RunPlan, 'configHash' | 'requestHash'> = {
    format: PLAN_FORMAT,
    formatVersion: PLAN_FORMAT_VERSION,
    geoDino: GEO_DINO_VERSION,
    demo: md.meta.demo,
    aoi: { source: aoi.source, geometry: aoi.geometry, areaM2: aoi.areaM2 },
    sources,
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
      resampling: request.resampling ?? 'bilinear',
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
    heads: [{ name: md.chmHead()!.name, kind: 'canopy-height', planes: md.chmHead()!.outputs.uncertainty ? ['height', 'uncertainty'] : ['height'] }, ...ctx.extraHeads],
    provenanceCell: request.provenanceCell ?? DEFAULT_PROVENANCE_CELL,
    nodata: NODATA,
    shards: { size: ctx.shardSize, zone: zoneLabel(grid.crs), count: 0, band: request.bandShards ?? DEFAULT_BAND_SHARDS },
  };
  const plan: RunPlan = { ...base, requestHash: ctx.requestHash, configHash: '' };
  let n = 0;
  for (const _ of planTileIds(plan, layout)) n++;
  plan.tiling.tiles = n;
  let shards = 0;
  for (const _ of planShards(plan, layout)) if (++shards > ctx.shardBudget) break;
  plan.shards.count = shards;
  if (n === 0 || shards === 0) return null;
  if (sources.filter((s) => s.gridBbox).length > 1) {
    const feather = resolveSceneFeather(request.sceneFeather, tileSize, overlap, grid.gsd * grid.crs.metresPerUnit);
    if (feather.px > 0) {
      const { seams, radiometry } = await planSeams(plan, feather.px, ctx.opener, { log: ctx.log, signal: ctx.signal, harmonise: request.harmonise === true });
      plan.sceneFeather = { metres: feather.metres, px: feather.px, seams, ...(radiometry ? { radiometry } : {}) };
    }
  }
  plan.configHash = configHashOf(plan);
  ctx.log.debug({ zone: plan.shards.zone, grid: `${grid.width}×${grid.height}`, crs: crsLabel(grid.crs), tiles: n, shards }, 'zone planned');
  return plan;
}

/** The shard grid of a zone plan. */
export function shardGridOf(plan: RunPlan): ShardGrid {
  return new ShardGrid({ crs: plan.grid.crs, transform: plan.grid.transform, width: plan.grid.width, height: plan.grid.height, gsd: plan.grid.gsd }, plan.shards.size, plan.shards.band);
}

/** Does a shard hold planned pixels (the AOI inside some scene's extent)? */
export function shardIsPlanned(plan: RunPlan, layout: TileLayout, shard: ShardRef): boolean {
  const c = shardGridOf(plan).clip(shard);
  if (!c.width || !c.height) return false;
  for (const s of plan.sources) {
    const b = s.gridBbox;
    if (!b) continue;
    const x0 = Math.max(c.x, b[0]);
    const y0 = Math.max(c.y, b[1]);
    const x1 = Math.min(c.x + c.width, b[2]);
    const y1 = Math.min(c.y + c.height, b[3]);
    if (x1 > x0 && y1 > y0 && layout.windowTouchesAoi(x0, y0, x1 - x0, y1 - y0)) return true;
  }
  return false;
}

/** The planned shards of a zone, in processing order (north to south, west to east). Lazy. */
export function* planShards(plan: RunPlan, layout: TileLayout = layoutOf(plan)): Generator<ShardRef> {
  for (const s of shardGridOf(plan).all()) if (shardIsPlanned(plan, layout, s)) yield s;
}

/** The planned tiles whose window overlaps a shard (row-major). */
export function* shardTileIds(plan: RunPlan, layout: TileLayout, shard: ShardRef): Generator<number> {
  const c = shardGridOf(plan).clip(shard);
  const T = plan.tiling.tileSize;
  const stride = plan.tiling.stride;
  const i0 = Math.max(0, Math.ceil((c.y - T + 1) / stride));
  const i1 = Math.min(layout.rows - 1, Math.floor((c.y + c.height - 1) / stride));
  const j0 = Math.max(0, Math.ceil((c.x - T + 1) / stride));
  const j1 = Math.min(layout.cols - 1, Math.floor((c.x + c.width - 1) / stride));
  for (let i = i0; i <= i1; i++) for (let j = j0; j <= j1; j++) if (planHasTile(plan, layout, i * layout.cols + j)) yield i * layout.cols + j;
}

/** The shards a tile's window overlaps (planned or not). */
export function tileShards(plan: RunPlan, layout: TileLayout, id: number): ShardRef[] {
  const t = tileSpecOf(layout, id);
  return [...shardGridOf(plan).overlapping(t.x, t.y, t.width, t.height)];
}

/**
 * The planned shards whose pixels depend on a pixel box of the grid (monitoring: a new scene's
 * extent): those overlapped by a tile that overlaps the box — a tile's prediction depends on every
 * pixel of it, so a changed pixel can change the whole tile and the shards it is blended into.
 */
export function shardsAffectedBy(plan: RunPlan, layout: TileLayout, box: readonly [number, number, number, number]): ShardRef[] {
  const x0 = Math.max(0, box[0]);
  const y0 = Math.max(0, box[1]);
  const x1 = Math.min(plan.grid.width, box[2]);
  const y1 = Math.min(plan.grid.height, box[3]);
  if (x1 <= x0 || y1 <= y0) return [];
  const T = plan.tiling.tileSize;
  const stride = plan.tiling.stride;
  const j0 = Math.max(0, Math.ceil((x0 - T + 1) / stride));
  const j1 = Math.min(layout.cols - 1, Math.floor((x1 - 1) / stride));
  const i0 = Math.max(0, Math.ceil((y0 - T + 1) / stride));
  const i1 = Math.min(layout.rows - 1, Math.floor((y1 - 1) / stride));
  if (j1 < j0 || i1 < i0) return [];
  const wx = j0 * stride;
  const wy = i0 * stride;
  const wx1 = Math.min(plan.grid.width, j1 * stride + T);
  const wy1 = Math.min(plan.grid.height, i1 * stride + T);
  return [...shardGridOf(plan).overlapping(wx, wy, wx1 - wx, wy1 - wy)].filter((s) => shardIsPlanned(plan, layout, s));
}
