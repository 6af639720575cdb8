/**
 * Model input is 8-bit RGB. This module decides, per scene, which bands are red, green and blue
 * and how non-8-bit samples become 8-bit.
 *
 * Band choice (`rgbPlanFor`), in order: explicit bands from the caller; bands whose colour
 * interpretation is red, green and blue (Photometric RGB/YCbCr, or GDAL's COLORINTERP metadata:
 * BGR and RGBN files are reordered correctly, NIR and alpha are left out); band descriptions
 * "red"/"green"/"blue"; a palette image through its colour table; a single gray band repeated
 * three times (with a warning). Three or more bands with no such hint: bands 1-3 with a warning.
 *
 * The 8-bit conversion (`resolveStretch`) is explicit and the same for every tile of a scene, so
 * it never causes seams:
 * - uint8: as is;
 * - `{ kind: 'linear', min, max }`: (v − min) / (max − min) × 255, rounded, clipped to 0-255;
 * - `{ kind: 'percentile', low = 2, high = 98 }` (the default for every other type): the linear
 *   stretch between the low and high percentiles of the valid pixels of the three bands pooled
 *   together (one range for all three, so the colour balance is kept), measured once per scene
 *   on a coarse overview (or on up to 16 windows of full resolution when there is none);
 * - `{ kind: 'bits', bits }`: v × 255 / (2^bits − 1), for data of a known bit depth (e.g. 11-bit
 *   imagery stored in 16 bits).
 */
import { GeoDinoError, throwIfAborted, type Logger } from '@geo-dino/core';
import type { RasterSource } from './source.js';
import type { RasterInfo } from './types.js';

export interface RgbPlan {
  /** 0-based bands to read: three for 'rgb', one for 'gray' and 'palette'. */
  bands: number[];
  kind: 'rgb' | 'gray' | 'palette';
  /** For 'palette': 256 × [r, g, b], indexed by sample value. */
  palette: Uint8Array | null;
  /** Why this choice, when it is a guess. */
  warning: string | null;
}

export type Stretch =
  | { kind: 'linear'; min: number; max: number }
  | { kind: 'percentile'; low?: number; high?: number }
  | { kind: 'bits'; bits: number };

/** A resolved stretch: 8-bit value = clamp(round((v − offset) × scale)). */
export interface ResolvedStretch {
  offset: number;
  scale: number;
  /** What was used, for logs and provenance. */
  description: string;
}

