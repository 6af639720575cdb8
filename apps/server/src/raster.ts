/**
 * Values from a run's COG (through the tiler's guarded reader): the pixel under a point, and
 * statistics of the pixels whose centres fall inside a polygon — computed by @geo-dino/zonal.
 */
import { stat } from 'node:fs/promises';
import { GeoDinoError } from '@geo-dino/core';
import { isS3Url } from '@geo-dino/storage';
import type { Aoi } from '@geo-dino/geometry';
import { openRaster, transformBetween, WGS84, type OpenRasterOptions, type RasterSource } from '@geo-dino/tiling';
import { heightRasterNameFor, polygonStats as zonalPolygonStats, valueAt as zonalValueAt, type HeightStats, type PointValue, type StatsLimits, type WindowRaster } from '@geo-dino/zonal';
export type { HeightStats, PointValue, StatsLimits } from '@geo-dino/zonal';
import type { RunInfo } from './runs.js';

/** The raster of a run's heights for a place (zonal's `heightRasterNameFor`). */
export const chmRasterNameFor = heightRasterNameFor;

/** {@link chmRasterNameFor} of a run. */
export function chmRasterFor(run: Pick<RunInfo, 'chmRasters'>, place: [number, number]): string {
  return chmRasterNameFor(run.chmRasters ?? ['chm.tif'], place);
}

/** Open rasters, reopened when the file changes, closed when evicted. */
export class RasterPool {
  private readonly open = new Map<string, { mtimeMs: number; size: number; source: Promise<RasterSource> }>();
  constructor(
    private readonly max = 16,
    private readonly openOptions: OpenRasterOptions = {},
  ) {}

  /** The raster at `path` (a file, or an object URL with its `version` from a listing). */
  async get(path: string, version?: { mtimeMs: number; size: number }): Promise<RasterSource> {
    // An object without a listed version: objects of a published run are not rewritten in place
    // (a new publish changes the manifest), so the first one opened is kept.
    const st = version ?? (isS3Url(path) ? { mtimeMs: 0, size: 0 } : await stat(path));
    const hit = this.open.get(path);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) {
      this.open.delete(path);
      this.open.set(path, hit);
      return hit.source;
    }
    if (hit) {
      this.open.delete(path);
      void hit.source.then((s) => s.close()).catch(() => undefined);
    }
    const source = openRaster(path, this.openOptions);
    source.catch(() => this.open.delete(path));
    this.open.set(path, { mtimeMs: st.mtimeMs, size: st.size, source });
    while (this.open.size > this.max) {
      const [k, v] = this.open.entries().next().value as [string, { source: Promise<RasterSource> }];
      this.open.delete(k);
      void v.source.then((s) => s.close()).catch(() => undefined);
    }
    return source;
  }

  async closeAll(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.allSettled(all.map((v) => v.source.then((s) => s.close())));
  }
}

/**
 * The tiler's guarded reader as @geo-dino/zonal's windowed raster: the point values and polygon
 * statistics are zonal's, the same code the static viewer runs in the browser.
 */
export function windowRaster(source: RasterSource): WindowRaster {
  const { info } = source;
  if (!info.crs || !info.geoTransform) throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${source.name}: no georeferencing`);
  const t = transformBetween(WGS84, info.crs, source.name);
  return {
    name: source.name,
    width: info.width,
    height: info.height,
    bandCount: info.bandCount,
    geoTransform: info.geoTransform,
    geographic: info.crs.geographic,
    metresPerUnit: info.crs.metresPerUnit,
    projection: t,
    read: (window, o) => source.read(window, { bands: o.bands, ...(o.signal ? { signal: o.signal as AbortSignal } : {}) }),
  };
}

/** The pixel containing (lon, lat) and its values in `bands` (0-based). */
export function valueAt(source: RasterSource, lon: number, lat: number, bands: number[]): Promise<PointValue> {
  return zonalValueAt(windowRaster(source), lon, lat, bands);
}

/** Statistics of band 1 (height) and band 2 (uncertainty) over the pixels whose centres are inside `aoi` (zonal's). */
export function polygonStats(source: RasterSource, aoi: Aoi, limits: StatsLimits, signal?: AbortSignal): Promise<HeightStats> {
  return zonalPolygonStats(windowRaster(source), aoi, limits, signal);
}
