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
  /** In a published static site (`geo-dino publish`): where the browser reads values from. */
  static?: StaticRunFiles;
}

/** A raster of a published run, as the browser reads it (geotiff.js over HTTP Range). */
export interface StaticRaster {
  /** chm.tif, chm-<zone>.vrt (a sharded run's zone: its shard COGs as `parts`) or landcover.tif. */
  name: string;
  width: number;
  height: number;
  bandCount: number;
  /** GDAL geotransform of the (mosaic) grid. */
  geoTransform: number[];
  crs: { label: string; definition: string; geographic: boolean; metresPerUnit: number };
  /** The COGs: their URLs relative to the site, and their windows in the grid. */
  parts: { href: string; x: number; y: number; width: number; height: number }[];
}

export interface StaticRunFiles {
  /** The height rasters (one, or one per UTM zone of a sharded run, west to east). */
  heights: StaticRaster[];
  landcover: StaticRaster | null;
  /** provenance.geojson's URL relative to the site, or null. */
  provenance: string | null;
}

/**
 * `/site.json`: which mode the viewer runs in. `geo-dino serve` answers `{ mode: 'server' }`; a
 * site written by `geo-dino publish` holds `mode: 'static'` and its index (`runs.json`).
 */
export interface SiteConfig {
  mode: 'server' | 'static';
  version: string;
  basemap: string | null;
  /** Static sites: the runs index, relative to the site. */
  runs?: string;
  /** Static sites: the PROJ definition of longitude/latitude the rasters' CRSs are transformed from. */
  lonLat?: string;
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
  /** Inside a transition zone across a scene seamline: the two scenes whose predictions are blended there. */
  blend?: { scene_ids: [string, string]; width_m: number | null } | null;
}

export type StatsResponse = {
  run: string;
  polygon: { areaM2: number; vertices: number; bbox: [number, number, number, number] };
} & HeightStats;

export interface ErrorResponse {
  error: string;
  status: number;
}
