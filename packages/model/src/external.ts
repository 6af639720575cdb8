/**
 * `importOnnxModel`: accept a canopy-height ONNX exported elsewhere (e.g. the public
 * onnx-community CHMv2 export) after checking its inputs and outputs with onnxruntime and a
 * probe run, and wrap it in a geo-dino model directory.
 *
 * Accepted: one float32 input [batch, 3, height, width] (normalised pixels; geo-dino assumes the
 * CHMv2 normalisation), and a float32 height output [batch, H, W] or [batch, 1, H, W] in metres
 * (named `predicted_depth`, `canopy_height` or the only output). An output named
 * `canopy_height_std` or `uncertainty` is used as the uncertainty band.
 */
import { copyFile, rm } from 'node:fs/promises';
import { replaceDirectory } from './fsutil.js';
import { basename, dirname, join, resolve } from 'node:path';
import { GEO_DINO_VERSION, GeoDinoError, ensureDir, fileExists, fsError, silentLogger, temporaryPathFor, writeJsonAtomic, type Logger } from '@geo-dino/core';
import { createSessionPool, type IoMeta } from '@geo-dino/runtime';
import { hashWeights } from './build.js';
import { CHMV2_GSD, CHMV2_MEAN, CHMV2_STD, MODEL_FORMAT, MODEL_FORMAT_VERSION, MODEL_META_FILE, openModelDir, parseModelMeta, type ModelDir, type ModelMeta } from './modeldir.js';

export interface ImportOnnxOptions {
  out: string;
  name?: string;
  force?: boolean;
  /** Probe size (default 64, or the model's fixed size). */
  probeSize?: number;
  log?: Logger;
}

const HEIGHT_NAMES = ['canopy_height', 'predicted_depth', 'depth', 'height'];
const STD_NAMES = ['canopy_height_std', 'uncertainty', 'height_std'];

function dimStr(d: IoMeta['dims']): string {
  return `[${d.join(', ')}]`;
}

/** Pick and check the input and outputs (exported for tests). */
export function checkExternalIo(file: string, inputs: IoMeta[], outputs: IoMeta[]): { input: IoMeta; height: IoMeta; std: IoMeta | undefined } {
  if (inputs.length !== 1) {
    throw new GeoDinoError('E_BAD_MODEL', `${file}: expected one input (pixel_values [batch, 3, height, width]), found ${inputs.length}: ${inputs.map((i) => i.name).join(', ')}`);
  }
  const input = inputs[0]!;
  if (input.type !== 'float32' || input.dims.length !== 4 || (typeof input.dims[1] === 'number' && input.dims[1] !== 3)) {
    throw new GeoDinoError('E_BAD_MODEL', `${file}: input ${input.name} is ${input.type} ${dimStr(input.dims)}; expected float32 [batch, 3, height, width]`);
  }
  const floats = outputs.filter((o) => o.type === 'float32' && (o.dims.length === 3 || o.dims.length === 4));
  const height = HEIGHT_NAMES.map((n) => floats.find((o) => o.name === n)).find(Boolean) ?? (floats.length === 1 ? floats[0] : undefined);
  if (!height) {
    throw new GeoDinoError(
      'E_BAD_MODEL',
      `${file}: no height output: expected a float32 [batch, H, W] or [batch, 1, H, W] output named ${HEIGHT_NAMES.join(' or ')} (outputs: ${outputs.map((o) => `${o.name} ${o.type} ${dimStr(o.dims)}`).join('; ')})`,
    );
  }
  if (height.dims.length === 4 && typeof height.dims[1] === 'number' && height.dims[1] !== 1) {
    throw new GeoDinoError('E_BAD_MODEL', `${file}: output ${height.name} ${dimStr(height.dims)} has ${height.dims[1]} channels; a height map has one`);
  }
  const std = STD_NAMES.map((n) => floats.find((o) => o.name === n && o !== height)).find(Boolean);
  return { input, height, std };
}

