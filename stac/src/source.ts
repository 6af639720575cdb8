/**
 * Imagery sources: telling what an `--imagery` / `--api` / `--catalog` string is, and searching
 * any of them for the scenes that cover an AOI.
 */
import { open } from 'node:fs/promises';
import { GeoDinoError, fetchBytes, fsError, silentLogger, type Logger } from '@geo-dino/core';
import { isS3Url, s3Get } from '@geo-dino/storage';
import type { Aoi } from '@geo-dino/geometry';
import { openStacApi, searchItems, type OpenStacApiOptions, type SearchParams, type SortBy, type StacApi, type StacRequestOptions } from './client.js';
import type { ConformanceClass } from './conformance.js';
import { intersectRanges, parseDatetimeRange, type DatetimeRange } from './datetime.js';
import { displayLocation, isHttpHref, isOtherSchemeHref, readJsonDocument, resolveHref, toLocation } from './href.js';
import { findLink, parseCatalog, parseCollection, parseItem, parseItemCollection, stacKindOf } from './parse.js';
import { selectScenes, type SceneCriteria, type SceneSelection, type SelectOptions } from './select.js';
import { walkCatalog, type WalkProblem } from './static.js';
import type { GeoJsonGeometry, JsonObject, LocatedItem, StacCatalog, StacCollection, StacItem } from './types.js';

export type ImagerySource =
  /** A raster file or URL to read directly (not STAC). */
  | { kind: 'raster'; href: string }
  /** A STAC API (landing page with item search). `collections` is set when a collection URL was given. */
  | { kind: 'stac-api'; url: string; api: StacApi; collections?: string[] }
  /** A static Catalog or Collection to walk. */
  | { kind: 'stac-catalog'; href: string; document: StacCatalog | StacCollection }
  /** One STAC Item. */
  | { kind: 'stac-item'; href: string; item: StacItem }
  /** An ItemCollection (FeatureCollection of items) file or URL. */
  | { kind: 'stac-item-collection'; href: string; items: StacItem[] };

export type ImagerySourceKind = ImagerySource['kind'];

export interface DetectOptions extends StacRequestOptions {
  cwd?: string;
  assumeConformance?: readonly ConformanceClass[];
}

function isTiffMagic(b: Uint8Array): boolean {
  if (b.length < 4) return false;
  const le = b[0] === 0x49 && b[1] === 0x49 && (b[2] === 42 || b[2] === 43) && b[3] === 0;
  const be = b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && (b[3] === 42 || b[3] === 43);
  return le || be;
}

function looksLikeJson(b: Uint8Array): boolean {
  for (const c of b) {
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0xef || c === 0xbb || c === 0xbf) continue;
    return c === 0x7b || c === 0x5b;
  }
  return false;
}

