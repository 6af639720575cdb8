/**
 * A raster's outline in pixel space as a lon/lat AOI: every edge is densified (about 64 steps
 * along the raster's long side), projected with `toLonLat`, unwrapped across ±180 and parsed as
 * an AOI (split at the antimeridian). Shared by the tiler's footprints and @geo-dino/zonal, so the
 * server and the browser clip polygons to the same footprint.
 */
import { GeoDinoError } from '@geo-dino/core/errors';
import { parseAoi, type Aoi } from './aoi.js';
import type { MultiPolygonCoords, Position } from './types.js';

/** Unwrap longitudes along each ring so a ring crossing ±180 stays continuous (then split by parseAoi). */
export function unwrapRings(mp: MultiPolygonCoords): MultiPolygonCoords {
  return mp.map((poly) =>
    poly.map((ring) => {
      const out: Position[] = [];
      let prev: number | null = null;
      for (const [lon, lat] of ring) {
        let l = lon;
        if (prev !== null) {
          while (l - prev > 180) l -= 360;
          while (l - prev < -180) l += 360;
        }
        out.push([l, lat]);
        prev = l;
      }
      return out;
    }),
  );
}

export interface PixelOutlineOptions {
  /** The raster's size (full resolution), pixels. */
  width: number;
  height: number;
  /** Pixel-space scale of `pixelPolys` to full resolution (an overview's factor; default 1). */
  scaleX?: number;
  scaleY?: number;
  /** The raster's CRS is geographic (longitudes already in range). */
  geographic: boolean;
  /** Names the raster in messages. */
  source: string;
}

/** `pixelPolys` (pixel coordinates) as a lon/lat AOI; `toLonLat` maps full-resolution pixel coordinates to lon/lat. */
export function pixelOutlineToLonLat(pixelPolys: MultiPolygonCoords, toLonLat: (px: number, py: number) => Position, o: PixelOutlineOptions): Aoi {
  const scaleX = o.scaleX ?? 1;
  const scaleY = o.scaleY ?? 1;
  const step = Math.max(o.width, o.height) / 64;
  const lonlat: MultiPolygonCoords = pixelPolys.map((poly) =>
    poly.map((ring) => {
      const out: Position[] = [];
      for (let i = 0; i + 1 < ring.length; i++) {
        const [x0, y0] = ring[i]!;
        const [x1, y1] = ring[i + 1]!;
        const n = Math.max(1, Math.ceil(Math.hypot((x1 - x0) * scaleX, (y1 - y0) * scaleY) / step));
        for (let k = 0; k < n; k++) out.push(toLonLat((x0 + ((x1 - x0) * k) / n) * scaleX, (y0 + ((y1 - y0) * k) / n) * scaleY));
      }
      out.push(out[0]!);
      return out;
    }),
  );
  if (lonlat.some((p) => p.some((r) => r.some(([x, y]) => !Number.isFinite(x) || !Number.isFinite(y))))) {
    throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${o.source}: the footprint does not transform to longitude/latitude`, { details: { file: o.source } });
  }
  // Geographic sources already have longitudes in range; projected ones may cross ±180.
  const coords = o.geographic ? lonlat.map((p) => p.map((r) => r.map(([x, y]): Position => [Math.max(-179.9999999, Math.min(179.9999999, x)), y]))) : unwrapRings(lonlat);
  return parseAoi({ type: 'MultiPolygon', coordinates: coords }, `${o.source} footprint`);
}

/** The rectangle of a `width` × `height` raster as a lon/lat AOI (see {@link pixelOutlineToLonLat}). */
export function boundsOutlineToLonLat(toLonLat: (px: number, py: number) => Position, o: PixelOutlineOptions): Aoi {
  const { width, height } = o;
  return pixelOutlineToLonLat([[[[0, 0], [0, height], [width, height], [width, 0], [0, 0]]]], toLonLat, o);
}
