/**
 * The JSON the server answers with. Browser-safe (types only): the viewer imports it as
 * `@geo-dino/server/api-types`.
 */
import type { GeoDinoTilesetInfo, LayerName } from '@geo-dino/pmtiles/encoding';

export interface LayerInfo {
  /** height | uncertainty | imagery | landcover, or the file's stem for other archives. */
  id: string;
  layer: LayerName | null;
  file: string;
  /** URL path of the archive on this server. */
  url: string;
  bytes: number;
  tileType: 'png' | 'jpeg' | 'webp' | 'avif' | 'mvt' | 'unknown';
  minzoom: number;
  maxzoom: number;
  bounds: [number, number, number, number];
  center: [number, number, number];
  name: string | null;
  attribution: string | null;
  geoDino: GeoDinoTilesetInfo | null;
}

export interface RunInfo {
  /** Path relative to the served directory, "/"-separated; "." for the directory itself. */
  id: string;
  name: string;
  datetime: string | null;
  demo: boolean;
  /** Group of runs covering the same area. */
  area: string;
  bbox: [number, number, number, number] | null;
  layers: LayerInfo[];
  files: { chm: boolean; landcover: boolean; provenance: boolean; item: boolean; run: boolean };
  /**
   * The rasters holding the heights: `chm.tif`, or for a sharded run one VRT per UTM zone
   * (`chm-37S.vrt`, …), west to east.
   */
  chmRasters?: string[];
  model: string | null;
}

export interface RunsResponse {
  runs: RunInfo[];
}

export interface ConfigResponse {
  version: string;
  /** A MapLibre style URL given with `geo-dino serve --basemap`, else null. */
  basemap: string | null;
}

export interface SceneRef {
  scene_id: string | null;
  datetime: string | null;
  href: string | null;
  collection: string | null;
}

export interface PointResponse {
  run: string;
  lon: number;
  lat: number;
  /** The point is inside chm.tif. */
  inside: boolean;
  pixel: { col: number; row: number } | null;
  /** null where the pixel is nodata (or outside). */
  height_m: number | null;
  uncertainty_m: number | null;
  landcover?: { value: number; name: string | null } | null;
  /** The scene this pixel came from (provenance.geojson). */
  scene: SceneRef | null;
  /** Inside a transition zone across a scene seamline: the two scenes whose predictions are blended there. */
  blend?: { scene_ids: [string, string]; width_m: number | null } | null;
}

export interface StatsResponse {
  run: string;
  polygon: { areaM2: number; vertices: number; bbox: [number, number, number, number] };
  pixels: { inside: number; valid: number; nodata: number };
  pixelAreaM2: number;
  validAreaM2: number;
  height: { mean: number; median: number; std: number; min: number; max: number; p10: number; p90: number } | null;
  uncertainty: { mean: number } | null;
  canopyCover: { gt2m: number; gt5m: number; gt2mAreaM2: number; gt5mAreaM2: number } | null;
  histogram: { binWidthM: number; edges: number[]; counts: number[] };
}

export interface ErrorResponse {
  error: string;
  status: number;
}
