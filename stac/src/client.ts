/**
 * STAC API client: landing page and conformance discovery, item search by POST or GET, and
 * pagination by `next` links (GET links, and POST links with a body, merged when `merge` is true),
 * with guards against links that repeat, pages that repeat, and endless empty pages.
 *
 * Every request goes through core's fetch helpers: a deadline over headers and body, retries with
 * backoff on 5xx/429/connection errors, byte caps, and errors that name the URL.
 */
import {
  GeoDinoError,
  fetchJson,
  silentLogger,
  silentProgress,
  throwIfAborted,
  type Logger,
  type Progress,
} from '@geo-dino/core';
import { conformanceClasses, type ConformanceClass } from './conformance.js';
import { formatDatetimeRange, parseDatetimeRange, type DatetimeRange } from './datetime.js';
import { displayLocation, isHttpHref, resolveHref } from './href.js';
import { findLink, parseCatalog, parseItemCollection, stacKindOf } from './parse.js';
import type { GeoJsonGeometry, JsonObject, StacItem, StacItemCollection, StacLandingPage, StacLink } from './types.js';

/** Options every network-facing call takes. */
export interface StacRequestOptions {
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
  /** Extra request headers (for example an API key); kept on every page. */
  headers?: Record<string, string>;
  /** Retries after the first attempt (core default 4). */
  retries?: number;
  /** First backoff in ms (core default 250). */
  backoffMs?: number;
  /** Deadline for one request, headers and body together (core default 30 s). */
  timeoutMs?: number;
  /** Refuse response bodies larger than this (default 64 MiB). */
  maxBytes?: number;
}

export interface StacApi {
  /** The landing page URL. */
  url: string;
  landing: StacLandingPage;
  /** The server's `conformsTo` list (from the landing page or `/conformance`). */
  conformsTo: string[];
  /** Recognised conformance classes, plus any the caller asked to assume. */
  classes: Set<ConformanceClass>;
  /** Search endpoints by method. */
  search: { GET?: string; POST?: string };
  /** True when the landing page had no `conformsTo` (STAC API < 1.0). */
  legacy: boolean;
}

export interface OpenStacApiOptions extends StacRequestOptions {
  /**
   * Conformance classes to assume even when the server does not declare them (like
   * pystac-client's `add_conforms_to`), for servers that support more than they say.
   */
  assumeConformance?: readonly ConformanceClass[];
}

