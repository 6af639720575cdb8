/**
 * uint8 RGB → the normalised float32 input the models take (spec §3.2):
 * x = (v/255 − mean_c) / std_c, laid out [B, 3, H, W]. Pixels marked invalid by the mask become
 * 0 — the mean colour in normalised space, which is also what the reference's padding uses.
 *
 * The pipeline calls this and never re-implements preprocessing.
 */
import { GeoDinoError } from '@geo-dino/core';
import { CHMV2_MEAN, CHMV2_STD } from './modeldir.js';

export interface NormalizeOptions {
  batch?: number;
  height: number;
  width: number;
  /** `hwc`: interleaved RGBRGB… per image (GeoTIFF pixel-interleaved); `chw`: band-sequential. Default hwc. */
  layout?: 'hwc' | 'chw';
  /** Per-pixel validity, [B, H, W]; 0 = invalid (becomes the mean colour). */
  mask?: Uint8Array;
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
  /** Write into this array ([B,3,H,W]) instead of allocating. */
  out?: Float32Array;
}

/** The 3×256 lookup table (v/255 − mean)/std in float32. */
export function normalizationTable(mean: readonly number[] = CHMV2_MEAN, std: readonly number[] = CHMV2_STD): Float32Array {
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
  }
  return lut;
}

const DEFAULT_LUT = normalizationTable();

export function normalizeRgb(rgb: Uint8Array, options: NormalizeOptions): Float32Array {
  const B = options.batch ?? 1;
  const H = options.height;
  const W = options.width;
  const HW = H * W;
  if (!Number.isInteger(B) || !Number.isInteger(H) || !Number.isInteger(W) || B <= 0 || H <= 0 || W <= 0) {
    throw new GeoDinoError('E_ARGUMENT', `normalizeRgb: batch, height and width must be positive integers (got ${B}, ${H}, ${W})`);
  }
  if (rgb.length !== B * 3 * HW) {
    throw new GeoDinoError('E_ARGUMENT', `normalizeRgb: ${rgb.length} bytes for ${B}×${H}×${W} RGB (needs ${B * 3 * HW})`);
  }
  if (options.mask && options.mask.length !== B * HW) {
    throw new GeoDinoError('E_ARGUMENT', `normalizeRgb: mask has ${options.mask.length} values for ${B}×${H}×${W} pixels`);
  }
  const out = options.out ?? new Float32Array(B * 3 * HW);
  if (out.length !== B * 3 * HW) throw new GeoDinoError('E_ARGUMENT', `normalizeRgb: out has ${out.length} values, needs ${B * 3 * HW}`);
  const lut = options.mean || options.std ? normalizationTable(options.mean ?? CHMV2_MEAN, options.std ?? CHMV2_STD) : DEFAULT_LUT;
  const mask = options.mask;
  const hwc = (options.layout ?? 'hwc') === 'hwc';
  for (let b = 0; b < B; b++) {
    const src = b * 3 * HW;
    const dst = b * 3 * HW;
    for (let c = 0; c < 3; c++) {
      const o = dst + c * HW;
      const l = c * 256;
      if (hwc) for (let i = 0; i < HW; i++) out[o + i] = lut[l + rgb[src + 3 * i + c]!]!;
      else for (let i = 0; i < HW; i++) out[o + i] = lut[l + rgb[src + c * HW + i]!]!;
    }
    if (mask) {
      const mo = b * HW;
      for (let i = 0; i < HW; i++) {
        if (mask[mo + i] === 0) {
          out[dst + i] = 0;
          out[dst + HW + i] = 0;
          out[dst + 2 * HW + i] = 0;
        }
      }
    }
  }
  return out;
}
