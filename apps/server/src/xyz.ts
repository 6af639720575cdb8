/**
 * XYZ tiles and TileJSON for GIS clients (QGIS "XYZ Tiles", Leaflet, OpenLayers, MapLibre,
 * titiler-style clients):
 *
 *   GET /tiles/<run>/<layer>/tilejson.json        TileJSON 3.0.0 (bounds, zooms, attribution, tile URL)
 *   GET /tiles/<run>/<layer>/{z}/{x}/{y}.png      the archive's tile as stored (height/uncertainty:
 *                                                 Terrarium PNG; land cover: class PNG)
 *   GET /tiles/<run>/<layer>/{z}/{x}/{y}.webp     imagery
 *   ?colormap_name=viridis&rescale=0,40           coloured PNG (value layers; land cover: its class colours)
 *
 * `<run>` is the run's id as /api/runs names it (its path under the served directory; the
 * directory itself when there is none); `<layer>` is height, uncertainty, imagery, landcover or
 * an archive's stem. A tile the archive does not hold is 204 No Content (an empty tile).
 */
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { PMTiles } from 'pmtiles';
import { colourTile, isValueEncoding, RAMPS, type LayerName } from '@geo-dino/pmtiles';
import { HttpError, sendJson } from './http.js';
import { LocalSource, runDir, type LayerInfo, type RunInfo } from './runs.js';

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const EXT_CONTENT: Record<string, string> = { png: 'image/png', webp: 'image/webp', jpg: 'image/jpeg', jpeg: 'image/jpeg' };

export type TilesRoute =
  | { kind: 'tilejson'; run: string; layer: string }
  | { kind: 'tile'; run: string; layer: string; z: number; x: number; y: number; ext: string };

/** Parse the part of a /tiles/ URL after the prefix; null when it is not a tile or TileJSON path. */
export function parseTilesPath(rest: string): TilesRoute | null {
  let segs: string[];
  try {
    segs = rest.split('/').map((s) => decodeURIComponent(s));
  } catch {
    return null;
  }
  if (segs.length > 12 || segs.some((s) => !SEGMENT.test(s))) return null;
  if (segs.length >= 2 && segs[segs.length - 1] === 'tilejson.json') {
    return { kind: 'tilejson', run: segs.slice(0, -2).join('/') || '.', layer: segs[segs.length - 2]! };
  }
  if (segs.length >= 4) {
    const m = /^(\d{1,2})$/.exec(segs[segs.length - 3]!);
    const xm = /^(\d{1,8})$/.exec(segs[segs.length - 2]!);
    const ym = /^(\d{1,8})\.(png|webp|jpe?g)$/.exec(segs[segs.length - 1]!);
    if (!m || !xm || !ym) return null;
    const z = Number(m[1]);
    const x = Number(xm[1]);
    const y = Number(ym[1]);
    if (z > 30 || x >= 2 ** z || y >= 2 ** z) return null;
    return { kind: 'tile', run: segs.slice(0, -4).join('/') || '.', layer: segs[segs.length - 4]!, z, x, y, ext: ym[2]! };
  }
  return null;
}

/** `/tiles/<run>/<layer>` for a run id ("." = the served directory). */
export function tilesPrefix(runId: string, layer: string): string {
  const parts = runId === '.' ? [layer] : [...runId.split('/'), layer];
  return '/tiles/' + parts.map(encodeURIComponent).join('/');
}

interface ColourRequest {
  colormap: string;
  min: number;
  max: number;
  /** The query string to repeat on tile URLs. */
  query: string;
}

/** `colormap_name` (or `colormap`) and `rescale=min,max` from a query; null when no colour is asked. */
export function colourRequest(q: URLSearchParams, layer: LayerInfo): ColourRequest | null {
  const name = q.get('colormap_name') ?? q.get('colormap');
  const rescale = q.get('rescale');
  if (name === null && rescale === null) return null;
  const colormap = name ?? (layer.layer === 'uncertainty' ? 'magma' : 'canopy');
  if (!Object.hasOwn(RAMPS, colormap)) throw new HttpError(400, `colormap_name must be one of ${Object.keys(RAMPS).join(', ')}`);
  let min = layer.geoDino?.min ?? 0;
  let max = layer.geoDino?.max ?? 1;
  if (rescale !== null) {
    const parts = rescale.split(',').map((v) => (v.trim() === '' ? NaN : Number(v)));
    if (parts.length !== 2 || !parts.every(Number.isFinite) || !(parts[1]! > parts[0]!)) throw new HttpError(400, 'rescale must be min,max with min < max');
    [min, max] = parts as [number, number];
  }
  const params = new URLSearchParams({ colormap_name: colormap, rescale: `${min},${max}` });
  return { colormap, min, max, query: params.toString() };
}

