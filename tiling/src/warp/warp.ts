/**
 * Warping a source raster onto a window of the target grid.
 *
 * Coordinates: for each target pixel centre, grid pixel → grid CRS → source CRS (proj4) →
 * source pixel (inverse geotransform, so rotated sources work) → pixel of the chosen overview
 * level. Exact transforms are computed on a mesh of nodes every 32 pixels and interpolated
 * bilinearly in between; where the interpolation would be off by more than 0.125 source pixel
 * (GDAL's default error threshold) at a cell centre, the mesh is refined (16, 8, ... 1).
 *
 * Resampling, as gdalwarp does it:
 * - a target pixel is valid only if the source pixel under its centre is valid;
 * - 'nearest' takes that pixel;
 * - 'bilinear' weights the valid source pixels with a triangle (tent) kernel centred on the
 *   sample point; its radius is 1 source pixel (the 2×2 bilinear) unless downsampling by more
 *   than 1/0.95, where it widens to the downsampling ratio (so reducing 1.5× averages, it does
 *   not alias) — gdalwarp's rule.
 *   Invalid neighbours are left out and the weights renormalised.
 * - 'cubic' is cubic convolution (Keys, a = −0.5): the 4×4 taps around the sample point when
 *   the grid is no coarser than 1/0.95 of the source on both axes; where one of the 16 is outside
 *   the source or invalid, the bilinear result instead (gdalwarp's fallback). Downsampling
 *   further, the kernel is stretched by the ratio on each downsampled axis (radius 2 × ratio,
 *   ratios within 0.05 of an integer snapped to it), invalid pixels left out and the weights
 *   (negative lobes included) renormalised.
 * - 'average' is the mean of the valid pixels under the target pixel's footprint (each weighted
 *   by the share of it covered) and 'mode' the most frequent valid value under the footprint
 *   (source pixels whose area meets it, counted once each; ties to the value that reached the
 *   count first, row by row); neither needs the centre pixel valid.
 *
 * Overviews: a source is read at the coarsest overview whose decimation does not exceed the
 * ratio of target to source pixel size (so a 0.3 m scene warped to 0.6 m reads its 2× overview).
 */
import { GeoDinoError } from '@geo-dino/core';
import { crsLabel, transformBetween, type Transform } from '../crs/crs.js';
import { pixelToCrs, type Grid } from '../grid/grid.js';
import type { RasterSource } from '../raster/source.js';
import type { PixelWindow, TypedArray } from '../raster/types.js';
import { ModeCounter } from '../raster/mode.js';

export type Resampling = 'nearest' | 'bilinear' | 'cubic' | 'average' | 'mode';

/** GDAL's resampling names (gdalwarp -r) and what geo-dino does with each. */
const GDAL_RESAMPLING: Record<string, Resampling | null> = {
  near: 'nearest',
  nearest: 'nearest',
  bilinear: 'bilinear',
  cubic: 'cubic',
  cubicspline: null,
  lanczos: null,
  average: 'average',
  rms: null,
  mode: 'mode',
  max: null,
  min: null,
  med: null,
  q1: null,
  q3: null,
  sum: null,
};

/**
 * A resampling method from its GDAL name (`near`, `bilinear`, `cubic`, `average`, `mode`; `nearest`
 * too). GDAL names geo-dino's warper does not implement (lanczos, cubicspline, rms, max, min, med,
 * q1, q3, sum) and unknown names are E_ARGUMENT naming the flag, the value and the accepted list.
 */
export function parseResampling(name: string, flag = '--resampling'): Resampling {
  const key = name.trim().toLowerCase();
  const r = GDAL_RESAMPLING[key];
  if (r) return r;
  const implemented = RESAMPLING_NAMES;
  if (r === null) {
    throw new GeoDinoError('E_ARGUMENT', `${flag}: ${JSON.stringify(name)} is a GDAL resampling method geo-dino's warper does not implement; use ${implemented}, or warp with gdalwarp -r ${key} first`, {
      details: { field: flag, value: name },
    });
  }
  throw new GeoDinoError('E_ARGUMENT', `${flag}: unknown resampling method ${JSON.stringify(name)}; use ${implemented} (GDAL's names)`, { details: { field: flag, value: name } });
}

/** The accepted names, as error messages and help texts list them. */
export const RESAMPLING_NAMES = 'near (nearest), bilinear, cubic, average or mode';

const ERROR_THRESHOLD = 0.125;

/** A source tied to a target grid: transform, chosen overview level and footprint. */
export interface WarpSource {
  raster: RasterSource;
  /** Grid CRS → source CRS. */
  toSource: Transform;
  /** Inverse of the source's level-0 geotransform. */
  inv: [number, number, number, number, number, number];
  level: number;
  factorX: number;
  factorY: number;
  levelWidth: number;
  levelHeight: number;
  /** Source pixels (level 0) per target pixel, at the grid point nearest the source centre. */
  ratio: number;
  /** Footprint in grid pixel coordinates [minX, minY, maxX, maxY]; null when it does not project. */
  footprint: [number, number, number, number] | null;
}

