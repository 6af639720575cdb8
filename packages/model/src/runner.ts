/**
 * `openModel`: a model directory (or `demo`) → sessions in worker threads, with calls named
 * after what they do: `runChm` (pixels → height + uncertainty), `runBackbone` (pixels → the
 * four feature maps + cls tokens), `runHead`, and `runHeads` (one backbone pass feeding several
 * heads). The pool is @geo-dino/runtime's; see its README for providers and threading.
 */
import { GeoDinoError, silentLogger, type Logger } from '@geo-dino/core';
import { createSessionPool, type Device, type ExecutionProvider, type HostTensor, type IoMeta, type RunOptions, type SessionPool, type SessionSpec } from '@geo-dino/runtime';
import { openModelDir, type ModelDir, type ModelMeta } from './modeldir.js';
import { ensureDemoModel } from './demo.js';
import { chmOutputSize } from './graph/model.js';

export interface OpenModelOptions {
  /** `auto` (CUDA when it works, else CPU), `cpu`, `cuda`, or `webgpu` (only on request). */
  device?: Device;
  /** Intra-op threads per worker (CPU). */
  threads?: number;
  /** Worker threads, each with its own copy of the sessions (default 1). */
  workers?: number;
  /** GPUs to spread the workers over (`--device cuda:0,cuda:1`: one worker per GPU at least). */
  deviceIds?: readonly number[];
  /** Extra head graphs to attach to a split model's backbone, by name (e.g. `{ landcover: 'head.onnx' }`). */
  heads?: Record<string, string>;
  /** For `openModel('demo')`: where the demo model lives (default `$GEO_DINO_HOME/models/demo`). */
  demoDir?: string;
  log?: Logger;
}

export interface ChmResult {
  /** Canopy height in metres, [B, Ho, Wo] row-major. */
  height: Float32Array;
  /** Standard deviation of the bin distribution in metres, [B, Ho, Wo]; null when the model has no such output. */
  uncertainty: Float32Array | null;
  /** [B, Ho, Wo]: equal to the input size when H and W are multiples of 32 (spec §4.5). */
  dims: [number, number, number];
}

export interface BackboneFeatures {
  /** features_k [B, D, H/16, W/16], one per selected layer. */
  features: HostTensor[];
  /** cls_k [B, D]. */
  cls: HostTensor[];
  /** The same tensors by graph output name (`features_0`, `cls_0`, …), as heads take them. */
  byName: Record<string, HostTensor>;
}

export interface RunCallOptions {
  /** Rejects the call with E_CANCELLED when aborted, also while it runs (its result is dropped). */
  signal?: AbortSignal;
  /** An abort only cancels the call while it waits for a worker; once running it completes (the pool's `finishIfStarted`). */
  finishIfStarted?: boolean;
  /** Transfer the input buffer to the worker (default true: do not reuse `pixels` afterwards). */
  transfer?: boolean;
}

export interface ModelRunner {
  readonly dir: ModelDir;
  readonly meta: ModelMeta;
  /** Execution provider actually in use. */
  readonly provider: ExecutionProvider;
  readonly fallbacks: readonly { provider: ExecutionProvider; reason: string }[];
  /** Head names available to runHead/runHeads (`chm` and any attached). */
  readonly heads: readonly string[];
  /** Completed executions: the backbone (split, or fused graphs, which contain it), each head. */
  readonly stats: { readonly backboneRuns: number; readonly headRuns: Readonly<Record<string, number>>; readonly runs: Readonly<Record<string, number>> };
  /** Output [Ho, Wo] for an input of H×W. */
  outputSize(height: number, width: number): [number, number];
  runChm(pixels: Float32Array, batch: number, height: number, width: number, options?: RunCallOptions): Promise<ChmResult>;
  runBackbone(pixels: Float32Array, batch: number, height: number, width: number, options?: RunCallOptions): Promise<BackboneFeatures>;
  runHead(name: string, features: BackboneFeatures | Record<string, HostTensor>, options?: { signal?: AbortSignal }): Promise<Record<string, HostTensor>>;
  runHeads(pixels: Float32Array, batch: number, height: number, width: number, heads: readonly string[], options?: RunCallOptions): Promise<Record<string, Record<string, HostTensor>>>;
  close(): Promise<void>;
}

function headKey(name: string): string {
  return `head:${name}`;
}

/**
 * Open a model: `dir` is a geo-dino model directory, or `demo` for the built-in random-weight
 * demo model (created on first use; no download).
 */
