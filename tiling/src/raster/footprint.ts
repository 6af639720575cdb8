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
import { pixelOutlineToLonLat, StreamingPolygonizer, type MultiPolygonCoords, type Position } from '@geo-dino/geometry';
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

function finish(raster: RasterSource, pixelPolys: MultiPolygonCoords, method: Footprint['method'], level: number | null, scaleX: number, scaleY: number): Footprint {
  const { info } = raster;
  const aoi = pixelOutlineToLonLat(pixelPolys, sourceToLonLat(raster), { width: info.width, height: info.height, scaleX, scaleY, geographic: !!info.crs?.geographic, source: info.source });
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
