/**
 * Imagery for a run: what each `--imagery` string is (a raster, or STAC to search with the AOI),
 * the scenes chosen, in priority order, and opening them for reading (signing URLs that need it).
 */
import { basename } from 'node:path';
import { stat } from 'node:fs/promises';
import { GeoDinoError, silentLogger, throwIfAborted, type Logger, type Progress } from '@geo-dino/core';
import { union, parseAoi, type Aoi, type MultiPolygonCoords } from '@geo-dino/geometry';
import {
  detectImagerySource,
  displayLocation,
  isHttpHref,
  parseDatetimeRange,
  planetaryComputerSigner,
  searchScenes,
  type AssetSigner,
  type ImagerySource,
  type StacItem,
} from '@geo-dino/stac';
import {
  createBlockCache,
  footprintFromBounds,
  isTileServiceHref,
  openRaster,
  openTileService,
  redactTileUrl,
  type BlockCache,
  type RasterSource,
  type TileServiceParams,
} from '@geo-dino/tiling';
import type { ChmRequest, PlannedSource, SignMode } from './types.js';

export interface SourceContext {
  log: Logger;
  signal?: AbortSignal;
  env: NodeJS.ProcessEnv;
  cwd: string;
  headers?: Record<string, string>;
  progress?: Progress;
}

const PC_HOST = /planetarycomputer\.microsoft\.com|\.blob\.core\.windows\.net/i;

function wantsPcSigning(mode: SignMode, location: string): boolean {
  return mode === 'planetary-computer' || (mode === 'auto' && PC_HOST.test(location));
}

/** Metadata keys some writers use for the acquisition time of a local raster. */
const DATETIME_KEYS = ['ACQUISITIONDATETIME', 'ACQUISITION_DATETIME', 'ACQUISITION_DATE', 'DATE_ACQUIRED', 'DATETIME'];

function rasterDatetime(metadata: Record<string, string>): string | null {
  for (const [k, v] of Object.entries(metadata)) {
    if (!DATETIME_KEYS.includes(k.toUpperCase())) continue;
    const t = Date.parse(v.replace(/^(\d{4}):(\d{2}):(\d{2}) /, '$1-$2-$3T'));
    if (Number.isFinite(t)) return new Date(t).toISOString();
  }
  return null;
}

