/**
 * Random-weight checkpoints in the real Hugging Face format (config.json + model.safetensors),
 * generated deterministically from a seed. Used for the demo model (no download, no network) and
 * for benchmarks at full size. The tensors are exactly those {@link expectedTensors} lists, so
 * they load in transformers as well as in `buildModel`.
 *
 * Initialisation keeps activations O(1): weights ~ N(0, 1/fan_in), LayerNorm affine near
 * identity, LayerScale in [0.2, 1], and a bin-logit layer shaped like a trained model's (a peaked
 * bump whose centre moves with the features), so a random model still draws a varied map.
 */
import { join } from 'node:path';
import { ensureDir, writeFileAtomic } from '@geo-dino/core';
import { parseArchitecture } from './arch.js';
import { expectedTensors } from './weights.js';
import { writeSafetensors, bytesOf, type TensorToWrite } from './safetensors.js';
import { float32ToHalfArray } from './half.js';

/** xoshiro128** seeded through splitmix32: fast, deterministic, platform-independent. */
export class Rng {
  private s = new Uint32Array(4);
  private spare: number | undefined;

  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** Uniform uint32. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  /** Standard normal (Box-Muller, pairs cached). */
  normal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    const u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Derive an independent seed per tensor name (so tensors do not depend on generation order). */
function seedFor(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function randomTensor(name: string, shape: number[], seed: number): Float32Array {
  const rng = new Rng(seedFor(seed, name));
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const last = name.split('.').slice(-2).join('.');
  if (name.endsWith('lambda1')) {
    for (let i = 0; i < n; i++) out[i] = 0.2 + 0.8 * rng.uniform();
  } else if (/norm\d?\.weight$/.test(last) || /(^|\.)norm\.weight$/.test(name)) {
    for (let i = 0; i < n; i++) out[i] = 1 + 0.2 * rng.normal();
  } else if (name.endsWith('.bias')) {
    for (let i = 0; i < n; i++) out[i] = 0.1 * rng.normal();
  } else if (/(cls_token|register_tokens|mask_token)$/.test(name)) {
    for (let i = 0; i < n; i++) out[i] = rng.normal();
  } else if (shape.length >= 2) {
    // ConvTranspose2d weights are [C_in, C_out, k, k]: each output sums C_in inputs.
    const fanIn = /reassemble_stage\.layers\.[01]\.resize\.weight$/.test(name) ? shape[0]! : n / shape[0]!;
    const s = 1 / Math.sqrt(fanIn);
    for (let i = 0; i < n; i++) out[i] = rng.normal() * s;
  } else {
    for (let i = 0; i < n; i++) out[i] = 0.1 * rng.normal();
  }
  return out;
}

/** The bin-logit layer: a bump of width `sigma` bins whose centre follows one feature direction. */
function shapeBins(name: string, shape: number[], seed: number, values: Float32Array): Float32Array {
  const nb = shape[0]!;
  if (name.endsWith('conv_depth.head.4.bias')) {
    const sigma = 40;
    for (let k = 0; k < nb; k++) values[k] = 2 - ((k - nb / 2) / sigma) ** 2;
    return values;
  }
  const hid = shape[1]!;
  const rng = new Rng(seedFor(seed, 'bins-direction'));
  const r = Float64Array.from({ length: hid }, () => rng.normal() / Math.sqrt(hid));
  const gain = 6;
  for (let k = 0; k < nb; k++) {
    const a = (gain * (k - nb / 2)) / (nb / 4);
    for (let j = 0; j < hid; j++) values[k * hid + j] = values[k * hid + j]! * 0.3 + a * r[j]!;
  }
  return values;
}

/**
 * The `local` fixture's weights (what each change is for):
 * - every layer's attention LayerScale (`layer_scale1.lambda1`) is 0: the attention branch adds
 *   nothing, so each patch token is a function of its own 16×16 pixels only (CLS and register
 *   tokens become constants) and the DPT head, convolutional, keeps the response local;
 * - the patch embedding gets, on top of 1.5× its random kernel, a response to the patch's mean
 *   red − blue (one random gain per channel): heights then move with colour balance, as they do
 *   between two acquisitions, more than with the imagery's texture;
 * - the ×4 and ×2 reassemble upsamplings (transposed convolutions) are nearest-neighbour (each
 *   kernel its mean), so no fixed 16-px pattern repeats inside every patch;
 * - the two coarse DPT paths (`head.convs.2`, `head.convs.3`) are 0, so the head's reach stays
 *   within a few patches: a radiometric edge in the input gives a height step about a patch wide.
 */
function localise(name: string, shape: readonly number[], seed: number, v: Float32Array): Float32Array {
  if (name.endsWith('.layer_scale1.lambda1') || /^head\.convs\.[23]\.weight$/.test(name)) return v.fill(0);
  if (/reassemble_stage\.layers\.[01]\.resize\.weight$/.test(name)) {
    const kk = shape[2]! * shape[3]!;
    for (let i = 0; i < v.length; i += kk) {
      let m = 0;
      for (let k = 0; k < kk; k++) m += v[i + k]!;
      v.fill(m / kk, i, i + kk);
    }
    return v;
  }
  if (name.endsWith('embeddings.patch_embeddings.weight')) {
    const rng = new Rng(seedFor(seed, 'dc'));
    const [D, C] = shape as [number, number];
    const P = v.length / (D * C);
    for (let o = 0; o < D; o++) {
      const gain = rng.normal();
      for (let c = 0; c < C; c++) {
        const u = c === 0 ? gain : c === 2 ? -gain : 0;
        for (let k = 0; k < P; k++) {
          const i = (o * C + c) * P + k;
          v[i] = v[i]! * 1.5 + u / P;
        }
      }
    }
  }
  return v;
}

export interface RandomCheckpointOptions {
  seed: number;
  /** Stored dtype (default F32). */
  dtype?: 'F32' | 'F16';
  /**
   * A test fixture whose heights respond to LOCAL radiometry, as a trained model's do, instead of
   * mixing the whole tile through attention as plain random weights do (see {@link localise}).
   * Same architecture and graph; only the weights differ. CHMv2 (DINOv3 ViT + DPT head) configs only.
   */
  local?: boolean;
}

/**
 * Write `config.json` and `model.safetensors` for `config` (a Hugging Face config object of a
 * supported architecture) with random weights. Tensors are generated one at a time while writing.
 */
export async function writeRandomCheckpoint(dir: string, config: Record<string, unknown>, options: RandomCheckpointOptions): Promise<void> {
  const arch = parseArchitecture(config, 'config');
  await ensureDir(dir);
  const dtype = options.dtype ?? 'F32';
  const bare = arch.family === 'dinov3_vit';
  const tensors: TensorToWrite[] = expectedTensors(arch).map((t) => ({
    name: bare ? t.name.replace(/^backbone\./, '') : t.name,
    dtype,
    shape: t.shape,
    data: () => {
      let v = randomTensor(t.name, t.shape, options.seed);
      if (options.local) v = localise(t.name, t.shape, options.seed, v);
      if (t.name.startsWith('head.conv_depth.head.4.')) v = shapeBins(t.name, t.shape, options.seed, v);
      return dtype === 'F16' ? bytesOf(float32ToHalfArray(v)) : bytesOf(v);
    },
  }));
  tensors.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  await writeFileAtomic(join(dir, 'config.json'), hfConfigJson({ ...config, dtype: dtype === 'F16' ? 'float16' : 'float32' }));
}

/** transformers' config dataclasses reject an int where a float is declared (96 for max_depth). */
const FLOAT_FIELDS = ['max_depth', 'min_depth', 'rope_theta', 'layer_norm_eps', 'layerscale_value', 'pos_embed_rescale', 'pos_embed_shift', 'pos_embed_jitter', 'initializer_range'];

/** config.json text with float fields written as floats (`96.0`, not `96`). */
export function hfConfigJson(config: Record<string, unknown>): string {
  let text = JSON.stringify(config, null, 2);
  for (const k of FLOAT_FIELDS) text = text.replace(new RegExp(`("${k}": )(-?\\d+)(,?\n)`, 'g'), '$1$2.0$3');
  return text + '\n';
}
