/**
 * The land-cover head as mathematics: a multinomial logistic regression (a linear probe) on
 * DINOv3 patch features, bilinearly upsampled to pixels.
 *
 * For a pixel p with bilinear weights a_pj over the patch grid (exactly ONNX `Resize`, mode
 * linear, `half_pixel` coordinates: x_src = (x + 0.5)/16 − 0.5, clamped to the grid), the head
 * computes logits_p = Σ_j a_pj (W f_j + b) = W (Σ_j a_pj f_j) + b — the upsampling is linear and
 * its weights sum to 1 — and class probabilities softmax(logits_p). So "a 1×1 convolution on
 * patch features, then bilinear upsampling of the logits, then softmax" (what the ONNX graph
 * does) is *the same function* as "logistic regression on bilinearly interpolated features" —
 * what training minimises, per labelled pixel. There is no train/inference mismatch.
 *
 * Features are standardised (per channel, mean μ and std σ of the training tiles) for the
 * optimisation; the standardisation folds into the exported weights: W' = W/σ, b' = b − W μ/σ.
 * Everything here works on raw features with those folded weights, so the same code evaluates
 * the exported head.
 *
 * Gradients never materialise per-pixel features: the per-pixel error (p − y)·w_class is
 * scattered back to the four patches with the same bilinear weights (the adjoint of the
 * upsampling), then multiplied by the patch features once per tile: cost K·C·P per tile plus
 * O(K) per pixel, whatever the number of labelled pixels.
 */

/** Bilinear interpolation along one axis: source index pair and the weight of the second. */
export interface AxisInterp {
  i0: Int32Array;
  i1: Int32Array;
  w1: Float64Array;
}

/** ONNX Resize (linear, half_pixel) along one axis: `pixels` outputs from `grid` cells at `scale` pixels per cell. */
export function axisInterp(pixels: number, grid: number, scale: number): AxisInterp {
  const i0 = new Int32Array(pixels);
  const i1 = new Int32Array(pixels);
  const w1 = new Float64Array(pixels);
  for (let x = 0; x < pixels; x++) {
    const s = Math.min(grid - 1, Math.max(0, (x + 0.5) / scale - 0.5));
    const a = Math.min(grid - 1, Math.floor(s));
    i0[x] = a;
    i1[x] = Math.min(grid - 1, a + 1);
    w1[x] = s - a;
  }
  return { i0, i1, w1 };
}

/** One tile of training/validation data: patch features and per-pixel class indexes. */
export interface ProbeTile {
  /** Raw (not standardised) features, channel-major [C, gh, gw]. */
  features: Float32Array;
  gh: number;
  gw: number;
  /** Pixels per patch. */
  patch: number;
  /** Class index per pixel (row-major, gh·patch × gw·patch); `UNLABELLED` where none. */
  labels: Uint8Array;
}

export const UNLABELLED = 255;

/** Weights applied to raw features: logits = W f + b, W [K, C] row-major. */
export interface LinearHead {
  K: number;
  C: number;
  W: Float64Array | Float32Array;
  b: Float64Array | Float32Array;
}

const interpCache = new Map<string, AxisInterp>();
function cachedAxis(pixels: number, grid: number, scale: number): AxisInterp {
  const key = `${pixels}/${grid}/${scale}`;
  let a = interpCache.get(key);
  if (!a) {
    a = axisInterp(pixels, grid, scale);
    if (interpCache.size > 16) interpCache.clear();
    interpCache.set(key, a);
  }
  return a;
}

