/**
 * The JSON the server answers with. Browser-safe (types only): the viewer imports it as
 * `@geo-dino/server/api-types`.
 */
import type { GeoDinoTilesetInfo, LayerName } from '@geo-dino/pmtiles/encoding';
import type { HeightStats, SceneRef } from '@geo-dino/zonal';

export type { HeightStats, SceneRef };

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
}

export type StatsResponse = {
  run: string;
  polygon: { areaM2: number; vertices: number; bbox: [number, number, number, number] };
} & HeightStats;

export interface ErrorResponse {
  error: string;
  status: number;
}
