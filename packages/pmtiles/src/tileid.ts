/**
 * PMTiles v3 tile ids: tiles are numbered zoom by zoom, and within a zoom along a Hilbert curve,
 * so that tiles close on the map are close in the archive (spec §"Tile ID").
 *
 *   id(z, x, y) = (4^z - 1) / 3 + hilbert_z(x, y)
 *
 * The Hilbert index is nested: the four children of a tile at zoom z have indices
 * 4·d .. 4·d+3 at zoom z+1. Ids stay below 2^53 up to zoom 26.
 */
import { GeoDinoError } from '@geo-dino/core';

export const MAX_ZOOM = 26;

/** The id of tile (z, 0, 0)'s zoom: the number of tiles in all zooms below z. */
export function firstTileIdOfZoom(z: number): number {
  return (4 ** z - 1) / 3;
}

/** The position of (x, y) along the Hilbert curve that fills a 2^z × 2^z grid. */
export function hilbertIndex(z: number, x: number, y: number): number {
  let d = 0;
  let px = x;
  let py = y;
  for (let s = 2 ** (z - 1); s >= 1; s /= 2) {
    const rx = (px & s) !== 0 ? 1 : 0;
    const ry = (py & s) !== 0 ? 1 : 0;
    d += s * s * ((3 * rx) ^ ry);
    // Rotate the quadrant so the curve inside it has the canonical orientation.
    if (ry === 0) {
      if (rx === 1) {
        px = s - 1 - (px % s);
        py = s - 1 - (py % s);
      }
      const t = px;
      px = py;
      py = t;
    }
  }
  return d;
}

export function zxyToTileId(z: number, x: number, y: number): number {
  if (!Number.isInteger(z) || z < 0 || z > MAX_ZOOM) {
    throw new GeoDinoError('E_ARGUMENT', `tile zoom ${z} is outside 0..${MAX_ZOOM}`);
  }
  const n = 2 ** z;
  if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || x >= n || y >= n) {
    throw new GeoDinoError('E_ARGUMENT', `tile ${z}/${x}/${y} is outside the zoom ${z} grid (0..${n - 1})`);
  }
  return firstTileIdOfZoom(z) + hilbertIndex(z, x, y);
}

/** The zoom a tile id belongs to. */
export function tileIdZoom(id: number): number {
  let z = 0;
  while (firstTileIdOfZoom(z + 1) <= id) z++;
  return z;
}
