/**
 * STAC for geo-dino's outputs: an Item per run (STAC 1.1.0 with the projection v2, raster v2,
 * processing v1.2, file v2.1 and, for class rasters, classification v2 extensions), and static
 * Catalogs/Collections per run and per monitored region. Everything is written atomically
 * (temporary name, fsync, rename) with hrefs relative to the document, so a run directory can be
 * moved or published as it is.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep, basename } from 'node:path';
import { GEO_DINO_VERSION, GeoDinoError, ensureDir, fsError, readJsonFile, writeJsonAtomic, fileExists } from '@geo-dino/core';
import { bboxOf, parseAoi, type MultiPolygonCoords, type MultiPolygonGeometry, type PolygonGeometry } from '@geo-dino/geometry';
import { portableHref } from './href.js';
import { parseCollection, parseItem } from './parse.js';
import type { Scene } from './select.js';
import type { BandStatistics, JsonObject, StacAsset, StacCatalog, StacCollection, StacItem, StacLink } from './types.js';

export const STAC_VERSION = '1.1.0';
export const EXTENSIONS = {
  projection: 'https://stac-extensions.github.io/projection/v2.0.0/schema.json',
  raster: 'https://stac-extensions.github.io/raster/v2.0.0/schema.json',
  processing: 'https://stac-extensions.github.io/processing/v1.2.0/schema.json',
  file: 'https://stac-extensions.github.io/file/v2.1.0/schema.json',
  classification: 'https://stac-extensions.github.io/classification/v2.0.0/schema.json',
} as const;

export const MEDIA_TYPES = {
  cog: 'image/tiff; application=geotiff; profile=cloud-optimized',
  geotiff: 'image/tiff; application=geotiff',
  pmtiles: 'application/vnd.pmtiles',
  geojson: 'application/geo+json',
  json: 'application/json',
} as const;

/** One entry of a class table (classification extension). */
export interface ClassDefinition {
  value: number;
  /** Machine name: letters, digits, `-` and `_` only. */
  name: string;
  title?: string;
  description?: string;
  /** RRGGBB without `#`. */
  colorHint?: string;
  nodata?: boolean;
  percentage?: number;
  count?: number;
}

export interface OutputBand {
  name: string;
  description?: string;
  dataType: 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';
  nodata?: number | 'nan';
  unit?: string;
  statistics?: BandStatistics;
  classes?: ClassDefinition[];
}

/** The pixel grid of an output raster. */
export interface OutputGrid {
  /** CRS code, e.g. `EPSG:32637`; null with `wkt2` for CRSs without one. */
  code: string | null;
  wkt2?: string;
  /** [rows, cols]. */
  shape: [number, number];
  /** Affine transform in STAC/rasterio order [a, b, c, d, e, f] (6 or 9 numbers). */
  transform: number[];
}

export interface OutputAsset {
  key: string;
  /** The file (absolute, or relative to the current directory). */
  path: string;
  /** Default from the extension (.tif → COG, .pmtiles, .geojson, .json). */
  type?: string;
  roles?: string[];
  title?: string;
  description?: string;
  bands?: OutputBand[];
  /** A grid differing from the item's (e.g. a lower-resolution layer). */
  grid?: OutputGrid;
  /** Record file:checksum and file:size (default true; the file must exist). */
  fileInfo?: boolean;
}

/** A source item the output was made from (a chosen Scene fits). */
export interface SourceRef {
  itemId: string;
  collection?: string;
  /** Absolute URL or path of the source item. */
  itemHref: string;
  datetime: string | null;
  startDatetime?: string;
  endDatetime?: string;
}

export interface ModelInfo {
  name: string;
  /** sha256 of the weights, hex. */
  weightsSha256: string;
  version?: string;
}

export interface OutputItemInput {
  id: string;
  /** Where the item file will be written; asset and link hrefs are made relative to it. */
  itemPath: string;
  /** Where the item will live once its run directory is moved into place (default: next to `itemPath`); local hrefs are relative to it. */
  finalDir?: string;
  /** Footprint of the output, lon/lat (the AOI part actually mapped). */
  geometry: PolygonGeometry | MultiPolygonGeometry;
  grid: OutputGrid;
  assets: OutputAsset[];
  sources: readonly SourceRef[];
  model: ModelInfo;
  /** True when the weights are the random demo model (results are meaningless). */
  demo: boolean;
  /** Software name → version besides geo-dino (e.g. onnxruntime-node). */
  software?: Record<string, string>;
  /** geo-dino's version (default: this build). */
  softwareVersion?: string;
  /** Processing time (default now). */
  created?: Date;
  /** When there are no STAC sources (a local raster), its acquisition time if known. */
  acquisition?: { datetime?: string; start?: string; end?: string };
  title?: string;
  description?: string;
  /** Free-text lineage; a default describing model and sources is written otherwise. */
  lineage?: string;
  /** More properties (use a `geo-dino:` prefix). */
  properties?: JsonObject;
  /**
   * The item's public URL (absolute: https://… or s3://…), written as its `self` link. Omitted
   * when unknown: STAC requires `self` to be absolute, and a self-contained directory (relative
   * hrefs, pystac's SELF_CONTAINED) has none.
   */
  selfHref?: string;
}

