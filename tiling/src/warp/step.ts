/**
 * One warp step of a tile: interpolate a source's mesh, resample its window, and paint the
 * pixels still empty (`todo`) with 8-bit RGB and the source's index. Plain data in and out, so
 * it runs in a worker thread (buffers transferred, not copied) or inline.
 */
import type { TypedArray, PixelWindow } from '../raster/types.js';
import { interpolateMesh, resample, type Mesh, type Resampling } from './warp.js';

export interface WarpJob {
  mesh: Mesh;
  window: PixelWindow;
  levelWidth: number;
  levelHeight: number;
  bands: TypedArray[];
  valid: Uint8Array;
  resampling: Resampling;
  /** 8-bit value = clamp(round((v − offset) × scale)); null: round and clamp only. */
  stretch: { offset: number; scale: number } | null;
  /** 256 × RGB for palette sources (one band of indexes). */
  palette: Uint8Array | null;
  /** The source's index, written to `source`. */
  index: number;
  /** Tile state, T × T (rgb: 3 planes). */
  rgb: Uint8Array;
  source: Uint16Array;
  todo: Uint8Array;
}

export interface WarpResult {
  rgb: Uint8Array;
  source: Uint16Array;
  todo: Uint8Array;
  /** Pixels painted by this step. */
  count: number;
}

export function warpStep(job: WarpJob): WarpResult {
  const m = interpolateMesh(job.mesh);
  const T = job.mesh.width * job.mesh.height;
  const nb = job.bands.length;
  const vals = Array.from({ length: nb }, () => new Float32Array(T));
  const ok = new Uint8Array(T);
  resample(m, { levelWidth: job.levelWidth, levelHeight: job.levelHeight }, job.window, job.bands, job.valid, job.resampling, vals, ok, job.todo);
  const { rgb, source, todo } = job;
  const off = job.stretch ? job.stretch.offset : 0;
  const sc = job.stretch ? job.stretch.scale : 1;
  const pal = job.palette;
  const idx = job.index;
  const v0 = vals[0]!;
  const v1 = vals[Math.min(1, nb - 1)]!;
  const v2 = vals[Math.min(2, nb - 1)]!;
  let count = 0;
  for (let i = 0; i < T; i++) {
    if (ok[i] === 0) continue;
    count++;
    todo[i] = 0;
    source[i] = idx;
    if (pal) {
      const k = Math.max(0, Math.min(255, Math.round(v0[i]!))) * 3;
      rgb[i] = pal[k]!;
      rgb[T + i] = pal[k + 1]!;
      rgb[2 * T + i] = pal[k + 2]!;
      continue;
    }
    // Rounded half up and clipped to 0..255 (see raster/rgb.ts).
    let x = (v0[i]! - off) * sc + 0.5;
    rgb[i] = x <= 0 ? 0 : x >= 255 ? 255 : x | 0;
    x = (v1[i]! - off) * sc + 0.5;
    rgb[T + i] = x <= 0 ? 0 : x >= 255 ? 255 : x | 0;
    x = (v2[i]! - off) * sc + 0.5;
    rgb[2 * T + i] = x <= 0 ? 0 : x >= 255 ? 255 : x | 0;
  }
  return { rgb, source, todo, count };
}

/** The buffers a job hands over (for postMessage's transfer list). */
export function warpJobTransfer(job: WarpJob): ArrayBuffer[] {
  const list = [job.mesh.mx, job.mesh.my, ...job.bands, job.valid, job.rgb, job.source, job.todo].map((a) => a.buffer as ArrayBuffer);
  return [...new Set(list)];
}
