/**
 * The land-cover head directory: the ONNX graph, its class table and how it was made.
 *
 * ```
 * <head-dir>/landcover-head.json   format, classes, nodata, inputs/output, backbone it fits, training, metrics
 * <head-dir>/head.onnx             features_k (backbone outputs) → landcover_probabilities [B, K, H, W]
 * <head-dir>/classes.json          the class table alone (reusable as --classes)
 * <head-dir>/report.json, report.md   accuracy on the held-out tiles
 * ```
 *
 * The graph (built with `@geo-dino/model`'s ONNX builder): Concat of the selected feature maps
 * (channel axis) → 1×1 Conv (W [K, C, 1, 1], b [K]: the probe, standardisation folded in) →
 * Resize (linear, half_pixel, ×patch: bilinear upsampling to pixels) → Softmax over classes.
 * Opset 20, IR 9, like the model's own graphs. `head.onnx` and `landcover-head.json` are
 * deterministic (no timestamps): the same data, options and seed give the same bytes.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GEO_DINO_VERSION, GeoDinoError, parseWith, readJsonFile, z } from '@geo-dino/core';
import { hashFile, type ExtraHeadSpec } from '@geo-dino/chm';
import { Graph, IR_VERSION, OPSET, attr, saveModel, type ModelMeta } from '@geo-dino/model';
import type { LinearHead } from './probe.js';

export const HEAD_META_FILE = 'landcover-head.json';
export const HEAD_GRAPH_FILE = 'head.onnx';
export const HEAD_FORMAT = 'geo-dino-landcover-head';
export const HEAD_FORMAT_VERSION = 1;
/** Output name of the head graph. */
export const HEAD_OUTPUT = 'landcover_probabilities';
/** Name of the head when attached to a runner, and the prefix of run outputs (landcover.tif). */
export const HEAD_NAME = 'landcover';

const classSchema = z.object({
  value: z.number().int().min(0).max(255),
  name: z.string().regex(/^[0-9A-Za-z_-]+$/),
  color: z.string().regex(/^#[0-9a-f]{6}$/),
  title: z.string().optional(),
});

export const headMetaSchema = z.object({
  format: z.literal(HEAD_FORMAT),
  formatVersion: z.literal(HEAD_FORMAT_VERSION),
  name: z.string().min(1),
  kind: z.literal('land-cover'),
  demo: z.boolean(),
  graph: z.object({
    file: z.string().regex(/^[^/\\]+\.onnx$/),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    inputs: z.array(z.string().min(1)).min(1),
    output: z.string().min(1),
  }),
  classes: z.array(classSchema).min(2),
  nodata: z.number().int().min(0).max(255),
  features: z.object({
    /** Indexes into the backbone's feature outputs (0 = first selected layer … 3 = the last). */
    outputs: z.array(z.number().int().nonnegative()).min(1),
    /** The same layers in transformers' numbering (hidden state after block i). */
    layers: z.array(z.number().int().nonnegative()),
    channels: z.number().int().positive(),
    patchSize: z.number().int().positive(),
    upsampling: z.string(),
  }),
  backbone: z.object({
    name: z.string(),
    family: z.string(),
    weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
    gsd: z.number().positive(),
    demo: z.boolean(),
  }),
  training: z.record(z.string(), z.unknown()),
  metrics: z.record(z.string(), z.unknown()),
  createdBy: z.string(),
});
export type HeadMeta = z.infer<typeof headMetaSchema>;

export interface HeadDir {
  dir: string;
  meta: HeadMeta;
  graphPath: string;
  /** What `geo-dino chm --landcover` hands to the pipeline. */
  spec: ExtraHeadSpec;
}

/** Open and check a head directory (its graph's hash must match the metadata). */
export async function loadLandcoverHead(dirIn: string): Promise<HeadDir> {
  const dir = resolve(dirIn);
  const metaPath = join(dir, HEAD_META_FILE);
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory()) throw new GeoDinoError('E_MODEL_NOT_FOUND', `--landcover: ${dir}: no such head directory (train one with geo-dino landcover train)`, { details: { field: '--landcover', dir } });
  const raw = await readJsonFile(metaPath).catch((err: unknown) => {
    if (err instanceof GeoDinoError && err.code === 'E_FILE_NOT_FOUND') {
      throw new GeoDinoError('E_MODEL_NOT_FOUND', `--landcover: ${dir}: no ${HEAD_META_FILE} (not a land-cover head directory; make one with geo-dino landcover train)`, { details: { field: '--landcover', dir } });
    }
    if (err instanceof GeoDinoError && err.code === 'E_BAD_JSON') throw new GeoDinoError('E_BAD_MODEL', err.message, { cause: err });
    throw err;
  });
  const meta = parseWith(headMetaSchema, raw, { source: metaPath, code: 'E_BAD_MODEL' });
  if (meta.classes.some((c) => c.value === meta.nodata)) throw new GeoDinoError('E_BAD_MODEL', `${metaPath}: nodata ${meta.nodata} is also a class value`);
  const graphPath = join(dir, meta.graph.file);
  const sha = await hashFile(graphPath).catch((err: unknown) => {
    throw new GeoDinoError('E_BAD_MODEL', `${metaPath}: graph ${meta.graph.file} is missing from ${dir}`, { cause: err });
  });
  if (sha !== meta.graph.sha256) throw new GeoDinoError('E_BAD_MODEL', `${graphPath}: sha256 ${sha.slice(0, 12)} differs from ${HEAD_META_FILE}'s ${meta.graph.sha256.slice(0, 12)} (damaged or replaced)`);
  return {
    dir,
    meta,
    graphPath,
    spec: {
      name: HEAD_NAME,
      kind: 'land-cover',
      graph: graphPath,
      sha256: sha,
      output: meta.graph.output,
      classes: meta.classes.map((c) => ({ ...c })),
      nodata: meta.nodata,
      backboneWeightsSha256: meta.backbone.weightsSha256,
      source: dir,
    },
  };
}

