/**
 * Scene selection: from candidate items to the ordered list of scenes that covers an AOI.
 *
 * 1. Filter: footprint intersects the AOI, acquisition time in the window (and strictly newer than
 *    `newerThan`, for monitoring), `eo:cloud_cover` ≤ the maximum (items without it are refused
 *    when a maximum is set, as a server-side filter would), an RGB GeoTIFF asset exists
 *    (`assets.ts`), GSD ≤ the maximum.
 * 2. Order: most recent first; ties by lower cloud cover, finer GSD, then id.
 * 3. Cover: walk that order, keep a scene when it adds at least `minContributionM2` of the AOI not
 *    yet covered by a more recent scene, until nothing is left. Each scene carries the part of the
 *    AOI it supplies (for provenance); the report gives what stays uncovered, in km² and %.
 *
 * Areas are geodesic (WGS84) via @geo-dino/geometry; polygon operations are planar in lon/lat,
 * the same convention GeoJSON footprints use.
 */
import { GeoDinoError, silentLogger, throwIfAborted, type Logger } from '@geo-dino/core';
import {
  bboxIntersects,
  bboxOf,
  bboxPolygon,
  difference,
  geodesicArea,
  intersection,
  parseAoi,
  type Aoi,
  type Bbox,
  type MultiPolygonCoords,
  type MultiPolygonGeometry,
} from '@geo-dino/geometry';
import { pickRgbAsset, type AssetRejection, type RgbAsset } from './assets.js';
import { itemInRange, itemTime, parseDatetimeRange, type DatetimeRange } from './datetime.js';
import { resolveHref } from './href.js';
import { findLink } from './parse.js';
import type { AssetSigner } from './sign.js';
import type { LocatedItem, StacItem } from './types.js';

export interface SceneCriteria {
  /** Acquisition window: a STAC datetime string (partial dates allowed) or a parsed window. */
  datetime?: string | DatetimeRange;
  /** Only scenes acquired strictly after this instant (monitoring: "newer than the last run"). */
  newerThan?: string | Date;
  /** Maximum `eo:cloud_cover`, percent. */
  maxCloudCover?: number;
  /** Maximum ground sample distance, metres (the coarsest resolution accepted). */
  maxGsd?: number;
  /** Only items of these collections. */
  collections?: readonly string[];
  /** A scene must add at least this much uncovered AOI area, m² (default max(100 m², 1e-6 × AOI)). */
  minContributionM2?: number;
  /** At most this many scenes (default 1000). */
  maxScenes?: number;
}

export interface Scene {
  itemId: string;
  collection?: string;
  /** Acquisition time (ISO 8601): `datetime`, else the end of the item's interval. */
  datetime: string | null;
  startDatetime?: string;
  endDatetime?: string;
  /** The RGB asset's href, signed when a signer was given. */
  href: string;
  /** The same href before signing (for provenance records; tokens expire). */
  unsignedHref: string;
  asset: RgbAsset;
  gsd?: number;
  cloudCover?: number;
  /** The item's footprint (lon/lat). */
  footprint: MultiPolygonGeometry;
  /** The part of the AOI this scene supplies (not covered by a more recent chosen scene). */
  contribution: MultiPolygonGeometry;
  contributionKm2: number;
  contributionPercent: number;
  /** Absolute URL or path of the item document (its `self` link when it has one). */
  itemHref: string;
  item: StacItem;
}

export interface CoverageReport {
  aoiKm2: number;
  coveredKm2: number;
  coveredPercent: number;
  uncoveredKm2: number;
  uncoveredPercent: number;
  /** What no chosen scene covers (lon/lat), or null when the AOI is fully covered. */
  uncovered: MultiPolygonGeometry | null;
}

export interface RejectedItem {
  itemId: string;
  collection?: string;
  reason: string;
  assets?: AssetRejection[];
}

