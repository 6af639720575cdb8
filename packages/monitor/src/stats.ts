/**
 * Zonal statistics of a run's rasters over a region: block by block (bounded memory), over the
 * pixels whose centre lies in the AOI.
 *
 * Canopy height (`zonalStats`, chm.tif):
 * - `validPercent`: share of the AOI's pixels with a valid height;
 * - `meanHeightM`: area-weighted mean height of the valid pixels; `maxHeightM`;
 * - `cover2mPercent` / `cover5mPercent`: canopy cover, the share of the valid area taller than
 *   2 m / 5 m (and the corresponding areas in m²);
 * - areas in m² from the grid (constant pixel area on projected grids, per row on lon/lat grids);
 *   `aoiAreaM2` is the AOI's geodesic area.
 *
 * Land cover (`landcoverStats`, landcover.tif): pixels and area of every class of the head's
 * class table inside the AOI, and its share of the classified area there (nodata pixels — no
 * valid imagery — are not classified and count nowhere).
 */
import { GeoDinoError, silentProgress, throwIfAborted, type Progress } from '@geo-dino/core';
import type { ExtraHeadSpec } from '@geo-dino/chm';
import type { Aoi } from '@geo-dino/geometry';
import { openRaster, type PixelWindow } from '@geo-dino/tiling';
import { AoiMask, gridOf, gridReader, pixelAreaOfRow } from './raster-grid.js';
import type { LandcoverStats, RunStats } from './store.js';

export interface StatsOptions {
  blockSize?: number;
  progress?: Progress;
  signal?: AbortSignal;
}

/** A block of band 1 with the AOI mask of its pixels and their area (m²) per row. */
interface AoiBlock {
  win: PixelWindow;
  values: Float32Array;
  valid: Uint8Array;
  inside: Uint8Array;
  areaOfRow: (y: number) => number;
}

/** Visit the blocks of `path`'s band 1 that meet the AOI. Returns the area of a pixel of the middle row. */
async function forEachAoiBlock(path: string, aoi: Aoi, task: string, options: StatsOptions, visit: (b: AoiBlock) => void): Promise<number> {
  const raster = await openRaster(path);
  try {
    const grid = gridOf(raster);
    const reader = gridReader(raster, grid);
    const mask = new AoiMask(aoi, grid);
    const areaOfRow = pixelAreaOfRow(grid);
    const B = options.blockSize ?? 512;
    const across = Math.ceil(grid.width / B);
    const down = Math.ceil(grid.height / B);
    const progress = (options.progress ?? silentProgress).start(task, { total: across * down, unit: 'blocks' });
    for (let by = 0; by < down; by++) {
      for (let bx = 0; bx < across; bx++) {
        throwIfAborted(options.signal);
        const win = { x: bx * B, y: by * B, width: Math.min(B, grid.width - bx * B), height: Math.min(B, grid.height - by * B) };
        const inside = mask.window(win);
        if (inside.includes(1)) {
          const d = await reader.read(win, options.signal);
          visit({ win, values: d.values, valid: d.valid, inside, areaOfRow });
        }
        progress.tick();
      }
    }
    progress.finish();
    return areaOfRow(Math.floor(grid.height / 2));
  } finally {
    await raster.close();
  }
}

export async function zonalStats(chmPath: string, aoi: Aoi, options: StatsOptions = {}): Promise<RunStats> {
  let inside = 0;
  let valid = 0;
  let insideArea = 0;
  let validArea = 0;
  let sumH = 0;
  let maxH = -Infinity;
  let area2 = 0;
  let area5 = 0;
  const pixelArea = await forEachAoiBlock(chmPath, aoi, 'zonal statistics', options, ({ win, values, valid: ok, inside: m, areaOfRow }) => {
    for (let j = 0; j < win.height; j++) {
      const pa = areaOfRow(win.y + j);
      for (let i = 0; i < win.width; i++) {
        const k = j * win.width + i;
        if (!m[k]) continue;
        inside++;
        insideArea += pa;
        if (!ok[k]) continue;
        const h = values[k]!;
        if (!Number.isFinite(h)) continue;
        valid++;
        validArea += pa;
        sumH += h * pa;
        if (h > maxH) maxH = h;
        if (h > 2) area2 += pa;
        if (h > 5) area5 += pa;
      }
    }
  });
  return statsOf({ aoiAreaM2: aoi.areaM2, pixelAreaM2: pixelArea, inside, valid, insideArea, validArea, sumH, maxH: valid > 0 ? maxH : null, area2, area5 });
}

/** The sums zonal statistics are made of (and add up over disjoint parts). */
interface StatsSums {
  aoiAreaM2: number;
  pixelAreaM2: number;
  inside: number;
  valid: number;
  insideArea: number;
  validArea: number;
  /** Σ height · pixel area over the valid pixels. */
  sumH: number;
  maxH: number | null;
  area2: number;
  area5: number;
}

