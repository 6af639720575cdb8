/**
 * The CHMv2 DPT head as ONNX (spec §4), ending in canopy height and its uncertainty (metres).
 *
 * Exact rewrites of the reference (only float rounding differs):
 * - Readout "project": concat([patch, cls]) · Wᵀ = patch · W_aᵀ + cls · W_bᵀ, so the [P, 2D]
 *   concat is never materialised; the 1×1 projection runs as a MatMul on the token layout.
 * - In each fusion block, the 1×1 projection is moved before the ×2 bilinear upsample (both are
 *   linear, the upsample's weights sum to one), so it runs on 4× fewer pixels.
 * - The mix-log bin reduction (§4.4) is one 1×1 Conv with four output channels after the ReLU:
 *   S0 = Σ(y+s), S1 = Σ(y+s)·b, T1 = Σ(y+s)·(b−c), T2 = Σ(y+s)·(b−c)² with s = 1e-8 (the
 *   reference's shift; its amin clamp is dead code because y ≥ 0). Height = 8·S1/S0, and the
 *   uncertainty (geo-dino's own output, not in the reference) is the standard deviation of the
 *   same normalised bin distribution, 8·sqrt(T2/S0 − (T1/S0)²), computed about c = 3 (24 m) to
 *   limit fp32 cancellation.
 */
import { attr } from '../onnx/graph.js';
import type { ChmHeadSpec } from '../arch.js';
import { BuildContext, transpose2d } from './context.js';

const f = Math.fround;

/** The uncertainty's moments are taken about this bin value (before the ×8). */
export const MOMENT_CENTRE = 3;
/** The reference's additive shift on the ReLU'd logits. */
export const MIXLOG_SHIFT = f(1e-8);

/** torch.linspace in fp32 (start + i·step for the first half, end − (n−1−i)·step for the rest). */
function linspaceF32(start: number, end: number, n: number): Float32Array {
  const s = f(start);
  const e = f(end);
  const step = f(f(e - s) / (n - 1));
  const out = new Float32Array(n);
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? f(s + f(step * i)) : f(e - f(step * (n - 1 - i)));
  return out;
}

/** The CHMv2 mix-log bins (before the ×8), as transformers computes them in fp32. */
export function mixlogBins(n: number, minDepth: number, maxDepth: number): Float32Array {
  const M = maxDepth / 8;
  const lin = linspaceF32(minDepth, M, n);
  const logs = linspaceF32(f(Math.log(f(minDepth))), f(Math.log(f(M))), n);
  const t = linspaceF32(1, 0, n);
  const out = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const lg = f(Math.exp(logs[k]!));
    out[k] = f(f(t[k]! * lg) + f(f(1 - t[k]!) * lin[k]!));
  }
  return out;
}

export interface HeadInputs {
  /** Patch tokens [B, P, D] (fp32), one per feature level. */
  tokens: string[];
  /** cls tokens [B, D] (fp32). */
  cls: string[];
  /** int64 [2] = [Hp, Wp]. */
  gridHW: () => string;
  grid: { hp: number; wp: number } | null;
}

interface Spatial {
  v: string;
  c: number;
  h: number | null;
  w: number | null;
}