/** A scene id for a local raster or URL: its file name without the extension. */
function rasterId(href: string): string {
  const name = basename(href.split(/[?#]/)[0]!);
  return name.replace(/\.(tiff?|cog)$/i, '') || name;
}

/** Default target pixel size for choosing a tile service's level before the grid is known (the model's, 0.6 m). */
const DEFAULT_TILE_GSD_M = 0.6;

/**
 * A tile service (`xyz:`/`wmts:`) as a planned source. Tile services carry no acquisition date:
 * the datetime is `--datetime` when given (one day or less: that instant; longer: a range), else
 * unknown (null). The area to read starts as the AOI's box; `planRun` widens it to the grid's.
 */
function plannedTileSource(input: string, request: ChmRequest, aoi: Aoi): PlannedSource {
  const range = request.datetime ? parseDatetimeRange(request.datetime, '--datetime') : null;
  const start = range?.start ?? null;
  const end = range?.end ?? null;
  const instant = start && end && end.getTime() - start.getTime() <= 86_400_000 ? start.toISOString() : null;
  const params: TileServiceParams = { ...(request.tileService ?? {}) };
  let host = 'tiles';
  try {
    host = new URL(input.replace(/^(xyz|wmts):/i, '').replace(/\{[^}]*\}/g, 'x')).hostname;
  } catch {
    /* the service reports a bad template when opened */
  }
  const kind = input.trim().slice(0, 4).toLowerCase() === 'wmts' ? 'wmts' : 'xyz';
  return {
    id: `${kind}-${host}${params.layer ? `-${params.layer}` : ''}`,
    kind: 'tiles',
    href: input.trim(),
    sign: null,
    collection: null,
    datetime: instant,
    startDatetime: instant || !start ? null : start.toISOString(),
    endDatetime: instant || !end ? null : end.toISOString(),
    itemHref: null,
    assetKey: null,
    bands: [0, 1, 2],
    gridBbox: null,
    tiles: { params, bbox: [...aoi.bbox] as [number, number, number, number], gsd: request.gsd ?? DEFAULT_TILE_GSD_M, info: null },
  };
}

/**
 * What outputs (provenance, run.json, STAC) say about a source: its href (tile services with their
 * secrets redacted) and, for a tile service, the template, level, tile matrix set, attribution,
 * and whether its date is known.
 */
export function publishedSource(s: PlannedSource): { href: string; tile_service?: Record<string, unknown> } {
  if (s.kind !== 'tiles' || !s.tiles) return { href: s.href };
  const i = s.tiles.info;
  return {
    href: redactTileUrl(s.href),
    tile_service: {
      kind: i?.kind ?? null,
      template: i?.template ?? null,
      layer: i?.layer ?? null,
      tile_matrix_set: i?.tileMatrixSet ?? null,
      crs: i?.crs ?? null,
      zoom: i?.zoom ?? s.tiles.params.zoom ?? null,
      ground_resolution_m: i?.groundResolutionM ?? null,
      attribution: i?.attribution ?? s.tiles.params.attribution ?? null,
      date: s.datetime || s.startDatetime || s.endDatetime ? 'given by --datetime' : 'unknown (tile services carry no acquisition date)',
    },
  };
}

/** The attributions of the tile services a run used (distinct, in priority order). */
export function tileAttributions(sources: readonly PlannedSource[]): string[] {
  const out: string[] = [];
  for (const s of sources) {
    const a = s.tiles?.info?.attribution ?? s.tiles?.params.attribution;
    if (a && !out.includes(a)) out.push(a);
  }
  return out;
}

/** STAC Item properties for a run that read tile services: each service (redacted) and the attribution. */
export function tileServiceProperties(plan: { sources: readonly PlannedSource[] }): Record<string, unknown> {
  const used = plan.sources.filter((s) => s.kind === 'tiles');
  if (!used.length) return {};
  const attribution = tileAttributions(used);
  return {
    'geo-dino:tile_services': used.map((s) => ({ id: s.id, ...publishedSource(s) })),
    ...(attribution.length ? { 'geo-dino:imagery_attribution': attribution.join('; ') } : {}),
  };
}

export interface ResolvedImagery {
  sources: PlannedSource[];
  /** For requests without an AOI: the union of the rasters' extents. */
  aoi: Aoi;
  /** Identity of each input for the request hash (path + size + mtime for files, else the string). */
  identity: unknown[];
}

/**
 * Resolve the request's imagery strings into scenes, in priority order (the order given; within a
 * STAC source, most recent first). `aoi` is required for STAC sources; without it the AOI becomes
 * the union of the rasters' extents.
 */
export async function resolveImagery(request: ChmRequest, inputs: readonly string[], aoi: Aoi | null, ctx: SourceContext): Promise<ResolvedImagery> {
  const sources: PlannedSource[] = [];
  const identity: unknown[] = [];
  const detected: { input: string; src: ImagerySource | null }[] = [];
  for (const input of inputs) {
    throwIfAborted(ctx.signal);
    if (isTileServiceHref(input)) {
      detected.push({ input, src: null }); // a tile service: opened with the area to read
      continue;
    }
    const src = await detectImagerySource(input, { cwd: ctx.cwd, log: ctx.log, ...(ctx.signal ? { signal: ctx.signal } : {}), ...(ctx.headers ? { headers: ctx.headers } : {}) });
    detected.push({ input, src });
  }
  let theAoi = aoi;
  if (!theAoi) {
    const tileInput = detected.find((d) => d.src === null);
    if (tileInput) {
      throw new GeoDinoError('E_ARGUMENT', `--aoi: is required with a tile service (${redactTileUrl(tileInput.input)}): it covers the world, geo-dino reads the tiles over the AOI`, {
        details: { field: '--aoi' },
      });
    }
    const stacInput = detected.find((d) => d.src !== null && d.src.kind !== 'raster');
    if (stacInput) {
      throw new GeoDinoError('E_ARGUMENT', `--aoi: is required with STAC imagery (${stacInput.input}): geo-dino searches the catalog for the scenes covering the AOI`, {
        details: { field: '--aoi' },
      });
    }
    const parts: MultiPolygonCoords[] = [];
    for (const d of detected) {
      const r = await openForPlanning(d.src?.kind === 'raster' ? d.src.href : d.input, ctx);
      try {
        parts.push(footprintFromBounds(r).geometry);
      } finally {
        await r.close();
      }
    }
    theAoi = parseAoi({ type: 'MultiPolygon', coordinates: union(...parts) }, `extent of ${inputs.join(', ')}`);
  }
  const mode = request.sign ?? 'auto';
  for (const { input, src } of detected) {
    if (src === null) {
      identity.push(input);
      sources.push(plannedTileSource(input, request, theAoi));
      continue;
    }
    if (src.kind === 'raster') {
      const href = src.href;
      let id: unknown = href;
      if (!isHttpHref(href)) {
        const st = await stat(href).catch(() => null);
        id = st ? { path: href, size: st.size, mtimeMs: Math.round(st.mtimeMs) } : href;
      }
      identity.push(id);
      sources.push({
        id: rasterId(href),
        kind: 'raster',
        href,
        sign: isHttpHref(href) && wantsPcSigning(mode, href) ? 'planetary-computer' : null,
        collection: null,
        datetime: null,
        startDatetime: null,
        endDatetime: null,
        itemHref: null,
        assetKey: null,
        bands: null,
        gridBbox: null,
      });
      continue;
    }
    identity.push(input);
    const location = src.kind === 'stac-api' ? src.url : src.href;
    const result = await searchScenes(
      src,
      theAoi,
      {
        ...(request.collections?.length ? { collections: [...request.collections] } : {}),
        ...(request.datetime ? { datetime: request.datetime } : {}),
        ...(request.newerThan ? { newerThan: request.newerThan } : {}),
        ...(request.maxCloud !== undefined ? { maxCloudCover: request.maxCloud } : {}),
      },
      { log: ctx.log, cwd: ctx.cwd, ...(ctx.progress ? { progress: ctx.progress } : {}), ...(ctx.signal ? { signal: ctx.signal } : {}), ...(ctx.headers ? { headers: ctx.headers } : {}) },
    );
    if (result.scenes.length === 0) {
      ctx.log.warn({ source: displayLocation(location), considered: result.considered, eligible: result.eligible }, 'no scene of this source covers the AOI');
      continue;
    }
    ctx.log.info(
      { source: displayLocation(location), scenes: result.scenes.length, coveredPercent: Number(result.coverage.coveredPercent.toFixed(2)) },
      'scenes chosen',
    );
    for (const s of result.scenes) {
      const b = s.asset.bands;
      sources.push({
        id: s.itemId,
        kind: 'stac',
        href: s.unsignedHref,
        sign: wantsPcSigning(mode, location) || wantsPcSigning(mode, s.unsignedHref) ? 'planetary-computer' : null,
        collection: s.collection ?? null,
        datetime: s.datetime,
        startDatetime: s.startDatetime ?? null,
        endDatetime: s.endDatetime ?? null,
        itemHref: s.itemHref,
        assetKey: s.asset.key,
        bands: s.asset.bandsAssumed ? null : [b.red - 1, b.green - 1, b.blue - 1],
        gridBbox: null,
      });
    }
  }
  if (sources.length === 0) {
    throw new GeoDinoError('E_NO_IMAGERY', `no imagery covers ${theAoi.source} in ${inputs.join(', ')}${request.datetime ? ` for ${request.datetime}` : ''}${request.newerThan ? ` newer than ${request.newerThan}` : ''}`, {
      details: { imagery: inputs },
    });
  }
  return { sources, aoi: theAoi, identity };
}

async function openForPlanning(href: string, ctx: SourceContext): Promise<RasterSource> {
  return openRaster(href, {
    log: ctx.log,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    ...(ctx.headers ? { http: { headers: ctx.headers } } : {}),
  });
}

/** Opens scenes for reading: signs hrefs that need it, shares one bounded block cache. */
export class SourceOpener {
  private signer: AssetSigner | null = null;
  readonly cache: BlockCache;

  constructor(
    private readonly ctx: { log?: Logger; signal?: AbortSignal; env?: NodeJS.ProcessEnv; headers?: Record<string, string> },
    cacheBytes: number,
  ) {
    this.cache = createBlockCache(cacheBytes);
  }

  async open(s: PlannedSource): Promise<RasterSource> {
    if (s.kind === 'tiles' && s.tiles) {
      const t = s.tiles;
      const raster = await openTileService(s.href, {
        ...t.params,
        bbox: t.bbox,
        gsd: t.gsd,
        cache: this.cache,
        ...(this.ctx.log ? { log: this.ctx.log } : {}),
        ...(this.ctx.signal ? { signal: this.ctx.signal } : {}),
        ...(this.ctx.env ? { env: this.ctx.env } : {}),
        ...(this.ctx.headers ? { headers: this.ctx.headers } : {}),
      });
      // The level read is fixed from now on (workers and resumes read the same tiles).
      t.info = raster.service;
      t.params = { ...t.params, zoom: raster.service.zoom };
      return raster;
    }
    let href = s.href;
    if (s.sign === 'planetary-computer') {
      const key = this.ctx.env?.['PC_SDK_SUBSCRIPTION_KEY'];
      this.signer ??= planetaryComputerSigner({ ...(this.ctx.log ? { log: this.ctx.log } : {}), ...(key ? { subscriptionKey: key } : {}) });
      // The signer only needs the href's storage account and container; the item is for context.
      const item: StacItem = { type: 'Feature', stac_version: '1.1.0', id: s.id, geometry: null, properties: {}, links: [], assets: {} };
      href = await this.signer(href, { item, assetKey: s.assetKey ?? 'visual', ...(s.collection ? { collection: s.collection } : {}), ...(this.ctx.signal ? { signal: this.ctx.signal } : {}) });
    }
    const raster = await openRaster(href, {
      log: this.ctx.log ?? silentLogger(),
      cache: this.cache,
      ...(this.ctx.signal ? { signal: this.ctx.signal } : {}),
      ...(this.ctx.headers ? { http: { headers: this.ctx.headers } } : {}),
    });
    if (s.kind === 'raster' && s.datetime === null) s.datetime = rasterDatetime(raster.info.metadata);
    return raster;
  }
}