function bad(message: string, details: Record<string, unknown> = {}): GeoDinoError {
  return new GeoDinoError('E_ARGUMENT', message, { details });
}

/** Multihash (sha2-256, hex) and size of a file, read as a stream. */
export async function fileChecksum(path: string): Promise<{ checksum: string; size: number }> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw fsError(err, path, 'read');
  }
  const hash = createHash('sha256');
  await new Promise<void>((res, rej) => {
    const s = createReadStream(path);
    s.on('data', (c) => hash.update(c));
    s.on('error', (err) => rej(fsError(err, path, 'read')));
    s.on('end', () => res());
  });
  return { checksum: '1220' + hash.digest('hex'), size };
}

/** Relative href from a document to a file, with `/` separators and a leading `./`. */
/**
 * A public base URL (where a run directory is published), checked: absolute, with a scheme
 * (`https://…`, `s3://…`); no query or fragment. Returned without trailing slashes.
 */
export function parseBaseUrl(value: string, field = '--stac-base-url'): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw bad(`${field}: ${JSON.stringify(value)} is not an absolute URL (give https://host/path or s3://bucket/prefix, where the run directory is published)`, { field, value });
  }
  if (u.search || u.hash || !u.host) throw bad(`${field}: ${JSON.stringify(value)} must be a URL with a host and no query or fragment (https://host/path or s3://bucket/prefix)`, { field, value });
  return value.replace(/\/+$/, '');
}