function invertGeoTransform(name: string, gt: readonly number[]): [number, number, number, number, number, number] {
  const [x0, a, b, y0, d, e] = gt as [number, number, number, number, number, number];
  const det = a * e - b * d;
  if (!Number.isFinite(det) || det === 0) throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${name}: the geotransform cannot be inverted (${gt.join(', ')})`);
  // px = ia*(X - x0) + ib*(Y - y0); py = id*(X - x0) + ie*(Y - y0)
  return [x0, e / det, -b / det, y0, -d / det, a / det];
}

function toPixel(inv: WarpSource['inv'], X: number, Y: number): [number, number] {
  const dx = X - inv[0];
  const dy = Y - inv[3];
  return [inv[1] * dx + inv[2] * dy, inv[4] * dx + inv[5] * dy];
}

export interface PrepareOptions {
  /** 'auto' (default): use overviews when the source is much finer than the grid; 'none': level 0 only. */
  overviews?: 'auto' | 'none';
}

/** Tie a raster to a grid. Errors name the file when it has no georeferencing or CRS. */
export function prepareWarpSource(raster: RasterSource, grid: Grid, options: PrepareOptions = {}): WarpSource {
  const info = raster.info;
  if (!info.geoTransform) throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${info.source}: has no georeferencing (no geotransform); it cannot be placed on a map`, { details: { file: info.source } });
  if (!info.crs) throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${info.source}: has no CRS; give one (openRaster's crs option)`, { details: { file: info.source } });
  if (!info.crs.definition) {
    throw new GeoDinoError('E_BAD_CRS', `${info.source}: its CRS ${crsLabel(info.crs)} is not built into geo-dino; give it as a PROJ string or WKT (openRaster's crs option)`, {
      details: { file: info.source },
    });
  }
  const toSource = transformBetween(grid.crs, info.crs, info.source);
  const toGrid = transformBetween(info.crs, grid.crs, info.source);
  const inv = invertGeoTransform(info.source, info.geoTransform);
  const gt = info.geoTransform;
  // Footprint: the source outline (33 points per edge) projected to grid pixels.
  const pts: [number, number][] = [];
  const N = 32;
  for (let i = 0; i <= N; i++) {
    const f = i / N;
    pts.push([f * info.width, 0], [f * info.width, info.height], [0, f * info.height], [info.width, f * info.height]);
  }
  let fp: [number, number, number, number] | null = null;
  const ginv = invertGeoTransform('grid', grid.transform);
  for (const [px, py] of pts) {
    const X = gt[0] + px * gt[1] + py * gt[2];
    const Y = gt[3] + px * gt[4] + py * gt[5];
    const [gx, gy] = toGrid.forward(X, Y);
    if (!Number.isFinite(gx)) continue;
    const [u, v] = toPixel(ginv, gx, gy);
    fp = fp ? [Math.min(fp[0], u), Math.min(fp[1], v), Math.max(fp[2], u), Math.max(fp[3], v)] : [u, v, u, v];
  }
  // Resolution ratio at the source centre: source pixels spanned by one grid pixel.
  let ratio = 1;
  const cx = gt[0] + (info.width / 2) * gt[1] + (info.height / 2) * gt[2];
  const cy = gt[3] + (info.width / 2) * gt[4] + (info.height / 2) * gt[5];
  const c = toGrid.forward(cx, cy);
  if (Number.isFinite(c[0])) {
    const [u, v] = toPixel(ginv, c[0], c[1]);
    const p0 = toSourcePixel({ toSource, inv } as WarpSource, grid, u, v);
    const p1 = toSourcePixel({ toSource, inv } as WarpSource, grid, u + 1, v);
    const p2 = toSourcePixel({ toSource, inv } as WarpSource, grid, u, v + 1);
    const det = Math.abs((p1[0] - p0[0]) * (p2[1] - p0[1]) - (p1[1] - p0[1]) * (p2[0] - p0[0]));
    if (Number.isFinite(det) && det > 0) ratio = Math.sqrt(det);
  }
  let level = 0;
  if ((options.overviews ?? 'auto') === 'auto') {
    for (const lv of info.levels) if (Math.max(lv.factorX, lv.factorY) <= ratio * 1.0001) level = lv.level;
  }
  const lv = info.levels[level]!;
  return { raster, toSource, inv, level, factorX: lv.factorX, factorY: lv.factorY, levelWidth: lv.width, levelHeight: lv.height, ratio, footprint: fp };
}

