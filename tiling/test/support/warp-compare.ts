/**
 * Warp comparisons against gdalwarp: assemble geo-dino's tile stream over a whole small grid,
 * run gdalwarp on the same grid (`-et 0`, exact transforms), and count agreement.
 */
import { join } from 'node:path';
import { openRaster, parseCrs, tileStream, NO_SOURCE, type Grid, type RasterSource, type Resampling, type TileLayout, type TileSource } from '@geo-dino/tiling';
import { gdal, gdalRead } from './gdal.js';

export interface Assembled {
  rgb: Uint8Array[];
  valid: Uint8Array;
  source: Uint16Array;
}

/** Run the tile stream over a whole (small) grid and paste the tiles' cores into one image. */
export async function assemble(layout: TileLayout, sources: TileSource[], resampling: Resampling): Promise<Assembled> {
  const { width, height } = layout.grid;
  const rgb = [0, 1, 2].map(() => new Uint8Array(width * height));
  const valid = new Uint8Array(width * height);
  const source = new Uint16Array(width * height).fill(NO_SOURCE);
  const T = layout.tileSize;
  for await (const tile of tileStream(layout, sources, { resampling, keepEmpty: true })) {
    for (let y = 0; y < T; y++) {
      const gy = tile.spec.y + y;
      if (gy >= height) break;
      for (let x = 0; x < T; x++) {
        const gx = tile.spec.x + x;
        if (gx >= width) break;
        const i = y * T + x;
        const o = gy * width + gx;
        for (let c = 0; c < 3; c++) rgb[c]![o] = tile.rgb[c * T * T + i]!;
        valid[o] = tile.valid[i]!;
        source[o] = tile.source[i]!;
      }
    }
  }
  return { rgb, valid, source };
}

export function gridOf(crs: string, x0: number, y0: number, gsd: number, width: number, height: number): Grid {
  return { crs: parseCrs(crs), transform: [x0, gsd, 0, y0, 0, -gsd], width, height, gsd };
}

/** gdalwarp of `src` onto `grid` (with an alpha band) into `dir/name`; returns the path. */
export function gdalwarpInto(dir: string): (src: string[], grid: Grid, epsg: string, resampling: string, name: string, extra?: string[]) => string {
  return (src, grid, epsg, resampling, name, extra = []) => {
    const out = join(dir, name);
    const [x0, gsd, , y0] = grid.transform;
    gdal('gdalwarp', [
      '-q',
      '-overwrite',
      '-t_srs',
      epsg,
      '-te',
      String(x0),
      String(y0 - grid.height * gsd),
      String(x0 + grid.width * gsd),
      String(y0),
      '-ts',
      String(grid.width),
      String(grid.height),
      '-r',
      resampling,
      '-dstalpha',
      '-et',
      '0',
      ...extra,
      ...src,
      out,
    ]);
    return out;
  };
}

export interface Agreement {
  bothValid: number;
  validityAgree: number;
  exact: number;
  within1: number;
  maxDiff: number;
}

/** Agreement of an assembled image with a gdalwarp output (RGB + alpha) on the same grid. */
export function compare(ours: Assembled, refPath: string, grid: Grid): Agreement {
  const ref = gdalRead(refPath, [0, 0, grid.width, grid.height], { bands: [0, 1, 2, 3] });
  const n = grid.width * grid.height;
  let both = 0;
  let agree = 0;
  let exact = 0;
  let within1 = 0;
  let maxDiff = 0;
  for (let i = 0; i < n; i++) {
    const rv = ref.bands[3]![i]! > 0 ? 1 : 0;
    if (rv === ours.valid[i]) agree++;
    if (!rv || !ours.valid[i]) continue;
    both++;
    let d = 0;
    for (let c = 0; c < 3; c++) d = Math.max(d, Math.abs(ref.bands[c]![i]! - ours.rgb[c]![i]!));
    if (d === 0) exact++;
    if (d <= 1) within1++;
    maxDiff = Math.max(maxDiff, d);
  }
  return { bothValid: both, validityAgree: agree / n, exact: exact / both, within1: within1 / both, maxDiff };
}

export async function withRaster<T>(path: string, fn: (r: RasterSource) => Promise<T>): Promise<T> {
  const r = await openRaster(path);
  try {
    return await fn(r);
  } finally {
    await r.close();
  }
}