function layerFor(run: RunInfo, id: string): LayerInfo {
  const layer = run.layers.find((l) => l.id === id);
  if (!layer) throw new HttpError(404, 'unknown layer');
  if (layer.tileType === 'mvt' || layer.tileType === 'unknown') throw new HttpError(404, 'not a raster layer');
  return layer;
}

/** TileJSON 3.0.0 for a layer; `origin` is how the client reached us (scheme://host:port). */
export function tileJsonFor(run: RunInfo, layer: LayerInfo, origin: string, colour: ColourRequest | null): Record<string, unknown> {
  const coloured = colour !== null && layer.geoDino !== null && layer.geoDino.encoding.type !== 'rgb';
  const ext = coloured ? 'png' : layer.tileType;
  const tiles = `${origin}${tilesPrefix(run.id, layer.id)}/{z}/{x}/{y}.${ext}${coloured ? `?${colour.query}` : ''}`;
  const enc = layer.geoDino?.encoding;
  return {
    tilejson: '3.0.0',
    name: layer.name ?? `${run.name} ${layer.id}`,
    description: `${run.name}: ${layer.id}${coloured ? ` coloured with ${colour.colormap} from ${colour.min} to ${colour.max}` : isValueEncoding(enc) && enc.type === 'terrarium' ? ' (Terrarium-encoded values, alpha 0 = nodata)' : ''}`,
    version: '1.0.0',
    attribution: layer.attribution ?? '',
    scheme: 'xyz',
    tiles: [tiles],
    minzoom: layer.minzoom,
    maxzoom: layer.maxzoom,
    bounds: layer.bounds,
    center: layer.center,
    format: ext,
    // MapLibre raster-dem reads `encoding` from TileJSON: value layers are Terrarium.
    ...(!coloured && isValueEncoding(enc) && enc.type === 'terrarium' ? { encoding: 'terrarium' } : {}),
    ...(layer.geoDino ? { 'geo-dino:layer': layer.layer as LayerName | null, 'geo-dino:units': layer.geoDino.units, 'geo-dino:demo': layer.geoDino.demo } : {}),
  };
}

/** Reads tiles from the runs' archives (one reader per file, kept). */
export class TileArchives {
  private readonly archives = new Map<string, PMTiles>();
  get(path: string): PMTiles {
    let a = this.archives.get(path);
    if (!a) {
      if (this.archives.size > 64) this.archives.clear();
      a = new PMTiles(new LocalSource(path));
      this.archives.set(path, a);
    }
    return a;
  }
}

/** Answer a /tiles/ request. `origin` builds TileJSON's absolute tile URLs. */
export async function serveTiles(
  res: ServerResponse,
  route: TilesRoute,
  q: URLSearchParams,
  ctx: { root: string; runs: () => Promise<RunInfo[]>; archives: TileArchives; origin: string; head: boolean },
): Promise<void> {
  const run = (await ctx.runs()).find((r) => r.id === route.run);
  if (!run) throw new HttpError(404, 'unknown run');
  const layer = layerFor(run, route.layer);
  const colour = colourRequest(q, layer);
  if (route.kind === 'tilejson') {
    return sendJson(res, 200, tileJsonFor(run, layer, ctx.origin, colour), ctx.head);
  }
  const coloured = colour !== null && layer.geoDino !== null && layer.geoDino.encoding.type !== 'rgb';
  const ext = route.ext === 'jpg' ? 'jpeg' : route.ext;
  if (coloured ? ext !== 'png' : ext !== layer.tileType) throw new HttpError(404, `this layer's tiles are .${coloured ? 'png' : layer.tileType}`);
  const tile = await ctx.archives.get(join(runDir(ctx.root, run), layer.file)).getZxy(route.z, route.x, route.y);
  res.setHeader('Cache-Control', 'no-cache');
  if (!tile) {
    res.statusCode = 204;
    res.end();
    return;
  }
  const body = coloured ? await colourTile(new Uint8Array(tile.data), layer.geoDino!.encoding, layer.geoDino!.classes, colour) : new Uint8Array(tile.data);
  res.statusCode = 200;
  res.setHeader('Content-Type', EXT_CONTENT[ext] ?? 'application/octet-stream');
  res.setHeader('Content-Length', body.byteLength);
  res.end(ctx.head ? undefined : body);
}