export async function importOnnxModel(file: string, options: ImportOnnxOptions): Promise<ModelDir> {
  const log = options.log ?? silentLogger();
  const src = resolve(file);
  const out = resolve(options.out);
  if (!(await fileExists(src))) throw new GeoDinoError('E_FILE_NOT_FOUND', `${src}: no such file`);
  if ((await fileExists(out)) && !options.force) throw new GeoDinoError('E_ARGUMENT', `${out} already exists; choose another --out or pass --force to replace it`);
  // External-data files conventionally sit beside the model under one of these names.
  const sidecars: string[] = [];
  for (const s of [`${src}.data`, `${src}_data`, src.replace(/\.onnx$/, '.onnx_data')]) {
    if (s !== src && (await fileExists(s)) && !sidecars.includes(s)) sidecars.push(s);
  }

  await ensureDir(dirname(out));
  const staging = temporaryPathFor(out);
  await ensureDir(staging);
  try {
    const modelFile = 'model.onnx';
    try {
      await copyFile(src, join(staging, modelFile));
      for (const s of sidecars) await copyFile(s, join(staging, basename(s)));
    } catch (err) {
      throw fsError(err, staging, 'write');
    }
    // Load with onnxruntime (in a worker) to read the I/O, then probe-run it.
    const pool = await createSessionPool([{ name: 'model', path: join(staging, modelFile) }], { device: 'cpu', log }).catch((err: unknown) => {
      throw new GeoDinoError('E_BAD_MODEL', `${src}: onnxruntime cannot load it: ${(err as Error).message}`, { cause: err });
    });
    let io;
    try {
      io = pool.io['model']!;
      const { input, height, std } = checkExternalIo(src, io.inputs, io.outputs);
      const fixedH = typeof input.dims[2] === 'number' ? input.dims[2] : undefined;
      const fixedW = typeof input.dims[3] === 'number' ? input.dims[3] : undefined;
      const H = fixedH ?? options.probeSize ?? 64;
      const W = fixedW ?? options.probeSize ?? 64;
      const r = await pool.run('model', { [input.name]: { type: 'float32', dims: [1, 3, H, W], data: new Float32Array(3 * H * W) } }, { outputs: [height.name, ...(std ? [std.name] : [])] });
      const h = r.outputs[height.name]!;
      const hh = h.dims.length === 4 ? h.dims[2] : h.dims[1];
      const hw = h.dims.length === 4 ? h.dims[3] : h.dims[2];
      if (hh !== H || hw !== W) {
        throw new GeoDinoError('E_BAD_MODEL', `${src}: a ${H}×${W} probe gave a ${hh}×${hw} height map; geo-dino needs output size = input size`);
      }
      const data = h.data as Float32Array;
      if (!data.every((v) => Number.isFinite(v))) throw new GeoDinoError('E_BAD_MODEL', `${src}: the probe run produced non-finite heights`);
      const hashed = await hashWeights([src, ...sidecars]);
      const tile = fixedH && fixedW ? ([fixedH, fixedW] as [number, number]) : null;
      const meta: ModelMeta = {
        format: MODEL_FORMAT,
        formatVersion: MODEL_FORMAT_VERSION,
        name: options.name ?? basename(src).replace(/\.onnx$/, ''),
        description: `imported ONNX model ${basename(src)}`,
        demo: false,
        family: 'external',
        architecture: null,
        dtype: 'fp32',
        layout: 'external',
        input: { name: input.name, tileSize: tile, sizeMultiple: 16, exactMultiple: 32 },
        normalization: { mean: [...CHMV2_MEAN] as [number, number, number], std: [...CHMV2_STD] as [number, number, number], scale: 255 },
        gsd: CHMV2_GSD,
        graphs: {
          model: {
            file: modelFile,
            ...(sidecars.length ? { externalData: basename(sidecars[0]!) } : {}),
            inputs: [{ name: input.name, dtype: 'float32', dims: input.dims }],
            outputs: [height, ...(std ? [std] : [])].map((o) => ({ name: o.name, dtype: 'float32' as const, dims: o.dims })),
          },
        },
        heads: [{ name: 'chm', kind: 'canopy-height', graph: 'model', outputs: { height: height.name, uncertainty: std?.name ?? null }, unit: 'm' }],
        source: { kind: 'onnx', path: src, files: hashed.files, weightsSha256: hashed.combined },
        created: { by: `geo-dino ${GEO_DINO_VERSION}`, at: new Date().toISOString() },
      };
      await writeJsonAtomic(join(staging, MODEL_META_FILE), parseModelMeta(meta, MODEL_META_FILE));
      log.info({ input: input.name, height: height.name, uncertainty: std?.name ?? null }, 'ONNX model accepted');
    } finally {
      await pool.close();
    }
    await replaceDirectory(staging, out);
  } catch (err) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  return openModelDir(out);
}
