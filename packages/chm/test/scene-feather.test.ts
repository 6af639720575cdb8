/**
 * scene-feather.ts pieces against independent computations: the least-cost seam against brute
 * force over every admissible path, the seam weights' partition of unity, and the seamline mosaic
 * of two synthetic single-scene renders.
 */
import { describe, expect, it } from 'vitest';
import { NO_SOURCE, type Tile, type TileSpec } from '@geo-dino/tiling';
import { composeTile, leastCostSeam, seamWeight, type SceneSeam } from '../src/index.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** Cheapest admissible path (|step| ≤ 1, columns in [lo, hi]) by enumerating them all. */
function bruteForce(cost: Float32Array, rows: number, cols: number, lo: number, hi: number): number {
  let best = Infinity;
  const walk = (r: number, c: number, acc: number): void => {
    if (c < lo || c > hi) return;
    const a = acc + cost[r * cols + c]!;
    if (r === rows - 1) {
      best = Math.min(best, a);
      return;
    }
    for (const d of [-1, 0, 1]) walk(r + 1, c + d, a);
  };
  for (let c = lo; c <= hi; c++) walk(0, c, 0);
  return best;
}

describe('scene seams', () => {
  it('leastCostSeam finds the cheapest admissible path (brute force on small random costs)', () => {
    const next = rng(7);
    for (let trial = 0; trial < 20; trial++) {
      const rows = 4 + (trial % 4);
      const cols = 5 + (trial % 3);
      const lo = trial % 2;
      const hi = cols - 1 - (trial % 2);
      const cost = new Float32Array(rows * cols).map(() => next());
      const path = leastCostSeam(cost, rows, cols, lo, hi);
      let sum = 0;
      for (let r = 0; r < rows; r++) {
        expect(path[r]).toBeGreaterThanOrEqual(lo);
        expect(path[r]).toBeLessThanOrEqual(hi);
        if (r) expect(Math.abs(path[r]! - path[r - 1]!)).toBeLessThanOrEqual(1);
        sum += cost[r * cols + path[r]!]!;
      }
      expect(sum).toBeCloseTo(bruteForce(cost, rows, cols, lo, hi), 5);
    }
  });

  it('seam weights are a raised-cosine partition of unity across the zone', () => {
    const F = 40;
    for (let d = -30; d <= 30; d += 0.5) {
      expect(seamWeight(d, F) + seamWeight(-d, F)).toBeCloseTo(1, 6);
      if (Math.abs(d) < F / 2) expect(seamWeight(d, F)).toBeCloseTo(Math.sin((Math.PI / 2) * ((d + F / 2) / F)) ** 2, 6);
    }
    expect(seamWeight(F / 2, F)).toBe(1);
    expect(seamWeight(-F / 2, F)).toBe(0);
    expect(seamWeight(0.1, 0)).toBe(1);
    expect(seamWeight(-0.1, 0)).toBe(0);
  });

  it('composeTile: each side from its scene, raised-cosine shares inside the zone summing to 1', () => {
    const W = 64;
    const n = W * W;
    const spec: TileSpec = { index: 0, row: 0, col: 0, x: 0, y: 0, width: W, height: W, touchesAoi: true };
    // Scene 0 covers columns < 48, scene 1 columns ≥ 16: overlap [16, 48); a vertical seam at x = 32.
    const render = (k: number, from: number, to: number): Tile => {
      const rgb = new Uint8Array(3 * n);
      const source = new Uint16Array(n).fill(NO_SOURCE);
      const valid = new Uint8Array(n);
      for (let y = 0; y < W; y++) {
        for (let x = from; x < to; x++) {
          source[y * W + x] = k;
          valid[y * W + x] = 1;
          rgb[y * W + x] = 100 + 50 * k;
        }
      }
      return { spec, rgb, valid, source, validCount: (to - from) * W, sourcesUsed: [k] };
    };
    const seam: SceneSeam = { a: 0, b: 1, axis: 'x', aSide: -1, overlap: [16, 0, 48, W], start: 0, step: 2, positions: new Array(W / 2).fill(32), featherPx: 12 };
    const c = composeTile(spec, [render(0, 0, 48), render(1, 16, W)], [0, 1], [0, 1], [seam], [seam]);
    const w0 = c.weights.get(0)!;
    const w1 = c.weights.get(1)!;
    let zone = 0;
    for (let y = 0; y < W; y++) {
      for (let x = 0; x < W; x++) {
        const i = y * W + x;
        const d = 32 - (x + 0.5);
        expect(c.tile.source[i]).toBe(d >= 0 ? 0 : 1);
        expect(c.tile.rgb[i]).toBe(d >= 0 ? 100 : 150);
        expect(w0[i]! + w1[i]!).toBeCloseTo(1, 6);
        expect(w0[i]!).toBeCloseTo(seamWeight(d, 12), 6);
        if (Math.abs(d) < 6) {
          zone++;
          expect(c.zone[i]).toBe(0);
        } else expect(c.zone[i]).toBe(NO_SOURCE);
      }
    }
    expect(c.zonePixels).toBe(zone);
  });
});
