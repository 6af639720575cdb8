/**
 * Which tensors an architecture needs, under which names, with which shapes; and the check that
 * a checkpoint provides exactly those (spec §2.3, §2.4).
 *
 * Canonical names are transformers' in-memory names with the encoder wrapper dropped:
 * `backbone.embeddings.cls_token`, `backbone.layer.3.attention.q_proj.weight`, `head.convs.0.weight`.
 * On disk, the layers may be `layer.N.` (checkpoints saved in 2025) or `model.layer.N.` (newer
 * transformers), and a bare DINOv3 ViT has no `backbone.` prefix; both are accepted.
 */
import { basename } from 'node:path';
import { GeoDinoError } from '@geo-dino/core';
import type { Architecture, BackboneSpec, ChmHeadSpec } from './arch.js';
import type { WeightSet } from './safetensors.js';

export interface ExpectedTensor {
  name: string;
  shape: number[];
  /** Present in the reference model but not used by the graph (mask token); may be absent. */
  optional?: boolean;
}

export function backboneTensors(b: BackboneSpec, prefix = 'backbone.'): ExpectedTensor[] {
  const D = b.hiddenSize;
  const F = b.intermediateSize;
  const t: ExpectedTensor[] = [
    { name: 'embeddings.cls_token', shape: [1, 1, D] },
    { name: 'embeddings.mask_token', shape: [1, 1, D], optional: true },
    { name: 'embeddings.register_tokens', shape: [1, b.registers, D], optional: b.registers === 0 },
    { name: 'embeddings.patch_embeddings.weight', shape: [D, b.numChannels, b.patchSize, b.patchSize] },
    { name: 'embeddings.patch_embeddings.bias', shape: [D] },
  ];
  for (let i = 0; i < b.layers; i++) {
    const l = `layer.${i}.`;
    t.push({ name: l + 'norm1.weight', shape: [D] }, { name: l + 'norm1.bias', shape: [D] });
    for (const p of ['q', 'k', 'v'] as const) {
      t.push({ name: `${l}attention.${p}_proj.weight`, shape: [D, D] });
      const has = p === 'q' ? b.queryBias : p === 'k' ? b.keyBias : b.valueBias;
      if (has) t.push({ name: `${l}attention.${p}_proj.bias`, shape: [D] });
    }
    t.push({ name: l + 'attention.o_proj.weight', shape: [D, D] });
    if (b.projBias) t.push({ name: l + 'attention.o_proj.bias', shape: [D] });
    t.push({ name: l + 'layer_scale1.lambda1', shape: [D] }, { name: l + 'layer_scale2.lambda1', shape: [D] });
    t.push({ name: l + 'norm2.weight', shape: [D] }, { name: l + 'norm2.bias', shape: [D] });
    const projs: [string, number[]][] = b.gatedMlp
      ? [['gate_proj', [F, D]], ['up_proj', [F, D]], ['down_proj', [D, F]]]
      : [['up_proj', [F, D]], ['down_proj', [D, F]]];
    for (const [n, shape] of projs) {
      t.push({ name: `${l}mlp.${n}.weight`, shape });
      if (b.mlpBias) t.push({ name: `${l}mlp.${n}.bias`, shape: [shape[0]!] });
    }
  }
  t.push({ name: 'norm.weight', shape: [D] }, { name: 'norm.bias', shape: [D] });
  return t.map((x) => ({ ...x, name: prefix + x.name }));
}

