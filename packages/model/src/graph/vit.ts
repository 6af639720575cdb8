/**
 * The DINOv3 ViT backbone as ONNX (spec §1.2-§1.5).
 *
 * Graph-level choices (all exact rewrites of the reference math, only float rounding differs):
 * - Q, K, V are one MatMul with a [D, 3D] weight; the attention scale D_h^-0.5 is folded into
 *   the Q weight and bias (RoPE is linear, so scaling before or after it is the same).
 * - LayerScale γ is folded into o_proj and the MLP's down projection (x + γ⊙(Wh + b) = x + (γW)h + γb).
 * - RoPE uses tables over the whole sequence (cls/registers: cos 1, sin 0), so there is no
 *   slicing of the prefix tokens.
 * - SwiGLU's gate and up projections are one MatMul with a [D, 2F] weight.
 */
import { attr } from '../onnx/graph.js';
import type { BackboneSpec } from '../arch.js';
import { BuildContext, transpose2d } from './context.js';
import { ropeValues } from './rope.js';

const f = Math.fround;

export interface BackboneValues {
  /** After the selected blocks, normalised: [B, N, D] fp32, in outIndices order. */
  hidden: string[];
  /** int64 [2] = [Hp, Wp] (built on first use). */
  gridHW: () => string;
  /** Static grid when the input size is fixed. */
  grid: { hp: number; wp: number } | null;
  /** Patch-embedding output [B, D, Hp, Wp] (its shape is the feature-map shape). */
  patchEmbed: string;
  prefix: number;
}