function fetchOpts(o: StacRequestOptions, log: Logger): Parameters<typeof fetchJson>[1] {
  return {
    ...(o.headers ? { headers: o.headers } : {}),
    ...(o.retries !== undefined ? { retries: o.retries } : {}),
    ...(o.backoffMs !== undefined ? { backoffMs: o.backoffMs } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    maxBytes: o.maxBytes ?? 64 * 1024 * 1024,
    onRetry: (info) => log.warn({ url: info.url, attempt: info.attempt, delayMs: info.delayMs, reason: info.reason }, 'STAC request failed; retrying'),
  };
}

/** Read a landing page and the server's conformance. Accepts the landing URL or its `/search` URL. */
export async function openStacApi(url: string, options: OpenStacApiOptions = {}): Promise<StacApi> {
  const log = options.log ?? silentLogger();
  if (!isHttpHref(url)) {
    throw new GeoDinoError('E_ARGUMENT', `${url}: a STAC API is given by its http(s) URL`, { details: { url } });
  }
  let landingUrl = url;
  let doc = await fetchJson(landingUrl, fetchOpts(options, log));
  if (stacKindOf(doc) === 'item-collection' && /\/search\/?$/.test(new URL(url).pathname)) {
    // The user gave the search endpoint; its landing page is one level up.
    landingUrl = new URL('.', url.replace(/\/$/, '')).toString();
    log.debug({ url, landing: landingUrl }, 'given a search URL; reading its landing page');
    doc = await fetchJson(landingUrl, fetchOpts(options, log));
  }
  const kind = stacKindOf(doc);
  if (kind !== 'catalog' && kind !== 'collection') {
    throw new GeoDinoError('E_BAD_STAC', `${displayLocation(landingUrl)}: not a STAC API landing page (expected a Catalog with links, got ${describeDoc(doc)})`, {
      details: { url: landingUrl },
    });
  }
  const landing = parseCatalog(doc, landingUrl);
  let conformsTo = landing.conformsTo;
  let legacy = false;
  if (!conformsTo) {
    legacy = true;
    const link = findLink(landing.links, 'conformance');
    if (link) {
      const cUrl = resolveHref(landingUrl, link.href);
      try {
        const c = await fetchJson(cUrl, { ...fetchOpts(options, log), retries: Math.min(options.retries ?? 1, 1) });
        const list = (c as { conformsTo?: unknown }).conformsTo;
        if (Array.isArray(list) && list.every((v) => typeof v === 'string')) conformsTo = list as string[];
      } catch (err) {
        if (err instanceof GeoDinoError && err.code === 'E_CANCELLED') throw err;
        log.warn({ url: displayLocation(cUrl), err }, 'could not read the conformance document');
      }
    }
  }
  conformsTo ??= [];
  const classes = conformanceClasses(conformsTo);
  for (const c of options.assumeConformance ?? []) classes.add(c);

  const search: { GET?: string; POST?: string } = {};
  for (const l of landing.links) {
    if (l.rel !== 'search') continue;
    const href = resolveHref(landingUrl, l.href);
    const m = l.method?.toUpperCase();
    if (m === 'GET' || m === 'POST') search[m] ??= href;
    else {
      // No method: STAC API 0.9 servers took both.
      search.GET ??= href;
      search.POST ??= href;
    }
  }
  if (!search.GET && !search.POST && classes.has('item-search')) {
    const href = new URL('search', landingUrl.endsWith('/') ? landingUrl : landingUrl + '/').toString();
    search.GET = href;
    search.POST = href;
  }
  if (!search.GET && !search.POST) {
    throw new GeoDinoError(
      'E_BAD_STAC',
      `${displayLocation(landingUrl)}: this STAC endpoint has no item search (no "search" link and no item-search conformance); use it as a static catalog with --catalog`,
      { details: { url: landingUrl } },
    );
  }
  if (legacy) {
    classes.add('item-search');
    log.warn({ url: displayLocation(landingUrl), stac_version: landing.stac_version }, 'legacy STAC API landing page without conformsTo; assuming basic item search only');
  }
  return { url: landingUrl, landing, conformsTo, classes, search, legacy };
}

function describeDoc(doc: unknown): string {
  if (Array.isArray(doc)) return 'an array';
  if (typeof doc !== 'object' || doc === null) return typeof doc;
  const t = (doc as { type?: unknown }).type;
  return typeof t === 'string' ? `"type": ${JSON.stringify(t)}` : 'an object without "type"';
}

// ---------------------------------------------------------------------------------------------

export interface SortBy {
  field: string;
  direction: 'asc' | 'desc';
}

export interface SearchParams {
  bbox?: readonly number[];
  intersects?: GeoJsonGeometry;
  /** A STAC datetime string (partial dates allowed) or a parsed window. */
  datetime?: string | DatetimeRange;
  collections?: readonly string[];
  ids?: readonly string[];
  /** Page size asked of the server. */
  limit?: number;
  /** `[{field, direction}]` or a GET-style string such as `-properties.datetime,+id`. */
  sortby?: readonly SortBy[] | string;
  /** The query extension (needs the `query` conformance class). */
  query?: JsonObject;
  /** A CQL2-JSON filter (needs `filter` and `cql2-json`). */
  filter?: JsonObject;
  /** Default: POST when the server has a POST search link, else GET. */
  method?: 'GET' | 'POST';
}

export interface SearchOptions extends StacRequestOptions {
  /** Stop after this many distinct items (default: no limit). */
  maxItems?: number;
  /** Refuse to follow more than this many pages (default 1000). */
  maxPages?: number;
  /** Called after each page, e.g. for logging. */
  onPage?: (page: SearchPage) => void;
}

export interface SearchPage {
  /** 1-based page number. */
  number: number;
  request: SearchRequest;
  items: StacItem[];
  numberMatched?: number;
}

export interface SearchRequest {
  method: 'GET' | 'POST';
  url: string;
  body?: JsonObject;
  headers?: Record<string, string>;
}

/** Parse `-field,+field` into sort objects. */
export function parseSortBy(text: string): SortBy[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (s.startsWith('-') ? { field: s.slice(1), direction: 'desc' } : { field: s.replace(/^\+/, ''), direction: 'asc' }));
}

function unsupported(api: StacApi, what: string, cls: string): GeoDinoError {
  return new GeoDinoError(
    'E_ARGUMENT',
    `${displayLocation(api.url)}: the server does not declare ${what} support (conformance class "${cls}" missing from conformsTo); leave it out, or assume it with assumeConformance if you know the server supports it`,
    { details: { url: api.url, missing: cls } },
  );
}

