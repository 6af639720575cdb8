/**
 * Architectures geo-dino builds, read from a Hugging Face `config.json`:
 *
 * - `dinov3_vit`: a bare DINOv3 ViT (`DINOv3ViTModel`/`DINOv3ViTBackbone`), e.g. the SAT-493M
 *   ViT-L/16 and ViT-7B/16 or the web LVD-1689M models. Built as a backbone graph.
 * - `chmv2`: `CHMv2ForDepthEstimation`, a DINOv3 ViT backbone plus the CHMv2 DPT head.
 *
 * Defaults follow transformers' `DINOv3ViTConfig` and `CHMv2Config` exactly (including CHMv2's
 * injected backbone defaults when a config has no `backbone_config`), so a config means what it
 * means to the reference implementation. Spec: ../shared/spec/model-dinov3-chmv2.md §1, §4.
 */
import { GeoDinoError } from '@geo-dino/core';

export interface BackboneSpec {
  type: 'dinov3_vit';
  patchSize: number;
  numChannels: number;
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  headDim: number;
  registers: number;
  /** Gated MLP (SwiGLU with `silu`): gate/up/down projections. */
  gatedMlp: boolean;
  hiddenAct: 'gelu' | 'silu';
  queryBias: boolean;
  keyBias: boolean;
  valueBias: boolean;
  projBias: boolean;
  mlpBias: boolean;
  layerNormEps: number;
  ropeTheta: number;
  /** Hidden-state indices whose outputs are exposed (0 = embeddings, i = after block i). */
  outIndices: number[];
  /** Apply the final LayerNorm to the selected intermediate outputs (the last one always is). */
  applyLayernorm: boolean;
}

export interface ChmHeadSpec {
  type: 'chmv2_dpt';
  readoutType: 'project' | 'add' | 'ignore';
  reassembleFactors: number[];
  postProcessChannels: number[];
  fusionHiddenSize: number;
  headHiddenSize: number;
  bins: number;
  minDepth: number;
  maxDepth: number;
  binsStrategy: 'chmv2_mixlog';
  normStrategy: 'chmv2_mixlog';
}

export interface Architecture {
  family: 'chmv2' | 'dinov3_vit';
  backbone: BackboneSpec;
  head?: ChmHeadSpec;
}

type Json = Record<string, unknown>;

function bad(source: string, field: string, message: string): GeoDinoError {
  return new GeoDinoError('E_BAD_MODEL', `${source}: ${field}: ${message}`, { details: { source, field } });
}

function num(o: Json, key: string, def: number, source: string, prefix: string, opts: { int?: boolean; min?: number } = {}): number {
  const v = o[key] ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(source, prefix + key, `expected a number, got ${JSON.stringify(v)}`);
  if (opts.int && !Number.isInteger(v)) throw bad(source, prefix + key, `expected an integer, got ${v}`);
  if (opts.min !== undefined && v < opts.min) throw bad(source, prefix + key, `must be >= ${opts.min}, got ${v}`);
  return v;
}

