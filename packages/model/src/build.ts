/**
 * `buildModel`: Hugging Face checkpoint (config.json + safetensors) → geo-dino model directory.
 *
 * The output is assembled in a hidden sibling directory and renamed into place only when every
 * file is complete, so an interrupted or failed build leaves nothing that looks like a model.
 */
import { createHash } from 'node:crypto';
import { rm, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  GEO_DINO_VERSION,
  GeoDinoError,
  ensureDir,
  fileExists,
  readJsonFile,
  temporaryPathFor,
  silentLogger,
  silentProgress,
  throwIfAborted,
  writeJsonAtomic,
  type Logger,
  type Progress,
} from '@geo-dino/core';
import { parseArchitecture, describeArchitecture, type Architecture } from './arch.js';
import { WeightSet, sha256File } from './safetensors.js';
import { resolveWeights } from './weights.js';
import { saveModel } from './onnx/graph.js';
import { replaceDirectory } from './fsutil.js';
import { buildBackboneGraph, buildFusedGraph, buildHeadGraph, IO, type BuiltGraph } from './graph/model.js';
import type { AttentionImpl, ModelDtype } from './graph/context.js';
import {
  CHMV2_GSD,
  CHMV2_MEAN,
  CHMV2_STD,
  MODEL_FORMAT,
  MODEL_FORMAT_VERSION,
  MODEL_META_FILE,
  openModelDir,
  parseModelMeta,
  type GraphFileInfo,
  type ModelDir,
  type ModelMeta,
} from './modeldir.js';

/** ONNX opset and IR version of the graphs geo-dino writes (Gelu needs opset 20). */
export const OPSET = 20;
export const IR_VERSION = 9;

export interface BuildOptions {
  /** Hugging Face model directory: config.json + model.safetensors (or sharded with an index). */
  from: string;
  /** Output model directory (must not exist unless `force`). */
  out: string;
  dtype?: ModelDtype;
  /** Fixed square tile size in pixels (a multiple of 16; 32 for output = input), or null/undefined for dynamic H, W. */
  tileSize?: number | null;
  /** Backbone and head as separate graphs (several heads can share one backbone pass). */
  split?: boolean;
  /** Attention kernel (default: `mha`, or `matmul` for fp16; see {@link defaultAttention}). */
  attention?: AttentionImpl;
  /** Model name recorded in geo-dino.json (default: the source directory's name). */
  name?: string;
  /** Replace an existing output directory. */
  force?: boolean;
  /** Put tensor data in a `.onnx.data` file: auto (over ~1.9 GB), always or never. */
  externalData?: 'auto' | 'always' | 'never';
  /** Marks a model made from random weights (createDemoModel). */
  demo?: boolean;
  /** Recorded as the source (e.g. the Hub repo a pull came from). */
  sourceInfo?: { kind?: 'huggingface' | 'demo'; repo?: string; revision?: string; seed?: number };
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
}

/**
 * The attention kernel when none is asked for: onnxruntime's fused MultiHeadAttention (it never
 * materialises the [heads, N, N] score tensor; faster on CPU in `npm run bench -- model`), except
 * for fp16 builds, whose Softmax is kept explicitly in fp32 (plain MatMul/Softmax/MatMul).
 */
export function defaultAttention(dtype: ModelDtype): AttentionImpl {
  return dtype === 'fp16' ? 'matmul' : 'mha';
}

/** sha256 per weight file and one combined hash (sha256 of "name sha\n" lines, sorted by name). */
export async function hashWeights(files: readonly string[], signal?: AbortSignal): Promise<{ files: { name: string; bytes: number; sha256: string }[]; combined: string }> {
  const out: { name: string; bytes: number; sha256: string }[] = [];
  for (const f of [...files].sort()) {
    const sha256 = await sha256File(f, signal);
    out.push({ name: basename(f), bytes: (await stat(f)).size, sha256 });
  }
  const combined = out.length === 1 ? out[0]!.sha256 : createHash('sha256').update(out.map((f) => `${f.name} ${f.sha256}\n`).join('')).digest('hex');
  return { files: out, combined };
}

function graphFileName(key: string): string {
  return key === 'model' ? 'model.onnx' : key === 'backbone' ? 'backbone.onnx' : `${key.replace(/[^a-z0-9]+/gi, '-')}.onnx`;
}

