/**
 * Zonal statistics of a canopy-height raster over a region: block by block (bounded memory), over
 * the pixels whose centre lies in the AOI.
 *
 * - `validPercent`: share of the AOI's pixels with a valid height;
 * - `meanHeightM`: area-weighted mean height of the valid pixels; `maxHeightM`;
 * - `cover2mPercent` / `cover5mPercent`: canopy cover, the share of the valid area taller than
 *   2 m / 5 m (and the corresponding areas in m²);
 * - areas in m² from the grid (constant pixel area on projected grids, per row on lon/lat grids);
 *   `aoiAreaM2` is the AOI's geodesic area.
 */
import { silentProgress, throwIfAborted, type Progress } from '@geo-dino/core';
import type { Aoi } from '@geo-dino/geometry';
import { openRaster } from '@geo-dino/tiling';
import { AoiMask, gridOf, gridReader, pixelAreaOfRow } from './raster-grid.js';
import type { RunStats } from './store.js';

export interface StatsOptions {
  blockSize?: number;
  progress?: Progress;
  signal?: AbortSignal;
}

export async function zonalStats(chmPath: string, aoi: Aoi, options: StatsOptions = {}): Promise<RunStats> {
  const raster = await openRaster(chmPath);
  try {
    const grid = gridOf(raster);
    const reader = gridReader(raster, grid);
    const mask = new AoiMask(aoi, grid);
    const areaOfRow = pixelAreaOfRow(grid);
    const B = options.blockSize ?? 512;
    let inside = 0;
    let valid = 0;
    let insideArea = 0;
    let validArea = 0;
    let sumH = 0;
    let maxH = -Infinity;
    let area2 = 0;
    let area5 = 0;
    const across = Math.ceil(grid.width / B);
    const down = Math.ceil(grid.height / B);
    const task = (options.progress ?? silentProgress).start('zonal statistics', { total: across * down, unit: 'blocks' });
    for (let by = 0; by < down; by++) {
      for (let bx = 0; bx < across; bx++) {
        throwIfAborted(options.signal);
        const win = { x: bx * B, y: by * B, width: Math.min(B, grid.width - bx * B), height: Math.min(B, grid.height - by * B) };
        const m = mask.window(win);
        if (!m.includes(1)) {
          task.tick();
          continue;
        }
        const d = await reader.read(win, options.signal);
        for (let j = 0; j < win.height; j++) {
          const pa = areaOfRow(win.y + j);
          for (let i = 0; i < win.width; i++) {
            const k = j * win.width + i;
            if (!m[k]) continue;
            inside++;
            insideArea += pa;
            if (!d.valid[k]) continue;
            const h = d.values[k]!;
            if (!Number.isFinite(h)) continue;
            valid++;
            validArea += pa;
            sumH += h * pa;
            if (h > maxH) maxH = h;
            if (h > 2) area2 += pa;
            if (h > 5) area5 += pa;
          }
        }
        task.tick();
      }
    }
    task.finish();
    const pixelArea = areaOfRow(Math.floor(grid.height / 2));
    return {
      aoiAreaM2: aoi.areaM2,
      pixelAreaM2: pixelArea,
      pixelsInside: inside,
      pixelsValid: valid,
      validAreaM2: validArea,
      validPercent: insideArea > 0 ? (100 * validArea) / insideArea : 0,
      meanHeightM: validArea > 0 ? sumH / validArea : null,
      maxHeightM: valid > 0 ? maxH : null,
      cover2mPercent: validArea > 0 ? (100 * area2) / validArea : null,
      cover5mPercent: validArea > 0 ? (100 * area5) / validArea : null,
      canopy2mAreaM2: area2,
      canopy5mAreaM2: area5,
    };
  } finally {
    await raster.close();
  }
}