/** Patch logits [K, P] = W F + b (channels taken four at a time: one pass over the output per four). */
export function patchLogits(head: LinearHead, tile: ProbeTile, out = new Float64Array(head.K * tile.gh * tile.gw)): Float64Array {
  const { K, C, W, b } = head;
  const P = tile.gh * tile.gw;
  const F = tile.features;
  if (F.length !== C * P) throw new Error(`probe: features of ${F.length} values, expected ${C}×${P}`);
  const C4 = C - (C % 4);
  for (let k = 0; k < K; k++) {
    const o = k * P;
    const wk = k * C;
    out.fill(b[k]!, o, o + P);
    for (let c = 0; c < C4; c += 4) {
      const w0 = W[wk + c]!;
      const w1 = W[wk + c + 1]!;
      const w2 = W[wk + c + 2]!;
      const w3 = W[wk + c + 3]!;
      const f0 = c * P;
      const f1 = f0 + P;
      const f2 = f1 + P;
      const f3 = f2 + P;
      for (let p = 0; p < P; p++) out[o + p]! += w0 * F[f0 + p]! + w1 * F[f1 + p]! + w2 * F[f2 + p]! + w3 * F[f3 + p]!;
    }
    for (let c = C4; c < C; c++) {
      const w = W[wk + c]!;
      const f = c * P;
      for (let p = 0; p < P; p++) out[o + p]! += w * F[f + p]!;
    }
  }
  return out;
}

/** [K, P] → [P, K] (pixel loops read the K logits of a patch together). */
function toPatchMajor(L: Float64Array, K: number, P: number): Float64Array {
  const t = new Float64Array(K * P);
  for (let k = 0; k < K; k++) for (let p = 0; p < P; p++) t[p * K + k] = L[k * P + p]!;
  return t;
}

export interface PixelPass {
  /** Σ w_class · (−log p_class) over labelled pixels. */
  loss: number;
  /** Σ w_class. */
  weight: number;
  /** Labelled pixels seen. */
  pixels: number;
}

/**
 * Visit every labelled pixel: interpolate the patch logits (`Lt`, patch-major [P, K]), softmax,
 * and call `visit` with the probabilities. The callback may write `grad` (length K) to have it
 * scattered into `Gt` (patch-major [P, K]) with the same bilinear weights.
 */
function forEachPixel(
  K: number,
  tile: ProbeTile,
  Lt: Float64Array,
  visit: (label: number, prob: Float64Array, grad: Float64Array) => boolean,
  Gt: Float64Array | null,
): void {
  const { gh, gw, patch, labels } = tile;
  const H = gh * patch;
  const Wd = gw * patch;
  const ax = cachedAxis(Wd, gw, patch);
  const ay = cachedAxis(H, gh, patch);
  const prob = new Float64Array(K);
  const grad = new Float64Array(K);
  for (let y = 0; y < H; y++) {
    const wy1 = ay.w1[y]!;
    const wy0 = 1 - wy1;
    const r0 = ay.i0[y]! * gw;
    const r1 = ay.i1[y]! * gw;
    const row = y * Wd;
    for (let x = 0; x < Wd; x++) {
      const label = labels[row + x]!;
      if (label === UNLABELLED) continue;
      const wx1 = ax.w1[x]!;
      const wx0 = 1 - wx1;
      const c0 = ax.i0[x]!;
      const c1 = ax.i1[x]!;
      const a00 = wy0 * wx0;
      const a01 = wy0 * wx1;
      const a10 = wy1 * wx0;
      const a11 = wy1 * wx1;
      const q00 = (r0 + c0) * K;
      const q01 = (r0 + c1) * K;
      const q10 = (r1 + c0) * K;
      const q11 = (r1 + c1) * K;
      let max = -Infinity;
      for (let k = 0; k < K; k++) {
        const v = a00 * Lt[q00 + k]! + a01 * Lt[q01 + k]! + a10 * Lt[q10 + k]! + a11 * Lt[q11 + k]!;
        prob[k] = v;
        if (v > max) max = v;
      }
      let sum = 0;
      for (let k = 0; k < K; k++) {
        const e = Math.exp(prob[k]! - max);
        prob[k] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let k = 0; k < K; k++) prob[k]! *= inv;
      if (visit(label, prob, grad) && Gt) {
        for (let k = 0; k < K; k++) {
          const g = grad[k]!;
          Gt[q00 + k]! += a00 * g;
          Gt[q01 + k]! += a01 * g;
          Gt[q10 + k]! += a10 * g;
          Gt[q11 + k]! += a11 * g;
        }
      }
    }
  }
}

