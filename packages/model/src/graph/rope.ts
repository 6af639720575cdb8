/**
 * DINOv3's 2-D axial RoPE (spec §1.3), as sin/cos tables over the whole token sequence.
 *
 * periods[i] = θ^(4i/D_h) for i < D_h/4 (transformers stores the reciprocal, `inv_freq`).
 * Patch (r, c) of an Hp×Wp grid has y = 2(r+0.5)/Hp − 1 and x = 2(c+0.5)/Wp − 1 (each axis
 * normalised by its own length). Angles [D_h] = [2πy·inv_freq, 2πx·inv_freq, 2πy·inv_freq, 2πx·inv_freq];
 * rotation is rotate-half: v' = v·cos + concat(−v[h:], v[:h])·sin. geo-dino folds the sign into
 * the table (`sinSigned` = sin with its first half negated) so rotate-half becomes a plain swap
 * of halves, and prepends rows (cos 1, sin 0) for the cls and register tokens, which RoPE leaves
 * unchanged. Arithmetic follows transformers' fp32 order of operations.
 */
import { attr } from '../onnx/graph.js';
import type { BuildContext } from './context.js';

const f = Math.fround;

/** transformers' `inv_freq = 1 / base ** arange(0, 1, 4/head_dim)` in fp32. */
export function ropeInvFreq(headDim: number, theta: number): Float32Array {
  const n = headDim / 4;
  const step = f(4 / headDim);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = f(1 / f(Math.pow(theta, f(i * step))));
  return out;
}

/** Patch-centre coordinates along one axis of length n, in [-1, 1] (fp32 as in transformers). */
export function ropeCoords(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = f(f(2 * f(f(i + 0.5) / n)) - 1);
  return out;
}

export const TWO_PI_F32 = f(2 * Math.PI);

export interface RopeTables {
  /** [prefix + Hp·Wp, headDim] */
  cos: Float32Array;
  /** [prefix + Hp·Wp, headDim], first half negated. */
  sinSigned: Float32Array;
  /** The plain sin table for patch tokens only [Hp·Wp, headDim] (for checks against the reference). */
  sin: Float32Array;
}

/** The tables for a fixed grid. */
export function ropeTables(hp: number, wp: number, headDim: number, theta: number, prefix: number): RopeTables {
  const inv = ropeInvFreq(headDim, theta);
  const q = headDim / 4;
  const cy = ropeCoords(hp);
  const cx = ropeCoords(wp);
  const P = hp * wp;
  const N = prefix + P;
  const cos = new Float32Array(N * headDim);
  const sinSigned = new Float32Array(N * headDim);
  const sin = new Float32Array(P * headDim);
  for (let t = 0; t < prefix; t++) cos.fill(1, t * headDim, (t + 1) * headDim);
  const ang = new Float32Array(headDim);
  for (let r = 0; r < hp; r++) {
    const ay = f(cy[r]! * TWO_PI_F32);
    for (let c = 0; c < wp; c++) {
      const ax = f(cx[c]! * TWO_PI_F32);
      for (let i = 0; i < q; i++) {
        ang[i] = f(ay * inv[i]!);
        ang[q + i] = f(ax * inv[i]!);
      }
      ang.copyWithin(2 * q, 0, 2 * q);
      const p = r * wp + c;
      const row = (prefix + p) * headDim;
      for (let j = 0; j < headDim; j++) {
        const s = Math.sin(ang[j]!);
        cos[row + j] = Math.cos(ang[j]!);
        sin[p * headDim + j] = s;
        sinSigned[row + j] = j < headDim / 2 ? -s : s;
      }
    }
  }
  return { cos, sinSigned, sin };
}

/**
 * The tables as graph values [N, D_h], baked for a fixed grid or
 * computed in the graph from the patch grid's shape (`gridHW`: int64 [2] = [Hp, Wp]).
 */
export function ropeValues(
  ctx: BuildContext,
  headDim: number,
  theta: number,
  prefix: number,
  fixed: { hp: number; wp: number } | null,
  gridHW: () => string,
): { cos: string; sinSigned: string } {
  const g = ctx.g;
  if (fixed) {
    const t = ropeTables(fixed.hp, fixed.wp, headDim, theta, prefix);
    const N = prefix + fixed.hp * fixed.wp;
    return { cos: g.constF32(t.cos, [N, headDim], 'rope_cos'), sinSigned: g.constF32(t.sinSigned, [N, headDim], 'rope_sin_signed') };
  }
  const q = headDim / 4;
  const inv = g.constF32(ropeInvFreq(headDim, theta), [1, q], 'rope_inv_freq');
  const hw = gridHW();
  const hwF = g.op1('Cast', [hw], { to: attr.i(1) });
  const axis = (idx: number): { coordsAng: string; n: string } => {
    const nF = g.op1('Gather', [hwF, g.constI64([idx], [])], { axis: attr.i(0) });
    const r = g.op1('Range', [g.constF32([0.5], []), nF, g.constF32([1], [])]);
    const c = g.op1('Sub', [g.op1('Mul', [g.op1('Div', [r, nF]), g.constF32([2], [])]), g.constF32([1], [])]);
    // (c · 2π) · inv_freq, [n, q]
    const a = g.op1('Mul', [g.op1('Unsqueeze', [g.op1('Mul', [c, g.constF32([TWO_PI_F32], [])]), g.constI64([1])]), inv]);
    const n = g.op1('Gather', [hw, g.constI64([idx], [])], { axis: attr.i(0) });
    return { coordsAng: a, n };
  };
  const y = axis(0);
  const x = axis(1);
  const shape = g.op1('Concat', [g.op1('Unsqueeze', [y.n, g.constI64([0])]), g.op1('Unsqueeze', [x.n, g.constI64([0])]), g.constI64([q])], { axis: attr.i(0) });
  const ay = g.op1('Expand', [g.op1('Unsqueeze', [y.coordsAng, g.constI64([1])]), shape]); // [Hp, Wp, q]
  const ax = g.op1('Expand', [g.op1('Unsqueeze', [x.coordsAng, g.constI64([0])]), shape]);
  const ang = g.op1('Concat', [ay, ax, ay, ax], { axis: attr.i(-1) }); // [Hp, Wp, D_h]
  const flat = g.op1('Reshape', [ang, g.constI64([-1, headDim])]);
  const cosP = g.op1('Cos', [flat]);
  const sinP = g.op1('Mul', [g.op1('Sin', [flat]), g.constF32(Array.from({ length: headDim }, (_, j) => (j < headDim / 2 ? -1 : 1)), [1, headDim])]);
  const ones = g.constF32(new Float32Array(prefix * headDim).fill(1), [prefix, headDim], 'rope_prefix_cos');
  const zeros = g.constF32(new Float32Array(prefix * headDim), [prefix, headDim], 'rope_prefix_sin');
  return {
    cos: g.op1('Concat', [ones, cosP], { axis: attr.i(0) }),
    sinSigned: g.op1('Concat', [zeros, sinP], { axis: attr.i(0) }),
  };
}
