/**
 * A geo-dino model directory: ONNX file(s) plus `geo-dino.json`, which says what the graphs are,
 * how to feed them and what comes out. `openModelDir` validates it and returns typed metadata.
 *
 * ```
 * <dir>/geo-dino.json
 * <dir>/model.onnx                      fused: pixel_values → canopy_height, canopy_height_std
 * <dir>/backbone.onnx, head-chm.onnx    split: pixel_values → features_k, cls_k → heights
 * <dir>/*.onnx.data                     external tensor data (models over 2 GB)
 * ```
 */
import { stat, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GeoDinoError, parseWith, readJsonFile, z } from '@geo-dino/core';

export const MODEL_META_FILE = 'geo-dino.json';
export const MODEL_FORMAT = 'geo-dino-model';
export const MODEL_FORMAT_VERSION = 1;

/** CHMv2 normalisation (spec §3.1: the CHMv2 notebook and HF processor agree on 0.420). */
export const CHMV2_MEAN: readonly [number, number, number] = [0.42, 0.411, 0.296];
export const CHMV2_STD: readonly [number, number, number] = [0.213, 0.156, 0.143];
/** Ground sample distance the SAT backbones and CHMv2 were trained at (metres). */
export const CHMV2_GSD = 0.6;

const dimSchema = z.union([z.number().int().nonnegative(), z.string().min(1)]);
const ioSchema = z.object({
  name: z.string().min(1),
  dtype: z.enum(['float32', 'float16', 'int64', 'uint8']),
  dims: z.array(dimSchema),
});
export type IoSpec = z.infer<typeof ioSchema>;

const graphSchema = z.object({
  file: z.string().regex(/^[^/\\]+\.onnx$/, 'must be a plain .onnx file name in the model directory'),
  externalData: z.string().regex(/^[^/\\]+$/, 'must be a plain file name').optional(),
  inputs: z.array(ioSchema).min(1),
  outputs: z.array(ioSchema).min(1),
  /** Uses onnxruntime contrib ops (com.microsoft). */
  contribOps: z.boolean().optional(),
});
export type GraphFileInfo = z.infer<typeof graphSchema>;

const triple = z.tuple([z.number(), z.number(), z.number()]);

const headSchema = z.object({
  name: z.string().min(1),
  kind: z.enum(['canopy-height', 'land-cover', 'other']),
  /** Key in `graphs` of the head's graph (split), or of the fused graph. */
  graph: z.string().min(1),
  outputs: z.object({
    height: z.string().min(1).optional(),
    uncertainty: z.string().min(1).nullable().optional(),
  }).catchall(z.string().nullable()),
  unit: z.string().optional(),
});
export type HeadInfo = z.infer<typeof headSchema>;

