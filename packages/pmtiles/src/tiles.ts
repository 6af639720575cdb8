/**
 * Decoded tiles while the pyramid is built, and the 2×2 reductions that make a zoom level from the
 * one above: the mean of the valid values (height, uncertainty), the most frequent class (land
 * cover), the alpha-weighted mean colour (imagery). A parent pixel is valid when any of its four
 * children is.
 */
import { ModeCounter } from '@geo-dino/tiling';
import { TILE_SIZE } from './encoding.js';

export type TileKind = 'value' | 'class' | 'rgb';

/** Values as float32, NaN = nodata. */
export interface ValueTile {
  kind: 'value';
  values: Float32Array;
}

export interface ClassTile {
  kind: 'class';
  classes: Uint8Array;
  /** 1 = valid, 0 = nodata. */
  valid: Uint8Array;
}

/** Straight (not premultiplied) RGBA; alpha 0 = nodata. */
export interface RgbTile {
  kind: 'rgb';
  rgba: Uint8Array;
}

export type TileData = ValueTile | ClassTile | RgbTile;

const N = TILE_SIZE;
const HALF = N / 2;

export function emptyTile(kind: TileKind): TileData {
  if (kind === 'value') return { kind, values: new Float32Array(N * N).fill(NaN) };
  if (kind === 'class') return { kind, classes: new Uint8Array(N * N), valid: new Uint8Array(N * N) };
  return { kind, rgba: new Uint8Array(N * N * 4) };
}

/** True when the tile has at least one valid pixel. */
export function hasData(t: TileData): boolean {
  if (t.kind === 'value') {
    for (let i = 0; i < t.values.length; i++) if (!Number.isNaN(t.values[i]!)) return true;
    return false;
  }
  if (t.kind === 'class') return t.valid.includes(1);
  for (let i = 3; i < t.rgba.length; i += 4) if (t.rgba[i] !== 0) return true;
  return false;
}

/**
 * Reduce four children (order: (2x, 2y), (2x+1, 2y), (2x, 2y+1), (2x+1, 2y+1); null = no data)
 * into their parent. Returns null when no child has data.
 */
export function reduceChildren(kind: TileKind, children: readonly (TileData | null)[]): TileData | null {
  if (!children.some((c) => c !== null)) return null;
  const parent = emptyTile(kind);
  for (let q = 0; q < 4; q++) {
    const child = children[q];
    if (!child) continue;
    const ox = (q & 1) * HALF;
    const oy = (q >> 1) * HALF;
    if (parent.kind === 'value' && child.kind === 'value') reduceValues(child.values, parent.values, ox, oy);
    else if (parent.kind === 'class' && child.kind === 'class') reduceClasses(child, parent, ox, oy);
    else if (parent.kind === 'rgb' && child.kind === 'rgb') reduceRgb(child.rgba, parent.rgba, ox, oy);
    else throw new Error(`cannot reduce a ${child.kind} tile into a ${kind} tile`);
  }
  return hasData(parent) ? parent : null;
}

function reduceValues(src: Float32Array, dst: Float32Array, ox: number, oy: number): void {
  for (let y = 0; y < HALF; y++) {
    const r0 = 2 * y * N;
    const r1 = r0 + N;
    for (let x = 0; x < HALF; x++) {
      const i = r0 + 2 * x;
      const j = r1 + 2 * x;
      let sum = 0;
      let n = 0;
      const a = src[i]!;
      const b = src[i + 1]!;
      const c = src[j]!;
      const d = src[j + 1]!;
      if (a === a) (sum += a), n++;
      if (b === b) (sum += b), n++;
      if (c === c) (sum += c), n++;
      if (d === d) (sum += d), n++;
      dst[(oy + y) * N + ox + x] = n === 0 ? NaN : sum / n;
    }
  }
}

function reduceClasses(src: ClassTile, dst: ClassTile, ox: number, oy: number): void {
  const mode = new ModeCounter();
  for (let y = 0; y < HALF; y++) {
    for (let x = 0; x < HALF; x++) {
      const base = 2 * y * N + 2 * x;
      mode.clear();
      for (const k of [base, base + 1, base + N, base + N + 1]) if (src.valid[k]) mode.add(src.classes[k]!);
      const o = (oy + y) * N + ox + x;
      if (mode.count === 0) continue;
      // Most frequent class; on a tie, the one that reached the count first (gdaladdo's rule).
      dst.classes[o] = mode.value(0);
      dst.valid[o] = 1;
    }
  }
}

function reduceRgb(src: Uint8Array, dst: Uint8Array, ox: number, oy: number): void {
  for (let y = 0; y < HALF; y++) {
    for (let x = 0; x < HALF; x++) {
      const p = (2 * y * N + 2 * x) * 4;
      const idx = [p, p + 4, p + N * 4, p + N * 4 + 4];
      let r = 0;
      let g = 0;
      let b = 0;
      let a = 0;
      let amax = 0;
      for (const k of idx) {
        const w = src[k + 3]!;
        r += src[k]! * w;
        g += src[k + 1]! * w;
        b += src[k + 2]! * w;
        a += w;
        if (w > amax) amax = w;
      }
      const o = ((oy + y) * N + ox + x) * 4;
      if (a === 0) continue;
      dst[o] = Math.round(r / a);
      dst[o + 1] = Math.round(g / a);
      dst[o + 2] = Math.round(b / a);
      // Valid where any child is (as for values and classes): small areas stay visible when zoomed out.
      dst[o + 3] = amax;
    }
  }
}
