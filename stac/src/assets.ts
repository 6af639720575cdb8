/**
 * Which asset of an item is RGB imagery geo-dino can read, which bands are red, green and blue,
 * and how fine it is.
 *
 * An asset qualifies when:
 * - its roles include `visual` or `data` (or it has no roles at all);
 * - its bands (STAC 1.1 `bands`, `eo:bands`, or item-level `eo:bands` referenced by index) have
 *   the common names red, green and blue — or, with no band metadata, it is the `visual` asset;
 * - it is a GeoTIFF: the COG media type, plain `image/tiff`, or no type but a `.tif` name.
 *
 * Ranking among qualifying assets: COG first, then role `visual`, then exactly three bands, then
 * 8-bit data, then the finest resolution. Rejected assets are reported with the reason.
 */
import { isHttpHref, resolveHref } from './href.js';
import type { StacAsset, StacBand, StacItem } from './types.js';

export type MediaKind = 'cog' | 'geotiff';

export interface RgbAsset {
  key: string;
  /** Absolute href (the asset's own; its https alternate when `preferHttps` asks for it). Unsigned. */
  href: string;
  type?: string;
  roles: string[];
  mediaKind: MediaKind;
  /** 1-based band indices of red, green, blue in the file. */
  bands: { red: number; green: number; blue: number };
  /** Total bands in the file, when known. */
  bandCount?: number;
  /** True when no band metadata existed and RGB order 1,2,3 was assumed for a `visual` asset. */
  bandsAssumed: boolean;
  dataType?: string;
  /** Ground sample distance in metres (asset `gsd`, else item `gsd`, else raster resolution, else pixel size). */
  gsd?: number;
  /** Pixel size in metres from the asset's (or item's) `proj:transform`, when the CRS is known. */
  pixelSize?: number;
}

export interface AssetRejection {
  key: string;
  reason: string;
}

export type AssetChoice = { asset: RgbAsset; rejected: AssetRejection[] } | { asset: null; rejected: AssetRejection[] };

const COG_TYPE = /profile=cloud-optimized/i;
const TIFF_TYPE = /^image\/(?:tiff|geotiff|x-geotiff)\b/i;

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function commonName(b: StacBand): string | undefined {
  const c = b.common_name ?? b['eo:common_name'];
  if (typeof c === 'string') return c.toLowerCase();
  if (typeof b.name === 'string' && /^(red|green|blue)$/i.test(b.name)) return b.name.toLowerCase();
  return undefined;
}

/** The band list of an asset, resolving STAC 0.9-style index references into item `eo:bands`. */
export function assetBands(asset: StacAsset, item: StacItem): StacBand[] | undefined {
  const raw = (asset['bands'] ?? asset['eo:bands']) as unknown;
  if (!Array.isArray(raw)) return undefined;
  if (raw.every((b) => typeof b === 'number')) {
    const itemBands = item.properties['eo:bands'];
    if (!Array.isArray(itemBands)) return undefined;
    return (raw as number[]).map((i) => (itemBands[i] ?? {}) as StacBand);
  }
  return raw.filter((b): b is StacBand => typeof b === 'object' && b !== null);
}

function rasterBands(asset: StacAsset): StacBand[] {
  const rb = asset['raster:bands'];
  if (Array.isArray(rb)) return rb as StacBand[];
  const b = asset['bands'];
  return Array.isArray(b) ? (b as StacBand[]) : [];
}

const GEOGRAPHIC = new Set([4326, 4269, 4258, 4283, 4617, 4167, 4674]);