/** The public URL of a file at `relPath` (relative, / separated) under the published base URL. */
export function publicHref(baseUrl: string, relPath: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${relPath.split(sep).join('/').replace(/^\.\//, '')}`;
}

export function relativeHref(fromDocument: string, target: string): string {
  const rel = relative(dirname(resolve(fromDocument)), resolve(target)).split(sep).join('/');
  return rel.startsWith('.') ? rel : `./${rel}`;
}

function mediaTypeFor(path: string): string | undefined {
  if (/\.tiff?$/i.test(path)) return MEDIA_TYPES.cog;
  if (/\.pmtiles$/i.test(path)) return MEDIA_TYPES.pmtiles;
  if (/\.geojson$/i.test(path)) return MEDIA_TYPES.geojson;
  if (/\.json$/i.test(path)) return MEDIA_TYPES.json;
  return undefined;
}

function checkGrid(g: OutputGrid, where: string): void {
  if (!Array.isArray(g.shape) || g.shape.length !== 2 || !g.shape.every((v) => Number.isInteger(v) && v > 0)) {
    throw bad(`${where}: grid shape must be [rows, cols] of positive integers (got ${JSON.stringify(g.shape)})`, { shape: g.shape });
  }
  if (!Array.isArray(g.transform) || (g.transform.length !== 6 && g.transform.length !== 9) || !g.transform.every(Number.isFinite)) {
    throw bad(`${where}: grid transform must be 6 or 9 finite numbers [a, b, c, d, e, f] (got ${JSON.stringify(g.transform)})`, { transform: g.transform });
  }
  if (g.code !== null && !/^[A-Za-z]+:[\w.-]+$/.test(g.code)) throw bad(`${where}: CRS code must look like EPSG:32637 (got ${JSON.stringify(g.code)})`, { code: g.code });
  if (g.code === null && !g.wkt2) throw bad(`${where}: a grid without a CRS code needs wkt2`, {});
}

/** Bounds [minx, miny, maxx, maxy] of a grid in its own CRS. */
export function gridBounds(g: OutputGrid): [number, number, number, number] {
  const [a, b, c, d, e, f] = g.transform as [number, number, number, number, number, number];
  const [rows, cols] = g.shape;
  const xs: number[] = [];
  const ys: number[] = [];
  for (const [col, row] of [
    [0, 0],
    [cols, 0],
    [0, rows],
    [cols, rows],
  ] as const) {
    xs.push(a * col + b * row + c);
    ys.push(d * col + e * row + f);
  }
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

function projFields(g: OutputGrid): JsonObject {
  return {
    'proj:code': g.code,
    ...(g.wkt2 ? { 'proj:wkt2': g.wkt2 } : {}),
    'proj:shape': [...g.shape],
    'proj:transform': [...g.transform],
    'proj:bbox': gridBounds(g),
  };
}

const GEOGRAPHIC_CODES = /^EPSG:(4326|4269|4258|4283|4617|4674)$/i;

function resolutionM(g: OutputGrid, latitude: number): number {
  const t = g.transform;
  const px = Math.hypot(t[0]!, t[3]!);
  const py = Math.hypot(t[1]!, t[4]!);
  const r = Math.sqrt(px * py);
  return g.code && GEOGRAPHIC_CODES.test(g.code) ? r * 111_320 * Math.cos((latitude * Math.PI) / 180) : r;
}

function classObjects(classes: readonly ClassDefinition[], where: string): JsonObject[] {
  const values = new Set<number>();
  return classes.map((c, i) => {
    if (!Number.isInteger(c.value)) throw bad(`${where}: classes[${i}].value must be an integer (got ${c.value})`);
    if (values.has(c.value)) throw bad(`${where}: classes[${i}].value ${c.value} is used twice`);
    values.add(c.value);
    if (!/^[0-9A-Za-z_-]+$/.test(c.name)) throw bad(`${where}: classes[${i}].name ${JSON.stringify(c.name)} may only contain letters, digits, "-" and "_"`);
    if (c.colorHint !== undefined && !/^[0-9A-Fa-f]{6}$/.test(c.colorHint)) throw bad(`${where}: classes[${i}].colorHint must be RRGGBB hex (got ${JSON.stringify(c.colorHint)})`);
    return {
      value: c.value,
      name: c.name,
      ...(c.title ? { title: c.title } : {}),
      ...(c.description ? { description: c.description } : {}),
      ...(c.colorHint ? { color_hint: c.colorHint.toUpperCase() } : {}),
      ...(c.nodata !== undefined ? { nodata: c.nodata } : {}),
      ...(c.percentage !== undefined ? { percentage: c.percentage } : {}),
      ...(c.count !== undefined ? { count: c.count } : {}),
    };
  });
}

function statsObject(s: BandStatistics): JsonObject {
  const out: JsonObject = {};
  for (const k of ['minimum', 'maximum', 'mean', 'stddev', 'count', 'valid_percent'] as const) {
    const v = s[k];
    if (v !== undefined) {
      if (!Number.isFinite(v)) throw bad(`statistics.${k} must be a finite number (got ${v})`);
      out[k] = v;
    }
  }
  return out;
}

/** Acquisition times of the sources: one → datetime; several → start/end (datetime null). */
export function acquisitionProperties(sources: readonly SourceRef[], fallback?: OutputItemInput['acquisition'], created?: Date): JsonObject {
  const times: number[] = [];
  for (const s of sources) {
    for (const v of [s.datetime, s.startDatetime, s.endDatetime]) {
      if (typeof v === 'string') {
        const t = Date.parse(v);
        if (Number.isFinite(t)) times.push(t);
      }
    }
  }
  if (times.length === 0) {
    if (fallback?.datetime) return { datetime: new Date(fallback.datetime).toISOString() };
    if (fallback?.start && fallback.end) return { datetime: null, start_datetime: new Date(fallback.start).toISOString(), end_datetime: new Date(fallback.end).toISOString() };
    // Unknown acquisition time: STAC needs one; use the processing time and say so.
    return { datetime: (created ?? new Date()).toISOString(), 'geo-dino:acquisition_unknown': true };
  }
  const min = Math.min(...times);
  const max = Math.max(...times);
  if (min === max) return { datetime: new Date(min).toISOString() };
  return { datetime: null, start_datetime: new Date(min).toISOString(), end_datetime: new Date(max).toISOString() };
}

/** A SourceRef from a chosen scene. */
export function sourceFromScene(scene: Scene): SourceRef {
  return {
    itemId: scene.itemId,
    ...(scene.collection ? { collection: scene.collection } : {}),
    itemHref: scene.itemHref,
    datetime: scene.datetime,
    ...(scene.startDatetime ? { startDatetime: scene.startDatetime } : {}),
    ...(scene.endDatetime ? { endDatetime: scene.endDatetime } : {}),
  };
}

function footprint(geometry: PolygonGeometry | MultiPolygonGeometry, where: string): { geometry: JsonObject; bbox: number[] } {
  let coords: MultiPolygonCoords;
  try {
    coords = parseAoi(geometry, `${where}: geometry`).geometry;
  } catch (err) {
    throw bad((err as Error).message);
  }
  const b = bboxOf(coords);
  const g = coords.length === 1 ? { type: 'Polygon', coordinates: coords[0] } : { type: 'MultiPolygon', coordinates: coords };
  return { geometry: g as JsonObject, bbox: [...b] };
}

/** Build the STAC Item describing a run's outputs (reads the asset files for checksums). */
export async function buildOutputItem(input: OutputItemInput): Promise<StacItem> {
  const where = `item ${input.id}`;
  if (!/^[^\s/\\]+$/.test(input.id)) throw bad(`${where}: id must not be empty or contain spaces or slashes`, { id: input.id });
  checkGrid(input.grid, where);
  if (!input.model?.name) throw bad(`${where}: model.name is required`);
  if (!/^[0-9a-f]{64}$/i.test(input.model.weightsSha256 ?? '')) throw bad(`${where}: model.weightsSha256 must be 64 hex digits (got ${JSON.stringify(input.model.weightsSha256)})`);
  if (input.assets.length === 0) throw bad(`${where}: at least one asset is required`);
  const created = input.created ?? new Date();
  const fp = footprint(input.geometry, where);
  const lat = (fp.bbox[1]! + fp.bbox[3]!) / 2;
  let usesClassification = false;

  const assets: Record<string, StacAsset> = {};
  for (const a of input.assets) {
    const aw = `${where}: assets.${a.key}`;
    if (assets[a.key]) throw bad(`${aw}: asset key used twice`);
    if (a.grid) checkGrid(a.grid, aw);
    const grid = a.grid ?? input.grid;
    const asset: StacAsset = {
      href: relativeHref(input.itemPath, a.path),
      ...(a.type ?? mediaTypeFor(a.path) ? { type: a.type ?? mediaTypeFor(a.path)! } : {}),
      ...(a.title ? { title: a.title } : {}),
      ...(a.description ? { description: a.description } : {}),
      roles: a.roles ?? ['data'],
    };
    if (a.grid) Object.assign(asset, projFields(a.grid));
    if (a.bands?.length) {
      const res = resolutionM(grid, lat);
      asset['bands'] = a.bands.map((b, i) => {
        const band: JsonObject = {
          name: b.name,
          ...(b.description ? { description: b.description } : {}),
          data_type: b.dataType,
          ...(b.nodata !== undefined ? { nodata: b.nodata } : {}),
          ...(b.unit ? { unit: b.unit } : {}),
          ...(b.statistics ? { statistics: statsObject(b.statistics) } : {}),
          'raster:spatial_resolution': res,
          'raster:sampling': 'area',
        };
        if (b.classes?.length) {
          usesClassification = true;
          band['classification:classes'] = classObjects(b.classes, `${aw}.bands[${i}]`);
        }
        return band;
      });
    }
    if (a.fileInfo !== false) {
      const info = await fileChecksum(a.path);
      asset['file:checksum'] = info.checksum;
      asset['file:size'] = info.size;
    }
    assets[a.key] = asset;
  }

  // The model is software too: its name with the weights hash as its version.
  const software: Record<string, string> = {
    'geo-dino': input.softwareVersion ?? GEO_DINO_VERSION,
    ...(input.software ?? {}),
    [input.model.name]: `sha256:${input.model.weightsSha256.toLowerCase()}`,
  };
  const sourcesText = input.sources.length
    ? `${input.sources.length} source scene${input.sources.length > 1 ? 's' : ''} (${input.sources
        .slice(0, 5)
        .map((s) => s.itemId)
        .join(', ')}${input.sources.length > 5 ? ', ...' : ''})`
    : 'a local raster';
  const lineage =
    input.lineage ??
    `${input.model.name} (weights sha256:${input.model.weightsSha256.toLowerCase()}${input.demo ? ', DEMO weights: values are not meaningful' : ''}) run by geo-dino ${software['geo-dino']} on ${sourcesText}.`;

  const properties: JsonObject = {
    ...(input.title ? { title: input.title } : {}),
    ...(input.description ? { description: input.description } : {}),
    ...acquisitionProperties(input.sources, input.acquisition, created),
    created: created.toISOString(),
    ...projFields(input.grid),
    'processing:software': software,
    'processing:lineage': lineage,
    'processing:datetime': created.toISOString(),
    'geo-dino:model': {
      name: input.model.name,
      weights_sha256: input.model.weightsSha256.toLowerCase(),
      ...(input.model.version ? { version: input.model.version } : {}),
    },
    'geo-dino:demo': input.demo,
    ...(input.properties ?? {}),
  };

  const links: StacLink[] = [
    ...(input.selfHref ? [{ rel: 'self', href: input.selfHref, type: MEDIA_TYPES.geojson }] : []),
    ...input.sources.map((s) => ({
    rel: 'derived_from',
    // Local source items relative to the item (the run directory can move with its sources); URLs kept.
    href: portableHref(s.itemHref, input.finalDir ? resolve(input.finalDir) : dirname(resolve(input.itemPath))),
    type: 'application/geo+json',
    title: s.collection ? `${s.collection}/${s.itemId}` : s.itemId,
    })),
  ];

  const extensions: string[] = [EXTENSIONS.projection, EXTENSIONS.raster, EXTENSIONS.processing, EXTENSIONS.file];
  if (usesClassification) extensions.push(EXTENSIONS.classification);
  return {
    type: 'Feature',
    stac_version: STAC_VERSION,
    stac_extensions: extensions,
    id: input.id,
    geometry: fp.geometry as unknown as StacItem['geometry'],
    bbox: fp.bbox,
    properties: properties as StacItem['properties'],
    links,
    assets,
  };
}

/** Build and write the run's Item atomically; returns its path and content. */
export async function writeOutputItem(input: OutputItemInput): Promise<{ path: string; item: StacItem }> {
  const item = await buildOutputItem(input);
  await ensureDir(dirname(resolve(input.itemPath)));
  await writeJsonAtomic(input.itemPath, item);
  return { path: input.itemPath, item };
}

// ---------------------------------------------------------------------------------------------
// Catalogs and collections

export interface CatalogInput {
  id: string;
  title?: string;
  description: string;
  /** Child catalog/collection files. */
  children?: readonly string[];
  /** Item files. */
  items?: readonly string[];
}

function withoutLinks(links: readonly StacLink[], rels: readonly string[]): StacLink[] {
  return links.filter((l) => !rels.includes(l.rel));
}

/** Write a self-contained static Catalog linking its children and items with relative hrefs. */
export async function writeCatalog(path: string, input: CatalogInput): Promise<StacCatalog> {
  const catalog: StacCatalog = {
    type: 'Catalog',
    stac_version: STAC_VERSION,
    id: input.id,
    ...(input.title ? { title: input.title } : {}),
    description: input.description,
    links: [
      { rel: 'root', href: './' + basename(path), type: MEDIA_TYPES.json },
      ...(input.children ?? []).map((c) => ({ rel: 'child', href: relativeHref(path, c), type: MEDIA_TYPES.json })),
      ...(input.items ?? []).map((i) => ({ rel: 'item', href: relativeHref(path, i), type: MEDIA_TYPES.geojson })),
    ],
  };
  await ensureDir(dirname(resolve(path)));
  await writeJsonAtomic(path, catalog);
  return catalog;
}

export interface CollectionInput {
  id: string;
  title?: string;
  description: string;
  /** SPDX id or `other` / `proprietary` (default `proprietary`). */
  license?: string;
  keywords?: string[];
  providers?: StacCollection['providers'];
  /** Extra fields (summaries, `geo-dino:` properties). */
  extra?: JsonObject;
}

function itemInterval(item: StacItem): [number | null, number | null] {
  const p = item.properties;
  const parse = (v: unknown): number | null => (typeof v === 'string' && Number.isFinite(Date.parse(v)) ? Date.parse(v) : null);
  const s = parse(p['start_datetime']) ?? parse(p.datetime);
  const e = parse(p['end_datetime']) ?? parse(p.datetime);
  return [s, e];
}

function extentOf(items: readonly StacItem[]): StacCollection['extent'] {
  let w = Infinity;
  let s = Infinity;
  let e = -Infinity;
  let n = -Infinity;
  let t0: number | null = null;
  let t1: number | null = null;
  for (const it of items) {
    const b = it.bbox;
    if (b && b.length >= 4) {
      const [bw, bs, be, bn] = b.length === 6 ? [b[0]!, b[1]!, b[3]!, b[4]!] : [b[0]!, b[1]!, b[2]!, b[3]!];
      w = Math.min(w, bw);
      s = Math.min(s, bs);
      e = Math.max(e, be);
      n = Math.max(n, bn);
    }
    const [a, z] = itemInterval(it);
    if (a !== null) t0 = t0 === null ? a : Math.min(t0, a);
    if (z !== null) t1 = t1 === null ? z : Math.max(t1, z);
  }
  const bbox = Number.isFinite(w) ? [w, s, e, n] : [-180, -90, 180, 90];
  return {
    spatial: { bbox: [bbox] },
    temporal: { interval: [[t0 === null ? null : new Date(t0).toISOString(), t1 === null ? null : new Date(t1).toISOString()]] },
  };
}

export interface CollectionLinkOptions {
  /**
   * Where the Collection's directory is published (absolute URL, see parseBaseUrl): the
   * Collection and each item then get an absolute `self` link. Without it there is no `self`
   * (STAC requires it absolute; pystac's SELF_CONTAINED layout).
   */
  baseUrl?: string;
}

/**
 * Write a Collection holding the given item files (e.g. every run of a monitored region), with
 * its extent computed from them. Each item file is rewritten with `collection`, `parent` and
 * `root` links pointing back (relative), and `self` only with a public base URL, atomically.
 */
export async function writeCollection(path: string, input: CollectionInput, itemPaths: readonly string[], options: CollectionLinkOptions = {}): Promise<StacCollection> {
  const base = options.baseUrl;
  const selfOf = (p: string): string => publicHref(base!, relative(dirname(resolve(path)), resolve(p)));
  const items: { path: string; item: StacItem }[] = [];
  for (const p of itemPaths) items.push({ path: p, item: parseItem(await readJsonFile(p), p) });
  const ids = new Set<string>();
  for (const { item, path: p } of items) {
    if (ids.has(item.id)) throw bad(`${p}: item id ${item.id} appears twice in collection ${input.id}`, { id: item.id });
    ids.add(item.id);
  }
  const collection: StacCollection = {
    type: 'Collection',
    stac_version: STAC_VERSION,
    id: input.id,
    ...(input.title ? { title: input.title } : {}),
    description: input.description,
    license: input.license ?? 'proprietary',
    ...(input.keywords ? { keywords: input.keywords } : {}),
    ...(input.providers ? { providers: input.providers } : {}),
    extent: extentOf(items.map((i) => i.item)),
    links: [
      { rel: 'root', href: './' + basename(path), type: MEDIA_TYPES.json },
      ...(base ? [{ rel: 'self', href: selfOf(path), type: MEDIA_TYPES.json }] : []),
      ...items.map(({ path: p, item }) => ({ rel: 'item', href: relativeHref(path, p), type: MEDIA_TYPES.geojson, title: item.id })),
    ],
    ...(input.extra ?? {}),
  };
  await ensureDir(dirname(resolve(path)));
  for (const { path: p, item } of items) {
    const back = relativeHref(p, path);
    const updated: StacItem = {
      ...item,
      collection: input.id,
      links: [
        // `self` only where the public URL is known: STAC requires it absolute, and without one these
        // directories are self-contained (relative hrefs).
        ...(base ? [{ rel: 'self', href: selfOf(p), type: MEDIA_TYPES.geojson }] : []),
        ...withoutLinks(item.links, ['collection', 'parent', 'root', 'self']),
        { rel: 'collection', href: back, type: MEDIA_TYPES.json },
        { rel: 'parent', href: back, type: MEDIA_TYPES.json },
        { rel: 'root', href: back, type: MEDIA_TYPES.json },
      ],
    };
    await writeJsonAtomic(p, updated);
  }
  await writeJsonAtomic(path, collection);
  return collection;
}

/**
 * Add one item (a new monitoring run) to a region's Collection, creating the collection when it
 * does not exist yet. The items already listed are kept; the extent is recomputed from all.
 */
export async function addItemToCollection(path: string, itemPath: string, input: CollectionInput, options: CollectionLinkOptions = {}): Promise<StacCollection> {
  let existing: string[] = [];
  if (await fileExists(path)) {
    const c = parseCollection(await readJsonFile(path), path);
    if (c.id !== input.id) throw bad(`${path}: holds collection ${c.id}, not ${input.id}`, { path });
    existing = c.links.filter((l) => l.rel === 'item').map((l) => (isAbsolute(l.href) ? l.href : resolve(dirname(resolve(path)), l.href)));
  }
  const target = resolve(itemPath);
  const paths = existing.some((p) => resolve(p) === target) ? existing : [...existing, target];
  return writeCollection(path, input, paths, options);
}
