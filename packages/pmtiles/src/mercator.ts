/**
 * The Web Mercator (EPSG:3857) tile grid: 256-pixel tiles, zoom z has 2^z × 2^z tiles, y grows
 * southwards (XYZ).
 */
import { TILE_SIZE } from './encoding.js';

/** Half the width of the Mercator plane, metres. */
export const ORIGIN_SHIFT = Math.PI * 6378137;
export const MAX_LATITUDE = 85.0511287798066;

export interface MercatorBounds {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

/** Tile size in Mercator metres at zoom z. */
export function tileSpan(z: number): number {
  return (2 * ORIGIN_SHIFT) / 2 ** z;
}

/** Pixel size in Mercator metres at zoom z. */
export function pixelSpan(z: number): number {
  return tileSpan(z) / TILE_SIZE;
}

export function tileBounds(z: number, x: number, y: number): MercatorBounds {
  const s = tileSpan(z);
  return { minX: -ORIGIN_SHIFT + x * s, maxX: -ORIGIN_SHIFT + (x + 1) * s, maxY: ORIGIN_SHIFT - y * s, minY: ORIGIN_SHIFT - (y + 1) * s };
}

/** The range of tiles at zoom z that intersect `b` (inclusive). */
export function tileRange(z: number, b: MercatorBounds): { minX: number; minY: number; maxX: number; maxY: number } {
  const s = tileSpan(z);
  const n = 2 ** z;
  const clamp = (v: number): number => Math.min(n - 1, Math.max(0, v));
  // Tiles touching the bounds only along an edge are excluded (tiny epsilon).
  const eps = s * 1e-9;
  return {
    minX: clamp(Math.floor((b.minX + ORIGIN_SHIFT + eps) / s)),
    maxX: clamp(Math.floor((b.maxX + ORIGIN_SHIFT - eps) / s)),
    minY: clamp(Math.floor((ORIGIN_SHIFT - b.maxY + eps) / s)),
    maxY: clamp(Math.floor((ORIGIN_SHIFT - b.minY - eps) / s)),
  };
}

export function intersects(a: MercatorBounds, b: MercatorBounds): boolean {
  return a.minX < b.maxX && b.minX < a.maxX && a.minY < b.maxY && b.minY < a.maxY;
}

export function lonLatToMercator(lon: number, lat: number): [number, number] {
  const l = Math.max(-MAX_LATITUDE, Math.min(MAX_LATITUDE, lat));
  return [(lon * ORIGIN_SHIFT) / 180, Math.log(Math.tan(((90 + l) * Math.PI) / 360)) * 6378137];
}

export function mercatorToLonLat(x: number, y: number): [number, number] {
  return [(x / ORIGIN_SHIFT) * 180, (Math.atan(Math.exp(y / 6378137)) * 360) / Math.PI - 90];
}

/**
 * The zoom whose pixels are no coarser than `metres` Mercator metres (5% slack, so a source at
 * 0.6 m lands on the zoom of 0.597 m rather than the next one), clamped to [0, maxAllowed].
 */
export function zoomForPixelSize(metres: number, maxAllowed = 24): number {
  const z = Math.ceil(Math.log2((2 * ORIGIN_SHIFT) / (TILE_SIZE * metres * 1.05)));
  return Math.max(0, Math.min(maxAllowed, z));
}