/**
 * Loss and gradient of one tile (added into `gW` [K, C] and `gb` [K]) with respect to the raw
 * weights: d/dW Σ w_y (−log p_y). `classWeights[k]` weighs pixels of class k.
 */
export function tileGradient(head: LinearHead, tile: ProbeTile, classWeights: Float64Array, gW: Float64Array, gb: Float64Array): PixelPass {
  const { K, C } = head;
  const P = tile.gh * tile.gw;
  const Lt = toPatchMajor(patchLogits(head, tile), K, P);
  const Gt = new Float64Array(K * P);
  const r: PixelPass = { loss: 0, weight: 0, pixels: 0 };
  forEachPixel(
    K,
    tile,
    Lt,
    (label, prob, grad) => {
      const w = classWeights[label]!;
      r.pixels++;
      if (w === 0) return false;
      r.loss -= w * Math.log(Math.max(prob[label]!, 1e-300));
      r.weight += w;
      for (let k = 0; k < K; k++) grad[k] = w * (prob[k]! - (k === label ? 1 : 0));
      return true;
    },
    Gt,
  );
  // gW += G Fᵀ, gb += G 1, with G = Gt back in [K, P] order; four channels per pass over G.
  const F = tile.features;
  const C4 = C - (C % 4);
  const G = new Float64Array(P);
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let p = 0; p < P; p++) {
      const v = Gt[p * K + k]!;
      G[p] = v;
      s += v;
    }
    gb[k]! += s;
    const wk = k * C;
    for (let c = 0; c < C4; c += 4) {
      const f0 = c * P;
      const f1 = f0 + P;
      const f2 = f1 + P;
      const f3 = f2 + P;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      for (let p = 0; p < P; p++) {
        const g = G[p]!;
        a0 += g * F[f0 + p]!;
        a1 += g * F[f1 + p]!;
        a2 += g * F[f2 + p]!;
        a3 += g * F[f3 + p]!;
      }
      gW[wk + c]! += a0;
      gW[wk + c + 1]! += a1;
      gW[wk + c + 2]! += a2;
      gW[wk + c + 3]! += a3;
    }
    for (let c = C4; c < C; c++) {
      const f = c * P;
      let acc = 0;
      for (let p = 0; p < P; p++) acc += G[p]! * F[f + p]!;
      gW[wk + c]! += acc;
    }
  }
  return r;
}

/**
 * Evaluate a tile: adds to `confusion` [K_true, K_pred] (row-major) and returns the unweighted
 * cross-entropy. Pixels whose label is ≥ K (classes the head does not have) are skipped.
 */
export function tileConfusion(head: LinearHead, tile: ProbeTile, confusion: Float64Array): PixelPass {
  const K = head.K;
  const Lt = toPatchMajor(patchLogits(head, tile), K, tile.gh * tile.gw);
  const r: PixelPass = { loss: 0, weight: 0, pixels: 0 };
  forEachPixel(
    K,
    tile,
    Lt,
    (label, prob) => {
      if (label >= K) return false;
      let best = 0;
      for (let k = 1; k < K; k++) if (prob[k]! > prob[best]!) best = k;
      confusion[label * K + best]!++;
      r.loss -= Math.log(Math.max(prob[label]!, 1e-300));
      r.weight += 1;
      r.pixels++;
      return false;
    },
    null,
  );
  return r;
}

