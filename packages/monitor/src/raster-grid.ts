/**
 * What change detection and zonal statistics need to know about a run's raster grid: the grid
 * itself, the area of a pixel (per row: constant on a projected grid, varying with latitude on a
 * geographic one), the AOI mask of a window, pixel → lon/lat, and reading another raster onto
 * this grid (a window read when the grids share pixel boundaries, a warp otherwise).
 */
import { GeoDinoError } from '@geo-dino/core';
import { AUTHALIC_RADIUS_M, sinAuthalic, type Aoi } from '@geo-dino/geometry';
import {
  PolygonRaster,
  WGS84,
  crsLabel,
  lonLatToPixels,
  interpolateMesh,
  meshFor,
  pixelToCrs,
  prepareWarpSource,
  resample,
  sameCrs,
  transformBetween,
  windowFromMesh,
  type Grid,
  type PixelWindow,
  type RasterSource,
} from '@geo-dino/tiling';

export function gridOf(raster: RasterSource): Grid {
  const info = raster.info;
  if (!info.geoTransform || !info.crs) {
    throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${info.source}: has no georeferencing (geotransform and CRS)`, { details: { file: info.source } });
  }
  if (info.rotated) throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${info.source}: rotated grids are not supported`, { details: { file: info.source } });
  return { crs: info.crs, transform: info.geoTransform, width: info.width, height: info.height, gsd: Math.abs(info.geoTransform[1]) };
}

/** Area in m² of one pixel of row `y`. */
export function pixelAreaOfRow(grid: Grid): (y: number) => number {
  const [, a, b, , d, e] = grid.transform;
  if (!grid.crs.geographic) {
    const m = grid.crs.metresPerUnit;
    const area = Math.abs(a * e - b * d) * m * m;
    return () => area;
  }
  // Lon/lat grid: the band between two parallels on the authalic sphere.
  const R = AUTHALIC_RADIUS_M;
  const dLon = (Math.abs(a) * Math.PI) / 180;
  const y0 = grid.transform[3];
  return (y) => {
    const top = y0 + y * e;
    const bottom = top + e;
    return R * R * dLon * Math.abs(sinAuthalic(Math.max(-90, Math.min(90, top))) - sinAuthalic(Math.max(-90, Math.min(90, bottom))));
  };
}

/** AOI membership of pixel centres, per window, in bounded memory. */
export class AoiMask {
  private readonly raster: PolygonRaster;

  constructor(aoi: Aoi, grid: Grid) {
    this.raster = new PolygonRaster(lonLatToPixels(aoi.geometry, grid));
  }

  window(win: PixelWindow): Uint8Array {
    const m = new Uint8Array(win.width * win.height);
    this.raster.fill(m, win.x, win.y, win.width, win.height);
    return m;
  }
}

/** Grid pixel corner (x, y) → [lon, lat]. */
export function pixelToLonLat(grid: Grid): (x: number, y: number) => [number, number] {
  const t = transformBetween(grid.crs, WGS84, 'change polygons');
  return (x, y) => {
    const [X, Y] = pixelToCrs(grid, x, y);
    const [lon, lat] = t.forward(X, Y);
    return [lon, lat];
  };
}

/** Reads band 1 of `raster` onto windows of `grid`, as float32 with a validity mask. */
export interface GridReader {
  /** True when the grids share pixel boundaries (reads are exact copies). */
  readonly aligned: boolean;
  read(win: PixelWindow, signal?: AbortSignal): Promise<{ values: Float32Array; valid: Uint8Array }>;
}

function toFloat32(a: ArrayLike<number>): Float32Array {
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

export function gridReader(raster: RasterSource, grid: Grid): GridReader {
  const own = gridOf(raster);
  const [ox, oa, , oy, , oe] = own.transform;
  const [gx, ga, , gy, , ge] = grid.transform;
  const dx = (gx - ox) / oa;
  const dy = (gy - oy) / oe;
  const aligned =
    sameCrs(own.crs, grid.crs) &&
    Math.abs(oa - ga) <= 1e-9 * Math.abs(ga) &&
    Math.abs(oe - ge) <= 1e-9 * Math.abs(ge) &&
    Math.abs(dx - Math.round(dx)) < 1e-6 &&
    Math.abs(dy - Math.round(dy)) < 1e-6;
  if (aligned) {
    const ix = Math.round(dx);
    const iy = Math.round(dy);
    return {
      aligned,
      async read(win, signal) {
        const d = await raster.read({ x: win.x + ix, y: win.y + iy, width: win.width, height: win.height }, { bands: [0], ...(signal ? { signal } : {}) });
        return { values: toFloat32(d.bands[0]!), valid: d.valid };
      },
    };
  }
  if (!own.crs.definition || !grid.crs.definition) {
    throw new GeoDinoError('E_BAD_CRS', `${raster.name}: cannot reproject ${crsLabel(own.crs)} onto ${crsLabel(grid.crs)}`, { details: { file: raster.name } });
  }
  const ws = prepareWarpSource(raster, grid, { overviews: 'none' });
  return {
    aligned,
    async read(win, signal) {
      const n = win.width * win.height;
      const values = new Float32Array(n);
      const valid = new Uint8Array(n);
      const mesh = meshFor(ws, grid, win);
      const src = windowFromMesh(mesh, ws, 'bilinear');
      if (!src) return { values, valid };
      const m = interpolateMesh(mesh);
      const d = await raster.read(src, { bands: [0], ...(signal ? { signal } : {}) });
      resample(m, ws, src, d.bands, d.valid, 'bilinear', [values], valid);
      return { values, valid };
    },
  };
}
