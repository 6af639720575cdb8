/**
 * scene-feather.ts pieces against independent computations: the least-cost seam against brute
 * force over every admissible path, the seam weights' partition of unity, and the seamline mosaic
 * of two synthetic single-scene renders; the footprint-edge distance against brute force and the
 * footprint transition of a scene inside another's extent.
 */
import { describe, expect, it } from 'vitest';
import { NO_SOURCE, type Tile, type TileSpec } from '@geo-dino/tiling';
import { composeTile, footprintEdgeDistance, footprintHalo, leastCostSeam, seamWeight, type SceneSeam } from '../src/index.js';

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

  it('footprintEdgeDistance: exact distance to the nearest no-data pixel centre − ½ (brute force), Infinity beyond the halo', () => {
    const r = rng(7);
    const grid = { width: 70, height: 60 };
    const spec = { x: 10, y: 8, width: 40, height: 36 };
    const F = 9;
    const halo = footprintHalo({ index: 0, row: 0, col: 0, touchesAoi: true, ...spec }, F, grid);
    expect([halo.x, halo.y, halo.width, halo.height]).toEqual([0, 0, 60, 54]);
    // An irregular footprint: a disc plus random holes.
    const valid = new Uint8Array(halo.width * halo.height);
    for (let y = 0; y < halo.height; y++) for (let x = 0; x < halo.width; x++) valid[y * halo.width + x] = Math.hypot(x - 30, y - 27) < 22 && r() > 0.01 ? 1 : 0;
    const d = footprintEdgeDistance(spec, halo, valid);
    for (let y = 0; y < spec.height; y++) {
      for (let x = 0; x < spec.width; x++) {
        const gx = spec.x + x;
        const gy = spec.y + y;
        let best = Infinity;
        for (let qy = 0; qy < halo.height; qy++) for (let qx = 0; qx < halo.width; qx++) if (!valid[qy * halo.width + qx]) best = Math.min(best, Math.hypot(qx - gx, qy - gy));
        const want = best === 0 ? 0 : best - 0.5;
        expect(d[y * spec.width + x]).toBeCloseTo(want, 4);
      }
    }
    // All valid: no edge anywhere.
    expect([...footprintEdgeDistance(spec, halo, new Uint8Array(valid.length).fill(1))].every((v) => v === Infinity)).toBe(true);
  });

  it('composeTile: a footprint seam gives the inner scene sin² weights rising over F px inward from its edge', () => {
    const W = 64;
    const n = W * W;
    const spec: TileSpec = { index: 0, row: 0, col: 0, x: 0, y: 0, width: W, height: W, touchesAoi: true };
    const render = (k: number, x0: number, y0: number, x1: number, y1: number): Tile => {
      const rgb = new Uint8Array(3 * n);
      const source = new Uint16Array(n).fill(NO_SOURCE);
      const valid = new Uint8Array(n);
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          source[y * W + x] = k;
          valid[y * W + x] = 1;
          rgb[y * W + x] = 100 + 50 * k;
        }
      }
      return { spec, rgb, valid, source, validCount: (x1 - x0) * (y1 - y0), sourcesUsed: [k] };
    };
    // Scene 0 (priority) covers [16, 48)², inside scene 1 (the whole tile).
    const inner = render(0, 16, 16, 48, 48);
    const F = 10;
    const seam: SceneSeam = { a: 0, b: 1, axis: 'x', aSide: 1, overlap: [16, 16, 48, 48], start: 16, step: 1, positions: [], featherPx: F, footprint: true };
    const edge = footprintEdgeDistance(spec, spec, inner.source.map((s) => (s === NO_SOURCE ? 0 : 1)));
    const c = composeTile(spec, [inner, render(1, 0, 0, W, W)], [0, 1], [0, 1], [seam], [seam], new Map([[seam, edge]]));
    let zone = 0;
    for (let y = 0; y < W; y++) {
      for (let x = 0; x < W; x++) {
        const i = y * W + x;
        const w0 = c.weights.get(0)![i]!;
        const w1 = c.weights.get(1)![i]!;
        expect(w0 + w1).toBeCloseTo(1, 6);
        const insideInner = x >= 16 && x < 48 && y >= 16 && y < 48;
        if (!insideInner) {
          expect(w1).toBe(1);
          expect(c.tile.source[i]).toBe(1);
          continue;
        }
        // Distance inward from the square's edge (the nearest side: axis-aligned, exact).
        const e = Math.min(x - 16, 47 - x, y - 16, 47 - y) + 0.5;
        const want = e >= F ? 1 : Math.sin((Math.PI / 2) * (e / F)) ** 2;
        expect(w0).toBeCloseTo(want, 5);
        expect(c.tile.source[i]).toBe(e >= F / 2 ? 0 : 1);
        if (want < 1 - 1e-9) {
          zone++;
          expect(c.zone[i]).toBe(0);
        }
      }
    }
    expect(c.zonePixels).toBe(zone);
    // Without the distance the inner scene stays whole (priority mosaic).
    const plain = composeTile(spec, [inner, render(1, 0, 0, W, W)], [0, 1], [0, 1], [seam], [seam]);
    expect(plain.zonePixels).toBe(0);
    expect(plain.tile.source[20 * W + 16]).toBe(0);
  });
});