function statsOf(t: StatsSums): RunStats {
  return {
    aoiAreaM2: t.aoiAreaM2,
    pixelAreaM2: t.pixelAreaM2,
    pixelsInside: t.inside,
    pixelsValid: t.valid,
    validAreaM2: t.validArea,
    validPercent: t.insideArea > 0 ? (100 * t.validArea) / t.insideArea : 0,
    meanHeightM: t.validArea > 0 ? t.sumH / t.validArea : null,
    maxHeightM: t.valid > 0 ? t.maxH : null,
    cover2mPercent: t.validArea > 0 ? (100 * t.area2) / t.validArea : null,
    cover5mPercent: t.validArea > 0 ? (100 * t.area5) / t.validArea : null,
    canopy2mAreaM2: t.area2,
    canopy5mAreaM2: t.area5,
  };
}

/** What the statistics need of the class map's head (as the plan records it). */
export type LandcoverHeadInfo = Pick<ExtraHeadSpec, 'source' | 'sha256' | 'nodata' | 'classes'>;

/** Per-class pixels, area and share of a land-cover map (uint8 class values) inside the AOI. */
export async function landcoverStats(landcoverPath: string, aoi: Aoi, head: LandcoverHeadInfo, options: StatsOptions = {}): Promise<LandcoverStats> {
  const index = new Int16Array(256).fill(-1);
  head.classes.forEach((c, k) => (index[c.value] = k));
  const pixels = new Array<number>(head.classes.length).fill(0);
  const areas = new Array<number>(head.classes.length).fill(0);
  let unknown: number | null = null;
  await forEachAoiBlock(landcoverPath, aoi, 'land-cover statistics', options, ({ win, values, valid, inside, areaOfRow }) => {
    for (let j = 0; j < win.height; j++) {
      const pa = areaOfRow(win.y + j);
      for (let i = 0; i < win.width; i++) {
        const k = j * win.width + i;
        if (!inside[k] || !valid[k]) continue;
        const v = values[k]!;
        if (v === head.nodata) continue;
        const c = v >= 0 && v < 256 && Number.isInteger(v) ? index[v]! : -1;
        if (c < 0) {
          unknown ??= v;
          continue;
        }
        pixels[c]!++;
        areas[c]! += pa;
      }
    }
  });
  if (unknown !== null) throw new GeoDinoError('E_INTERNAL', `${landcoverPath}: holds value ${unknown}, which is not in the class table of ${head.source}`, { details: { path: landcoverPath, value: unknown } });
  const classifiedArea = areas.reduce((a, b) => a + b, 0);
  return {
    head: head.source,
    headSha256: head.sha256,
    nodata: head.nodata,
    pixelsClassified: pixels.reduce((a, b) => a + b, 0),
    classifiedAreaM2: classifiedArea,
    classes: head.classes.map((c, k) => ({
      value: c.value,
      name: c.name,
      title: c.title ?? null,
      color: c.color,
      pixels: pixels[k]!,
      areaM2: areas[k]!,
      percent: classifiedArea > 0 ? (100 * areas[k]!) / classifiedArea : 0,
    })),
  };
}

/**
 * The zonal statistics of a map made of disjoint parts (a sharded region's shards) from each
 * part's: counts and areas add up, the mean is weighted by valid area, the maximum is the largest.
 * The parts' grids are projected (constant pixel area), as shard grids are.
 */
export function combineZonalStats(parts: readonly RunStats[], aoiAreaM2: number): RunStats {
  const t: StatsSums = { aoiAreaM2, pixelAreaM2: parts[0]?.pixelAreaM2 ?? 0, inside: 0, valid: 0, insideArea: 0, validArea: 0, sumH: 0, maxH: null, area2: 0, area5: 0 };
  for (const p of parts) {
    t.inside += p.pixelsInside;
    t.valid += p.pixelsValid;
    t.insideArea += p.pixelsInside * p.pixelAreaM2;
    t.validArea += p.validAreaM2;
    if (p.meanHeightM !== null) t.sumH += p.meanHeightM * p.validAreaM2;
    if (p.maxHeightM !== null) t.maxH = t.maxH === null ? p.maxHeightM : Math.max(t.maxH, p.maxHeightM);
    t.area2 += p.canopy2mAreaM2;
    t.area5 += p.canopy5mAreaM2;
  }
  return statsOf(t);
}

/** The land cover of a map made of disjoint parts (a sharded region's shards) from each part's: pixels and areas per class add up. */
export function combineLandcoverStats(parts: readonly LandcoverStats[]): LandcoverStats | null {
  const first = parts[0];
  if (!first) return null;
  const classes = first.classes.map((c) => ({ ...c, pixels: 0, areaM2: 0, percent: 0 }));
  let pixels = 0;
  let area = 0;
  for (const p of parts) {
    for (const c of p.classes) {
      const k = classes.findIndex((x) => x.value === c.value);
      if (k < 0) throw new GeoDinoError('E_INTERNAL', `land-cover class ${c.value} (${c.name}) of ${p.head} is not in the class table of ${first.head}`);
      classes[k]!.pixels += c.pixels;
      classes[k]!.areaM2 += c.areaM2;
    }
    pixels += p.pixelsClassified;
    area += p.classifiedAreaM2;
  }
  for (const c of classes) c.percent = area > 0 ? (100 * c.areaM2) / area : 0;
  return { head: first.head, headSha256: first.headSha256, nodata: first.nodata, pixelsClassified: pixels, classifiedAreaM2: area, classes };
}