export interface HeadGraphSpec {
  /** Backbone output names the head takes, in concatenation order. */
  inputs: string[];
  channels: number;
  /** Channels of each input. */
  inputChannels: number;
  patch: number;
  /** Fixed [H, W] tile size of the backbone, or null for dynamic. */
  tileSize: [number, number] | null;
}

/** Write the head's ONNX graph (the probe rounded to float32) to `path`. */
export async function writeHeadGraph(path: string, head: LinearHead & { W: Float32Array; b: Float32Array }, g: HeadGraphSpec, description: string): Promise<void> {
  const graph = new Graph('geo_dino_landcover_head');
  const fdims = g.tileSize ? ['batch', g.inputChannels, g.tileSize[0] / g.patch, g.tileSize[1] / g.patch] : ['batch', g.inputChannels, 'grid_height', 'grid_width'];
  const ins = g.inputs.map((n) => graph.input(n, 'float32', fdims));
  const x = ins.length === 1 ? ins[0]! : graph.op1('Concat', ins, { axis: attr.i(1) });
  const bytes = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
  const w = graph.initializer('classifier_weight', 'float32', [head.K, head.C, 1, 1], bytes(head.W));
  const b = graph.initializer('classifier_bias', 'float32', [head.K], bytes(head.b));
  const logits = graph.op1('Conv', [x, w, b], { kernel_shape: attr.ints([1, 1]) });
  const scales = graph.constF32([1, 1, g.patch, g.patch]);
  const up = graph.op1('Resize', [logits, '', scales], { mode: attr.s('linear'), coordinate_transformation_mode: attr.s('half_pixel') });
  const probs = graph.op1('Softmax', [up], { axis: attr.i(1) });
  const odims = g.tileSize ? ['batch', head.K, g.tileSize[0], g.tileSize[1]] : ['batch', head.K, 'height', 'width'];
  graph.output(probs, HEAD_OUTPUT, 'float32', odims);
  await saveModel(graph, path, {
    opsets: [{ domain: '', version: OPSET }],
    irVersion: IR_VERSION,
    producerName: 'geo-dino',
    producerVersion: GEO_DINO_VERSION,
    docString: description,
    externalData: 'never',
  });
}

/** Which backbone outputs a layer choice means, and their channels. */
export function selectFeatures(meta: ModelMeta, layers: 'last' | 'all' | readonly number[]): { outputs: number[]; names: string[]; layers: number[]; channels: number } {
  const f = meta.features;
  if (!f) throw new GeoDinoError('E_ARGUMENT', `--model: ${meta.name} is a ${meta.layout} model; training needs its backbone's features: build a split model (geo-dino model build --from <hf-dir> --out <dir> --split)`, { details: { field: '--model' } });
  const n = f.names.length;
  const outputs = layers === 'last' ? [n - 1] : layers === 'all' ? f.names.map((_, i) => i) : [...layers];
  for (const o of outputs) {
    if (!Number.isInteger(o) || o < 0 || o >= n) throw new GeoDinoError('E_ARGUMENT', `--layers: ${o} is not a feature output of ${meta.name} (it has ${n}: 0-${n - 1}, transformers layers ${f.layers.join(', ')})`, { details: { field: '--layers' } });
  }
  if (new Set(outputs).size !== outputs.length) throw new GeoDinoError('E_ARGUMENT', `--layers: ${outputs.join(',')} names a layer twice`, { details: { field: '--layers' } });
  return { outputs, names: outputs.map((o) => f.names[o]!), layers: outputs.map((o) => f.layers[o]!), channels: f.channels * outputs.length };
}