function epsgOf(o: Record<string, unknown>): number | undefined {
  const e = o['proj:epsg'];
  if (typeof e === 'number') return e;
  const c = o['proj:code'];
  if (typeof c === 'string') {
    const m = /^EPSG:(\d+)$/i.exec(c);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** Is this EPSG code a projected CRS in metres geo-dino can trust for pixel sizes? */
function isMetric(epsg: number): boolean {
  return (
    (epsg >= 32601 && epsg <= 32660) ||
    (epsg >= 32701 && epsg <= 32760) ||
    (epsg >= 26901 && epsg <= 26923) ||
    (epsg >= 25828 && epsg <= 25838) ||
    (epsg >= 6330 && epsg <= 6348) ||
    [3857, 3395, 5070, 3035, 2193, 3577, 6933, 27700, 2154, 28992, 3978, 3310, 102100].includes(epsg)
  );
}

/**
 * Pixel size (m) from a `proj:transform`, in STAC order [a, b, c, d, e, f]. Some catalogs write
 * GDAL's order [c, a, b, f, d, e]; that is recognised when the STAC reading gives an absurd size.
 */
export function pixelSizeFromTransform(transform: unknown, epsg: number | undefined, latitude: number | undefined): number | undefined {
  if (!Array.isArray(transform) || transform.length < 6 || !transform.every((v) => typeof v === 'number')) return undefined;
  const t = transform as number[];
  let size = Math.hypot(t[0]!, t[3]!);
  const gdal = Math.hypot(t[1]!, t[4]!);
  const metric = epsg !== undefined && isMetric(epsg);
  const geographic = epsg !== undefined && GEOGRAPHIC.has(epsg);
  const absurd = metric ? size > 10_000 : geographic ? size > 10 : false;
  if (absurd && gdal > 0) size = gdal;
  if (!(size > 0)) return undefined;
  if (metric) return size;
  if (geographic && latitude !== undefined) return size * 111_320 * Math.cos((latitude * Math.PI) / 180);
  return undefined;
}

function itemLatitude(item: StacItem): number | undefined {
  const c = item.properties['proj:centroid'] as { lat?: unknown } | undefined;
  if (c && typeof c.lat === 'number') return c.lat;
  if (item.bbox && item.bbox.length >= 4) return (item.bbox[1]! + item.bbox[item.bbox.length === 6 ? 4 : 3]!) / 2;
  return undefined;
}

export interface PickAssetOptions {
  /**
   * Use an http(s) copy from the alternate-assets extension instead of an s3:// href (default
   * false; always for schemes geo-dino cannot read, such as gs:// or az://).
   */
  preferHttps?: boolean;
}

function preferredHref(asset: StacAsset, base: string, options: PickAssetOptions): string {
  const href = resolveHref(base, asset.href);
  if (isHttpHref(href) || !/^[a-z0-9+.-]+:\/\//i.test(href)) return href;
  if (/^s3:\/\//i.test(href) && !options.preferHttps) return href;
  // Alternate-assets extension: a public http(s) copy of an s3:// (or similar) href.
  const alt = asset['alternate'];
  if (alt && typeof alt === 'object') {
    for (const a of Object.values(alt as Record<string, unknown>)) {
      const h = (a as { href?: unknown } | null)?.href;
      if (typeof h === 'string' && isHttpHref(resolveHref(base, h))) return resolveHref(base, h);
    }
  }
  return href;
}

interface Candidate {
  asset: RgbAsset;
  score: number[];
}

/**
 * Choose the RGB asset of an item. `base` is the location relative asset hrefs resolve against
 * (the item's own document, or its `self` link for items from a search).
 */
export function pickRgbAsset(item: StacItem, base: string, options: PickAssetOptions = {}): AssetChoice {
  const rejected: AssetRejection[] = [];
  const candidates: Candidate[] = [];
  const itemEpsg = epsgOf(item.properties);
  const lat = itemLatitude(item);
  for (const [key, asset] of Object.entries(item.assets)) {
    const roles = Array.isArray(asset.roles) ? asset.roles : [];
    const isVisual = roles.includes('visual') || (roles.length === 0 && /^(visual|rgb|tci|image)$/i.test(key));
    if (roles.length > 0 && !roles.includes('visual') && !roles.includes('data')) {
      rejected.push({ key, reason: `roles ${JSON.stringify(roles)} are not "visual" or "data"` });
      continue;
    }
    const type = asset.type;
    let mediaKind: MediaKind;
    if (type && COG_TYPE.test(type) && TIFF_TYPE.test(type)) mediaKind = 'cog';
    else if (type && TIFF_TYPE.test(type)) mediaKind = 'geotiff';
    else if (!type && /\.tiff?(?:[?#].*)?$/i.test(asset.href)) mediaKind = 'geotiff';
    else {
      rejected.push({ key, reason: type ? `media type "${type}" is not a GeoTIFF/COG` : 'no media type and not a .tif file' });
      continue;
    }
    const bandList = assetBands(asset, item);
    let bands: RgbAsset['bands'];
    let bandsAssumed = false;
    if (bandList && bandList.length > 0) {
      const names = bandList.map(commonName);
      const idx = (n: string): number => names.indexOf(n) + 1;
      if (!idx('red') || !idx('green') || !idx('blue')) {
        const have = names.filter(Boolean).join(', ') || 'none named';
        rejected.push({ key, reason: `bands are not red, green and blue (common names: ${have})` });
        continue;
      }
      bands = { red: idx('red'), green: idx('green'), blue: idx('blue') };
    } else if (isVisual) {
      bands = { red: 1, green: 2, blue: 3 };
      bandsAssumed = true;
    } else {
      rejected.push({ key, reason: 'no band metadata (bands / eo:bands) and not a "visual" asset' });
      continue;
    }
    const rb = rasterBands(asset);
    const dataType = typeof rb[0]?.data_type === 'string' ? rb[0].data_type : undefined;
    const epsg = epsgOf(asset) ?? itemEpsg;
    const transform = asset['proj:transform'] ?? item.properties['proj:transform'];
    const pixelSize = pixelSizeFromTransform(transform, epsg, lat);
    const rasterRes = num(rb[0]?.['spatial_resolution']) ?? num(rb[0]?.['raster:spatial_resolution']) ?? num(asset['raster:spatial_resolution']);
    const gsd = num(asset['gsd']) ?? num(item.properties['gsd']) ?? rasterRes ?? pixelSize;
    const rgb: RgbAsset = {
      key,
      href: preferredHref(asset, base, options),
      ...(type ? { type } : {}),
      roles,
      mediaKind,
      bands,
      ...(bandList && bandList.length ? { bandCount: bandList.length } : {}),
      bandsAssumed,
      ...(dataType ? { dataType } : {}),
      ...(gsd !== undefined ? { gsd } : {}),
      ...(pixelSize !== undefined ? { pixelSize } : {}),
    };
    const score = [
      mediaKind === 'cog' ? 0 : 1,
      isVisual ? 0 : 1,
      bandList?.length === 3 || bandsAssumed ? 0 : 1,
      dataType === undefined || dataType === 'uint8' ? 0 : 1,
      gsd ?? Number.MAX_VALUE,
    ];
    candidates.push({ asset: rgb, score });
  }
  if (candidates.length === 0) return { asset: null, rejected };
  candidates.sort((a, b) => {
    for (let i = 0; i < a.score.length; i++) {
      const d = a.score[i]! - b.score[i]!;
      if (d !== 0) return d;
    }
    return a.asset.key < b.asset.key ? -1 : a.asset.key > b.asset.key ? 1 : 0;
  });
  return { asset: candidates[0]!.asset, rejected };
}