export function chmHeadTensors(h: ChmHeadSpec, hidden: number): ExpectedTensor[] {
  const t: ExpectedTensor[] = [];
  const F = h.fusionHiddenSize;
  for (let k = 0; k < 4; k++) {
    const C = h.postProcessChannels[k]!;
    const f = h.reassembleFactors[k]!;
    if (h.readoutType === 'project') {
      t.push({ name: `head.reassemble_stage.readout_projects.${k}.0.weight`, shape: [hidden, 2 * hidden] });
      t.push({ name: `head.reassemble_stage.readout_projects.${k}.0.bias`, shape: [hidden] });
    }
    t.push({ name: `head.reassemble_stage.layers.${k}.projection.weight`, shape: [C, hidden, 1, 1] });
    t.push({ name: `head.reassemble_stage.layers.${k}.projection.bias`, shape: [C] });
    if (f > 1) {
      t.push({ name: `head.reassemble_stage.layers.${k}.resize.weight`, shape: [C, C, f, f] });
      t.push({ name: `head.reassemble_stage.layers.${k}.resize.bias`, shape: [C] });
    } else if (f < 1) {
      t.push({ name: `head.reassemble_stage.layers.${k}.resize.weight`, shape: [C, C, 3, 3] });
      t.push({ name: `head.reassemble_stage.layers.${k}.resize.bias`, shape: [C] });
    }
    t.push({ name: `head.convs.${k}.weight`, shape: [F, C, 3, 3] });
  }
  for (let j = 0; j < 4; j++) {
    const p = `head.fusion_layers.${j}.`;
    t.push({ name: p + 'projection.weight', shape: [F, F, 1, 1] }, { name: p + 'projection.bias', shape: [F] });
    for (const r of j === 0 ? ['residual_layer2'] : ['residual_layer1', 'residual_layer2']) {
      for (const c of ['convolution1', 'convolution2']) {
        t.push({ name: `${p}${r}.${c}.weight`, shape: [F, F, 3, 3] }, { name: `${p}${r}.${c}.bias`, shape: [F] });
      }
    }
  }
  const half = F / 2;
  t.push({ name: 'head.conv_depth.head.0.weight', shape: [half, F, 3, 3] }, { name: 'head.conv_depth.head.0.bias', shape: [half] });
  t.push({ name: 'head.conv_depth.head.2.weight', shape: [h.headHiddenSize, half, 3, 3] }, { name: 'head.conv_depth.head.2.bias', shape: [h.headHiddenSize] });
  t.push({ name: 'head.conv_depth.head.4.weight', shape: [h.bins, h.headHiddenSize, 1, 1] }, { name: 'head.conv_depth.head.4.bias', shape: [h.bins] });
  return t;
}

export function expectedTensors(a: Architecture): ExpectedTensor[] {
  const t = backboneTensors(a.backbone);
  if (a.head) t.push(...chmHeadTensors(a.head, a.backbone.hiddenSize));
  return t;
}

/** Names a checkpoint may carry that the graph does not need (buffers, training-only norms). */
function ignorable(canonical: string): boolean {
  return /(^|\.)inv_freq$/.test(canonical) || /\.bias_mask$/.test(canonical) || /(^|\.)local_cls_norm\./.test(canonical) || /(^|\.)rope_embeddings\./.test(canonical);
}

/** Map an on-disk name to its canonical name (or undefined when it cannot belong to `family`). */
export function canonicalName(disk: string, family: Architecture['family']): string | undefined {
  let n = disk;
  if (family === 'chmv2') {
    if (n.startsWith('head.')) return n;
    if (!n.startsWith('backbone.')) return undefined;
    n = n.slice('backbone.'.length);
  } else if (n.startsWith('backbone.')) {
    n = n.slice('backbone.'.length);
  }
  n = n.replace(/^model\.layer\./, 'layer.');
  return 'backbone.' + n;
}

/** A checkpoint checked against an architecture: read tensors by canonical name, as float32. */
export class ResolvedWeights {
  readonly arch: Architecture;
  readonly set: WeightSet;
  private readonly map: Map<string, string>;
  readonly expected: Map<string, ExpectedTensor>;

  constructor(arch: Architecture, set: WeightSet, map: Map<string, string>, expected: Map<string, ExpectedTensor>) {
    this.arch = arch;
    this.set = set;
    this.map = map;
    this.expected = expected;
  }