export const modelMetaSchema = z.object({
  format: z.literal(MODEL_FORMAT),
  formatVersion: z.literal(MODEL_FORMAT_VERSION),
  name: z.string().min(1),
  description: z.string(),
  demo: z.boolean(),
  family: z.enum(['chmv2', 'dinov3_vit', 'external']),
  /** The parsed architecture (backbone and head hyperparameters); null for imported ONNX. */
  architecture: z.record(z.string(), z.unknown()).nullable(),
  dtype: z.enum(['fp32', 'fp16', 'int8']),
  layout: z.enum(['fused', 'split', 'backbone', 'external']),
  input: z.object({
    name: z.string().min(1),
    /** Fixed tile size in pixels ([H, W]), or null when height and width are dynamic. */
    tileSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).nullable(),
    /** Inputs must be multiples of this (the patch size). */
    sizeMultiple: z.number().int().positive(),
    /** Output size equals input size only for multiples of this (spec §4.5). */
    exactMultiple: z.number().int().positive(),
  }),
  normalization: z.object({ mean: triple, std: triple, scale: z.number().positive() }),
  /** Ground sample distance (m/pixel) the model expects. */
  gsd: z.number().positive(),
  graphs: z.record(z.string(), graphSchema),
  features: z
    .object({
      /** Hidden-state indices (transformers numbering: i = after block i). */
      layers: z.array(z.number().int().nonnegative()),
      channels: z.number().int().positive(),
      patchSize: z.number().int().positive(),
      names: z.array(z.string()),
      clsNames: z.array(z.string()),
      /** Graph key of the backbone. */
      graph: z.string(),
    })
    .optional(),
  heads: z.array(headSchema),
  source: z.object({
    kind: z.enum(['huggingface', 'onnx', 'demo']),
    path: z.string().optional(),
    repo: z.string().optional(),
    revision: z.string().optional(),
    files: z.array(z.object({ name: z.string(), bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
    /** sha256 over the weight files' sha256 lines (one file: that file's sha256). */
    weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
    seed: z.number().int().optional(),
  }),
  created: z.object({ by: z.string(), at: z.string(), options: z.record(z.string(), z.unknown()).optional() }),
});
export type ModelMeta = z.infer<typeof modelMetaSchema>;

export interface ModelDir {
  dir: string;
  meta: ModelMeta;
  /** Absolute path of a graph's ONNX file by key (`model`, `backbone`, `head:chm`). */
  graphPath(key: string): string;
  /** The canopy-height head, if any. */
  chmHead(): HeadInfo | undefined;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Validate a parsed geo-dino.json; `source` names it in errors. */
export function parseModelMeta(value: unknown, source: string): ModelMeta {
  const meta = parseWith(modelMetaSchema, value, { source, code: 'E_BAD_MODEL' });
  for (const h of meta.heads) {
    if (!meta.graphs[h.graph]) throw new GeoDinoError('E_BAD_MODEL', `${source}: heads: ${h.name}: graph ${JSON.stringify(h.graph)} is not in graphs`);
  }
  if (meta.features && !meta.graphs[meta.features.graph]) {
    throw new GeoDinoError('E_BAD_MODEL', `${source}: features.graph ${JSON.stringify(meta.features.graph)} is not in graphs`);
  }
  return meta;
}

/**
 * Open and validate a model directory. Throws E_MODEL_NOT_FOUND when there is no model, with a
 * hint when the directory holds Hugging Face weights that still need `geo-dino model build`.
 */
export async function openModelDir(dirIn: string): Promise<ModelDir> {
  const dir = resolve(dirIn);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new GeoDinoError(
      'E_MODEL_NOT_FOUND',
      code === 'ENOTDIR' ? `${dir}: is a file, expected a model directory` : `${dir}: no such model directory`,
      { cause: err, details: { dir } },
    );
  }
  if (!names.includes(MODEL_META_FILE)) {
    if (names.includes('config.json') && names.some((n) => n.endsWith('.safetensors'))) {
      throw new GeoDinoError(
        'E_MODEL_NOT_FOUND',
        `${dir}: holds Hugging Face weights but no ${MODEL_META_FILE}; build it first: geo-dino model build --from ${dir} --out <model-dir>`,
        { details: { dir } },
      );
    }
    throw new GeoDinoError('E_MODEL_NOT_FOUND', `${dir}: no ${MODEL_META_FILE} (not a geo-dino model directory)`, { details: { dir } });
  }
  const metaPath = join(dir, MODEL_META_FILE);
  const raw = await readJsonFile(metaPath).catch((err: unknown) => {
    if (err instanceof GeoDinoError && err.code === 'E_BAD_JSON') throw new GeoDinoError('E_BAD_MODEL', err.message, { cause: err });
    throw err;
  });
  const meta = parseModelMeta(raw, metaPath);
  for (const [key, gfile] of Object.entries(meta.graphs)) {
    if (!(await isFile(join(dir, gfile.file)))) {
      throw new GeoDinoError('E_BAD_MODEL', `${metaPath}: graphs.${key}: ${gfile.file} is missing from ${dir}`, { details: { file: gfile.file } });
    }
    if (gfile.externalData && !(await isFile(join(dir, gfile.externalData)))) {
      throw new GeoDinoError('E_BAD_MODEL', `${metaPath}: graphs.${key}: external data ${gfile.externalData} is missing from ${dir}`, {
        details: { file: gfile.externalData },
      });
    }
  }
  return {
    dir,
    meta,
    graphPath(key: string): string {
      const gfile = meta.graphs[key];
      if (!gfile) throw new GeoDinoError('E_BAD_MODEL', `${metaPath}: no graph ${JSON.stringify(key)} (has ${Object.keys(meta.graphs).join(', ')})`);
      return join(dir, gfile.file);
    },
    chmHead(): HeadInfo | undefined {
      return meta.heads.find((h) => h.kind === 'canopy-height');
    },
  };
}