export function buildChmHead(ctx: BuildContext, h: ChmHeadSpec, D: number, inp: HeadInputs): { height: string; std: string; outH: number | null; outW: number | null } {
  const g = ctx.g;
  const F = h.fusionHiddenSize;
  const grid = inp.grid;

  const up2 = (x: Spatial): Spatial => {
    const sizes = g.op1('Mul', [g.op1('Shape', [x.v]), g.constI64([1, 1, 2, 2])]);
    return { v: ctx.resize(x.v, sizes, 'align_corners'), c: x.c, h: x.h === null ? null : 2 * x.h, w: x.w === null ? null : 2 * x.w };
  };
  const conv = (x: Spatial, name: string, out: number, kernel: number, bias: boolean, stride = 1): Spatial => {
    const pad = kernel === 3 ? 1 : 0;
    const v = ctx.conv(x.v, ctx.tensor(`${name}.weight`), bias ? ctx.tensor(`${name}.bias`) : undefined, { kernel, stride, pad });
    const dim = (s: number | null): number | null => (s === null ? null : Math.floor((s + 2 * pad - kernel) / stride) + 1);
    return { v, c: out, h: dim(x.h), w: dim(x.w) };
  };
  const relu = (x: Spatial): Spatial => ({ ...x, v: g.op1('Relu', [x.v]) });
  const add = (a: Spatial, b: Spatial): Spatial => ({ ...a, v: g.op1('Add', [a.v, b.v]) });
  const rcu = (x: Spatial, name: string): Spatial =>
    add(conv(relu(conv(relu(x), `${name}.convolution1`, F, 3, true)), `${name}.convolution2`, F, 3, true), x);

  // (a)-(e) Reassemble: readout, 1×1 projection, resize, 3×3 conv to F channels.
  const levels: Spatial[] = [];
  for (let k = 0; k < 4; k++) {
    const C = h.postProcessChannels[k]!;
    const R = `head.reassemble_stage.`;
    const tok = ctx.toDt(inp.tokens[k]!);
    let z: string;
    if (h.readoutType === 'project') {
      const name = `${R}readout_projects.${k}.0`;
      const half = (offset: number) => async (): Promise<Float32Array> => {
        const w = await ctx.W.read(`${name}.weight`); // [D, 2D]
        const out = new Float32Array(D * D);
        for (let o = 0; o < D; o++) for (let i = 0; i < D; i++) out[i * D + o] = w[o * 2 * D + offset + i]!;
        return out;
      };
      const c = ctx.linear(ctx.toDt(inp.cls[k]!), `${name}.weight_cls`, D, D, half(D), () => ctx.W.read(`${name}.bias`));
      z = ctx.gelu(g.op1('Add', [ctx.linear(tok, `${name}.weight_patch`, D, D, half(0)), g.op1('Unsqueeze', [c, g.constI64([1])])]));
    } else if (h.readoutType === 'add') {
      z = g.op1('Add', [tok, g.op1('Unsqueeze', [ctx.toDt(inp.cls[k]!), g.constI64([1])])]);
    } else {
      z = tok;
    }
    const pname = `${R}layers.${k}.projection`;
    const y = ctx.linear(z, `${pname}.weight_t`, D, C, async () => transpose2d(await ctx.W.read(`${pname}.weight`), C, D), () => ctx.W.read(`${pname}.bias`)); // [B, P, C]
    const shape = grid
      ? g.constI64([0, C, grid.hp, grid.wp])
      : g.op1('Concat', [g.constI64([0, C]), inp.gridHW()], { axis: attr.i(0) });
    let x: Spatial = {
      v: g.op1('Reshape', [g.op1('Transpose', [y], { perm: attr.ints([0, 2, 1]) }), shape]),
      c: C,
      h: grid?.hp ?? null,
      w: grid?.wp ?? null,
    };
    const fac = h.reassembleFactors[k]!;
    const rname = `${R}layers.${k}.resize`;
    if (fac > 1) {
      x = {
        v: ctx.conv(x.v, ctx.tensor(`${rname}.weight`), ctx.tensor(`${rname}.bias`), { kernel: fac, stride: fac, transpose: true }),
        c: C,
        h: x.h === null ? null : x.h * fac,
        w: x.w === null ? null : x.w * fac,
      };
    } else if (fac < 1) {
      x = conv(x, rname, C, 3, true, Math.round(1 / fac));
    }
    levels.push(conv(x, `head.convs.${k}`, F, 3, false));
  }

  // (f) Fusion, coarse to fine.
  const feats = [...levels].reverse();
  let out: Spatial | undefined;
  for (let j = 0; j < 4; j++) {
    const P = `head.fusion_layers.${j}`;
    if (j === 0) {
      out = feats[0]!;
    } else {
      let lat = feats[j]!;
      const same = out!.h !== null && out!.w !== null && lat.h === out!.h && lat.w === out!.w;
      if (!same) {
        // Odd grids (spec §4.5): the lateral map is resized to the coarse path's size (half-pixel).
        // With dynamic sizes this is an exact identity when the sizes already match.
        lat = { ...lat, v: ctx.resize(lat.v, g.op1('Shape', [out!.v]), 'half_pixel'), h: out!.h, w: out!.w };
      }
      out = add(out!, rcu(lat, `${P}.residual_layer1`));
    }
    out = rcu(out, `${P}.residual_layer2`);
    out = up2(conv(out, `${P}.projection`, F, 1, true));
  }

  // (h) conv_depth: 3×3 → ×2 → 3×3 + ReLU → 1×1 to the bins.
  let y = conv(out!, 'head.conv_depth.head.0', F / 2, 3, true);
  y = up2(y);
  y = relu(conv(y, 'head.conv_depth.head.2', h.headHiddenSize, 3, true));
  const logits = conv(y, 'head.conv_depth.head.4', h.bins, 1, true);

  // (i) Bins: ReLU, then the four moments in one 1×1 conv (fp32).
  const bins = mixlogBins(h.bins, h.minDepth, h.maxDepth);
  const K = h.bins;
  const wm = new Float32Array(4 * K);
  let sumB = 0;
  let sumC = 0;
  let sumC2 = 0;
  for (let k = 0; k < K; k++) {
    const b = Math.max(bins[k]!, 1e-12);
    const c = b - MOMENT_CENTRE;
    wm[k] = 1;
    wm[K + k] = b;
    wm[2 * K + k] = c;
    wm[3 * K + k] = c * c;
    sumB += b;
    sumC += c;
    sumC2 += c * c;
  }
  const s = MIXLOG_SHIFT;
  const bm = [K * s, s * sumB, s * sumC, s * sumC2];
  const yPos = g.op1('Relu', [ctx.toF32(logits.v)]);
  const mom = ctx.conv(yPos, g.constF32(wm, [4, K, 1, 1], 'bins_moments'), g.constF32(bm, [4], 'bins_moments_shift'), { kernel: 1 });
  const [s0, s1, t1, t2] = g.op('Split', [mom, g.constI64([1, 1, 1, 1])], { axis: attr.i(1) }, { outputs: 4 }) as [string, string, string, string];
  const eight = g.constF32([8], []);
  const height = g.op1('Mul', [g.op1('Div', [s1, s0]), eight]);
  const m1 = g.op1('Div', [t1, s0]);
  const variance = g.op1('Sub', [g.op1('Div', [t2, s0]), g.op1('Mul', [m1, m1])]);
  const std = g.op1('Mul', [g.op1('Sqrt', [g.op1('Relu', [variance])]), eight]);
  const sq = g.constI64([1]);
  return { height: g.op1('Squeeze', [height, sq]), std: g.op1('Squeeze', [std, sq]), outH: logits.h, outW: logits.w };
}