  has(canonical: string): boolean {
    return this.map.has(canonical);
  }

  diskName(canonical: string): string {
    const d = this.map.get(canonical);
    if (!d) throw new GeoDinoError('E_INTERNAL', `weight ${canonical} was not resolved`);
    return d;
  }

  async read(canonical: string): Promise<Float32Array> {
    return this.set.readFloat32(this.diskName(canonical));
  }
}

function fileOf(set: WeightSet, disk: string): string {
  return basename(set.info(disk).file);
}

/**
 * Check the checkpoint against the architecture: every tensor present with the right shape and
 * a floating-point dtype, nothing unexpected. Errors name the tensor and the file.
 */
export async function resolveWeights(arch: Architecture, set: WeightSet, source: string): Promise<ResolvedWeights> {
  const expected = new Map(expectedTensors(arch).map((t) => [t.name, t]));
  const map = new Map<string, string>();
  const unexpected: string[] = [];
  for (const disk of set.names()) {
    const canon = canonicalName(disk, arch.family);
    if (canon === undefined) {
      if (ignorable(disk)) continue;
      unexpected.push(disk);
      continue;
    }
    if (ignorable(canon)) continue;
    if (!expected.has(canon)) {
      // A K bias the config says is absent: accepted only when it is all zeros (spec §2.4).
      if (/attention\.k_proj\.bias$/.test(canon) && !arch.backbone.keyBias) {
        const v = await set.readFloat32(disk);
        if (v.every((x) => x === 0)) continue;
        throw new GeoDinoError(
          'E_BAD_MODEL',
          `${fileOf(set, disk)}: tensor ${disk} holds a non-zero key bias but ${source} says key_bias=false; set key_bias to true if it is meant to be used`,
          { details: { tensor: disk } },
        );
      }
      unexpected.push(disk);
      continue;
    }
    if (map.has(canon)) {
      throw new GeoDinoError('E_BAD_MODEL', `${set.dir}: tensors ${map.get(canon)} and ${disk} are the same weight (${canon}) under two names`, {
        details: { tensor: disk },
      });
    }
    map.set(canon, disk);
  }
  if (unexpected.length) {
    const first = unexpected[0]!;
    throw new GeoDinoError(
      'E_BAD_MODEL',
      `${fileOf(set, first)}: unexpected tensor ${first}${unexpected.length > 1 ? ` (and ${unexpected.length - 1} more)` : ''}: it is not part of the ${arch.family} architecture described by ${source}`,
      { details: { tensors: unexpected.slice(0, 20) } },
    );
  }
  const missing = [...expected.values()].filter((t) => !t.optional && !map.has(t.name));
  if (missing.length) {
    const first = missing[0]!;
    throw new GeoDinoError(
      'E_BAD_MODEL',
      `${set.dir}: missing tensor ${first.name}${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''} required by ${source} (looked in ${set.files.map((f) => basename(f.path)).join(', ')})`,
      { details: { tensors: missing.slice(0, 20).map((t) => t.name) } },
    );
  }
  for (const [canon, disk] of map) {
    const want = expected.get(canon)!.shape;
    const info = set.info(disk);
    if (info.shape.length !== want.length || info.shape.some((d, i) => d !== want[i])) {
      throw new GeoDinoError(
        'E_BAD_MODEL',
        `${basename(info.file)}: tensor ${disk} has shape [${info.shape.join(',')}], expected [${want.join(',')}] from ${source}`,
        { details: { tensor: disk, shape: info.shape, expected: want } },
      );
    }
    if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
      throw new GeoDinoError('E_BAD_MODEL', `${basename(info.file)}: tensor ${disk} has dtype ${info.dtype}; weights must be F32, F16, BF16 or F64`, {
        details: { tensor: disk, dtype: info.dtype },
      });
    }
  }
  return new ResolvedWeights(arch, set, map, expected);
}
