/**
 * The linear probe's mathematics against computations written out here, independently:
 * - the loss: per pixel, bilinear interpolation of the patch features by its formula (half-pixel
 *   centres, clamped to the grid), logits W·f + b, log-softmax, weighted sum, in float64;
 * - the gradient: central finite differences of that independent loss;
 * - the fold of the standardisation into raw weights (V(f − μ)/σ + c = W f + b);
 * - the optimiser: on a small convex problem, Adam with the cosine schedule ends where the full
 *   gradient of the objective (mean weighted loss + L2) is ≈ 0, i.e. at the optimum;
 * - metrics from a hand-counted confusion matrix; balanced class weights.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '@geo-dino/model';
import {
  Probe,
  UNLABELLED,
  axisInterp,
  classWeightsFor,
  constantPredictionConfusion,
  metricsFrom,
  patchLogits,
  tileConfusion,
  tileGradient,
  tileProbabilities,
  type LinearHead,
  type ProbeTile,
} from '../src/index.js';

function randomTile(rng: Rng, C: number, gh: number, gw: number, patch: number, K: number, unlabelledShare = 0.2): ProbeTile {
  const features = new Float32Array(C * gh * gw);
  for (let i = 0; i < features.length; i++) features[i] = rng.normal();
  const labels = new Uint8Array(gh * patch * gw * patch);
  for (let i = 0; i < labels.length; i++) labels[i] = rng.uniform() < unlabelledShare ? UNLABELLED : rng.nextU32() % K;
  return { features, gh, gw, patch, labels };
}

function randomHead(rng: Rng, K: number, C: number, scale = 0.5): LinearHead {
  const W = new Float64Array(K * C);
  const b = new Float64Array(K);
  for (let i = 0; i < W.length; i++) W[i] = scale * rng.normal();
  for (let i = 0; i < K; i++) b[i] = scale * rng.normal();
  return { K, C, W, b };
}

/** Bilinear sample of channel c at pixel (x, y), written from the definition. */
function sampleFeature(t: ProbeTile, c: number, x: number, y: number): number {
  const coord = (p: number, n: number): [number, number, number] => {
    const s = Math.min(n - 1, Math.max(0, (p + 0.5) / t.patch - 0.5));
    const a = Math.floor(s);
    return [a, Math.min(n - 1, a + 1), s - a];
  };
  const [x0, x1, fx] = coord(x, t.gw);
  const [y0, y1, fy] = coord(y, t.gh);
  const F = (i: number, j: number): number => t.features[c * t.gh * t.gw + j * t.gw + i]!;
  return (1 - fy) * ((1 - fx) * F(x0, y0) + fx * F(x1, y0)) + fy * ((1 - fx) * F(x0, y1) + fx * F(x1, y1));
}

/** Σ over labelled pixels of w_y · −log softmax(W f̃ + b)_y, in float64, pixel by pixel. */
function referenceLoss(h: LinearHead, t: ProbeTile, w: Float64Array): number {
  const H = t.gh * t.patch;
  const Wd = t.gw * t.patch;
  let loss = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < Wd; x++) {
      const l = t.labels[y * Wd + x]!;
      if (l === UNLABELLED) continue;
      const f = Array.from({ length: h.C }, (_, c) => sampleFeature(t, c, x, y));
      const z = Array.from({ length: h.K }, (_, k) => f.reduce((s, v, c) => s + h.W[k * h.C + c]! * v, h.b[k]!));
      const m = Math.max(...z);
      const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
      loss += w[l]! * (lse - z[l]!);
    }
  }
  return loss;
}