function bool(o: Json, key: string, def: boolean, source: string, prefix: string): boolean {
  const v = o[key] ?? def;
  if (typeof v !== 'boolean') throw bad(source, prefix + key, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function str(o: Json, key: string, def: string, source: string, prefix: string): string {
  const v = o[key] ?? def;
  if (typeof v !== 'string') throw bad(source, prefix + key, `expected a string, got ${JSON.stringify(v)}`);
  return v;
}

function intList(o: Json, key: string, def: number[] | undefined, source: string, prefix: string): number[] | undefined {
  const v = o[key] ?? def;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) {
    throw bad(source, prefix + key, `expected a list of integers, got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

function squareSize(o: Json, key: string, def: number, source: string, prefix: string): number {
  const v = o[key] ?? def;
  if (Array.isArray(v)) {
    if (v.length !== 2 || v[0] !== v[1] || typeof v[0] !== 'number') throw bad(source, prefix + key, `only square sizes are supported, got ${JSON.stringify(v)}`);
    return v[0];
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw bad(source, prefix + key, `expected a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** The four evenly spaced layers a bare backbone exposes by default (HF stage numbering). */
export function defaultOutIndices(layers: number): number[] {
  if (layers >= 4) return [1, 2, 3, 4].map((k) => Math.round((layers * k) / 4));
  return Array.from({ length: layers }, (_, i) => i + 1);
}

/** CHMv2Config's injected backbone defaults (used only when `backbone_config` is absent). */
const CHMV2_BACKBONE_DEFAULTS: Json = {
  image_size: 416,
  hidden_size: 1024,
  intermediate_size: 4096,
  num_attention_heads: 16,
  num_hidden_layers: 24,
  num_register_tokens: 4,
  key_bias: true,
  out_indices: [6, 12, 18, 24],
  reshape_hidden_states: true,
  apply_layernorm: true,
  layer_norm_eps: 1e-6,
  return_class_token: true,
};

export function parseBackbone(o: Json, source: string, prefix = ''): BackboneSpec {
  const mt = o['model_type'];
  if (mt !== undefined && mt !== 'dinov3_vit') {
    throw bad(source, prefix + 'model_type', `backbone type ${JSON.stringify(mt)} is not supported (geo-dino builds dinov3_vit backbones)`);
  }
  const hidden = num(o, 'hidden_size', 384, source, prefix, { int: true, min: 1 });
  const heads = num(o, 'num_attention_heads', 6, source, prefix, { int: true, min: 1 });
  if (hidden % heads !== 0) throw bad(source, prefix + 'num_attention_heads', `${heads} does not divide hidden_size ${hidden}`);
  const headDim = hidden / heads;
  if (headDim % 4 !== 0) throw bad(source, prefix + 'hidden_size', `head dimension ${headDim} must be a multiple of 4 for the 2-D RoPE`);
  const layers = num(o, 'num_hidden_layers', 12, source, prefix, { int: true, min: 1 });
  const act = str(o, 'hidden_act', 'gelu', source, prefix);
  const gated = bool(o, 'use_gated_mlp', false, source, prefix);
  if (act !== 'gelu' && act !== 'silu') {
    throw bad(source, prefix + 'hidden_act', `${JSON.stringify(act)} is not supported (gelu or silu)`);
  }
  const outIdx = intList(o, 'out_indices', undefined, source, prefix);
  let outIndices: number[];
  if (outIdx) {
    outIndices = outIdx.map((i) => (i < 0 ? layers + 1 + i : i));
  } else if (Array.isArray(o['out_features'])) {
    outIndices = (o['out_features'] as unknown[]).map((f) => {
      const m = typeof f === 'string' ? /^stage(\d+)$/.exec(f) : null;
      if (f === 'stem') return 0;
      if (!m) throw bad(source, prefix + 'out_features', `unrecognised stage name ${JSON.stringify(f)}`);
      return Number(m[1]);
    });
  } else {
    outIndices = defaultOutIndices(layers);
  }
  for (const i of outIndices) {
    if (i < 0 || i > layers) throw bad(source, prefix + 'out_indices', `index ${i} is outside 0..${layers}`);
  }
  const patch = squareSize(o, 'patch_size', 16, source, prefix);
  const channels = num(o, 'num_channels', 3, source, prefix, { int: true, min: 1 });
  if (channels !== 3) throw bad(source, prefix + 'num_channels', `geo-dino models take RGB (3 channels), got ${channels}`);
  return {
    type: 'dinov3_vit',
    patchSize: patch,
    numChannels: channels,
    hiddenSize: hidden,
    intermediateSize: num(o, 'intermediate_size', 1536, source, prefix, { int: true, min: 1 }),
    layers,
    heads,
    headDim,
    registers: num(o, 'num_register_tokens', 0, source, prefix, { int: true, min: 0 }),
    gatedMlp: gated,
    hiddenAct: act,
    queryBias: bool(o, 'query_bias', true, source, prefix),
    keyBias: bool(o, 'key_bias', false, source, prefix),
    valueBias: bool(o, 'value_bias', true, source, prefix),
    projBias: bool(o, 'proj_bias', true, source, prefix),
    mlpBias: bool(o, 'mlp_bias', true, source, prefix),
    layerNormEps: num(o, 'layer_norm_eps', 1e-5, source, prefix, { min: 0 }),
    ropeTheta: num(o, 'rope_theta', 100, source, prefix, { min: 1e-9 }),
    outIndices,
    applyLayernorm: bool(o, 'apply_layernorm', true, source, prefix),
  };
}

export function parseChmHead(o: Json, source: string): ChmHeadSpec {
  const readout = str(o, 'readout_type', 'project', source, '');
  if (readout !== 'project' && readout !== 'add' && readout !== 'ignore') {
    throw bad(source, 'readout_type', `${JSON.stringify(readout)} is not one of project, add, ignore`);
  }
  const factors = (o['reassemble_factors'] ?? [4, 2, 1, 0.5]) as unknown;
  if (!Array.isArray(factors) || factors.length !== 4 || !factors.every((f) => typeof f === 'number' && f > 0)) {
    throw bad(source, 'reassemble_factors', `expected four positive numbers, got ${JSON.stringify(factors)}`);
  }
  for (const f of factors as number[]) {
    if (f >= 1 ? !Number.isInteger(f) : !Number.isInteger(1 / f)) {
      throw bad(source, 'reassemble_factors', `factor ${f} is neither an integer nor 1/integer`);
    }
  }
  const ppc = intList(o, 'post_process_channels', [128, 256, 512, 1024], source, '')!;
  if (ppc.length !== 4 || ppc.some((c) => c <= 0)) throw bad(source, 'post_process_channels', `expected four positive integers, got ${JSON.stringify(ppc)}`);
  const bins = num(o, 'number_output_channels', 256, source, '', { int: true, min: 1 });
  if (bins < 2) throw bad(source, 'number_output_channels', `geo-dino needs a binned head (>= 2 bins), got ${bins}`);
  const bs = str(o, 'bins_strategy', 'chmv2_mixlog', source, '');
  const ns = str(o, 'norm_strategy', 'chmv2_mixlog', source, '');
  if (bs !== 'chmv2_mixlog') throw bad(source, 'bins_strategy', `${JSON.stringify(bs)} is not supported (geo-dino implements chmv2_mixlog)`);
  if (ns !== 'chmv2_mixlog') throw bad(source, 'norm_strategy', `${JSON.stringify(ns)} is not supported (geo-dino implements chmv2_mixlog)`);
  const fusion = num(o, 'fusion_hidden_size', 256, source, '', { int: true, min: 2 });
  if (fusion % 2 !== 0) throw bad(source, 'fusion_hidden_size', `must be even, got ${fusion}`);
  const minDepth = num(o, 'min_depth', 0.001, source, '');
  const maxDepth = num(o, 'max_depth', 96, source, '');
  if (!(minDepth > 0 && maxDepth / 8 > minDepth)) throw bad(source, 'max_depth', `need 0 < min_depth < max_depth/8 (got ${minDepth}, ${maxDepth})`);
  const patch = num(o, 'patch_size', 16, source, '', { int: true, min: 1 });
  if (patch !== 16) throw bad(source, 'patch_size', `CHMv2 heads use patch size 16, got ${patch}`);
  return {
    type: 'chmv2_dpt',
    readoutType: readout,
    reassembleFactors: factors as number[],
    postProcessChannels: ppc,
    fusionHiddenSize: fusion,
    headHiddenSize: num(o, 'head_hidden_size', 128, source, '', { int: true, min: 1 }),
    bins,
    minDepth,
    maxDepth,
    binsStrategy: 'chmv2_mixlog',
    normStrategy: 'chmv2_mixlog',
  };
}

/** Parse a Hugging Face config.json (already JSON-parsed). `source` names it in errors. */
export function parseArchitecture(config: unknown, source = 'config.json'): Architecture {
  if (!config || typeof config !== 'object' || Array.isArray(config)) {
    throw new GeoDinoError('E_BAD_MODEL', `${source}: not a JSON object`, { details: { source } });
  }
  const o = config as Json;
  const mt = o['model_type'];
  if (mt === 'chmv2') {
    let bb = o['backbone_config'];
    if (bb === undefined || bb === null) bb = { model_type: 'dinov3_vit', ...CHMV2_BACKBONE_DEFAULTS };
    if (typeof bb !== 'object' || Array.isArray(bb)) throw bad(source, 'backbone_config', 'expected an object');
    const backbone = parseBackbone(bb as Json, source, 'backbone_config.');
    if (backbone.outIndices.length !== 4) {
      throw bad(source, 'backbone_config.out_indices', `the CHMv2 head takes four feature maps, got ${backbone.outIndices.length}`);
    }
    return { family: 'chmv2', backbone, head: parseChmHead(o, source) };
  }
  if (mt === 'dinov3_vit') {
    const backbone = parseBackbone(o, source);
    // A DINOv3ViTModel checkpoint's out_indices is only transformers' default (the last stage);
    // only a config saved from DINOv3ViTBackbone means its selection. Otherwise expose four
    // evenly spaced layers, as the CHMv2 and depth heads use (spec §1.4).
    const arches = Array.isArray(o['architectures']) ? (o['architectures'] as unknown[]) : [];
    if (!arches.includes('DINOv3ViTBackbone')) backbone.outIndices = defaultOutIndices(backbone.layers);
    return { family: 'dinov3_vit', backbone };
  }
  throw new GeoDinoError(
    'E_BAD_MODEL',
    `${source}: model_type ${JSON.stringify(mt)} is not an architecture geo-dino builds (supported: chmv2 = CHMv2ForDepthEstimation, dinov3_vit = DINOv3 ViT)`,
    { details: { source, field: 'model_type' } },
  );
}

// ------------------------------------------------------------------------------------------
// Published configurations, as Hugging Face config.json objects (spec §1.1, §1.5, §2.4).

/** A DINOv3 ViT config.json (patch 16, 4 registers, RoPE θ 100, LayerNorm eps 1e-5, no K bias). */
export function dinov3VitConfig(hidden: number, intermediate: number, layers: number, heads: number, mlp: 'gelu' | 'swiglu', extra: Json = {}): Json {
  const swiglu = mlp === 'swiglu';
  return {
    model_type: 'dinov3_vit',
    patch_size: 16,
    num_channels: 3,
    num_register_tokens: 4,
    layer_norm_eps: 1e-5,
    rope_theta: 100.0,
    key_bias: false,
    proj_bias: true,
    mlp_bias: true,
    layerscale_value: 1.0,
    pos_embed_rescale: 2.0,
    apply_layernorm: true,
    reshape_hidden_states: true,
    hidden_size: hidden,
    intermediate_size: intermediate,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    hidden_act: swiglu ? 'silu' : 'gelu',
    use_gated_mlp: swiglu,
    // The SwiGLU models (ViT-7B) have no qkv bias; the GELU ones have q and v biases.
    query_bias: !swiglu,
    value_bias: !swiglu,
    image_size: 224,
    ...extra,
  };
}

/**
 * A CHMv2ForDepthEstimation config.json on `backbone` (its four `out_indices` feed the head),
 * with the released head's settings unless overridden.
 */
export function chmv2Config(backbone: Json, head: Json = {}): Json {
  const outIndices = (backbone['out_indices'] as number[] | undefined) ?? [6, 12, 18, 24];
  return {
    model_type: 'chmv2',
    architectures: ['CHMv2ForDepthEstimation'],
    backbone_config: { ...backbone, out_indices: outIndices, out_features: outIndices.map((i) => `stage${i}`), return_class_token: true },
    patch_size: 16,
    reassemble_factors: [4, 2, 1, 0.5],
    post_process_channels: [128, 256, 512, 1024],
    fusion_hidden_size: 256,
    head_hidden_size: 128,
    number_output_channels: 256,
    readout_type: 'project',
    min_depth: 0.001,
    max_depth: 96.0,
    bins_strategy: 'chmv2_mixlog',
    norm_strategy: 'chmv2_mixlog',
    ...head,
  };
}

/** Published DINOv3 / CHMv2 configurations geo-dino knows by name. */
export const KNOWN_CONFIGS: Record<string, Json> = {
  'dinov3-vitl16-pretrain-sat493m': dinov3VitConfig(1024, 4096, 24, 16, 'gelu'),
  'dinov3-vit7b16-pretrain-sat493m': dinov3VitConfig(4096, 8192, 40, 32, 'swiglu'),
  'dinov3-vits16-pretrain-lvd1689m': dinov3VitConfig(384, 1536, 12, 6, 'gelu'),
  'dinov3-vitb16-pretrain-lvd1689m': dinov3VitConfig(768, 3072, 12, 12, 'gelu'),
  'dinov3-vitl16-pretrain-lvd1689m': dinov3VitConfig(1024, 4096, 24, 16, 'gelu'),
  'dinov3-vit7b16-pretrain-lvd1689m': dinov3VitConfig(4096, 8192, 40, 32, 'swiglu'),
};

/** The CHMv2 head on the SAT ViT-L/16 backbone (`facebook/dinov3-vitl16-chmv2-dpt-head`). */
export const CHMV2_VITL16_CONFIG: Json = chmv2Config({ ...KNOWN_CONFIGS['dinov3-vitl16-pretrain-sat493m'], image_size: 416, out_indices: [6, 12, 18, 24] });
KNOWN_CONFIGS['dinov3-vitl16-chmv2-dpt-head'] = CHMV2_VITL16_CONFIG;

/** A short human name for an architecture, e.g. "CHMv2 DPT on DINOv3 ViT (1024-d, 24 layers, GELU)". */
export function describeArchitecture(a: Architecture): string {
  const b = a.backbone;
  const vit = `DINOv3 ViT (${b.hiddenSize}-d, ${b.layers} layers, ${b.heads} heads, ${b.gatedMlp ? 'SwiGLU' : 'GELU'} MLP, ${b.registers} registers)`;
  return a.family === 'chmv2' ? `CHMv2 DPT head on ${vit}` : vit;
}
