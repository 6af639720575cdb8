/**
 * Statistics of band 1 (height) and band 2 (uncertainty, when present) over the pixels whose
 * centres are inside a polygon, streamed in strips of rows so memory does not grow with the
 * polygon. The one computation behind `geo-dino serve`'s /api/stats and the static viewer.
 */
import { GeoDinoError } from '@geo-dino/core/errors';
import { affinePixelToCrs, boundsOutlineToLonLat, intersection, lonLatToPixelSpace, PolygonRaster, type Aoi, type MultiPolygonCoords } from '@geo-dino/geometry/browser';
import type { Abortable, WindowRaster } from './raster.js';

export interface HeightStats {
  pixels: { inside: number; valid: number; nodata: number };
  pixelAreaM2: number;
  validAreaM2: number;
  height: { mean: number; median: number; std: number; min: number; max: number; p10: number; p90: number } | null;
  uncertainty: { mean: number } | null;
  canopyCover: { gt2m: number; gt5m: number; gt2mAreaM2: number; gt5mAreaM2: number } | null;
  histogram: { binWidthM: number; edges: number[]; counts: number[] };
}

export interface StatsLimits {
  /** Largest number of raster pixels in the polygon's bounding box (E_LIMIT above). */
  maxPixels: number;
}

/** cm bins for the exact-to-a-centimetre median and percentiles. */
const CM_BINS = 65536;

function niceBinWidth(max: number): number {
  for (const w of [0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100]) if (Math.ceil(max / w) <= 40) return w;
  return Math.ceil(max / 40);
}

/** The raster's extent as a lon/lat polygon (its bounds, densified). */
export function rasterFootprint(raster: WindowRaster): MultiPolygonCoords {
  const toLonLat = (px: number, py: number): [number, number] => {
    const [x, y] = affinePixelToCrs(raster.geoTransform, px, py);
    return raster.projection.inverse(x, y);
  };
  return boundsOutlineToLonLat(toLonLat, { width: raster.width, height: raster.height, geographic: raster.geographic, source: raster.name }).geometry;
}

/** The pixel window (bounding box, clipped to the raster) of the part of `aoi` over it, and its rasteriser. */
export function polygonWindow(raster: WindowRaster, aoi: Aoi): { poly: PolygonRaster; r0: number; r1: number; c0: number; c1: number } {
  // Only the part of the polygon over the raster is projected: parts beside it, across the
  // antimeridian or over a pole have no pixels (and may not even project into the raster's CRS).
  const over = intersection(aoi.geometry, rasterFootprint(raster));
  const poly = new PolygonRaster(over.length ? lonLatToPixelSpace(over, raster.projection.forward, raster.geoTransform) : []);
  if (over.length && ![poly.minX, poly.minY, poly.maxX, poly.maxY].every(Number.isFinite)) throw new GeoDinoError('E_BAD_AOI', 'the polygon cannot be projected onto the raster');
  // An empty polygon (nothing over the raster) has an empty window.
  const r0 = over.length ? Math.max(0, Math.floor(poly.minY)) : 0;
  const r1 = over.length ? Math.max(r0, Math.min(raster.height, Math.ceil(poly.maxY))) : 0;
  const c0 = over.length ? Math.max(0, Math.floor(poly.minX)) : 0;
  const c1 = over.length ? Math.max(c0, Math.min(raster.width, Math.ceil(poly.maxX))) : 0;
  return { poly, r0, r1, c0, c1 };
}

/** Pixels in the bounding box of the part of `aoi` over the raster (what {@link StatsLimits.maxPixels} caps). */
export function polygonPixelCount(raster: WindowRaster, aoi: Aoi): number {
  const { r0, r1, c0, c1 } = polygonWindow(raster, aoi);
  return Math.max(0, r1 - r0) * Math.max(0, c1 - c0);
}

/** Statistics over the pixels whose centres are inside `aoi`. */
export async function polygonStats(raster: WindowRaster, aoi: Aoi, limits: StatsLimits, signal?: Abortable): Promise<HeightStats> {
  const { poly, r0, r1, c0, c1 } = polygonWindow(raster, aoi);
  const bboxPixels = Math.max(0, r1 - r0) * Math.max(0, c1 - c0);
  if (bboxPixels > limits.maxPixels) {
    throw new GeoDinoError('E_LIMIT', `the polygon covers ${bboxPixels} raster pixels (bounding box); the limit is ${limits.maxPixels}`, {
      details: { pixels: bboxPixels, limit: limits.maxPixels },
    });
  }
  const gt = raster.geoTransform;
  const mpu = raster.metresPerUnit;
  let pixelAreaM2 = Math.abs(gt[1]! * gt[5]! - gt[2]! * gt[4]!) * mpu * mpu;
  if (raster.geographic) pixelAreaM2 *= Math.cos((aoi.centroid[1] * Math.PI) / 180);

  const bands = raster.bandCount >= 2 ? [0, 1] : [0];
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
    const data = await raster.read({ x: c0, y: ys, width, height: h }, { bands, ...(signal ? { signal } : {}) });
    const hb = data.bands[0]!;
    const ub = bands.length > 1 ? data.bands[1]! : null;
    for (let i = 0; i < width * h; i++) {
      if (!mask[i]) continue;
      inside++;
      if (!data.valid[i]) continue;
      const v = Number(hb[i]);
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
      if (ub) {
        const u = Number(ub[i]);
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
