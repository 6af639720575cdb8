/**
 * Colour ramps applied in the browser to value-encoded tiles: a 256-entry lookup table between a
 * user-chosen min and max.
 */
import { parseHexColor } from '@geo-dino/pmtiles/encoding';

export const RAMPS: Record<string, readonly string[]> = {
  viridis: ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'],
  canopy: ['#f6e8c3', '#dfc27d', '#c2d97a', '#8cc665', '#4fa64a', '#2a7f3a', '#15602f', '#0a4222', '#052815'],
  magma: ['#000004', '#1c1044', '#4f127b', '#812581', '#b5367a', '#e55964', '#fb8761', '#fec287', '#fcfdbf'],
  greens: ['#ffffe5', '#f7fcb9', '#d9f0a3', '#addd8e', '#78c679', '#41ab5d', '#238443', '#006837', '#004529'],
  greys: ['#111111', '#ffffff'],
};

/** 256 RGB entries interpolated linearly between the ramp's stops. */
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

export function cssColor(lut: Uint8Array, i: number): string {
  return `rgb(${lut[i * 3]}, ${lut[i * 3 + 1]}, ${lut[i * 3 + 2]})`;
}