/** Source level-0 pixel of a grid pixel coordinate (continuous; pixel centre = i + 0.5). */
function toSourcePixel(s: Pick<WarpSource, 'toSource' | 'inv'>, grid: Grid, gx: number, gy: number): [number, number] {
  const [X, Y] = pixelToCrs(grid, gx, gy);
  const [sx, sy] = s.toSource.forward(X, Y);
  if (!Number.isFinite(sx)) return [NaN, NaN];
  return toPixel(s.inv, sx, sy);
}

/**
 * Exact transforms on a regular mesh of a grid window: node (a, b) sits at window pixel centre
 * (min(a·step, W−1), min(b·step, H−1)). Everything between nodes is interpolated bilinearly.
 */
export interface Mesh {
  /** Level pixel coordinates of the nodes (row-major, nx × ny); NaN where it does not transform. */
  mx: Float64Array;
  my: Float64Array;
  nx: number;
  ny: number;
  step: number;
  width: number;
  height: number;
}

export interface Mapping {
  /** Level pixel coordinates of each target pixel centre (NaN where it does not transform). */
  sx: Float64Array;
  sy: Float64Array;
  /** Source level pixels per target pixel (x, y) at the window centre. */
  scaleX: number;
  scaleY: number;
  /** Mesh step used (32 … 1). */
  step: number;
}

/** The mesh for a grid window: step 32, refined while the interpolation error exceeds 0.125 px. */
export function meshFor(s: WarpSource, grid: Grid, win: PixelWindow): Mesh {
  const { width: W, height: H } = win;
  const exact = (i: number, j: number): [number, number] => {
    const [px, py] = toSourcePixel(s, grid, win.x + i + 0.5, win.y + j + 0.5);
    return [px / s.factorX, py / s.factorY];
  };
  let step = 32;
  for (;;) {
    const nx = Math.ceil((W - 1) / step) + 1;
    const ny = Math.ceil((H - 1) / step) + 1;
    const nodeX = (k: number): number => Math.min(k * step, W - 1);
    const nodeY = (k: number): number => Math.min(k * step, H - 1);
    const mx = new Float64Array(nx * ny);
    const my = new Float64Array(nx * ny);
    for (let b = 0; b < ny; b++)
      for (let a = 0; a < nx; a++) {
        const [x, y] = exact(nodeX(a), nodeY(b));
        mx[b * nx + a] = x;
        my[b * nx + a] = y;
      }
    let ok = true;
    if (step > 1) {
      // Check the interpolation at cell centres.
      outer: for (let b = 0; b + 1 < ny; b++)
        for (let a = 0; a + 1 < nx; a++) {
          const i = (nodeX(a) + nodeX(a + 1)) / 2;
          const j = (nodeY(b) + nodeY(b + 1)) / 2;
          const [ex, ey] = exact(i, j);
          const ix = (mx[b * nx + a]! + mx[b * nx + a + 1]! + mx[(b + 1) * nx + a]! + mx[(b + 1) * nx + a + 1]!) / 4;
          const iy = (my[b * nx + a]! + my[b * nx + a + 1]! + my[(b + 1) * nx + a]! + my[(b + 1) * nx + a + 1]!) / 4;
          if (!(Math.abs(ex - ix) <= ERROR_THRESHOLD && Math.abs(ey - iy) <= ERROR_THRESHOLD)) {
            ok = false;
            break outer;
          }
        }
    }
    if (ok || step === 1) return { mx, my, nx, ny, step, width: W, height: H };
    step = Math.max(1, step >> 1);
  }
}

