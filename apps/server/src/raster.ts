/**
 * Values from a run's COG (through the tiler's guarded reader): the pixel under a point, and
 * statistics of the pixels whose centres fall inside a polygon, streamed in strips of rows so that
 * memory does not grow with the polygon.
 */
import { stat } from 'node:fs/promises';
import { GeoDinoError } from '@geo-dino/core';
import { isS3Url } from '@geo-dino/storage';
import { intersection, type Aoi } from '@geo-dino/geometry';
import {
  crsToPixel,
  footprintFromBounds,
  lonLatToPixels,
  openRaster,
  PolygonRaster,
  transformBetween,
  utmCrsFor,
  WGS84,
  zoneLabel,
  type Grid,
  type OpenRasterOptions,
  type RasterSource,
} from '@geo-dino/tiling';
import type { StatsResponse } from './api-types.js';
import type { RunInfo } from './runs.js';

/**
 * The raster of a run's heights for a place, among the run's `names` (run.chmRasters): chm.tif, or
 * for a sharded run the VRT of the UTM zone (and hemisphere) of that place, else the first zone's.
 */
export function chmRasterNameFor(names: readonly string[], [lon, lat]: [number, number]): string {
  if (names.length <= 1) return names[0] ?? 'chm.tif';
  const zone = zoneLabel(utmCrsFor(lon, lat));
  return names.find((n) => n === `chm-${zone}.vrt`) ?? names[0]!;
}

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