/** Build a geo-dino model directory from a Hugging Face checkpoint. */
export async function buildModel(options: BuildOptions): Promise<ModelDir> {
  const log = options.log ?? silentLogger();
  const progress = options.progress ?? silentProgress;
  const from = resolve(options.from);
  const out = resolve(options.out);
  const dtype = options.dtype ?? 'fp32';
  const configPath = join(from, 'config.json');

  if (!(await fileExists(from))) throw new GeoDinoError('E_MODEL_NOT_FOUND', `${from}: no such directory`, { details: { dir: from } });
  if (!(await fileExists(configPath))) {
    throw new GeoDinoError('E_MODEL_NOT_FOUND', `${from}: no config.json (expected a Hugging Face model directory: config.json + safetensors)`, {
      details: { dir: from },
    });
  }
  if (out === from) throw new GeoDinoError('E_ARGUMENT', `--out must differ from --from (${out})`);
  if ((await fileExists(out)) && !options.force) {
    const entries = await readdir(out).catch(() => ['?']);
    if (entries.length > 0) throw new GeoDinoError('E_ARGUMENT', `${out} already exists; choose another --out or pass --force to replace it`, { details: { out } });
  }

  const config = await readJsonFile(configPath);
  const arch = parseArchitecture(config, configPath);
  const patch = arch.backbone.patchSize;
  let fixedSize: [number, number] | null = null;
  if (options.tileSize !== undefined && options.tileSize !== null) {
    const t = options.tileSize;
    if (!Number.isInteger(t) || t <= 0 || t % patch !== 0) {
      throw new GeoDinoError('E_ARGUMENT', `--tile-size must be a positive multiple of the patch size ${patch}, got ${t}`);
    }
    if (arch.head && t % (2 * patch) !== 0) {
      log.warn({ tileSize: t }, `tile size ${t} is not a multiple of ${2 * patch}: the CHMv2 output will be ${2 * patch * Math.ceil(t / (2 * patch))} px (spec §4.5)`);
    }
    fixedSize = [t, t];
  }
  if (options.split && !arch.head) log.info('a bare backbone is always built as a backbone graph; --split has no effect');

  const set = await WeightSet.open(from);
  try {
    const W = await resolveWeights(arch, set, configPath);
    throwIfAborted(options.signal);
    log.info({ architecture: describeArchitecture(arch), dtypes: set.dtypes(), tensors: set.names().length }, 'weights checked');

    const hashTask = progress.start('hashing weights', { total: set.files.length, unit: 'files' });
    const hashed = await hashWeights(set.files.map((f) => f.path), options.signal);
    hashTask.update(set.files.length);
    hashTask.finish();

    const gopts = { dtype, fixedSize, attention: options.attention ?? defaultAttention(dtype) } as const;
    const graphs: BuiltGraph[] = [];
    let layout: ModelMeta['layout'];
    if (!arch.head) {
      graphs.push(buildBackboneGraph(arch, W, gopts));
      layout = 'backbone';
    } else if (options.split) {
      graphs.push(buildBackboneGraph(arch, W, gopts), buildHeadGraph(arch, W, gopts));
      layout = 'split';
    } else {
      graphs.push(buildFusedGraph(arch, W, gopts));
      layout = 'fused';
    }

    const parent = dirname(out);
    await ensureDir(parent);
    const staging = temporaryPathFor(out);
    await ensureDir(staging);
    try {
      const total = graphs.reduce((s, g) => s + g.graph.initializers.length, 0);
      const task = progress.start('writing ONNX', { total, unit: 'tensors' });
      const files: Record<string, GraphFileInfo> = {};
      for (const bg of graphs) {
        for (const init of bg.graph.initializers) {
          const d = init.data;
          if (d instanceof Uint8Array) continue;
          const produce = d.produce.bind(d);
          init.data = {
            lazy: true,
            length: d.length,
            produce: async () => {
              throwIfAborted(options.signal);
              const bytes = await produce();
              task.tick();
              return bytes;
            },
          };
        }
        const file = graphFileName(bg.key);
        const saved = await saveModel(bg.graph, join(staging, file), {
          opsets: [{ domain: '', version: OPSET }, ...(bg.contrib ? [{ domain: 'com.microsoft', version: 1 }] : [])],
          irVersion: IR_VERSION,
          producerName: 'geo-dino',
          producerVersion: GEO_DINO_VERSION,
          docString: `${describeArchitecture(arch)}; ${dtype}; ${fixedSize ? `${fixedSize[0]}x${fixedSize[1]}` : 'dynamic size'}`,
          externalData: options.externalData ?? 'auto',
        });
        files[bg.key] = {
          file,
          ...(saved.externalDataFile ? { externalData: basename(saved.externalDataFile) } : {}),
          inputs: bg.inputs.map((v) => ({ name: v.name, dtype: 'float32' as const, dims: v.dims })),
          outputs: bg.outputs.map((v) => ({ name: v.name, dtype: 'float32' as const, dims: v.dims })),
          ...(bg.contrib ? { contribOps: true } : {}),
        };
        log.debug({ file, bytes: saved.bytes, externalBytes: saved.externalDataBytes }, 'graph written');
      }
      task.finish();

      const meta = makeMeta(arch, options, {
        layout,
        dtype,
        fixedSize,
        graphs: files,
        hashed,
        from,
      });
      const metaChecked = parseModelMeta(meta, MODEL_META_FILE);
      await writeJsonAtomic(join(staging, MODEL_META_FILE), metaChecked);
      throwIfAborted(options.signal);

      await replaceDirectory(staging, out);
    } catch (err) {
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    log.info({ out, layout, dtype }, 'model built');
    return openModelDir(out);
  } finally {
    await set.close();
  }
}

function makeMeta(
  arch: Architecture,
  options: BuildOptions,
  x: {
    layout: ModelMeta['layout'];
    dtype: ModelDtype;
    fixedSize: [number, number] | null;
    graphs: Record<string, GraphFileInfo>;
    hashed: { files: { name: string; bytes: number; sha256: string }[]; combined: string };
    from: string;
  },
): ModelMeta {
  const b = arch.backbone;
  const featureGraph = x.layout === 'fused' ? undefined : 'backbone';
  const heads: ModelMeta['heads'] = arch.head
    ? [
        {
          name: 'chm',
          kind: 'canopy-height',
          graph: x.layout === 'fused' ? 'model' : 'head:chm',
          outputs: { height: IO.height, uncertainty: IO.uncertainty },
          unit: 'm',
        },
      ]
    : [];
  return {
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    name: options.name ?? basename(x.from),
    description: describeArchitecture(arch),
    demo: options.demo ?? false,
    family: arch.family,
    architecture: arch as unknown as Record<string, unknown>,
    dtype: x.dtype,
    layout: x.layout,
    input: { name: IO.pixels, tileSize: x.fixedSize, sizeMultiple: b.patchSize, exactMultiple: arch.head ? 2 * b.patchSize : b.patchSize },
    normalization: { mean: [...CHMV2_MEAN] as [number, number, number], std: [...CHMV2_STD] as [number, number, number], scale: 255 },
    gsd: CHMV2_GSD,
    graphs: x.graphs,
    ...(featureGraph
      ? {
          features: {
            layers: b.outIndices,
            channels: b.hiddenSize,
            patchSize: b.patchSize,
            names: b.outIndices.map((_, k) => IO.feature(k)),
            clsNames: b.outIndices.map((_, k) => IO.cls(k)),
            graph: featureGraph,
          },
        }
      : {}),
    heads,
    source: {
      kind: options.sourceInfo?.kind ?? (options.demo ? 'demo' : 'huggingface'),
      path: x.from,
      ...(options.sourceInfo?.repo ? { repo: options.sourceInfo.repo } : {}),
      ...(options.sourceInfo?.revision ? { revision: options.sourceInfo.revision } : {}),
      ...(options.sourceInfo?.seed !== undefined ? { seed: options.sourceInfo.seed } : {}),
      files: x.hashed.files,
      weightsSha256: x.hashed.combined,
    },
    created: {
      by: `geo-dino ${GEO_DINO_VERSION}`,
      at: new Date().toISOString(),
      options: { dtype: x.dtype, tileSize: x.fixedSize?.[0] ?? null, split: x.layout === 'split', attention: options.attention ?? defaultAttention(x.dtype) },
    },
  };
}