export interface SceneSelection {
  scenes: Scene[];
  coverage: CoverageReport;
  /** Items looked at. */
  considered: number;
  /** Items that passed every filter (before coverage). */
  eligible: number;
  /** Why the others were refused (every item, in the order seen). */
  rejected: RejectedItem[];
  /** Eligible items not needed: newer scenes already covered their part of the AOI. */
  redundant: number;
}

export interface SelectOptions {
  log?: Logger;
  signal?: AbortSignal;
  /** Signs each chosen scene's asset href. */
  signer?: AssetSigner;
  /** Read an asset's https alternate instead of its s3:// href (alternate-assets extension). */
  preferHttps?: boolean;
}

const KM2 = 1e6;

function asDate(v: string | Date, field: string): Date {
  if (v instanceof Date) return v;
  const r = parseDatetimeRange(v, field);
  // A partial date such as 2024-05 means "after the end of May 2024".
  return r.end ?? r.start!;
}

function geometryToMultiPolygon(item: StacItem): { geometry: MultiPolygonCoords; fromBbox: boolean } | { error: string } {
  const g = item.geometry;
  if (g && (g.type === 'Polygon' || g.type === 'MultiPolygon')) {
    try {
      return { geometry: parseAoi(g, `item ${item.id}: geometry`).geometry, fromBbox: false };
    } catch (err) {
      if (!item.bbox) return { error: `invalid footprint: ${(err as Error).message}` };
    }
  } else if (g && !item.bbox) {
    return { error: `footprint is a ${g.type}, not a polygon` };
  }
  const b = item.bbox;
  if (b && (b.length === 4 || b.length === 6)) {
    const [w, s, e, n] = b.length === 4 ? (b as [number, number, number, number]) : [b[0]!, b[1]!, b[3]!, b[4]!];
    if (![w, s, e, n].every(Number.isFinite) || s >= n) return { error: `invalid bbox ${JSON.stringify(b)}` };
    const parts = w <= e ? bboxPolygon([w, s, e, n]) : [...bboxPolygon([w, s, 180, n]), ...bboxPolygon([-180, s, e, n])];
    return { geometry: parts, fromBbox: true };
  }
  return { error: 'no geometry and no bbox' };
}

function mp(coords: MultiPolygonCoords): MultiPolygonGeometry {
  return { type: 'MultiPolygon', coordinates: coords };
}

function bboxesIntersect(a: Bbox, aoi: Aoi): boolean {
  // The AOI's parts each lie within [-180, 180]; test against each part's box.
  return aoi.geometry.some((poly) => bboxIntersects(a, bboxOf([poly])));
}