export async function openModel(dir: string, options: OpenModelOptions = {}): Promise<ModelRunner> {
  const log = options.log ?? silentLogger();
  const md = dir === 'demo' ? await openModelDir(await ensureDemoModel({ ...(options.demoDir ? { dir: options.demoDir } : {}), log })) : await openModelDir(dir);
  const meta = md.meta;
  if (meta.demo) log.warn({ model: meta.name }, 'demo model: random weights, heights are NOT real canopy heights');

  const sessions: SessionSpec[] = Object.keys(meta.graphs).map((key) => ({ name: key, path: md.graphPath(key) }));
  const extra = options.heads ?? {};
  if (Object.keys(extra).length && !meta.features) {
    throw new GeoDinoError('E_ARGUMENT', `${md.dir}: extra heads need a split or backbone model (this one is ${meta.layout}); rebuild with --split`);
  }
  for (const [name, path] of Object.entries(extra)) {
    if (name === 'chm' && md.chmHead()) throw new GeoDinoError('E_ARGUMENT', `head name "chm" is taken by the model's own head`);
    sessions.push({ name: headKey(name), path });
  }
  const pool = await createSessionPool(sessions, {
    device: options.device ?? 'auto',
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
    ...(options.deviceIds?.length ? { deviceIds: options.deviceIds } : {}),
    log,
  });
  try {
    checkIo(md, pool, Object.keys(extra));
  } catch (err) {
    await pool.close();
    throw err;
  }
  log.info({ model: meta.name, provider: pool.provider, workers: pool.workers, threads: pool.threads }, 'model loaded');
  return makeRunner(md, pool, Object.keys(extra));
}

/** Check that what onnxruntime loaded matches geo-dino.json (and that extra heads fit the backbone). */
function checkIo(md: ModelDir, pool: SessionPool, extraHeads: string[]): void {
  const meta = md.meta;
  const names = (l: IoMeta[]): string[] => l.map((x) => x.name);
  for (const [key, g] of Object.entries(meta.graphs)) {
    const io = pool.io[key]!;
    for (const i of g.inputs) {
      if (!names(io.inputs).includes(i.name)) throw new GeoDinoError('E_BAD_MODEL', `${md.graphPath(key)}: has no input ${i.name} (has ${names(io.inputs).join(', ')}), unlike geo-dino.json says`);
    }
    for (const o of g.outputs) {
      if (!names(io.outputs).includes(o.name)) throw new GeoDinoError('E_BAD_MODEL', `${md.graphPath(key)}: has no output ${o.name} (has ${names(io.outputs).join(', ')}), unlike geo-dino.json says`);
    }
  }
  if (meta.features) {
    const provided = new Set([...meta.features.names, ...meta.features.clsNames]);
    for (const h of extraHeads) {
      const io = pool.io[headKey(h)]!;
      const missing = io.inputs.filter((i) => !provided.has(i.name));
      if (missing.length) {
        throw new GeoDinoError(
          'E_BAD_MODEL',
          `head ${h}: input ${missing[0]!.name} is not a backbone output (the backbone gives ${[...provided].join(', ')})`,
        );
      }
    }
  }
}