/** Interpolate a mesh to every pixel (bilinear, cell by cell, linear along each row of a cell). */
export function interpolateMesh(mesh: Mesh): Mapping {
  const { mx, my, nx, ny, step, width: W, height: H } = mesh;
  const sx = new Float64Array(W * H);
  const sy = new Float64Array(W * H);
  const nodeX = (k: number): number => Math.min(k * step, W - 1);
  const nodeY = (k: number): number => Math.min(k * step, H - 1);
  const b1 = Math.max(0, ny - 2);
  const cells = Math.max(1, nx - 1);
  for (let j = 0; j < H; j++) {
    const b = Math.min(Math.floor(j / step), b1);
    const bb = Math.min(b + 1, ny - 1);
    const j0 = nodeY(b);
    const j1 = nodeY(bb);
    const fy = j1 === j0 ? 0 : (j - j0) / (j1 - j0);
    const row = j * W;
    for (let a = 0; a < cells; a++) {
      const aa = Math.min(a + 1, nx - 1);
      const i0 = nodeX(a);
      const i1 = nodeX(aa);
      const end = a === cells - 1 ? W : i1;
      const xl = mx[b * nx + a]! + (mx[bb * nx + a]! - mx[b * nx + a]!) * fy;
      const xr = mx[b * nx + aa]! + (mx[bb * nx + aa]! - mx[b * nx + aa]!) * fy;
      const yl = my[b * nx + a]! + (my[bb * nx + a]! - my[b * nx + a]!) * fy;
      const yr = my[b * nx + aa]! + (my[bb * nx + aa]! - my[b * nx + aa]!) * fy;
      const dx = i1 > i0 ? (xr - xl) / (i1 - i0) : 0;
      const dy = i1 > i0 ? (yr - yl) / (i1 - i0) : 0;
      for (let i = i0; i < end; i++) {
        sx[row + i] = xl + dx * (i - i0);
        sy[row + i] = yl + dy * (i - i0);
      }
    }
  }
  // Local scale at the window centre (for the bilinear kernel width).
  let scaleX = 1;
  let scaleY = 1;
  if (W > 1 && H > 1) {
    const cx = Math.min(W - 2, Math.floor(W / 2));
    const cy = Math.min(H - 2, Math.floor(H / 2));
    const o = cy * W + cx;
    scaleX = Math.hypot(sx[o + 1]! - sx[o]!, sy[o + 1]! - sy[o]!);
    scaleY = Math.hypot(sx[o + W]! - sx[o]!, sy[o + W]! - sy[o]!);
  }
  return { sx, sy, scaleX: Number.isFinite(scaleX) ? scaleX : 1, scaleY: Number.isFinite(scaleY) ? scaleY : 1, step };
}

/** Map every pixel centre of a grid window to source level pixel coordinates. */
export function mapWindow(s: WarpSource, grid: Grid, win: PixelWindow): Mapping {
  return interpolateMesh(meshFor(s, grid, win));
}

/**
 * The source level window a mesh needs, with a margin for the kernel, or null when it misses the
 * source. Bilinear interpolation takes its extremes at the nodes, so the nodes bound every pixel.
 * `scale` is the kernel radius in source pixels (1 unless downsampling).
 */
