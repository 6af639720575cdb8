/**
 * GDAL geotransforms: pixel (x right, y down) ↔ CRS coordinates, and lon/lat polygons to pixel
 * space through a caller's projection. Browser-safe; the tiler's grids and @geo-dino/zonal use them.
 */
import { densify, mapPositions } from './ops.js';
import type { MultiPolygonCoords, Position } from './types.js';

/** [x0, a, b, y0, d, e]: x = x0 + px·a + py·b, y = y0 + px·d + py·e. */
export type Affine = readonly [number, number, number, number, number, number] | readonly number[];

export function affinePixelToCrs(g: Affine, px: number, py: number): Position {
  return [g[0]! + px * g[1]! + py * g[2]!, g[3]! + px * g[4]! + py * g[5]!];
}

export function affineCrsToPixel(g: Affine, x: number, y: number): Position {
  const [x0, a, b, y0, d, e] = g as [number, number, number, number, number, number];
  const det = a * e - b * d;
  const dx = x - x0;
  const dy = y - y0;
  return [(e * dx - b * dy) / det, (-d * dx + a * dy) / det];
}

/** Degrees between inserted vertices when a lon/lat polygon is projected. */
export const DENSIFY_DEG = 0.01;

/** A lon/lat polygon in the pixel space of a raster: densified, projected with `forward` (lon/lat → CRS), through the geotransform. */
export function lonLatToPixelSpace(geometry: MultiPolygonCoords, forward: (lon: number, lat: number) => [number, number] | Position, g: Affine): MultiPolygonCoords {
  return mapPositions(densify(geometry, DENSIFY_DEG), ([lon, lat]) => {
    const [x, y] = forward(lon, lat);
    return affineCrsToPixel(g, x, y);
  });
}