/** Build the first request of a search, checking optional features against conformance. */
export function buildSearchRequest(api: StacApi, params: SearchParams, headers?: Record<string, string>): SearchRequest {
  const method = params.method ?? (api.search.POST ? 'POST' : 'GET');
  const url = api.search[method];
  if (!url) {
    throw new GeoDinoError('E_ARGUMENT', `${displayLocation(api.url)}: the server has no ${method} search endpoint`, { details: { url: api.url, method } });
  }
  if (params.bbox && params.intersects) {
    throw new GeoDinoError('E_ARGUMENT', 'bbox and intersects cannot be used together in one search', { details: {} });
  }
  if (params.bbox && params.bbox.length !== 4 && params.bbox.length !== 6) {
    throw new GeoDinoError('E_ARGUMENT', `bbox must have 4 or 6 numbers (got ${params.bbox.length})`, { details: { bbox: params.bbox } });
  }
  if (params.filter && !(api.classes.has('filter') && api.classes.has('cql2-json'))) {
    throw unsupported(api, 'CQL2-JSON filter', api.classes.has('filter') ? 'cql2-json' : 'filter');
  }
  if (params.query && !api.classes.has('query')) throw unsupported(api, 'the query extension', 'query');
  const sortby = typeof params.sortby === 'string' ? parseSortBy(params.sortby) : params.sortby;
  if (sortby && sortby.length && !api.classes.has('sort')) throw unsupported(api, 'sortby', 'sort');
  if (params.limit !== undefined && !(Number.isInteger(params.limit) && params.limit > 0)) {
    throw new GeoDinoError('E_ARGUMENT', `limit must be a positive integer (got ${params.limit})`, { details: { limit: params.limit } });
  }
  const datetime =
    params.datetime === undefined
      ? undefined
      : formatDatetimeRange(typeof params.datetime === 'string' ? parseDatetimeRange(params.datetime) : params.datetime);

  const body: JsonObject = {};
  if (params.bbox) body['bbox'] = [...params.bbox];
  if (params.intersects) body['intersects'] = params.intersects;
  if (datetime) body['datetime'] = datetime;
  if (params.collections?.length) body['collections'] = [...params.collections];
  if (params.ids?.length) body['ids'] = [...params.ids];
  if (params.limit !== undefined) body['limit'] = params.limit;
  if (sortby?.length) body['sortby'] = sortby.map((s) => ({ field: s.field, direction: s.direction }));
  if (params.query) body['query'] = params.query;
  if (params.filter) {
    body['filter'] = params.filter;
    body['filter-lang'] = 'cql2-json';
  }
  if (method === 'POST') return { method, url, body, ...(headers ? { headers } : {}) };

  const u = new URL(url);
  for (const [k, v] of Object.entries(body)) {
    if (k === 'bbox' || k === 'collections' || k === 'ids') u.searchParams.set(k, (v as unknown[]).join(','));
    else if (k === 'sortby') u.searchParams.set(k, (v as SortBy[]).map((s) => (s.direction === 'desc' ? '-' : '+') + s.field).join(','));
    else if (k === 'intersects' || k === 'query' || k === 'filter') u.searchParams.set(k, JSON.stringify(v));
    else u.searchParams.set(k, String(v));
  }
  return { method, url: u.toString(), ...(headers ? { headers } : {}) };
}

/** Canonical JSON (sorted keys) for comparing request bodies. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function requestKey(r: SearchRequest): string {
  return `${r.method} ${r.url} ${r.body ? canonical(r.body) : ''}`;
}

/** The request a `next` link asks for, given the request that produced its page. */
export function nextRequest(link: StacLink, current: SearchRequest): SearchRequest {
  const method = (link.method ?? 'GET').toUpperCase() === 'POST' ? 'POST' : 'GET';
  const url = resolveHref(current.url, link.href);
  const headers = link.merge ? { ...current.headers, ...link.headers } : { ...current.headers, ...(link.headers ?? {}) };
  const h = Object.keys(headers).length ? { headers } : {};
  if (method === 'GET') return { method, url, ...h };
  const body = link.merge ? { ...(current.body ?? {}), ...(link.body ?? {}) } : { ...(link.body ?? {}) };
  return { method, url, body, ...h };
}