const RASTER_EXT = /\.(tiff?|vrt|jp2|img)(?:[?#].*)?$/i;

async function headBytes(location: string, options: DetectOptions, log: Logger): Promise<Uint8Array | 'too-big'> {
  if (isHttpHref(location) || isS3Url(location)) {
    const retry = {
      ...(options.retries !== undefined ? { retries: options.retries } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.backoffMs !== undefined ? { backoffMs: options.backoffMs } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      onRetry: (i: { url: string; attempt: number; reason: string }) => log.warn({ url: i.url, attempt: i.attempt, reason: i.reason }, 'retrying'),
    };
    try {
      if (isS3Url(location)) return (await s3Get(location, [0, 65535], { ...retry, maxBytes: 64 * 1024, log })).bytes;
      // A server that ignores Range sends the whole file: up to 64 MiB is read, more is 'too-big'.
      return (await fetchBytes(location, { ...retry, range: [0, 65535], maxBytes: 64 * 1024 * 1024, ...(options.headers ? { headers: options.headers } : {}) })).bytes;
    } catch (err) {
      if (err instanceof GeoDinoError && err.code === 'E_LIMIT') return 'too-big';
      throw err;
    }
  }
  let fh;
  try {
    fh = await open(location, 'r');
  } catch (err) {
    throw fsError(err, location, 'read');
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) {
      throw new GeoDinoError('E_FILE_NOT_FOUND', `${location}: is a directory; give a raster file, a STAC JSON file or a STAC API URL`, { details: { path: location } });
    }
    const buf = new Uint8Array(Math.min(64, st.size));
    await fh.read(buf, 0, buf.length, 0);
    return buf;
  } catch (err) {
    if (err instanceof GeoDinoError) throw err;
    throw fsError(err, location, 'read');
  } finally {
    await fh.close();
  }
}

/**
 * Tell what an imagery string is: a raster (local or URL), a STAC API, a static catalog or
 * collection, a single item, or an ItemCollection. Reads as little as it can: the first bytes of
 * a file, a 64 KiB range of a URL, then the JSON document when it is one.
 */
export async function detectImagerySource(input: string, options: DetectOptions = {}): Promise<ImagerySource> {
  const log = options.log ?? silentLogger();
  if (!input.trim()) throw new GeoDinoError('E_ARGUMENT', 'empty imagery source', { details: {} });
  if (isOtherSchemeHref(input) && !isS3Url(input)) {
    throw new GeoDinoError('E_ARGUMENT', `${input}: ${input.split(':')[0]}:// is not supported; give a local path, an http(s) or an s3:// URL`, { details: { input } });
  }
  const location = toLocation(input, options.cwd);
  const head = await headBytes(location, options, log);
  if (head === 'too-big') {
    if (RASTER_EXT.test(location)) return { kind: 'raster', href: location };
    throw new GeoDinoError('E_ARGUMENT', `${displayLocation(location)}: too large to be a STAC document and not a recognisable raster`, { details: { location } });
  }
  if (isTiffMagic(head)) return { kind: 'raster', href: location };
  if (!looksLikeJson(head)) {
    if (RASTER_EXT.test(location)) return { kind: 'raster', href: location };
    throw new GeoDinoError(
      'E_ARGUMENT',
      `${displayLocation(location)}: neither a GeoTIFF nor a STAC JSON document (expected a raster file, a STAC API URL, a catalog/collection/item JSON)`,
      { details: { location } },
    );
  }
  const doc = await readJsonDocument(location, {
    log,
    ...(options.signal ? { signal: options.signal } : {}),
    fetch: {
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.retries !== undefined ? { retries: options.retries } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.backoffMs !== undefined ? { backoffMs: options.backoffMs } : {}),
    },
  });
  const kind = stacKindOf(doc);
  switch (kind) {
    case 'item':
      return { kind: 'stac-item', href: location, item: parseItem(doc, location) };
    case 'item-collection':
      return { kind: 'stac-item-collection', href: location, items: parseItemCollection(doc, location).features };
    case 'catalog':
    case 'collection': {
      const node = kind === 'collection' ? parseCollection(doc, location) : parseCatalog(doc, location);
      const openOpts: OpenStacApiOptions = { ...options, log };
      if (isHttpHref(location)) {
        const hasSearch = findLink(node.links, 'search') !== undefined || (Array.isArray(node['conformsTo']) && (node['conformsTo'] as unknown[]).length > 0);
        if (hasSearch) {
          const api = await openStacApi(location, openOpts);
          return { kind: 'stac-api', url: api.url, api };
        }
        // A collection served by an API: search the API restricted to this collection.
        const root = findLink(node.links, 'root');
        if (kind === 'collection' && findLink(node.links, 'items') && root) {
          const rootUrl = resolveHref(location, root.href);
          try {
            const api = await openStacApi(rootUrl, openOpts);
            return { kind: 'stac-api', url: api.url, api, collections: [node.id] };
          } catch (err) {
            if (err instanceof GeoDinoError && err.code === 'E_CANCELLED') throw err;
            log.debug({ root: displayLocation(rootUrl), err }, 'collection root is not a searchable API; walking it as a static collection');
          }
        }
      }
      return { kind: 'stac-catalog', href: location, document: node };
    }
    default:
      throw new GeoDinoError('E_BAD_STAC', `${displayLocation(location)}: JSON but not STAC (no Item, ItemCollection, Catalog or Collection "type")`, {
        details: { location },
      });
  }
}

// ---------------------------------------------------------------------------------------------

export type SceneSourceInput =
  | string
  | ImagerySource
  | { api: string | StacApi; collections?: string[] }
  | { catalog: string }
  | { located: readonly LocatedItem[] };

export interface SearchScenesOptions extends SelectOptions, StacRequestOptions {
  cwd?: string;
  /** Page size asked of a STAC API (default 100). */
  pageSize?: number;
  /** Most items read from a source before selecting (default 5000). */
  maxItems?: number;
  assumeConformance?: readonly ConformanceClass[];
  /** Static catalogs: fail on a broken child instead of skipping it. */
  strict?: boolean;
  /**
   * More of the STAC API search (`geo-dino stac search --ids/--sortby/--query/--filter`). `ids` also
   * works on static sources; the others need an API that declares them in its conformance
   * (checked, E_ARGUMENT otherwise). A `filter` is combined with the cloud-cover filter by `and`.
   */
  search?: { ids?: readonly string[]; sortby?: readonly SortBy[] | string; query?: JsonObject; filter?: JsonObject };
}

export interface SceneSearchResult extends SceneSelection {
  source: { kind: Exclude<ImagerySourceKind, 'raster'>; location: string };
  /** What the server did for us (APIs only); the rest was checked here. */
  server?: { spatial: 'intersects' | 'bbox'; datetime: string | null; cloudFilter: 'filter' | 'query' | null; sorted: boolean };
  /** True when `maxItems` stopped the reading of candidates early. */
  truncated: boolean;
  /** Broken catalog entries that were skipped. */
  problems: WalkProblem[];
}

function vertexCount(aoi: Aoi): number {
  return aoi.geometry.reduce((n, poly) => n + poly.reduce((m, ring) => m + ring.length, 0), 0);
}

function toIso(r: DatetimeRange | null): string | null {
  if (!r) return null;
  return `${r.start ? r.start.toISOString() : '..'}/${r.end ? r.end.toISOString() : '..'}`;
}

async function resolveSource(input: SceneSourceInput, options: SearchScenesOptions): Promise<ImagerySource> {
  if (typeof input === 'string') return detectImagerySource(input, options);
  if ('kind' in input) return input;
  if ('api' in input) {
    const api = typeof input.api === 'string' ? await openStacApi(input.api, { ...options }) : input.api;
    return { kind: 'stac-api', url: api.url, api, ...(input.collections ? { collections: input.collections } : {}) };
  }
  if ('catalog' in input) {
    const href = toLocation(input.catalog, options.cwd);
    const doc = await readJsonDocument(href, { ...(options.log ? { log: options.log } : {}), ...(options.signal ? { signal: options.signal } : {}), fetch: { ...(options.headers ? { headers: options.headers } : {}) } });
    const kind = stacKindOf(doc);
    if (kind === 'item') return { kind: 'stac-item', href, item: parseItem(doc, href) };
    if (kind === 'item-collection') return { kind: 'stac-item-collection', href, items: parseItemCollection(doc, href).features };
    if (kind === 'catalog') return { kind: 'stac-catalog', href, document: parseCatalog(doc, href) };
    if (kind === 'collection') return { kind: 'stac-catalog', href, document: parseCollection(doc, href) };
    throw new GeoDinoError('E_BAD_STAC', `${displayLocation(href)}: not a STAC Catalog, Collection, Item or ItemCollection`, { details: { href } });
  }
  return { kind: 'stac-item-collection', href: '(given items)', items: [] };
}

function collectionOverlaps(node: StacCatalog | StacCollection, aoi: Aoi, window: DatetimeRange | null): boolean {
  if (node.type !== 'Collection') return true;
  const ext = (node as StacCollection).extent;
  const b = ext?.spatial?.bbox?.[0];
  if (Array.isArray(b) && (b.length === 4 || b.length === 6)) {
    const [w, s, e, n] = b.length === 4 ? b : [b[0]!, b[1]!, b[3]!, b[4]!];
    const boxes: [number, number, number, number][] = w! <= e! ? [[w!, s!, e!, n!]] : [[w!, s!, 180, n!], [-180, s!, e!, n!]];
    const [aw, as, ae, an] = aoi.bbox;
    const aoiBoxes: [number, number, number, number][] = aoi.crossesAntimeridian ? [[aw, as, 180, an], [-180, as, ae, an]] : [[aw, as, ae, an]];
    const hit = boxes.some((x) => aoiBoxes.some((y) => x[0] <= y[2] && y[0] <= x[2] && x[1] <= y[3] && y[1] <= x[3]));
    if (!hit) return false;
  }
  const iv = ext?.temporal?.interval?.[0];
  if (window && Array.isArray(iv)) {
    const s = iv[0] ? Date.parse(iv[0]) : NaN;
    const e = iv[1] ? Date.parse(iv[1]) : NaN;
    if (window.end && Number.isFinite(s) && s > window.end.getTime()) return false;
    if (window.start && Number.isFinite(e) && e < window.start.getTime()) return false;
  }
  return true;
}

/**
 * Find and choose the scenes that cover `aoi` from a STAC API, a static catalog, an item or an
 * ItemCollection. Filters the server supports (per its conformance) are sent to it; every
 * criterion is checked again here, so a server that ignores one cannot slip a wrong scene in.
 */
export async function searchScenes(input: SceneSourceInput, aoi: Aoi, criteria: SceneCriteria = {}, options: SearchScenesOptions = {}): Promise<SceneSearchResult> {
  const log = options.log ?? silentLogger();
  const source = await resolveSource(input, options);
  const maxItems = options.maxItems ?? 5000;
  const window = criteria.datetime === undefined ? undefined : typeof criteria.datetime === 'string' ? parseDatetimeRange(criteria.datetime, 'datetime') : criteria.datetime;
  const newer = criteria.newerThan === undefined ? undefined : criteria.newerThan instanceof Date ? criteria.newerThan : parseDatetimeRange(criteria.newerThan, 'newerThan').end;
  const effective = intersectRanges(window, newer ? { start: newer, end: null } : undefined);
  const selectCriteria: SceneCriteria = { ...criteria, ...(window ? { datetime: window } : {}) };
  const problems: WalkProblem[] = [];
  const extra = options.search ?? {};
  const wantIds = extra.ids?.length ? new Set(extra.ids) : null;
  if (source.kind !== 'stac-api' && (extra.sortby !== undefined || extra.query || extra.filter)) {
    const flag = extra.filter ? 'filter' : extra.query ? 'query' : 'sortby';
    throw new GeoDinoError('E_ARGUMENT', `${flag}: needs a STAC API (a static catalog, item or ItemCollection cannot be searched that way)`, { details: { field: flag } });
  }
  const byId = <T extends { item: StacItem }>(list: T[]): T[] => (wantIds ? list.filter((l) => wantIds.has(l.item.id)) : list);

  if (source.kind === 'raster') {
    throw new GeoDinoError('E_ARGUMENT', `${displayLocation(source.href)}: a raster file, not a STAC source; use it directly as imagery`, { details: { href: source.href } });
  }
  if (typeof input === 'object' && 'located' in input) {
    const sel = await selectScenes(byId([...input.located]), aoi, selectCriteria, options);
    return { ...sel, source: { kind: 'stac-item-collection', location: '(given items)' }, truncated: false, problems };
  }
  if (source.kind === 'stac-item' || source.kind === 'stac-item-collection') {
    const list = source.kind === 'stac-item' ? [source.item] : source.items;
    const sel = await selectScenes(byId(list.map((item) => ({ item, source: source.href, inCollection: source.kind === 'stac-item-collection' }))), aoi, selectCriteria, options);
    return { ...sel, source: { kind: source.kind, location: source.href }, truncated: false, problems };
  }
  if (source.kind === 'stac-catalog') {
    let count = 0;
    let truncated = false;
    const walk = walkCatalog(source.href, {
      ...options,
      ...(options.strict ? { strict: true } : {}),
      prune: (node) => collectionOverlaps(node, aoi, effective ?? null),
      onProblem: (p) => problems.push(p),
    });
    async function* bounded(): AsyncGenerator<LocatedItem> {
      for await (const li of walk) {
        if (count >= maxItems) {
          truncated = true;
          return;
        }
        count++;
        if (!wantIds || wantIds.has(li.item.id)) yield li;
      }
    }
    const sel = await selectScenes(bounded(), aoi, selectCriteria, options);
    if (truncated) log.warn({ maxItems }, 'catalog has more items than maxItems; only the first ones were considered');
    return { ...sel, source: { kind: 'stac-catalog', location: source.href }, truncated, problems };
  }

  // STAC API.
  const api = source.api;
  const collections = criteria.collections?.length ? [...criteria.collections] : source.collections;
  const params: SearchParams = { limit: options.pageSize ?? 100 };
  if (collections?.length) params.collections = collections;
  if (extra.ids?.length) params.ids = extra.ids;
  if (extra.query) params.query = extra.query;
  const spatial = vertexCount(aoi) <= 1000 ? 'intersects' : 'bbox';
  if (spatial === 'intersects') {
    const geom: GeoJsonGeometry =
      aoi.geometry.length === 1 ? { type: 'Polygon', coordinates: aoi.geometry[0] } : { type: 'MultiPolygon', coordinates: aoi.geometry };
    params.intersects = geom;
  } else {
    params.bbox = aoi.bbox;
  }
  if (effective === null) {
    log.warn('the datetime window ends before the newer-than instant; nothing can match');
    const sel = await selectScenes([], aoi, selectCriteria, options);
    return { ...sel, source: { kind: 'stac-api', location: api.url }, truncated: false, problems, server: { spatial, datetime: null, cloudFilter: null, sorted: false } };
  }
  if (effective.start || effective.end) params.datetime = effective;
  let cloudFilter: 'filter' | 'query' | null = null;
  if (extra.filter) params.filter = extra.filter;
  if (criteria.maxCloudCover !== undefined) {
    const cloud: JsonObject = { op: '<=', args: [{ property: 'eo:cloud_cover' }, criteria.maxCloudCover] };
    if (api.classes.has('filter') && api.classes.has('cql2-json')) {
      params.filter = extra.filter ? { op: 'and', args: [extra.filter, cloud] } : cloud;
      cloudFilter = 'filter';
    } else if (api.classes.has('query')) {
      params.query = { ...(extra.query ?? {}), 'eo:cloud_cover': { lte: criteria.maxCloudCover } };
      cloudFilter = 'query';
    }
  }
  const sorted = extra.sortby !== undefined || api.classes.has('sort');
  params.sortby = extra.sortby ?? (api.classes.has('sort') ? [{ field: 'properties.datetime', direction: 'desc' }] : undefined);
  if (params.sortby === undefined) delete params.sortby;
  let count = 0;
  const it = searchItems(api, params, { ...options, maxItems });
  async function* located(): AsyncGenerator<LocatedItem> {
    for await (const item of it) {
      count++;
      yield { item, source: api.search.POST ?? api.search.GET ?? api.url, inCollection: true };
    }
  }
  const sel = await selectScenes(located(), aoi, selectCriteria, options);
  const truncated = count >= maxItems;
  if (truncated) {
    log.warn({ maxItems, sorted }, sorted ? `more than ${maxItems} matching items; the ${maxItems} most recent were considered` : `more than ${maxItems} matching items and the server cannot sort; only the first ${maxItems} it returned were considered`);
  }
  log.debug({ url: displayLocation(api.url), items: count, spatial, cloudFilter, sorted }, 'STAC API search');
  return {
    ...sel,
    source: { kind: 'stac-api', location: api.url },
    server: { spatial, datetime: params.datetime ? toIso(effective) : null, cloudFilter, sorted },
    truncated,
    problems,
  };
}
