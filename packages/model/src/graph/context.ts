/**
 * Shared machinery for building the model graphs: precision handling (fp32, or fp16 weights and
 * activations with LayerNorm, Softmax, GELU, RoPE, the residual stream and the bin reduction kept
 * in fp32), lazily produced weight initializers, and the few composite ops every graph uses.
 */
import { Graph, attr, lazyBytes, type DType } from '../onnx/graph.js';
import { float32ToHalfArray } from '../half.js';
import { bytesOf } from '../safetensors.js';
import type { ResolvedWeights } from '../weights.js';

export type ModelDtype = 'fp32' | 'fp16' | 'int8';
export type AttentionImpl = 'matmul' | 'mha';

export interface GraphOptions {
  dtype: ModelDtype;
  /** Fixed input [H, W] in pixels, or null for dynamic height/width (multiples of the patch size). */
  fixedSize: [number, number] | null;
  /** Attention kernel: plain MatMul/Softmax/MatMul, or onnxruntime's fused com.microsoft.MultiHeadAttention. */
  attention: AttentionImpl;
}

/** A static size when known (fixed-size builds), else null. */
export interface Grid {
  h: number | null;
  w: number | null;
}

export class BuildContext {
  readonly g: Graph;
  readonly W: ResolvedWeights;
  readonly opts: GraphOptions;
  /** Element type of weights and activations in the compute path. */
  readonly dt: DType;
  private readonly weights = new Map<string, string>();

  constructor(g: Graph, W: ResolvedWeights, opts: GraphOptions) {
    this.g = g;
    this.W = W;
    this.opts = opts;
    this.dt = opts.dtype === 'fp16' ? 'float16' : 'float32';
  }

  get int8(): boolean {
    return this.opts.dtype === 'int8';
  }

  /**
   * y = x · W + b for a weight laid out [K, N] (produced when the model is written). In int8
   * builds W is quantised symmetrically per output column and the product runs as onnxruntime's
   * DynamicQuantizeMatMul (activations quantised on the fly); otherwise MatMul + Add.
   */
  linear(x: string, name: string, K: number, N: number, produceW: () => Promise<Float32Array>, produceB?: () => Promise<Float32Array>): string {
    const g = this.g;
    if (!this.int8) {
      const y = g.op1('MatMul', [x, this.weight(name, [K, N], produceW)]);
      return produceB ? g.op1('Add', [y, this.weight(`${name}.bias`, [N], produceB)]) : y;
    }
    // One quantisation shared by the two initializers that need it (int8 values, scales).
    let pending: Promise<{ q: Int8Array; scale: Float32Array }> | undefined;
    let uses = 0;
    const quantised = (): Promise<{ q: Int8Array; scale: Float32Array }> => {
      pending ??= produceW().then((w) => quantizePerColumn(w, K, N));
      const p = pending;
      if (++uses === 2) pending = undefined;
      return p;
    };
    const q = g.initializer(`${name}.int8`, 'int8', [K, N], lazyBytes(K * N, async () => bytesOf((await quantised()).q)));
    const scale = g.initializer(`${name}.scale`, 'float32', [N], lazyBytes(4 * N, async () => bytesOf((await quantised()).scale)));
    const bias = produceB ? this.weight(`${name}.bias`, [N], produceB, true) : '';
    return g.op1('DynamicQuantizeMatMul', bias ? [x, q, scale, '', bias] : [x, q, scale], {}, { domain: 'com.microsoft' });
  }

  get fp16(): boolean {
    return this.dt === 'float16';
  }

  /** Cast to fp32 (no-op in fp32 builds). */
  toF32(x: string): string {
    return this.fp16 ? this.g.op1('Cast', [x], { to: attr.i(1) }) : x;
  }

  /** Cast to the compute type (no-op in fp32 builds). */
  toDt(x: string): string {
    return this.fp16 ? this.g.op1('Cast', [x], { to: attr.i(10) }) : x;
  }

