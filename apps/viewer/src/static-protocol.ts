/** Messages between the viewer and its static-mode worker (static-worker.ts). */
import type { HeightStats, PointResponse, StaticRunFiles } from '@geo-dino/server/api-types';

interface Common {
  id: number;
  /** The site's base URL (hrefs in the index are relative to it). */
  base: string;
  /** The PROJ definition of lon/lat (site.json). */
  lonLat: string;
  run: StaticRunFiles;
}

export type WorkerRequest =
  | (Common & { type: 'point'; lon: number; lat: number; classes: { value: number; name: string }[] })
  | (Common & { type: 'stats'; geojson: unknown; fullResPixels: number });

export interface StatsResolution {
  /** 0 = full resolution; n = the overview reduced 2^n times. */
  level: number;
  fullResolution: boolean;
  /** Pixel size of the level the statistics were computed on, metres. */
  pixelSizeM: number;
  raster: string;
}

export type WorkerReply =
  | { id: number; type: 'point'; result: Omit<PointResponse, 'run' | 'lon' | 'lat'> }
  | { id: number; type: 'stats'; result: { polygon: { areaM2: number; vertices: number; bbox: [number, number, number, number] }; stats: HeightStats; resolution: StatsResolution } }
  | { id: number; type: 'error'; error: { kind: string; file: string | null; message: string; code: string | null } };
