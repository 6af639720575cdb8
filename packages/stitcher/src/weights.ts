/**
 * Blending weights for overlapping tiles.
 *
 * Along each axis a tile's weight rises over its first `overlap` pixels as a raised cosine,
 * w(i) = sin²(π/2 · (i + ½) / overlap), stays 1 in the interior and falls symmetrically over its
 * last `overlap` pixels. Where two neighbouring tiles overlap by exactly `overlap` pixels their
 * ramps are sin² and cos² of the same angle and sum to 1 (a partition of unity), so a field that
 * every tile predicts identically is reproduced exactly, and tile-edge disagreements fade
 * smoothly instead of leaving a seam. The 2-D weight is the product of the two axes.
 *
 * Weights never reach 0 (the half-pixel offset), so pixels covered by a single tile at the edge
 * of the raster keep their value after normalisation.
 */

export type WindowKind = 'raised-cosine' | 'uniform';

/** One axis of the window, length `size`, ramps of `overlap` pixels at both ends. */
export function axisWeights(size: number, overlap: number, kind: WindowKind = 'raised-cosine'): Float32Array {
  const w = new Float32Array(size).fill(1);
  if (kind === 'uniform' || overlap <= 0) return w;
  const ramp = Math.min(overlap, Math.floor(size / 2));
  for (let i = 0; i < ramp; i++) {
    const s = Math.sin((Math.PI / 2) * ((i + 0.5) / ramp));
    const v = s * s;
    w[i] = v;
    w[size - 1 - i] = v;
  }
  return w;
}

/** The 2-D window (row-major, height × width) as the outer product of the axes. */
export function tileWeights(width: number, height: number, overlap: number, kind: WindowKind = 'raised-cosine'): Float32Array {
  const wx = axisWeights(width, overlap, kind);
  const wy = axisWeights(height, overlap, kind);
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const r = wy[y]!;
    const off = y * width;
    for (let x = 0; x < width; x++) out[off + x] = r * wx[x]!;
  }
  return out;
}