/** The raster as a tiler grid (its CRS and geotransform). */
function gridOf(source: RasterSource): Grid {
  const { info } = source;
  if (!info.crs || !info.geoTransform) throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${source.name}: no georeferencing`);
  return { crs: info.crs, transform: info.geoTransform, width: info.width, height: info.height, gsd: Math.abs(info.geoTransform[1]) };
}

export interface PointValue {
  inside: boolean;
  col: number | null;
  row: number | null;
  /** Band values (null where the pixel is nodata or outside). */
  values: (number | null)[];
}

/** The pixel containing (lon, lat) and its values in `bands` (0-based). */
export async function valueAt(source: RasterSource, lon: number, lat: number, bands: number[]): Promise<PointValue> {
  const grid = gridOf(source);
  const [x, y] = transformBetween(WGS84, grid.crs, source.name).forward(lon, lat);
  const [c, r] = crsToPixel(grid, x, y);
  const col = Math.floor(c);
  const row = Math.floor(r);
  const { width, height } = source.info;
  const usable = bands.filter((b) => b < source.info.bandCount);
  if (!Number.isFinite(c) || !Number.isFinite(r) || col < 0 || row < 0 || col >= width || row >= height) {
    return { inside: false, col: null, row: null, values: bands.map(() => null) };
  }
  const data = await source.read({ x: col, y: row, width: 1, height: 1 }, { bands: usable });
  const valid = data.valid[0] === 1;
  return {
    inside: true,
    col,
    row,
    values: bands.map((b) => {
      const i = usable.indexOf(b);
      if (i < 0 || !valid) return null;
      const v = Number(data.bands[i]![0]);
      return Number.isFinite(v) ? v : null;
    }),
  };
}

export interface StatsLimits {
  /** Largest number of raster pixels in the polygon's bounding box. */
  maxPixels: number;
}

/** Statistics of a polygon (the StatsResponse without the request echo). */
export type HeightStats = Omit<StatsResponse, 'run' | 'polygon'>;

/** cm bins for the exact-to-a-centimetre median and percentiles. */
const CM_BINS = 65536;

function niceBinWidth(max: number): number {
  for (const w of [0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100]) if (Math.ceil(max / w) <= 40) return w;
  return Math.ceil(max / 40);
}

/**
 * Statistics of band 1 (height) and band 2 (uncertainty, when present) over the pixels whose
 * centres are inside `aoi`.
 */
export async function polygonStats(source: RasterSource, aoi: Aoi, limits: StatsLimits, signal?: AbortSignal): Promise<HeightStats> {
  const { info } = source;
  // Only the part of the polygon over the raster is projected: parts beside it, across the
  // antimeridian or over a pole have no pixels (and may not even project into the raster's CRS).
  const over = intersection(aoi.geometry, footprintFromBounds(source).geometry);
  const poly = new PolygonRaster(over.length ? lonLatToPixels(over, gridOf(source)) : []);
  if (over.length && ![poly.minX, poly.minY, poly.maxX, poly.maxY].every(Number.isFinite)) throw new GeoDinoError('E_BAD_AOI', 'the polygon cannot be projected onto the raster');
  const minC = poly.minX;
  const maxC = poly.maxX;
  const minR = poly.minY;
  const maxR = poly.maxY;
  // An empty polygon (nothing over the raster) has an empty window.
  const r0 = over.length ? Math.max(0, Math.floor(minR)) : 0;
  const r1 = over.length ? Math.max(r0, Math.min(info.height, Math.ceil(maxR))) : 0;
  const c0 = over.length ? Math.max(0, Math.floor(minC)) : 0;
  const c1 = over.length ? Math.max(c0, Math.min(info.width, Math.ceil(maxC))) : 0;
  const bboxPixels = Math.max(0, r1 - r0) * Math.max(0, c1 - c0);
  if (bboxPixels > limits.maxPixels) {
    throw new GeoDinoError('E_LIMIT', `the polygon covers ${bboxPixels} raster pixels (bounding box); the limit is ${limits.maxPixels}`, {
      details: { pixels: bboxPixels, limit: limits.maxPixels },
    });
  }
  const gt = info.geoTransform!;
  const mpu = info.crs?.metresPerUnit ?? 1;
  let pixelAreaM2 = Math.abs(gt[1] * gt[5] - gt[2] * gt[4]) * mpu * mpu;
  if (info.crs?.geographic) pixelAreaM2 *= Math.cos((aoi.centroid[1] * Math.PI) / 180);

  const bands = info.bandCount >= 2 ? [0, 1] : [0];
  const hist = new Uint32Array(CM_BINS);
  let inside = 0;
  let valid = 0;
  let sum = 0;
  let sumSq = 0;
  let min = Infinity;
  let max = -Infinity;
  let gt2 = 0;
  let gt5 = 0;
  let uSum = 0;
  let uN = 0;
  const width = c1 - c0;
  const strip = Math.max(1, Math.min(256, Math.floor(4_000_000 / Math.max(1, width))));
  const mask = new Uint8Array(width * strip);
  for (let ys = r0; ys < r1 && width > 0; ys += strip) {
    if (signal?.aborted) throw new GeoDinoError('E_CANCELLED', 'interrupted');
    const h = Math.min(strip, r1 - ys);
    mask.fill(0);
    poly.fill(mask, c0, ys, width, h);
    if (!mask.subarray(0, width * h).includes(1)) continue;
    const data = await source.read({ x: c0, y: ys, width, height: h }, { bands, ...(signal ? { signal } : {}) });
    for (let i = 0; i < width * h; i++) {
      if (!mask[i]) continue;
      inside++;
      if (!data.valid[i]) continue;
      const v = Number(data.bands[0]![i]);
      if (!Number.isFinite(v)) continue;
      valid++;
      sum += v;
      sumSq += v * v;
      if (v < min) min = v;
      if (v > max) max = v;
      if (v > 2) gt2++;
      if (v > 5) gt5++;
      const cm = Math.round(v * 100);
      hist[cm < 0 ? 0 : cm >= CM_BINS ? CM_BINS - 1 : cm]!++;
      if (bands.length > 1) {
        const u = Number(data.bands[1]![i]);
        if (Number.isFinite(u)) (uSum += u), uN++;
      }
    }
  }

  // Value of the k-th smallest (0-based) from the centimetre histogram.
  const kth = (rank: number): number => {
    let acc = 0;
    for (let b = 0; b < CM_BINS; b++) {
      acc += hist[b]!;
      if (acc > rank) return b / 100;
    }
    return (CM_BINS - 1) / 100;
  };
  const pct = (p: number): number => kth(Math.min(valid - 1, Math.max(0, Math.ceil(p * valid) - 1)));
  const binWidthM = niceBinWidth(valid ? Math.max(max, 0.01) : 1);
  const nBins = Math.max(1, Math.ceil((valid ? Math.max(max, 0) + 1e-9 : 1) / binWidthM));
  const counts = new Array<number>(nBins).fill(0);
  const binCm = Math.round(binWidthM * 100);
  for (let b = 0; b < CM_BINS; b++) if (hist[b]) counts[Math.min(nBins - 1, Math.floor(b / binCm))]! += hist[b]!;
  const mean = valid ? sum / valid : NaN;
  return {
    pixels: { inside, valid, nodata: inside - valid },
    pixelAreaM2,
    validAreaM2: valid * pixelAreaM2,
    height: valid
      ? {
          mean,
          median: valid % 2 ? kth((valid - 1) / 2) : (kth(valid / 2 - 1) + kth(valid / 2)) / 2,
          std: Math.sqrt(Math.max(0, sumSq / valid - mean * mean)),
          min,
          max,
          p10: pct(0.1),
          p90: pct(0.9),
        }
      : null,
    uncertainty: uN ? { mean: uSum / uN } : null,
    canopyCover: valid ? { gt2m: gt2 / valid, gt5m: gt5 / valid, gt2mAreaM2: gt2 * pixelAreaM2, gt5mAreaM2: gt5 * pixelAreaM2 } : null,
    histogram: { binWidthM, edges: Array.from({ length: nBins + 1 }, (_, i) => Number((i * binWidthM).toFixed(4))), counts },
  };
}