describe('linear probe', () => {
  it('axisInterp is ONNX Resize linear/half_pixel: centres, clamped edges, weights in [0, 1)', () => {
    const a = axisInterp(32, 2, 16);
    // Pixel 0: source −0.46875 → clamped to 0.
    expect([a.i0[0], a.i1[0], a.w1[0]]).toEqual([0, 1, 0]);
    // Pixel 7 and 8 straddle the first cell's centre (7.5 → 0.0): 8 → (8.5/16 − 0.5) = 0.03125.
    expect(a.w1[8]).toBeCloseTo(0.03125, 12);
    // Pixel 24: (24.5/16 − 0.5) = 1.03125 → clamped to 1 (last cell): weight of i1 irrelevant, i0 = i1 = 1.
    expect([a.i0[24], a.i1[24], a.w1[24]]).toEqual([1, 1, 0]);
    for (let x = 0; x < 32; x++) expect(a.w1[x]!).toBeGreaterThanOrEqual(0);
  });

  it('loss and gradient equal an independent per-pixel computation and its finite differences', () => {
    const rng = new Rng(7);
    const K = 3;
    const C = 4;
    const tile = randomTile(rng, C, 3, 5, 4, K); // non-square grid, odd sizes
    const head = randomHead(rng, K, C);
    const w = Float64Array.from([1, 2.5, 0.5]);
    const gW = new Float64Array(K * C);
    const gb = new Float64Array(K);
    const r = tileGradient(head, tile, w, gW, gb);
    const ref = referenceLoss(head, tile, w);
    expect(Math.abs(r.loss - ref) / ref).toBeLessThan(1e-12);
    const labelled = tile.labels.filter((l) => l !== UNLABELLED);
    expect(r.pixels).toBe(labelled.length);
    expect(r.weight).toBeCloseTo(labelled.reduce((s, l) => s + w[l]!, 0), 9);
    // Central differences of the independent loss, for every weight and bias.
    const eps = 1e-5;
    const check = (key: 'W' | 'b', analytic: Float64Array): void => {
      for (let i = 0; i < analytic.length; i++) {
        const plus = Float64Array.from(head[key]);
        const minus = Float64Array.from(head[key]);
        plus[i]! += eps;
        minus[i]! -= eps;
        const num = (referenceLoss({ ...head, [key]: plus }, tile, w) - referenceLoss({ ...head, [key]: minus }, tile, w)) / (2 * eps);
        expect(Math.abs(analytic[i]! - num), `${key}[${i}]`).toBeLessThan(1e-5 * Math.max(1, Math.abs(num)));
      }
    };
    check('W', gW);
    check('b', gb);
  });

  it('per-pixel probabilities and the confusion matrix follow the same interpolated logits', () => {
    const rng = new Rng(3);
    const K = 4;
    const C = 3;
    const tile = randomTile(rng, C, 4, 2, 8, K, 0);
    const head = randomHead(rng, K, C, 1);
    const probs = tileProbabilities(head, tile);
    const H = 32;
    const Wd = 16;
    const conf = new Float64Array(K * K);
    const ref = new Float64Array(K * K);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < Wd; x++) {
        const f = Array.from({ length: C }, (_, c) => sampleFeature(tile, c, x, y));
        const z = Array.from({ length: K }, (_, k) => f.reduce((s, v, c) => s + head.W[k * C + c]! * v, head.b[k]!));
        const e = z.map((v) => Math.exp(v - Math.max(...z)));
        const s = e.reduce((a, b) => a + b, 0);
        for (let k = 0; k < K; k++) expect(probs[k * H * Wd + y * Wd + x]).toBeCloseTo(e[k]! / s, 6);
        ref[tile.labels[y * Wd + x]! * K + z.indexOf(Math.max(...z))]!++;
      }
    }
    tileConfusion(head, tile, conf);
    expect(Array.from(conf)).toEqual(Array.from(ref));
    // Patch logits: W F + b at each patch.
    const L = patchLogits(head, tile);
    const p = 5;
    for (let k = 0; k < K; k++) {
      let v = head.b[k]!;
      for (let c = 0; c < C; c++) v += head.W[k * C + c]! * tile.features[c * 8 + p]!;
      expect(L[k * 8 + p]).toBeCloseTo(v, 12);
    }
  });

  it('folds the standardisation into raw weights', () => {
    const rng = new Rng(11);
    const K = 3;
    const C = 5;
    const mean = Float64Array.from({ length: C }, () => rng.normal());
    const std = Float64Array.from({ length: C }, () => 0.5 + rng.uniform());
    const probe = new Probe(K, C, mean, std);
    for (let i = 0; i < K * C; i++) probe.V[i] = rng.normal();
    for (let k = 0; k < K; k++) probe.c[k] = rng.normal();
    const raw = probe.raw();
    const f = Array.from({ length: C }, () => rng.normal());
    for (let k = 0; k < K; k++) {
      const std_ = f.reduce((s, v, j) => s + probe.V[k * C + j]! * ((v - mean[j]!) / std[j]!), probe.c[k]!);
      const rawv = f.reduce((s, v, j) => s + raw.W[k * C + j]! * v, raw.b[k]!);
      expect(rawv).toBeCloseTo(std_, 10);
    }
  });

  it('Adam with the cosine schedule reaches the optimum of the regularised objective', () => {
    const rng = new Rng(5);
    const K = 3;
    const C = 4;
    const tiles = [0, 1, 2, 3].map(() => randomTile(rng, C, 2, 2, 4, K, 0.1));
    // Make the classes depend on the features (so the optimum is not trivial).
    const truth = randomHead(rng, K, C, 2);
    for (const t of tiles) {
      const p = tileProbabilities(truth, t);
      const n = 64;
      for (let i = 0; i < n; i++) {
        if (t.labels[i] === UNLABELLED) continue;
        let best = 0;
        for (let k = 1; k < K; k++) if (p[k * n + i]! > p[best * n + i]!) best = k;
        t.labels[i] = rng.uniform() < 0.8 ? best : rng.nextU32() % K;
      }
    }
    const w = Float64Array.from([1, 1.5, 0.7]);
    const probe = new Probe(K, C, new Float64Array(C), new Float64Array(C).fill(1));
    const l2 = 1e-2;
    const steps = 1500;
    for (let s = 0; s < steps; s++) {
      const gW = new Float64Array(K * C);
      const gb = new Float64Array(K);
      let weight = 0;
      const raw = probe.raw();
      for (const t of tiles) weight += tileGradient(raw, t, w, gW, gb).weight;
      probe.step(gW, gb, weight, 0.5 * 0.1 * (1 + Math.cos((Math.PI * s) / steps)), l2);
    }
    // Full gradient at the end: mean weighted loss gradient + l2·V (μ = 0, σ = 1: V = W).
    const gW = new Float64Array(K * C);
    const gb = new Float64Array(K);
    let weight = 0;
    const raw = probe.raw();
    for (const t of tiles) weight += tileGradient(raw, t, w, gW, gb).weight;
    let norm = 0;
    for (let i = 0; i < K * C; i++) norm = Math.max(norm, Math.abs(gW[i]! / weight + l2 * probe.V[i]!));
    for (let k = 0; k < K; k++) norm = Math.max(norm, Math.abs(gb[k]! / weight));
    expect(norm).toBeLessThan(1e-4);
  });
});