  /**
   * An initializer whose float32 values are computed when the model is written (so only one
   * tensor is in memory at a time). `keepF32` keeps it fp32 in fp16 builds.
   */
  weight(name: string, dims: number[], produce: () => Promise<Float32Array>, keepF32 = false): string {
    const n = dims.reduce((a, b) => a * b, 1);
    const dtype: DType = keepF32 ? 'float32' : this.dt;
    // In fp16 builds a tensor may be wanted in both precisions: keep the fp32 copy's name apart.
    if (keepF32 && this.fp16) name = `${name}.f32`;
    const hit = this.weights.get(name);
    if (hit) return hit;
    this.weights.set(name, name);
    const bytes = n * (dtype === 'float16' ? 2 : 4);
    return this.g.initializer(
      name,
      dtype,
      dims,
      lazyBytes(bytes, async () => {
        const v = await produce();
        if (v.length !== n) throw new Error(`weight ${name}: produced ${v.length} values, expected ${n}`);
        return dtype === 'float16' ? bytesOf(float32ToHalfArray(v)) : bytesOf(v);
      }),
    );
  }

  /** A checkpoint tensor as stored (shape from the checkpoint). */
  tensor(canonical: string, keepF32 = false, transform?: (v: Float32Array) => Float32Array): string {
    const shape = this.W.expected.get(canonical)!.shape;
    return this.weight(canonical, shape, async () => {
      const v = await this.W.read(canonical);
      return transform ? transform(v) : v;
    }, keepF32);
  }

  /** LayerNormalization over the last axis, in fp32; returns fp32. */
  layerNorm(x32: string, prefix: string, eps: number): string {
    const w = this.tensor(`${prefix}.weight`, true);
    const b = this.tensor(`${prefix}.bias`, true);
    return this.g.op1('LayerNormalization', [x32, w, b], { axis: attr.i(-1), epsilon: attr.f(eps) });
  }

  /** Exact (erf) GELU in fp32; input and output in the compute type. */
  gelu(x: string): string {
    const y = this.g.op1('Gelu', [this.toF32(x)], { approximate: attr.s('none') });
    return this.toDt(y);
  }

  conv(
    x: string,
    w: string,
    b: string | undefined,
    o: { kernel: number; stride?: number; pad?: number; transpose?: boolean },
  ): string {
    const stride = o.stride ?? 1;
    const pad = o.pad ?? 0;
    const attrs = {
      kernel_shape: attr.ints([o.kernel, o.kernel]),
      strides: attr.ints([stride, stride]),
      pads: attr.ints([pad, pad, pad, pad]),
      dilations: attr.ints([1, 1]),
    };
    return this.g.op1(o.transpose ? 'ConvTranspose' : 'Conv', b ? [x, w, b] : [x, w], attrs);
  }

  /** Bilinear resize to explicit `sizes` ([N,C,H,W] int64 value), with the given coordinate mode. */
  resize(x: string, sizes: string, mode: 'align_corners' | 'half_pixel'): string {
    return this.g.op1('Resize', [x, '', '', sizes], {
      mode: attr.s('linear'),
      coordinate_transformation_mode: attr.s(mode),
    });
  }
}

/** Symmetric per-column int8 quantisation of a [K, N] matrix: W ≈ q · scale[n]. */
export function quantizePerColumn(w: Float32Array, K: number, N: number): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) scale[n] = Math.max(scale[n]!, Math.abs(w[k * N + n]!));
  for (let n = 0; n < N; n++) scale[n] = scale[n]! > 0 ? scale[n]! / 127 : 1;
  const q = new Int8Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) q[k * N + n] = Math.max(-127, Math.min(127, Math.round(w[k * N + n]! / scale[n]!)));
  return { q, scale };
}

/** Transpose a row-major [rows, cols] matrix to [cols, rows]. */
export function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[base + c]!;
  }
  return out;
}
