/**
 * Colour ramps for value layers (height, uncertainty): 256-entry lookup tables between a min and
 * a max. Browser-safe: the viewer imports it as `@geo-dino/pmtiles/colormap`; `geo-dino serve`
 * colours XYZ tiles with the same tables (`?colormap_name=viridis&rescale=0,40`).
 */
import { parseHexColor, type LandCoverClass } from './encoding.js';

export const RAMPS: Record<string, readonly string[]> = {
  viridis: ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'],
  canopy: ['#f6e8c3', '#dfc27d', '#c2d97a', '#8cc665', '#4fa64a', '#2a7f3a', '#15602f', '#0a4222', '#052815'],
  magma: ['#000004', '#1c1044', '#4f127b', '#812581', '#b5367a', '#e55964', '#fb8761', '#fec287', '#fcfdbf'],
  greens: ['#ffffe5', '#f7fcb9', '#d9f0a3', '#addd8e', '#78c679', '#41ab5d', '#238443', '#006837', '#004529'],
  greys: ['#111111', '#ffffff'],
};

/** 256 RGB entries interpolated linearly between the ramp's stops (unknown names: viridis). */
export function buildLut(name: string): Uint8Array {
  const stops = (RAMPS[name] ?? RAMPS['viridis']!).map((c) => parseHexColor(c) ?? [0, 0, 0]);
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(t));
    const f = t - k;
    const a = stops[k]!;
    const b = stops[k + 1]!;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(a[c]! + (b[c]! - a[c]!) * f);
  }
  return lut;
}

/** LUT index of a value between min and max (clamped). */
export function lutIndex(value: number, min: number, max: number): number {
  if (!(max > min)) return value >= max ? 255 : 0;
  const t = Math.round(((value - min) / (max - min)) * 255);
  return t < 0 ? 0 : t > 255 ? 255 : t;
}

/** RGBA pixels of values (NaN = transparent) coloured with a LUT between min and max. */
export function colourValues(values: Float32Array, lut: Uint8Array, min: number, max: number, out = new Uint8Array(values.length * 4)): Uint8Array {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) {
      out[i * 4 + 3] = 0;
      continue;
    }
    const k = lutIndex(v, min, max) * 3;
    out[i * 4] = lut[k]!;
    out[i * 4 + 1] = lut[k + 1]!;
    out[i * 4 + 2] = lut[k + 2]!;
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** RGBA pixels of class values (NaN = transparent) in the colours of their class table (unknown classes grey). */
export function colourClasses(values: Float32Array, classes: readonly LandCoverClass[], out = new Uint8Array(values.length * 4)): Uint8Array {
  const table = new Map<number, [number, number, number]>();
  for (const c of classes) table.set(c.value, parseHexColor(c.color) ?? [128, 128, 128]);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) {
      out[i * 4 + 3] = 0;
      continue;
    }
    const c = table.get(v) ?? [160, 160, 160];
    out[i * 4] = c[0];
    out[i * 4 + 1] = c[1];
    out[i * 4 + 2] = c[2];
    out[i * 4 + 3] = 255;
  }
  return out;
}