/** Per-pixel class probabilities of a tile, [K, H, W] (what the ONNX head outputs for it). */
export function tileProbabilities(head: LinearHead, tile: ProbeTile): Float32Array {
  const K = head.K;
  const H = tile.gh * tile.patch;
  const Wd = tile.gw * tile.patch;
  const out = new Float32Array(K * H * Wd);
  const all: ProbeTile = { ...tile, labels: new Uint8Array(H * Wd) };
  const Lt = toPatchMajor(patchLogits(head, tile), K, tile.gh * tile.gw);
  let i = 0;
  forEachPixel(
    K,
    all,
    Lt,
    (_label, prob) => {
      for (let k = 0; k < K; k++) out[k * H * Wd + i] = prob[k]!;
      i++;
      return false;
    },
    null,
  );
  return out;
}

/**
 * The trainable probe: parameters in standardised feature space (θ = (V, c) with
 * logits = V (f − μ)/σ + c), an Adam optimiser, and the fold to raw-feature weights.
 */
export class Probe {
  readonly V: Float64Array;
  readonly c: Float64Array;
  private readonly mV: Float64Array;
  private readonly vV: Float64Array;
  private readonly mc: Float64Array;
  private readonly vc: Float64Array;
  private t = 0;

  constructor(
    readonly K: number,
    readonly C: number,
    readonly mean: Float64Array,
    readonly std: Float64Array,
  ) {
    // Zero initialisation: the optimum of a convex problem does not depend on it, and it makes
    // the result a function of the data order alone.
    this.V = new Float64Array(K * C);
    this.c = new Float64Array(K);
    this.mV = new Float64Array(K * C);
    this.vV = new Float64Array(K * C);
    this.mc = new Float64Array(K);
    this.vc = new Float64Array(K);
  }

  /** Weights on raw features (the exported head, before rounding to float32). */
  raw(): LinearHead {
    const { K, C, V, c, mean, std } = this;
    const W = new Float64Array(K * C);
    const b = new Float64Array(K);
    for (let k = 0; k < K; k++) {
      let s = c[k]!;
      for (let j = 0; j < C; j++) {
        const w = V[k * C + j]! / std[j]!;
        W[k * C + j] = w;
        s -= w * mean[j]!;
      }
      b[k] = s;
    }
    return { K, C, W, b };
  }

  /**
   * Turn raw-weight gradients (Σ over pixels, from tileGradient) into the gradient of
   * mean loss + (l2/2)·|V|² with respect to (V, c), then take one Adam step.
   */
  step(gW: Float64Array, gb: Float64Array, weight: number, lr: number, l2: number): void {
    const { K, C, V, c, mean, std } = this;
    const inv = weight > 0 ? 1 / weight : 0;
    const b1 = 0.9;
    const b2 = 0.999;
    const eps = 1e-8;
    this.t++;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    for (let k = 0; k < K; k++) {
      // d/dV[k,j] of Σ loss: (Σ_p G f_j − μ_j Σ_p G) / σ_j = (gW − μ gb)/σ.
      for (let j = 0; j < C; j++) {
        const i = k * C + j;
        const g = ((gW[i]! - mean[j]! * gb[k]!) / std[j]!) * inv + l2 * V[i]!;
        const m = (this.mV[i] = b1 * this.mV[i]! + (1 - b1) * g);
        const v = (this.vV[i] = b2 * this.vV[i]! + (1 - b2) * g * g);
        V[i]! -= (lr * (m / bc1)) / (Math.sqrt(v / bc2) + eps);
      }
      const g = gb[k]! * inv;
      const m = (this.mc[k] = b1 * this.mc[k]! + (1 - b1) * g);
      const v = (this.vc[k] = b2 * this.vc[k]! + (1 - b2) * g * g);
      c[k]! -= (lr * (m / bc1)) / (Math.sqrt(v / bc2) + eps);
    }
  }
}

/** The raw head rounded to float32, as the ONNX graph stores it. */
export function toFloat32(head: LinearHead): LinearHead & { W: Float32Array; b: Float32Array } {
  return { K: head.K, C: head.C, W: Float32Array.from(head.W), b: Float32Array.from(head.b) };
}