export function buildBackbone(ctx: BuildContext, b: BackboneSpec, pixelValues: string): BackboneValues {
  const g = ctx.g;
  const D = b.hiddenSize;
  const H = b.heads;
  const Dh = b.headDim;
  const F = b.intermediateSize;
  const prefix = 1 + b.registers;
  const fixed = ctx.opts.fixedSize;
  const grid = fixed ? { hp: fixed[0] / b.patchSize, wp: fixed[1] / b.patchSize } : null;

  // 1. Patch embedding: Conv k=s=patch, flattened row-major to [B, P, D].
  const pe = ctx.conv(ctx.toDt(pixelValues), ctx.tensor('backbone.embeddings.patch_embeddings.weight'), ctx.tensor('backbone.embeddings.patch_embeddings.bias'), {
    kernel: b.patchSize,
    stride: b.patchSize,
  });
  const tokens = ctx.toF32(g.op1('Transpose', [g.op1('Reshape', [pe, g.constI64([0, D, -1])])], { perm: attr.ints([0, 2, 1]) }));
  let gridHWValue: string | undefined;
  const gridHW = (): string => (gridHWValue ??= g.op1('Shape', [pe], { start: attr.i(2), end: attr.i(4) }));

  // 2. Prepend cls and register tokens (mask token: no effect at inference).
  const prefixTokens = ctx.weight('backbone.prefix_tokens', [1, prefix, D], async () => {
    const out = new Float32Array(prefix * D);
    out.set(await ctx.W.read('backbone.embeddings.cls_token'), 0);
    if (b.registers > 0) out.set(await ctx.W.read('backbone.embeddings.register_tokens'), D);
    return out;
  }, true);
  const batch = g.op1('Shape', [pixelValues], { start: attr.i(0), end: attr.i(1) });
  const prefixB = g.op1('Expand', [prefixTokens, g.op1('Concat', [batch, g.constI64([prefix, D])], { axis: attr.i(0) })]);
  let x = g.op1('Concat', [prefixB, tokens], { axis: attr.i(1) }); // [B, N, D] fp32 residual stream

  // RoPE tables [N, Dh].
  const rope = ropeValues(ctx, Dh, b.ropeTheta, prefix, grid, gridHW);
  const useMha = ctx.opts.attention === 'mha';
  const ropeCos = useMha ? g.op1('Reshape', [rope.cos, g.constI64([-1, 1, 1, Dh])]) : rope.cos;
  const ropeSin = useMha ? g.op1('Reshape', [rope.sinSigned, g.constI64([-1, 1, 1, Dh])]) : rope.sinSigned;
  const scale = f(Dh ** -0.5);

  const wanted = new Set(b.outIndices);
  const states = new Map<number, string>();
  if (wanted.has(0)) states.set(0, x);

  for (let i = 0; i < b.layers; i++) {
    const L = `backbone.layer.${i}.`;
    // --- attention ---
    const h = ctx.toDt(ctx.layerNorm(x, L + 'norm1', b.layerNormEps));
    const hasQkvBias = b.queryBias || b.keyBias || b.valueBias;
    const qkv = ctx.linear(
      h,
      `${L}attention.qkv`,
      D,
      3 * D,
      async () => {
        const out = new Float32Array(D * 3 * D);
        const parts = ['q', 'k', 'v'] as const;
        for (let p = 0; p < 3; p++) {
          const w = await ctx.W.read(`${L}attention.${parts[p]}_proj.weight`); // [out D, in D]
          const s = p === 0 ? scale : 1;
          for (let o = 0; o < D; o++) {
            for (let k = 0; k < D; k++) out[k * 3 * D + p * D + o] = s === 1 ? w[o * D + k]! : w[o * D + k]! * s;
          }
        }
        return out;
      },
      hasQkvBias
        ? async () => {
            const out = new Float32Array(3 * D);
            if (b.queryBias) out.set((await ctx.W.read(`${L}attention.q_proj.bias`)).map((v) => v * scale), 0);
            if (b.keyBias) out.set(await ctx.W.read(`${L}attention.k_proj.bias`), D);
            if (b.valueBias) out.set(await ctx.W.read(`${L}attention.v_proj.bias`), 2 * D);
            return out;
          }
        : undefined,
    );
    let attnOut: string;
    if (useMha) {
      const qkv5 = g.op1('Reshape', [qkv, g.constI64([0, 0, 3, H, Dh])]); // [B, N, 3, H, Dh]
      const [qk, v] = g.op(
        'Split',
        [qkv5, g.constI64([2, 1])],
        { axis: attr.i(2) },
        { outputs: 2 },
      ) as [string, string];
      const qkR = applyRope(ctx, qk, ropeCos, ropeSin, Dh);
      const [q, k] = g.op('Split', [qkR, g.constI64([1, 1])], { axis: attr.i(2) }, { outputs: 2 }) as [string, string];
      const toBND = g.constI64([0, 0, D]);
      const qf = g.op1('Reshape', [q, toBND]);
      const kf = g.op1('Reshape', [k, toBND]);
      const vf = g.op1('Reshape', [v, toBND]);
      attnOut = g.op1('MultiHeadAttention', [qf, kf, vf], { num_heads: attr.i(H), scale: attr.f(1) }, { domain: 'com.microsoft' });
    } else {
      const qkv5 = g.op1('Reshape', [qkv, g.constI64([0, 0, 3, H, Dh])]);
      const t = g.op1('Transpose', [qkv5], { perm: attr.ints([2, 0, 3, 1, 4]) }); // [3, B, H, N, Dh]
      const [qk, v5] = g.op('Split', [t, g.constI64([2, 1])], { axis: attr.i(0) }, { outputs: 2 }) as [string, string];
      const qkR = applyRope(ctx, qk, ropeCos, ropeSin, Dh); // [2, B, H, N, Dh]
      const [q5, k5] = g.op('Split', [qkR, g.constI64([1, 1])], { axis: attr.i(0) }, { outputs: 2 }) as [string, string];
      const ax0 = g.constI64([0]);
      const q = g.op1('Squeeze', [q5, ax0]);
      const k = g.op1('Squeeze', [k5, ax0]);
      const v = g.op1('Squeeze', [v5, ax0]);
      const kT = g.op1('Transpose', [k], { perm: attr.ints([0, 1, 3, 2]) });
      const scores = g.op1('MatMul', [q, kT]); // [B, H, N, N]
      const probs = ctx.toDt(g.op1('Softmax', [ctx.toF32(scores)], { axis: attr.i(-1) }));
      const o = g.op1('MatMul', [probs, v]); // [B, H, N, Dh]
      attnOut = g.op1('Reshape', [g.op1('Transpose', [o], { perm: attr.ints([0, 2, 1, 3]) }), g.constI64([0, 0, D])]);
    }
    // o_proj with LayerScale γ1 folded in.
    const o = ctx.linear(
      attnOut,
      `${L}attention.o_proj_ls`,
      D,
      D,
      scaledWeight(ctx, `${L}attention.o_proj.weight`, `${L}layer_scale1.lambda1`, D, D),
      b.projBias ? scaledBias(ctx, `${L}attention.o_proj.bias`, `${L}layer_scale1.lambda1`) : undefined,
    );
    x = g.op1('Add', [x, ctx.toF32(o)]);

    // --- MLP ---
    const h2 = ctx.toDt(ctx.layerNorm(x, L + 'norm2', b.layerNormEps));
    let act: string;
    if (b.gatedMlp) {
      const gu = ctx.linear(
        h2,
        `${L}mlp.gate_up`,
        D,
        2 * F,
        async () => {
          const out = new Float32Array(D * 2 * F);
          const wg = await ctx.W.read(`${L}mlp.gate_proj.weight`); // [F, D]
          const wu = await ctx.W.read(`${L}mlp.up_proj.weight`);
          for (let k = 0; k < D; k++) {
            for (let j = 0; j < F; j++) {
              out[k * 2 * F + j] = wg[j * D + k]!;
              out[k * 2 * F + F + j] = wu[j * D + k]!;
            }
          }
          return out;
        },
        b.mlpBias
          ? async () => {
              const out = new Float32Array(2 * F);
              out.set(await ctx.W.read(`${L}mlp.gate_proj.bias`), 0);
              out.set(await ctx.W.read(`${L}mlp.up_proj.bias`), F);
              return out;
            }
          : undefined,
      );
      const [gate, up] = g.op('Split', [gu, g.constI64([F, F])], { axis: attr.i(-1) }, { outputs: 2 }) as [string, string];
      const gate32 = ctx.toF32(gate);
      const a =
        b.hiddenAct === 'silu'
          ? g.op1('Mul', [gate32, g.op1('Sigmoid', [gate32])])
          : g.op1('Gelu', [gate32], { approximate: attr.s('none') });
      act = g.op1('Mul', [ctx.toDt(a), up]);
    } else {
      const u = ctx.linear(
        h2,
        `${L}mlp.up_proj_t`,
        D,
        F,
        async () => transpose2d(await ctx.W.read(`${L}mlp.up_proj.weight`), F, D),
        b.mlpBias ? () => ctx.W.read(`${L}mlp.up_proj.bias`) : undefined,
      );
      act =
        b.hiddenAct === 'gelu'
          ? ctx.gelu(u)
          : ctx.toDt(g.op1('Mul', [ctx.toF32(u), g.op1('Sigmoid', [ctx.toF32(u)])]));
    }
    // down projection with LayerScale γ2 folded in.
    const m = ctx.linear(
      act,
      `${L}mlp.down_proj_ls`,
      F,
      D,
      scaledWeight(ctx, `${L}mlp.down_proj.weight`, `${L}layer_scale2.lambda1`, D, F),
      b.mlpBias ? scaledBias(ctx, `${L}mlp.down_proj.bias`, `${L}layer_scale2.lambda1`) : undefined,
    );
    x = g.op1('Add', [x, ctx.toF32(m)]);
    if (wanted.has(i + 1)) states.set(i + 1, x);
  }

  // Final norm on each selected output (always on the last block's output, as transformers does).
  const normed = new Map<number, string>();
  const hidden = b.outIndices.map((idx) => {
    const hit = normed.get(idx);
    if (hit) return hit;
    const s = states.get(idx)!;
    const y = b.applyLayernorm || idx === b.layers ? ctx.layerNorm(s, 'backbone.norm', b.layerNormEps) : s;
    normed.set(idx, y);
    return y;
  });
  return { hidden, gridHW, grid, patchEmbed: pe, prefix };
}