describe('metrics', () => {
  it('OA, IoU, precision, recall, F1 and mIoU from a hand-counted confusion matrix', () => {
    // rows: reference a, b, c; columns: predicted a, b, c
    const m = metricsFrom([5, 1, 0, 2, 3, 0, 0, 0, 0], [
      { value: 1, name: 'a' },
      { value: 2, name: 'b' },
      { value: 3, name: 'c' },
    ]);
    expect(m.pixels).toBe(11);
    expect(m.overallAccuracy).toBeCloseTo(8 / 11, 12);
    // a: TP 5, FP 2, FN 1 → 5/8; b: TP 3, FP 1, FN 2 → 3/6; c: neither present nor predicted → null.
    expect(m.classes.map((c) => c.iou)).toEqual([5 / 8, 3 / 6, null]);
    expect(m.meanIou).toBeCloseTo((5 / 8 + 3 / 6) / 2, 12);
    expect(m.classes[0]!.precision).toBeCloseTo(5 / 7, 12);
    expect(m.classes[0]!.recall).toBeCloseTo(5 / 6, 12);
    expect(m.classes[0]!.f1).toBeCloseTo((2 * (5 / 7) * (5 / 6)) / (5 / 7 + 5 / 6), 12);
    expect(m.confusion).toEqual([
      [5, 1, 0],
      [2, 3, 0],
      [0, 0, 0],
    ]);
    // Predicting class b everywhere: IoU(b) = 5/11, IoU(a) = 0.
    const base = metricsFrom(constantPredictionConfusion([6, 5, 0], 1), m.classes);
    expect(base.classes.map((c) => c.iou)).toEqual([0, 5 / 11, null]);
    expect(base.overallAccuracy).toBeCloseTo(5 / 11, 12);
  });

  it('balanced class weights are inversely proportional to counts and keep the total weight', () => {
    const w = classWeightsFor([100, 10, 890], 'balanced');
    expect(w[1]! / w[0]!).toBeCloseTo(10, 9);
    expect(100 * w[0]! + 10 * w[1]! + 890 * w[2]!).toBeCloseTo(1000, 6);
    expect(Array.from(classWeightsFor([5, 5], 'none'))).toEqual([1, 1]);
    // A class of 1 pixel among a million is capped (100× the balanced weight of the others at most).
    const capped = classWeightsFor([1, 1_000_000], 'balanced');
    expect(capped[0]! / capped[1]!).toBeLessThanOrEqual(100 / 0.5 + 1e-9);
  });
});