async function fetchPage(req: SearchRequest, options: StacRequestOptions, log: Logger): Promise<StacItemCollection> {
  const base = fetchOpts(options, log);
  const doc = await fetchJson(req.url, {
    ...base,
    method: req.method,
    headers: { ...(req.headers ?? {}), ...(req.method === 'POST' ? { 'Content-Type': 'application/json' } : {}) },
    ...(req.method === 'POST' ? { body: JSON.stringify(req.body ?? {}) } : {}),
  });
  if (stacKindOf(doc) !== 'item-collection') {
    throw new GeoDinoError('E_BAD_STAC', `${displayLocation(req.url)}: a search answer must be a FeatureCollection (got ${describeDoc(doc)})`, {
      details: { url: displayLocation(req.url) },
    });
  }
  return parseItemCollection(doc, req.url);
}

/**
 * Search page by page. Throws E_BAD_STAC when a `next` link repeats an earlier request or pages
 * keep returning items already seen (a pagination loop), E_LIMIT past `maxPages`.
 */
export async function* searchPages(api: StacApi, params: SearchParams, options: SearchOptions = {}): AsyncGenerator<SearchPage> {
  const log = options.log ?? silentLogger();
  const maxPages = options.maxPages ?? 1000;
  let req: SearchRequest | undefined = buildSearchRequest(api, params, options.headers);
  const seenRequests = new Map<string, number>();
  const seenItems = new Set<string>();
  let emptyStreak = 0;
  let staleStreak = 0;
  for (let n = 1; req; n++) {
    throwIfAborted(options.signal);
    if (n > maxPages) {
      throw new GeoDinoError('E_LIMIT', `${displayLocation(api.url)}: search stopped after ${maxPages} pages (raise maxPages or narrow the search)`, {
        details: { url: api.url, maxPages },
      });
    }
    const key = requestKey(req);
    const earlier = seenRequests.get(key);
    if (earlier !== undefined) {
      throw new GeoDinoError(
        'E_BAD_STAC',
        `${displayLocation(req.url)}: the "next" link of page ${n - 1} repeats the request of page ${earlier} (a pagination loop in the server); stopped`,
        { details: { url: displayLocation(req.url), page: n - 1, repeats: earlier } },
      );
    }
    seenRequests.set(key, n);
    log.debug({ method: req.method, url: displayLocation(req.url), page: n }, 'STAC search page');
    const fc = await fetchPage(req, options, log);
    const fresh = fc.features.filter((f) => {
      const k = `${f.collection ?? ''}/${f.id}`;
      if (seenItems.has(k)) return false;
      seenItems.add(k);
      return true;
    });
    const matched = fc.numberMatched ?? fc.context?.matched;
    const page: SearchPage = { number: n, request: req, items: fresh, ...(matched !== undefined ? { numberMatched: matched } : {}) };
    options.onPage?.(page);
    yield page;

    if (fc.features.length === 0) emptyStreak++;
    else emptyStreak = 0;
    if (fc.features.length > 0 && fresh.length === 0) staleStreak++;
    else staleStreak = 0;
    if (staleStreak >= 2) {
      throw new GeoDinoError(
        'E_BAD_STAC',
        `${displayLocation(req.url)}: pages ${n - 1} and ${n} only repeat items already returned (a pagination loop in the server); stopped`,
        { details: { url: displayLocation(req.url), page: n } },
      );
    }
    const next = findLink(fc.links, 'next');
    if (!next) break;
    if (emptyStreak >= 3) {
      log.warn({ url: displayLocation(req.url), page: n }, 'three empty pages in a row still link to a next page; stopping');
      break;
    }
    req = nextRequest(next, req);
  }
}

/** Search and yield distinct items (deduplicated by collection and id), up to `maxItems`. */
export async function* searchItems(api: StacApi, params: SearchParams, options: SearchOptions = {}): AsyncGenerator<StacItem> {
  const progress = options.progress ?? silentProgress;
  let task: ReturnType<Progress['start']> | undefined;
  let count = 0;
  try {
    for await (const page of searchPages(api, params, options)) {
      task ??= progress.start('STAC search', { unit: 'items', ...(page.numberMatched !== undefined ? { total: options.maxItems ? Math.min(options.maxItems, page.numberMatched) : page.numberMatched } : {}) });
      for (const item of page.items) {
        if (options.maxItems !== undefined && count >= options.maxItems) return;
        count++;
        task.tick();
        yield item;
      }
      if (options.maxItems !== undefined && count >= options.maxItems) return;
    }
  } finally {
    task?.finish();
  }
}

/** Collect a whole search into an array (bounded by `maxItems`). */
export async function searchAll(api: StacApi, params: SearchParams, options: SearchOptions = {}): Promise<StacItem[]> {
  const out: StacItem[] = [];
  for await (const item of searchItems(api, params, options)) out.push(item);
  return out;
}
