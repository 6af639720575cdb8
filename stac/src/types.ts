/**
 * STAC object shapes as geo-dino reads and writes them (STAC 1.0 / 1.1 and STAC API 1.0).
 *
 * Reading is lenient (real catalogs carry many extensions and small deviations), so these types
 * name what geo-dino uses and keep everything else as `unknown` fields. Documents from outside are
 * checked by `parse.ts` before they are given these types.
 */
import type { ArealGeometry, Bbox, MultiPolygonCoords } from '@geo-dino/geometry';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: unknown };

/** A STAC link. `method`, `body`, `merge` and `headers` are the STAC API paging fields. */
export interface StacLink {
  rel: string;
  href: string;
  type?: string;
  title?: string;
  method?: string;
  body?: JsonObject;
  merge?: boolean;
  headers?: Record<string, string>;
  [key: string]: unknown;
}

/** A band object: STAC 1.1 `bands`, or the older `eo:bands` / `raster:bands`. */
export interface StacBand {
  name?: string;
  common_name?: string;
  'eo:common_name'?: string;
  description?: string;
  nodata?: number | 'nan' | 'inf' | '-inf';
  data_type?: string;
  unit?: string;
  statistics?: BandStatistics;
  [key: string]: unknown;
}

export interface BandStatistics {
  minimum?: number;
  maximum?: number;
  mean?: number;
  stddev?: number;
  count?: number;
  valid_percent?: number;
}

export interface StacAsset {
  href: string;
  type?: string;
  title?: string;
  description?: string;
  roles?: string[];
  [key: string]: unknown;
}

/** Any GeoJSON geometry (items may carry points or lines; selection uses areal ones only). */
export interface GeoJsonGeometry {
  type: string;
  coordinates?: unknown;
  geometries?: GeoJsonGeometry[];
}

export interface StacItem {
  type: 'Feature';
  stac_version: string;
  stac_extensions?: string[];
  id: string;
  geometry: GeoJsonGeometry | null;
  bbox?: number[];
  properties: JsonObject & { datetime?: string | null };
  links: StacLink[];
  assets: Record<string, StacAsset>;
  collection?: string;
  [key: string]: unknown;
}

export interface StacCatalog {
  type: 'Catalog';
  stac_version: string;
  stac_extensions?: string[];
  id: string;
  title?: string;
  description: string;
  links: StacLink[];
  conformsTo?: string[];
  [key: string]: unknown;
}

export interface StacExtent {
  spatial: { bbox: number[][] };
  temporal: { interval: (string | null)[][] };
}

export interface StacProvider {
  name: string;
  description?: string;
  roles?: string[];
  url?: string;
  [key: string]: unknown;
}

export interface StacCollection {
  type: 'Collection';
  stac_version: string;
  stac_extensions?: string[];
  id: string;
  title?: string;
  description: string;
  license: string;
  extent: StacExtent;
  links: StacLink[];
  keywords?: string[];
  providers?: StacProvider[];
  summaries?: JsonObject;
  assets?: Record<string, StacAsset>;
  [key: string]: unknown;
}

/** A page of a search, or an ItemCollection file. */
export interface StacItemCollection {
  type: 'FeatureCollection';
  features: StacItem[];
  links?: StacLink[];
  numberMatched?: number;
  numberReturned?: number;
  context?: { matched?: number; returned?: number; limit?: number };
  [key: string]: unknown;
}

/** A STAC API landing page (a Catalog with `conformsTo`, or a legacy one without). */
export type StacLandingPage = StacCatalog;

/** An item as it was found: the document plus where it came from (to resolve relative hrefs). */
export interface LocatedItem {
  item: StacItem;
  /** Absolute URL or absolute file path of the document the item was read from. */
  source: string;
  /** True when that document is a search page or ItemCollection rather than the item's own file. */
  inCollection?: boolean;
}

/** Lon/lat footprint used in coverage maths. */
export interface Footprint {
  geometry: MultiPolygonCoords;
  bbox: Bbox;
}

export type { ArealGeometry, Bbox, MultiPolygonCoords };