export function windowFromMesh(mesh: Mesh, s: WarpSource, resampling: Resampling): PixelWindow | null {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let k = 0; k < mesh.mx.length; k++) {
    const x = mesh.mx[k]!;
    const y = mesh.my[k]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  if (minX === Infinity || maxX < 0 || maxY < 0 || minX >= s.levelWidth || minY >= s.levelHeight) return null;
  // Kernel radius: up to the downsampling ratio, estimated from the node spacing.
  let r = 1;
  if (mesh.nx > 1 && mesh.ny > 1 && mesh.step > 0) {
    const dx = Math.hypot(mesh.mx[1]! - mesh.mx[0]!, mesh.my[1]! - mesh.my[0]!) / mesh.step;
    const dy = Math.hypot(mesh.mx[mesh.nx]! - mesh.mx[0]!, mesh.my[mesh.nx]! - mesh.my[0]!) / mesh.step;
    if (Number.isFinite(dx) && Number.isFinite(dy)) r = Math.max(1, dx, dy) * 1.25;
  }
  const m = resampling === 'nearest' ? 0 : resampling === 'cubic' ? Math.ceil(2 * r) + 2 : Math.ceil(r) + 1;
  const x0 = Math.max(0, Math.floor(minX) - m);
  const y0 = Math.max(0, Math.floor(minY) - m);
  const x1 = Math.min(s.levelWidth, Math.floor(maxX) + 1 + m);
  const y1 = Math.min(s.levelHeight, Math.floor(maxY) + 1 + m);
  if (x1 <= x0 || y1 <= y0) return null;
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/**
 * Resample `bands` (a source window `win` with validity `valid`) at the mapped coordinates.
 * Writes `out[b][i]` and sets `ok[i] = 1` for every target pixel `i` with `todo[i]` (or all)
 * that gets a valid value.
 */
export function resample(
  m: Mapping,
  s: Pick<WarpSource, 'levelWidth' | 'levelHeight'>,
  win: PixelWindow,
  bands: readonly TypedArray[],
  valid: Uint8Array,
  resampling: Resampling,
  out: Float32Array[],
  ok: Uint8Array,
  todo?: Uint8Array,
): void {
  const rx = Math.max(1, m.scaleX);
  const ry = Math.max(1, m.scaleY);
  const wide = needsWideKernel(m, resampling);
  const planes = bands;
  if (resampling === 'nearest') nearestKernel(m, s, win, planes, valid, out, ok, todo);
  else if (resampling === 'average') averageKernel(m, win, planes, valid, out, ok, todo);
  else if (resampling === 'mode') modeKernel(m, win, planes, valid, out, ok, todo);
  else if (resampling === 'cubic') cubicKernel(m, s, win, planes, valid, out, ok, todo);
  else if (!wide) bilinearKernel(m, s, win, planes, valid, out, ok, todo);
  else tentKernel(m, s, win, planes, valid, rx, ry, out, ok, todo);
}

/** Like gdalwarp: the plain 2×2 bilinear unless downsampling by more than 1/0.95 (about 5 %). */
export function needsWideKernel(m: Pick<Mapping, 'scaleX' | 'scaleY'>, resampling: Resampling): boolean {
  return resampling === 'bilinear' && (m.scaleX > 1 / 0.95 || m.scaleY > 1 / 0.95);
}

/** Index in the window of the source pixel under (x, y), or −1 outside the level or the window. */
export function centreIndex(x: number, y: number, levelWidth: number, levelHeight: number, win: PixelWindow): number {
  if (!(x >= 0 && y >= 0 && x < levelWidth && y < levelHeight)) return -1;
  const ix = Math.floor(x) - win.x;
  const iy = Math.floor(y) - win.y;
  if (ix < 0 || iy < 0 || ix >= win.width || iy >= win.height) return -1;
  return iy * win.width + ix;
}

function nearestKernel(m: Mapping, s: Pick<WarpSource, 'levelWidth' | 'levelHeight'>, win: PixelWindow, planes: readonly TypedArray[], valid: Uint8Array, out: Float32Array[], ok: Uint8Array, todo?: Uint8Array): void {
  const nb = planes.length;
  const { sx, sy } = m;
  const LW = s.levelWidth;
  const LH = s.levelHeight;
  for (let i = 0, n = sx.length; i < n; i++) {
    if (todo !== undefined && todo[i] === 0) continue;
    const c = centreIndex(sx[i]!, sy[i]!, LW, LH, win);
    if (c < 0 || valid[c] === 0) continue;
    for (let b = 0; b < nb; b++) out[b]![i] = planes[b]![c]!;
    ok[i] = 1;
  }
}

/**
 * The 2×2 bilinear taps of a sample at window coordinates (x, y) (pixel i covers [i, i+1)):
 * weights in `w`, indices in `k`. Neighbours outside the window or invalid get weight 0 (and the
 * safe index `c`, the pixel under the sample); the rest are renormalised. False when no
 * neighbour counts.
 */
export function bilinearTaps(x: number, y: number, W: number, H: number, valid: Uint8Array, allValid: boolean, c: number, w: Float64Array, k: Int32Array): boolean {
  const u = x - 0.5;
  const v = y - 0.5;
  const x0 = Math.floor(u);
  const y0 = Math.floor(v);
  const fx = u - x0;
  const fy = v - y0;
  const q = y0 * W + x0;
  w[0] = (1 - fx) * (1 - fy);
  w[1] = fx * (1 - fy);
  w[2] = (1 - fx) * fy;
  w[3] = fx * fy;
  k[0] = q;
  k[1] = q + 1;
  k[2] = q + W;
  k[3] = q + W + 1;
  if (x0 >= 0 && y0 >= 0 && x0 + 1 < W && y0 + 1 < H && allValid) return true;
  const inside = [x0 >= 0 && y0 >= 0, x0 + 1 < W && y0 >= 0, x0 >= 0 && y0 + 1 < H, x0 + 1 < W && y0 + 1 < H];
  let ws = 0;
  for (let t = 0; t < 4; t++) {
    if (!inside[t] || !(allValid || valid[k[t]!])) {
      w[t] = 0;
      k[t] = c;
    }
    ws += w[t]!;
  }
  if (ws < 1e-5) return false;
  for (let t = 0; t < 4; t++) w[t] = w[t]! / ws;
  return true;
}

function bilinearKernel(m: Mapping, s: Pick<WarpSource, 'levelWidth' | 'levelHeight'>, win: PixelWindow, planes: readonly TypedArray[], valid: Uint8Array, out: Float32Array[], ok: Uint8Array, todo?: Uint8Array): void {
  const W = win.width;
  const H = win.height;
  const nb = planes.length;
  const { sx, sy } = m;
  const LW = s.levelWidth;
  const LH = s.levelHeight;
  const p0 = planes[0]!;
  const p1 = planes[Math.min(1, nb - 1)]!;
  const p2 = planes[Math.min(2, nb - 1)]!;
  const o0 = out[0]!;
  const o1 = out[Math.min(1, nb - 1)]!;
  const o2 = out[Math.min(2, nb - 1)]!;
  let allValid = true;
  for (let k = 0; k < valid.length; k++) {
    if (valid[k] === 0) {
      allValid = false;
      break;
    }
  }
  const w = new Float64Array(4);
  const k = new Int32Array(4);
  for (let i = 0, n = sx.length; i < n; i++) {
    if (todo !== undefined && todo[i] === 0) continue;
    const x = sx[i]!;
    const y = sy[i]!;
    const c = centreIndex(x, y, LW, LH, win);
    if (c < 0 || (!allValid && valid[c] === 0)) continue;
    // Interior with all neighbours valid: the plain formula; else the careful taps.
    const u = x - 0.5 - win.x;
    const v = y - 0.5 - win.y;
    const x0 = Math.floor(u);
    const y0 = Math.floor(v);
    let w0: number, w1: number, w2: number, w3: number, k0: number, k1: number, k2: number, k3: number;
    if (allValid && x0 >= 0 && y0 >= 0 && x0 + 1 < W && y0 + 1 < H) {
      const fx = u - x0;
      const fy = v - y0;
      w0 = (1 - fx) * (1 - fy);
      w1 = fx * (1 - fy);
      w2 = (1 - fx) * fy;
      w3 = fx * fy;
      k0 = y0 * W + x0;
      k1 = k0 + 1;
      k2 = k0 + W;
      k3 = k2 + 1;
    } else {
      if (!bilinearTaps(x - win.x, y - win.y, W, H, valid, allValid, c, w, k)) continue;
      w0 = w[0]!;
      w1 = w[1]!;
      w2 = w[2]!;
      w3 = w[3]!;
      k0 = k[0]!;
      k1 = k[1]!;
      k2 = k[2]!;
      k3 = k[3]!;
    }
    o0[i] = w0 * p0[k0]! + w1 * p0[k1]! + w2 * p0[k2]! + w3 * p0[k3]!;
    if (nb > 1) o1[i] = w0 * p1[k0]! + w1 * p1[k1]! + w2 * p1[k2]! + w3 * p1[k3]!;
    if (nb > 2) o2[i] = w0 * p2[k0]! + w1 * p2[k1]! + w2 * p2[k2]! + w3 * p2[k3]!;
    for (let b = 3; b < nb; b++) {
      const p = planes[b]!;
      out[b]![i] = w0 * p[k0]! + w1 * p[k1]! + w2 * p[k2]! + w3 * p[k3]!;
    }
    ok[i] = 1;
  }
}

function tentKernel(
  m: Mapping,
  s: Pick<WarpSource, 'levelWidth' | 'levelHeight'>,
  win: PixelWindow,
  planes: readonly TypedArray[],
  valid: Uint8Array,
  rx: number,
  ry: number,
  out: Float32Array[],
  ok: Uint8Array,
  todo?: Uint8Array,
): void {
  const W = win.width;
  const H = win.height;
  const nb = planes.length;
  const { sx, sy } = m;
  const kx = Math.ceil(rx);
  const ky = Math.ceil(ry);
  const acc = new Float64Array(nb);
  for (let i = 0; i < sx.length; i++) {
    if (todo !== undefined && todo[i] === 0) continue;
    const x = sx[i]!;
    const y = sy[i]!;
    const c = centreIndex(x, y, s.levelWidth, s.levelHeight, win);
    if (c < 0 || valid[c] === 0) continue;
    const u = x - 0.5 - win.x;
    const v = y - 0.5 - win.y;
    // Tent kernel of radius rx × ry around the sample point.
    const xa = Math.ceil(u - rx);
    const ya = Math.ceil(v - ry);
    const wsum = weightedSum(
      { W, H, planes, valid, acc },
      [Math.max(0, xa), Math.min(W - 1, xa + 2 * kx)],
      (xx) => 1 - Math.abs(xx - u) / rx,
      [Math.max(0, ya), Math.min(H - 1, ya + 2 * ky)],
      (yy) => 1 - Math.abs(yy - v) / ry,
    );
    if (wsum < 1e-5) continue;
    for (let b = 0; b < nb; b++) out[b]![i] = acc[b]! / wsum;
    ok[i] = 1;
  }
}

/** Keys' cubic convolution kernel with a = −0.5 (GDAL's GWKCubic), support [−2, 2]. */
export function cubicWeight(t: number): number {
  const x = Math.abs(t);
  if (x <= 1) return x * x * (1.5 * x - 2.5) + 1;
  if (x < 2) return x * x * (-0.5 * x + 2.5) - 4 * x + 2;
  return 0;
}

/** A downsampling ratio as gdalwarp uses it: within 0.05 of an integer, that integer. */
function snappedRatio(r: number): number {
  if (!(r > 1)) return 1;
  const n = Math.round(r);
  return Math.abs(r - n) < 0.05 ? n : r;
}

/**
 * GDAL's `cubic` (see the header): 4×4 cubic convolution with the bilinear fallback at edges and
 * next to invalid pixels, or the kernel stretched by the downsampling ratio.
 */
function cubicKernel(m: Mapping, s: Pick<WarpSource, 'levelWidth' | 'levelHeight'>, win: PixelWindow, planes: readonly TypedArray[], valid: Uint8Array, out: Float32Array[], ok: Uint8Array, todo?: Uint8Array): void {
  const W = win.width;
  const H = win.height;
  const nb = planes.length;
  const { sx, sy } = m;
  const rx = snappedRatio(m.scaleX);
  const ry = snappedRatio(m.scaleY);
  const fourTaps = m.scaleX <= 1 / 0.95 && m.scaleY <= 1 / 0.95;
  // Stretched kernel: radius 2·ratio taps on each side.
  const kx = fourTaps ? 2 : Math.ceil(2 * rx);
  const ky = fourTaps ? 2 : Math.ceil(2 * ry);
  const wx = new Float64Array(2 * kx + 1);
  const wy = new Float64Array(2 * ky + 1);
  const acc = new Float64Array(nb);
  const bw = new Float64Array(4);
  const bk = new Int32Array(4);
  let allValid = true;
  for (let k = 0; k < valid.length; k++) {
    if (valid[k] === 0) {
      allValid = false;
      break;
    }
  }
  for (let i = 0, n = sx.length; i < n; i++) {
    if (todo !== undefined && todo[i] === 0) continue;
    const x = sx[i]!;
    const y = sy[i]!;
    const c = centreIndex(x, y, s.levelWidth, s.levelHeight, win);
    if (c < 0 || valid[c] === 0) continue;
    const u = x - 0.5 - win.x;
    const v = y - 0.5 - win.y;
    const x0 = Math.floor(u);
    const y0 = Math.floor(v);
    const dx = u - x0;
    const dy = v - y0;
    if (fourTaps) {
      let full = x0 - 1 >= 0 && y0 - 1 >= 0 && x0 + 2 < W && y0 + 2 < H;
      if (full && !allValid) {
        for (let yy = y0 - 1; full && yy <= y0 + 2; yy++) for (let xx = x0 - 1; xx <= x0 + 2; xx++) if (valid[yy * W + xx] === 0) full = false;
      }
      if (!full) {
        // gdalwarp's fallback: bilinear.
        if (!bilinearTaps(x - win.x, y - win.y, W, H, valid, allValid, c, bw, bk)) continue;
        for (let b = 0; b < nb; b++) {
          const p = planes[b]!;
          out[b]![i] = bw[0]! * p[bk[0]!]! + bw[1]! * p[bk[1]!]! + bw[2]! * p[bk[2]!]! + bw[3]! * p[bk[3]!]!;
        }
        ok[i] = 1;
        continue;
      }
      for (let t = 0; t < 4; t++) {
        wx[t] = cubicWeight(t - 1 - dx);
        wy[t] = cubicWeight(t - 1 - dy);
      }
      for (let b = 0; b < nb; b++) {
        const p = planes[b]!;
        let sum = 0;
        for (let t = 0; t < 4; t++) {
          const row = (y0 - 1 + t) * W + x0 - 1;
          sum += wy[t]! * (wx[0]! * p[row]! + wx[1]! * p[row + 1]! + wx[2]! * p[row + 2]! + wx[3]! * p[row + 3]!);
        }
        out[b]![i] = sum;
      }
      ok[i] = 1;
      continue;
    }
    // Stretched kernel (downsampling): taps x0 + 1 − kx … x0 + kx, weights at (tap − u) / ratio.
    const xa = Math.max(0, x0 + 1 - kx);
    const xb = Math.min(W - 1, x0 + kx);
    const ya = Math.max(0, y0 + 1 - ky);
    const yb = Math.min(H - 1, y0 + ky);
    for (let xx = xa; xx <= xb; xx++) wx[xx - xa] = cubicWeight((xx - x0 - dx) / rx);
    for (let yy = ya; yy <= yb; yy++) wy[yy - ya] = cubicWeight((yy - y0 - dy) / ry);
    acc.fill(0);
    let wsum = 0;
    for (let yy = ya; yy <= yb; yy++) {
      const wyv = wy[yy - ya]!;
      if (wyv === 0) continue;
      for (let xx = xa; xx <= xb; xx++) {
        const w = wyv * wx[xx - xa]!;
        if (w === 0) continue;
        const p = yy * W + xx;
        if (valid[p] === 0) continue;
        wsum += w;
        for (let b = 0; b < nb; b++) acc[b] = acc[b]! + w * planes[b]![p]!;
      }
    }
    if (wsum < 1e-6) continue;
    for (let b = 0; b < nb; b++) out[b]![i] = acc[b]! / wsum;
    ok[i] = 1;
  }
}

/**
 * GDAL's `mode`: the most frequent valid value among the source pixels under the target pixel's
 * footprint (a box of scaleX × scaleY source pixels around the sample point; a pixel counts once
 * if the box meets it, at least the one under the box when it is thinner than a pixel). Ties go
 * to the value that reached the count first, row by row (ModeCounter). Bands are independent.
 */
const EDGE_EPS = 1e-6;

function modeKernel(m: Mapping, win: PixelWindow, planes: readonly TypedArray[], valid: Uint8Array, out: Float32Array[], ok: Uint8Array, todo?: Uint8Array): void {
  const W = win.width;
  const H = win.height;
  const nb = planes.length;
  const { sx, sy } = m;
  const hx = m.scaleX / 2;
  const hy = m.scaleY / 2;
  const counter = new ModeCounter();
  for (let i = 0; i < sx.length; i++) {
    if (todo !== undefined && todo[i] === 0) continue;
    const x = sx[i]! - win.x;
    const y = sy[i]! - win.y;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    // gdalwarp: floor/ceil of the footprint edges with a small tolerance (GDAL's 1e-10 is below
    // the rounding of a transform through projected metres), at least one pixel.
    const xa = Math.max(0, Math.floor(x - hx + EDGE_EPS));
    let xb = Math.min(W, Math.ceil(x + hx - EDGE_EPS));
    const ya = Math.max(0, Math.floor(y - hy + EDGE_EPS));
    let yb = Math.min(H, Math.ceil(y + hy - EDGE_EPS));
    if (xa === xb && xb < W) xb++;
    if (ya === yb && yb < H) yb++;
    if (xa >= xb || ya >= yb) continue;
    let any = false;
    for (let b = 0; b < nb; b++) {
      const p = planes[b]!;
      counter.clear();
      for (let yy = ya; yy < yb; yy++) {
        for (let xx = xa; xx < xb; xx++) {
          const q = yy * W + xx;
          if (valid[q] === 0) continue;
          counter.add(p[q]!);
        }
      }
      if (counter.count === 0) break;
      out[b]![i] = counter.value(0);
      any = true;
    }
    if (any) ok[i] = 1;
  }
}

/**
 * GDAL's `average`: the mean of the valid source pixels under the target pixel's footprint (a box
 * of scaleX × scaleY source pixels around the sample point), each weighted by the share of it the
 * box covers. Nodata where no valid source pixel is covered.
 */
function averageKernel(m: Mapping, win: PixelWindow, planes: readonly TypedArray[], valid: Uint8Array, out: Float32Array[], ok: Uint8Array, todo?: Uint8Array): void {
  const W = win.width;
  const H = win.height;
  const nb = planes.length;
  const { sx, sy } = m;
  const hx = m.scaleX / 2;
  const hy = m.scaleY / 2;
  const acc = new Float64Array(nb);
  for (let i = 0; i < sx.length; i++) {
    if (todo !== undefined && todo[i] === 0) continue;
    const x = sx[i]! - win.x;
    const y = sy[i]! - win.y;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    const xa = x - hx;
    const xb = x + hx;
    const ya = y - hy;
    const yb = y + hy;
    // Each pixel weighted by the share of it inside the box.
    const wsum = weightedSum(
      { W, H, planes, valid, acc },
      [Math.max(0, Math.floor(xa)), Math.min(W, Math.ceil(xb)) - 1],
      (xx) => Math.min(xx + 1, xb) - Math.max(xx, xa),
      [Math.max(0, Math.floor(ya)), Math.min(H, Math.ceil(yb)) - 1],
      (yy) => Math.min(yy + 1, yb) - Math.max(yy, ya),
    );
    if (wsum < 1e-9) continue;
    for (let b = 0; b < nb; b++) out[b]![i] = acc[b]! / wsum;
    ok[i] = 1;
  }
}

/**
 * Σ w(x)·w(y)·value over the valid pixels of the inclusive ranges `xs` × `ys` of a window, into
 * `acc` (one sum per band, cleared first); pixels with a weight ≤ 0 are skipped. Returns Σ weights.
 */
function weightedSum(
  t: { W: number; H: number; planes: readonly TypedArray[]; valid: Uint8Array; acc: Float64Array },
  xs: readonly [number, number],
  wxOf: (x: number) => number,
  ys: readonly [number, number],
  wyOf: (y: number) => number,
): number {
  const { W, planes, valid, acc } = t;
  const nb = planes.length;
  acc.fill(0);
  let wsum = 0;
  for (let yy = ys[0]; yy <= ys[1]; yy++) {
    const wy = wyOf(yy);
    if (wy <= 0) continue;
    for (let xx = xs[0]; xx <= xs[1]; xx++) {
      const wx = wxOf(xx);
      if (wx <= 0) continue;
      const p = yy * W + xx;
      if (valid[p] === 0) continue;
      const w = wx * wy;
      wsum += w;
      for (let b = 0; b < nb; b++) acc[b] = acc[b]! + w * planes[b]![p]!;
    }
  }
  return wsum;
}