function numberOrUndefined(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * Where an item's relative hrefs resolve: the item's own document; for an item inside a search
 * page or ItemCollection, its `self` link when it has one.
 */
export function itemBase(located: LocatedItem): string {
  const self = findLink(located.item.links, 'self');
  return located.inCollection && self ? resolveHref(located.source, self.href) : located.source;
}

/** The href that names an item for others (derived_from): an http(s) `self` link, else where it was read. */
export function itemReference(located: LocatedItem): string {
  const self = findLink(located.item.links, 'self');
  const resolved = self ? resolveHref(located.source, self.href) : undefined;
  if (resolved && /^https?:\/\//i.test(resolved)) return resolved;
  return located.inCollection ? resolved ?? located.source : located.source;
}

interface Candidate {
  located: LocatedItem;
  asset: RgbAsset;
  footprint: MultiPolygonCoords;
  time: number;
  cloud?: number;
}

/** Choose scenes covering `aoi` from candidate items (any iterable, sync or async). */
export async function selectScenes(
  items: Iterable<LocatedItem> | AsyncIterable<LocatedItem>,
  aoi: Aoi,
  criteria: SceneCriteria = {},
  options: SelectOptions = {},
): Promise<SceneSelection> {
  const log = options.log ?? silentLogger();
  const window = criteria.datetime === undefined ? undefined : typeof criteria.datetime === 'string' ? parseDatetimeRange(criteria.datetime, 'datetime') : criteria.datetime;
  const newer = criteria.newerThan === undefined ? undefined : asDate(criteria.newerThan, 'newerThan');
  if (criteria.maxCloudCover !== undefined && !(criteria.maxCloudCover >= 0 && criteria.maxCloudCover <= 100)) {
    throw new GeoDinoError('E_ARGUMENT', `maxCloudCover must be between 0 and 100 (got ${criteria.maxCloudCover})`, { details: { maxCloudCover: criteria.maxCloudCover } });
  }
  if (criteria.maxGsd !== undefined && !(criteria.maxGsd > 0)) {
    throw new GeoDinoError('E_ARGUMENT', `maxGsd must be > 0 metres (got ${criteria.maxGsd})`, { details: { maxGsd: criteria.maxGsd } });
  }
  const collections = criteria.collections?.length ? new Set(criteria.collections) : undefined;
  const minContribution = criteria.minContributionM2 ?? Math.max(100, aoi.areaM2 * 1e-6);
  const maxScenes = criteria.maxScenes ?? 1000;

  const rejected: RejectedItem[] = [];
  const candidates: Candidate[] = [];
  const seen = new Set<string>();
  let considered = 0;
  const reject = (item: StacItem, reason: string, assets?: AssetRejection[]): void => {
    rejected.push({ itemId: item.id, ...(item.collection ? { collection: item.collection } : {}), reason, ...(assets ? { assets } : {}) });
  };

  for await (const located of items as AsyncIterable<LocatedItem>) {
    throwIfAborted(options.signal);
    const item = located.item;
    const key = `${item.collection ?? ''}/${item.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    considered++;
    if (collections && !(item.collection && collections.has(item.collection))) {
      reject(item, `collection ${item.collection ?? '(none)'} not requested`);
      continue;
    }
    const t = itemTime(item);
    if (!t.nominal) {
      reject(item, 'no datetime, start_datetime or end_datetime');
      continue;
    }
    if (!itemInRange(t, window)) {
      reject(item, `acquired ${t.nominal.toISOString()}, outside the datetime window`);
      continue;
    }
    if (newer && !(t.nominal.getTime() > newer.getTime())) {
      reject(item, `acquired ${t.nominal.toISOString()}, not newer than ${newer.toISOString()}`);
      continue;
    }
    const cloud = numberOrUndefined(item.properties['eo:cloud_cover']);
    if (criteria.maxCloudCover !== undefined) {
      if (cloud === undefined) {
        reject(item, 'no eo:cloud_cover, and a maximum cloud cover was asked for');
        continue;
      }
      if (cloud > criteria.maxCloudCover) {
        reject(item, `cloud cover ${cloud}% above the maximum ${criteria.maxCloudCover}%`);
        continue;
      }
    }
    const fp = geometryToMultiPolygon(item);
    if ('error' in fp) {
      reject(item, fp.error);
      continue;
    }
    if (fp.fromBbox && item.geometry) log.debug({ item: item.id }, 'footprint invalid; using the bbox');
    if (!bboxesIntersect(bboxOf(fp.geometry), aoi) || geodesicArea(intersection(fp.geometry, aoi.geometry)) <= 0) {
      reject(item, 'footprint does not intersect the AOI');
      continue;
    }
    const choice = pickRgbAsset(item, itemBase(located), options.preferHttps ? { preferHttps: true } : {});
    if (!choice.asset) {
      reject(item, 'no usable RGB GeoTIFF/COG asset', choice.rejected);
      continue;
    }
    const gsd = choice.asset.gsd;
    if (criteria.maxGsd !== undefined) {
      if (gsd === undefined) {
        reject(item, `resolution unknown (no gsd or proj:transform), and a maximum GSD of ${criteria.maxGsd} m was asked for`);
        continue;
      }
      if (gsd > criteria.maxGsd * (1 + 1e-9)) {
        reject(item, `GSD ${gsd} m coarser than the maximum ${criteria.maxGsd} m`);
        continue;
      }
    }
    candidates.push({ located, asset: choice.asset, footprint: fp.geometry, time: t.nominal.getTime(), ...(cloud !== undefined ? { cloud } : {}) });
  }

  candidates.sort(
    (a, b) =>
      b.time - a.time ||
      (a.cloud ?? 101) - (b.cloud ?? 101) ||
      (a.asset.gsd ?? Infinity) - (b.asset.gsd ?? Infinity) ||
      (a.located.item.id < b.located.item.id ? -1 : a.located.item.id > b.located.item.id ? 1 : 0),
  );

  const aoiArea = aoi.areaM2;
  let remaining = aoi.geometry;
  let remainingArea = aoiArea;
  let remainingBox: Bbox = bboxOf(remaining);
  const scenes: Scene[] = [];
  let redundant = 0;
  for (const c of candidates) {
    throwIfAborted(options.signal);
    if (remainingArea <= Math.min(minContribution, aoiArea * 1e-9) || scenes.length >= maxScenes) {
      redundant++;
      continue;
    }
    // Cheap test first: a footprint whose box misses what is left cannot add anything.
    if (remaining.length === 0 || !bboxIntersects(bboxOf(c.footprint), remainingBox)) {
      redundant++;
      continue;
    }
    const part = intersection(c.footprint, remaining);
    const partArea = geodesicArea(part);
    if (partArea < minContribution) {
      redundant++;
      continue;
    }
    remaining = difference(remaining, c.footprint);
    remainingArea = geodesicArea(remaining);
    if (remaining.length) remainingBox = bboxOf(remaining);
    const item = c.located.item;
    const t = itemTime(item);
    let href = c.asset.href;
    if (options.signer) {
      href = await options.signer(c.asset.href, { item, assetKey: c.asset.key, ...(item.collection ? { collection: item.collection } : {}), ...(options.signal ? { signal: options.signal } : {}) });
    }
    scenes.push({
      itemId: item.id,
      ...(item.collection ? { collection: item.collection } : {}),
      datetime: t.nominal ? t.nominal.toISOString() : null,
      ...(typeof item.properties['start_datetime'] === 'string' ? { startDatetime: item.properties['start_datetime'] } : {}),
      ...(typeof item.properties['end_datetime'] === 'string' ? { endDatetime: item.properties['end_datetime'] } : {}),
      href,
      unsignedHref: c.asset.href,
      asset: c.asset,
      ...(c.asset.gsd !== undefined ? { gsd: c.asset.gsd } : {}),
      ...(c.cloud !== undefined ? { cloudCover: c.cloud } : {}),
      footprint: mp(c.footprint),
      contribution: mp(part),
      contributionKm2: partArea / KM2,
      contributionPercent: (100 * partArea) / aoiArea,
      itemHref: itemReference(c.located),
      item,
    });
  }
  if (scenes.length >= maxScenes && remainingArea > minContribution) {
    log.warn({ maxScenes }, 'stopped at the maximum number of scenes; part of the AOI is left uncovered');
  }
  const uncoveredArea = Math.max(0, remainingArea);
  const coverage: CoverageReport = {
    aoiKm2: aoiArea / KM2,
    coveredKm2: (aoiArea - uncoveredArea) / KM2,
    coveredPercent: (100 * (aoiArea - uncoveredArea)) / aoiArea,
    uncoveredKm2: uncoveredArea / KM2,
    uncoveredPercent: (100 * uncoveredArea) / aoiArea,
    uncovered: remaining.length && uncoveredArea > 0 ? mp(remaining) : null,
  };
  log.debug({ considered, eligible: candidates.length, chosen: scenes.length, coveredPercent: coverage.coveredPercent }, 'scene selection');
  return { scenes, coverage, considered, eligible: candidates.length, rejected, redundant };
}

/** Count rejections by reason (reasons with numbers folded), for short summaries. */
export function summariseRejections(rejected: readonly RejectedItem[]): { reason: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const r of rejected) {
    const k = r.reason.replace(/\d{4}-\d{2}-\d{2}T[\d:.]+Z/g, '<time>').replace(/-?\d+(?:\.\d+)?/g, 'N');
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts.entries()].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count);
}