function makeRunner(md: ModelDir, pool: SessionPool, extraHeads: string[]): ModelRunner {
  const meta = md.meta;
  const chm = md.chmHead();
  const headNames = [...(chm ? [chm.name] : []), ...extraHeads];
  const patch = meta.input.sizeMultiple;
  const backboneGraph = meta.features?.graph;

  const checkPixels = (pixels: Float32Array, B: number, H: number, W: number): void => {
    if (![B, H, W].every((v) => Number.isInteger(v) && v > 0)) {
      throw new GeoDinoError('E_ARGUMENT', `batch, height and width must be positive integers (got ${B}, ${H}, ${W})`);
    }
    if (pixels.length !== B * 3 * H * W) {
      throw new GeoDinoError('E_ARGUMENT', `pixels: ${pixels.length} values for [${B},3,${H},${W}] (needs ${B * 3 * H * W})`);
    }
    const t = meta.input.tileSize;
    if (t && (H !== t[0] || W !== t[1])) {
      throw new GeoDinoError('E_ARGUMENT', `${meta.name} was built for ${t[0]}×${t[1]} tiles; got ${H}×${W} (rebuild without --tile-size for any size)`);
    }
    if (H % patch !== 0 || W % patch !== 0) {
      throw new GeoDinoError('E_ARGUMENT', `tile ${H}×${W}: height and width must be multiples of ${patch} (pad centred after normalising, spec §3.2)`);
    }
  };
  const feed = (pixels: Float32Array, B: number, H: number, W: number): Record<string, HostTensor> => ({
    [meta.input.name]: { type: 'float32', dims: [B, 3, H, W], data: pixels },
  });
  const runOpts = (o: RunCallOptions | undefined, outputs?: string[]): RunOptions => ({
    ...(outputs ? { outputs } : {}),
    transfer: o?.transfer ?? true,
    ...(o?.signal ? { signal: o.signal } : {}),
    ...(o?.finishIfStarted ? { finishIfStarted: true } : {}),
  });
  const needBackbone = (): string => {
    if (!backboneGraph) {
      throw new GeoDinoError('E_ARGUMENT', `${meta.name} is a ${meta.layout} model without a separate backbone; rebuild with --split to get features or share the backbone between heads`);
    }
    return backboneGraph;
  };
  const toFeatures = (byName: Record<string, HostTensor>): BackboneFeatures => ({
    features: meta.features!.names.map((n) => byName[n]!),
    cls: meta.features!.clsNames.map((n) => byName[n]!),
    byName,
  });

  const runner: ModelRunner = {
    dir: md,
    meta,
    provider: pool.provider,
    fallbacks: pool.fallbacks,
    heads: headNames,
    stats: {
      get backboneRuns() {
        const r = pool.stats.runs;
        // A fused graph contains the backbone; a split model runs it as its own graph.
        return backboneGraph ? (r[backboneGraph] ?? 0) : (r['model'] ?? 0);
      },
      get headRuns() {
        const r = pool.stats.runs;
        const out: Record<string, number> = {};
        for (const h of headNames) {
          const key = h === chm?.name ? chm.graph : headKey(h);
          out[h] = r[key] ?? 0;
        }
        return out;
      },
      get runs() {
        return pool.stats.runs;
      },
    },
    outputSize(h, w) {
      if (meta.family === 'external') return [h, w];
      return [chmOutputSize(h, patch), chmOutputSize(w, patch)];
    },
    async runChm(pixels, B, H, W, o) {
      if (!chm) throw new GeoDinoError('E_ARGUMENT', `${meta.name} has no canopy-height head (it is a ${meta.family} backbone)`);
      checkPixels(pixels, B, H, W);
      const outNames = [chm.outputs.height!, ...(chm.outputs.uncertainty ? [chm.outputs.uncertainty] : [])];
      const chain = chm.graph === 'model' || !backboneGraph ? [chm.graph] : [backboneGraph, chm.graph];
      const r = await pool.run(chain, feed(pixels, B, H, W), runOpts(o, outNames));
      const h = r.outputs[chm.outputs.height!]!;
      const dims = h.dims.length === 4 ? [h.dims[0]!, h.dims[2]!, h.dims[3]!] : [h.dims[0]!, h.dims[1]!, h.dims[2]!];
      const u = chm.outputs.uncertainty ? r.outputs[chm.outputs.uncertainty] : undefined;
      return {
        height: h.data as Float32Array,
        uncertainty: u ? (u.data as Float32Array) : null,
        dims: dims as [number, number, number],
      };
    },
    async runBackbone(pixels, B, H, W, o) {
      const g = needBackbone();
      checkPixels(pixels, B, H, W);
      const r = await pool.run([g], feed(pixels, B, H, W), runOpts(o));
      return toFeatures(r.outputs);
    },
    async runHead(name, features, o) {
      if (!headNames.includes(name)) throw new GeoDinoError('E_ARGUMENT', `no head named ${name} (have ${headNames.join(', ') || 'none'})`);
      const key = name === chm?.name ? chm.graph : headKey(name);
      if (key === 'model') throw new GeoDinoError('E_ARGUMENT', `${meta.name} is fused: its head cannot run on features; rebuild with --split`);
      const byName = 'byName' in features ? (features.byName as Record<string, HostTensor>) : features;
      const want = pool.io[key]!.inputs.map((i) => i.name);
      const feeds: Record<string, HostTensor> = {};
      for (const n of want) {
        const t = byName[n];
        if (!t) throw new GeoDinoError('E_ARGUMENT', `head ${name}: feature ${n} missing from the features given`);
        feeds[n] = t;
      }
      // Features may feed several heads: copy, never detach the caller's buffers.
      const r = await pool.run([key], feeds, { transfer: false, ...(o?.signal ? { signal: o.signal } : {}) });
      return r.outputs;
    },
    async runHeads(pixels, B, H, W, heads, o) {
      for (const h of heads) if (!headNames.includes(h)) throw new GeoDinoError('E_ARGUMENT', `no head named ${h} (have ${headNames.join(', ') || 'none'})`);
      checkPixels(pixels, B, H, W);
      if (!backboneGraph) {
        if (chm && heads.length === 1 && heads[0] === chm.name) {
          const r = await pool.run([chm.graph], feed(pixels, B, H, W), runOpts(o));
          return { [chm.name]: r.outputs };
        }
        needBackbone();
      }
      const keys = heads.map((h) => (h === chm?.name ? chm!.graph : headKey(h)));
      const outputsByHead = keys.map((k) => pool.io[k]!.outputs.map((x) => x.name));
      const all = outputsByHead.flat();
      if (new Set(all).size !== all.length) {
        throw new GeoDinoError('E_ARGUMENT', `heads ${heads.join(', ')} have outputs with the same name; run them separately with runBackbone + runHead`);
      }
      const r = await pool.run([backboneGraph!, ...keys], feed(pixels, B, H, W), runOpts(o, all));
      const out: Record<string, Record<string, HostTensor>> = {};
      heads.forEach((h, i) => {
        out[h] = Object.fromEntries(outputsByHead[i]!.map((n) => [n, r.outputs[n]!]));
      });
      return out;
    },
    close() {
      return pool.close();
    },
  };
  return runner;
}
