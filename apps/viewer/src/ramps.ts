/**
 * Colour ramps applied in the browser to value-encoded tiles: a 256-entry lookup table between a
 * user-chosen min and max.
 */
export { RAMPS, buildLut, lutIndex } from '@geo-dino/pmtiles/colormap';

export function cssColor(lut: Uint8Array, i: number): string {
  return `rgb(${lut[i * 3]}, ${lut[i * 3 + 1]}, ${lut[i * 3 + 2]})`;
}
