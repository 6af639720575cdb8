/**
 * Scene footprints for provenance: where a scene has valid data, as a lon/lat polygon.
 *
 * `sceneFootprint` reads the validity mask (internal mask, alpha or nodata) at a coarse level (the
 * finest overview at most `maxSize` pixels on its long side), polygonises the valid pixels row by
 * row with the geometry package's `StreamingPolygonizer` (4-connected, holes kept), and projects
 * the outline (densified along long edges) to WGS 84.
 * Without overviews and with a large image it falls back to the raster's bounds
 * (`footprintFromBounds`) rather than reading the whole scene; `method` says which was used.
 * Polygons crossing the antimeridian are split there, as geo-dino's AOIs are.
 */
import { GeoDinoError, throwIfAborted, type Logger } from '@geo-dino/core';
import { parseAoi, StreamingPolygonizer, type MultiPolygonCoords, type Position } from '@geo-dino/geometry';
import { transformBetween, WGS84 } from '../crs/crs.js';
import type { RasterSource } from './source.js';

export interface Footprint {
  /** Lon/lat MultiPolygon (EPSG:4326). */
  geometry: MultiPolygonCoords;
  bbox: [number, number, number, number];
  /** 'mask': from the validity mask at `level`; 'bounds': the raster's extent. */
  method: 'mask' | 'bounds';
  level: number | null;
}

function sourceToLonLat(raster: RasterSource): (px: number, py: number) => Position {
  const info = raster.info;
  if (!info.geoTransform || !info.crs) {
    throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${info.source}: has no georeferencing or CRS; no footprint can be computed`, { details: { file: info.source } });
  }
  const gt = info.geoTransform;
  const t = transformBetween(info.crs, WGS84, info.source);
  return (px, py) => t.forward(gt[0] + px * gt[1] + py * gt[2], gt[3] + px * gt[4] + py * gt[5]);
}

/** Unwrap longitudes along each ring so a ring crossing ±180 stays continuous (then split by parseAoi). */
function unwrapRings(mp: MultiPolygonCoords): MultiPolygonCoords {
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

function finish(raster: RasterSource, pixelPolys: MultiPolygonCoords, method: Footprint['method'], level: number | null, scaleX: number, scaleY: number): Footprint {
  const toLL = sourceToLonLat(raster);
  const step = Math.max(raster.info.width, raster.info.height) / 64;
  const lonlat: MultiPolygonCoords = pixelPolys.map((poly) =>
    poly.map((ring) => {
      const out: Position[] = [];
      for (let i = 0; i + 1 < ring.length; i++) {
        const [x0, y0] = ring[i]!;
        const [x1, y1] = ring[i + 1]!;
        const n = Math.max(1, Math.ceil(Math.hypot((x1 - x0) * scaleX, (y1 - y0) * scaleY) / step));
        for (let k = 0; k < n; k++) out.push(toLL((x0 + ((x1 - x0) * k) / n) * scaleX, (y0 + ((y1 - y0) * k) / n) * scaleY));
      }
      out.push(out[0]!);
      return out;
    }),
  );
  if (lonlat.some((p) => p.some((r) => r.some(([x, y]) => !Number.isFinite(x) || !Number.isFinite(y))))) {
    throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${raster.info.source}: the footprint does not transform to longitude/latitude`, { details: { file: raster.info.source } });
  }
  // Geographic sources already have longitudes in range; projected ones may cross ±180.
  const coords = raster.info.crs?.geographic ? lonlat.map((p) => p.map((r) => r.map(([x, y]): Position => [Math.max(-179.9999999, Math.min(179.9999999, x)), y]))) : unwrapRings(lonlat);
  const aoi = parseAoi({ type: 'MultiPolygon', coordinates: coords }, `${raster.info.source} footprint`);
  return { geometry: aoi.geometry, bbox: aoi.bbox, method, level };
}

/** The raster's extent as a lon/lat polygon. */
export function footprintFromBounds(raster: RasterSource): Footprint {
  const { width, height } = raster.info;
  const rect: MultiPolygonCoords = [
    [
      [
        [0, 0],
        [0, height],
        [width, height],
        [width, 0],
        [0, 0],
      ],
    ],
  ];
  return finish(raster, rect, 'bounds', null, 1, 1);
}

export interface FootprintOptions {
  /** Long side of the level the mask is read at (default 512). */
  maxSize?: number;
  log?: Logger;
  signal?: AbortSignal;
}

/** The valid-data footprint of a scene (see the module comment). */
export async function sceneFootprint(raster: RasterSource, options: FootprintOptions = {}): Promise<Footprint> {
  const info = raster.info;
  const maxSize = options.maxSize ?? 512;
  if (info.mask === 'none') return footprintFromBounds(raster);
  // The finest level within maxSize, else the coarsest level if it is small enough to read whole.
  const coarsest = info.levels[info.levels.length - 1]!;
  const lv = info.levels.find((l) => Math.max(l.width, l.height) <= maxSize) ?? (coarsest.width * coarsest.height <= 16 * maxSize * maxSize ? coarsest : null);
  if (!lv) {
    options.log?.info({ file: info.source }, 'no overview small enough for a mask footprint; using the raster bounds');
    return footprintFromBounds(raster);
  }
  throwIfAborted(options.signal);
  const d = await raster.read({ x: 0, y: 0, width: lv.width, height: lv.height }, { level: lv.level, ...(options.signal ? { signal: options.signal } : {}) });
  if (!d.valid.some((v) => v === 1)) {
    return { geometry: [], bbox: [NaN, NaN, NaN, NaN], method: 'mask', level: lv.level };
  }
  // The valid pixels (label 1) as polygons, row by row.
  const poly = new StreamingPolygonizer();
  const outline: MultiPolygonCoords = [];
  for (let y = 0; y < lv.height; y++) for (const r of poly.addRow(d.valid.subarray(y * lv.width, (y + 1) * lv.width))) outline.push(...r.polygons);
  for (const r of poly.finish()) outline.push(...r.polygons);
  return finish(raster, outline, 'mask', lv.level, lv.factorX, lv.factorY);
}