/** A Linear weight stored [out, in], as [in, out] with output column j scaled by γ_j (LayerScale folded in). */
function scaledWeight(ctx: BuildContext, weight: string, gamma: string, outDim: number, inDim: number): () => Promise<Float32Array> {
  return async () => {
    const t = transpose2d(await ctx.W.read(weight), outDim, inDim);
    const gm = await ctx.W.read(gamma);
    for (let k = 0; k < inDim; k++) for (let j = 0; j < outDim; j++) t[k * outDim + j] = t[k * outDim + j]! * gm[j]!;
    return t;
  };
}

/** A Linear bias scaled by γ (LayerScale folded in). */
function scaledBias(ctx: BuildContext, bias: string, gamma: string): () => Promise<Float32Array> {
  return async () => {
    const gm = await ctx.W.read(gamma);
    return (await ctx.W.read(bias)).map((v, j) => v * gm[j]!);
  };
}

/** qk' = qk·cos + swapHalves(qk)·sinSigned, in fp32; returns the compute type. */
function applyRope(ctx: BuildContext, qk: string, cos: string, sinSigned: string, Dh: number): string {
  const g = ctx.g;
  const x = ctx.toF32(qk);
  const [a, b] = g.op('Split', [x, g.constI64([Dh / 2, Dh / 2])], { axis: attr.i(-1) }, { outputs: 2 }) as [string, string];
  const swapped = g.op1('Concat', [b, a], { axis: attr.i(-1) });
  const y = g.op1('Add', [g.op1('Mul', [x, cos]), g.op1('Mul', [swapped, sinSigned])]);
  return ctx.toDt(y);
}