export function rgbPlanFor(info: RasterInfo, explicit?: readonly number[]): RgbPlan {
  const n = info.bandCount;
  if (explicit) {
    if (explicit.length !== 3 && explicit.length !== 1) {
      throw new GeoDinoError('E_ARGUMENT', `${info.source}: give three bands (red, green, blue) or one (gray); got ${explicit.length}`);
    }
    for (const b of explicit) {
      if (!Number.isInteger(b) || b < 0 || b >= n) throw new GeoDinoError('E_ARGUMENT', `${info.source}: band ${b + 1} does not exist (the file has ${n})`);
    }
    return { bands: [...explicit], kind: explicit.length === 3 ? 'rgb' : 'gray', palette: null, warning: null };
  }
  const find = (ci: string): number => info.bands.findIndex((b) => b.colorInterp === ci);
  const [r, g, b] = [find('red'), find('green'), find('blue')];
  if (r >= 0 && g >= 0 && b >= 0) return { bands: [r, g, b], kind: 'rgb', palette: null, warning: null };
  const byDesc = (names: string[]): number => info.bands.findIndex((bd) => names.includes((bd.description ?? '').trim().toLowerCase()));
  const [dr, dg, db] = [byDesc(['red', 'r', 'b4', 'red band']), byDesc(['green', 'g', 'b3', 'green band']), byDesc(['blue', 'b', 'b2', 'blue band'])];
  if (dr >= 0 && dg >= 0 && db >= 0) return { bands: [dr, dg, db], kind: 'rgb', palette: null, warning: null };
  if (info.bands[0]?.colorInterp === 'palette' && info.colorTable) {
    const palette = new Uint8Array(256 * 3);
    info.colorTable.slice(0, 256).forEach((c, i) => palette.set([c[0], c[1], c[2]], i * 3));
    return { bands: [0], kind: 'palette', palette, warning: null };
  }
  const data = info.bands.filter((bd) => bd.colorInterp !== 'alpha');
  if (data.length >= 3) {
    return {
      bands: data.slice(0, 3).map((bd) => bd.index),
      kind: 'rgb',
      palette: null,
      warning: `${info.source}: no band is marked red/green/blue; using bands ${data
        .slice(0, 3)
        .map((bd) => bd.index + 1)
        .join(', ')} as red, green, blue`,
    };
  }
  if (data.length >= 1) {
    return { bands: [data[0]!.index], kind: 'gray', palette: null, warning: `${info.source}: single-band imagery; repeating band ${data[0]!.index + 1} as red, green and blue` };
  }
  throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${info.source}: no usable image band (only alpha)`);
}

function percentileOf(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (p / 100) * (sorted.length - 1);
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < sorted.length ? sorted[i]! * (1 - f) + sorted[i + 1]! * f : sorted[i]!;
}

const MAX_SAMPLES = 2_000_000;

/** Resolve a stretch for a scene; null for 8-bit data that needs none. */
export async function resolveStretch(
  raster: RasterSource,
  plan: RgbPlan,
  stretch: Stretch | undefined,
  options: { log?: Logger; signal?: AbortSignal } = {},
): Promise<ResolvedStretch | null> {
  const info = raster.info;
  if (plan.kind === 'palette') return null;
  if (!stretch && info.dtype === 'uint8') return null;
  const s: Stretch = stretch ?? { kind: 'percentile' };
  if (s.kind === 'linear') {
    if (!(Number.isFinite(s.min) && Number.isFinite(s.max) && s.max > s.min)) {
      throw new GeoDinoError('E_ARGUMENT', `${info.source}: linear stretch needs min < max (got ${s.min}, ${s.max})`);
    }
    return { offset: s.min, scale: 255 / (s.max - s.min), description: `linear ${s.min}..${s.max}` };
  }
  if (s.kind === 'bits') {
    if (!Number.isInteger(s.bits) || s.bits < 1 || s.bits > 32) throw new GeoDinoError('E_ARGUMENT', `${info.source}: bits must be 1-32 (got ${s.bits})`);
    return { offset: 0, scale: 255 / (2 ** s.bits - 1), description: `${s.bits}-bit` };
  }
  const low = s.low ?? 2;
  const high = s.high ?? 98;
  if (!(low >= 0 && high <= 100 && low < high)) throw new GeoDinoError('E_ARGUMENT', `${info.source}: percentiles must satisfy 0 ≤ low < high ≤ 100 (got ${low}, ${high})`);
  // Measure on the finest level that is at most 1024 px on its long side, or sample windows.
  const levels = info.levels;
  const small = levels.find((l) => Math.max(l.width, l.height) <= 1024);
  const windows: { level: number; x: number; y: number; width: number; height: number }[] = [];
  if (small) windows.push({ level: small.level, x: 0, y: 0, width: small.width, height: small.height });
  else {
    const lv = levels[levels.length - 1]!;
    const w = Math.min(512, lv.width);
    const h = Math.min(512, lv.height);
    for (let j = 0; j < 4; j++)
      for (let i = 0; i < 4; i++) {
        windows.push({ level: lv.level, x: Math.floor(((lv.width - w) * (i + 0.5)) / 4), y: Math.floor(((lv.height - h) * (j + 0.5)) / 4), width: w, height: h });
      }
  }
  const values: number[] = [];
  let seen = 0;
  for (const win of windows) {
    throwIfAborted(options.signal);
    const d = await raster.read(win, { level: win.level, bands: plan.bands, ...(options.signal ? { signal: options.signal } : {}) });
    const step = Math.max(1, Math.ceil((d.width * d.height * plan.bands.length * windows.length) / MAX_SAMPLES));
    for (let i = 0; i < d.valid.length; i += step) {
      if (!d.valid[i]) continue;
      for (const band of d.bands) {
        const v = band[i]!;
        if (Number.isFinite(v)) values.push(v);
      }
      seen++;
    }
  }
  if (values.length === 0) {
    options.log?.warn({ file: info.source }, 'no valid pixels to measure a stretch on; using the full range of the data type');
    const max = info.dtype === 'uint16' ? 65535 : info.dtype === 'int16' ? 32767 : 1;
    return { offset: 0, scale: 255 / max, description: `full range 0..${max} (no valid pixels seen)` };
  }
  const sorted = Float64Array.from(values).sort();
  const lo = percentileOf(sorted, low);
  let hi = percentileOf(sorted, high);
  if (!(hi > lo)) hi = lo + 1;
  options.log?.info({ file: info.source, low: lo, high: hi, samples: seen }, `16-bit to 8-bit: linear stretch between the ${low}th and ${high}th percentiles`);
  return { offset: lo, scale: 255 / (hi - lo), description: `percentile ${low}-${high}: ${lo}..${hi}` };
}

/** Apply a stretch to one value. */
export function to8bit(v: number, s: ResolvedStretch | null): number {
  const x = s ? (v - s.offset) * s.scale : v;
  return x <= 0 ? 0 : x >= 255 ? 255 : Math.floor(x + 0.5);
}
