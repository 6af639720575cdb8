/**
 * A small pool of worker threads, each holding onnxruntime sessions for the same set of graphs.
 *
 * - `run()` of onnxruntime-node blocks the thread it is called on, so sessions live in workers
 *   and the caller's event loop stays responsive (timers, HTTP, progress, Ctrl-C).
 * - Execution provider: `auto` tries CUDA then CPU; `cuda` and `webgpu` fall back to CPU when
 *   they cannot load, with a log line saying why; `pool.provider` is what is actually used.
 * - A run is a *chain* of sessions in one worker: the outputs of one feed the next by name, so a
 *   backbone's features go straight into one or more heads without crossing threads.
 * - Input buffers are transferred to the worker (not copied) when the typed array owns its whole
 *   buffer; outputs come back transferred.
 * - A worker is never torn down while onnxruntime runs on it: onnxruntime-node's `run()` is
 *   synchronous native code on the worker's thread, and a worker terminated mid-run aborts the
 *   whole process when the call returns (`terminate called after throwing an instance of
 *   'Napi::Error'`, not a catchable error). So `close()` waits for each worker's current session
 *   run to return (the rest of its chain is skipped) and lets the worker end by itself; an aborted
 *   run rejects at once and its worker finishes in the background; and an exit hook makes
 *   `process.exit()` / an uncaught exception wait for the running session first (`freezeWorkers`).
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { GeoDinoError, silentLogger, type Logger } from '@geo-dino/core';
import { cudaProviderInstalled, providerHint, type ExecutionProvider } from './providers.js';
import { CANCEL_ALL, CONTROL_CANCEL, CONTROL_STATE, CONTROL_WORDS, STATE_FROZEN, STATE_IDLE, STATE_NATIVE } from './protocol.js';
import type { FromWorker, HostTensor, IoMeta, ReadyMessage, RunMessage, SessionSpec, ToWorker, WireTensor } from './protocol.js';

export type Device = 'auto' | 'cpu' | 'cuda' | 'webgpu';

export interface SessionPoolOptions {
  /** Which execution provider to use (default `auto`: CUDA when it works, else CPU). */
  device?: Device;
  /** Worker threads, each with its own sessions (default 1). */
  workers?: number;
  /** Intra-op threads per worker on CPU (default: available cores / workers, at least 1). */
  threads?: number;
  /** onnxruntime graph optimisation level (default `all`). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * GPUs to spread the workers over (`--device cuda:0,cuda:1`): worker i runs on
   * `deviceIds[i % n]`, and there are at least as many workers as GPUs. CUDA only.
   */
  deviceIds?: readonly number[];
  log?: Logger;
}

/**
 * Parse a `--device` value: `auto`, `cpu`, `cuda`, `webgpu`, or `cuda:<n>[,cuda:<m>…]` (one
 * session worker per listed GPU).
 */
export function parseDevice(value: string, field = '--device'): { device: Device; deviceIds?: number[] } {
  if (value === 'auto' || value === 'cpu' || value === 'cuda' || value === 'webgpu') return { device: value };
  const parts = value.split(',').map((p) => p.trim());
  const ids = parts.map((p) => /^cuda:(\d{1,2})$/.exec(p)?.[1]);
  if (ids.every((id) => id !== undefined) && new Set(ids).size === ids.length) return { device: 'cuda', deviceIds: ids.map(Number) };
  throw new GeoDinoError('E_ARGUMENT', `${field}: ${JSON.stringify(value)} is not auto, cpu, cuda, webgpu or a list of distinct GPUs like cuda:0,cuda:1`, { details: { field } });
}

export interface RunOptions {
  /** Outputs to return, from any session of the chain (default: all outputs of the last one). */
  outputs?: readonly string[];
  /** Transfer input buffers to the worker (default true); false always copies. */
  transfer?: boolean;
  /** Rejects the run with E_CANCELLED when aborted (see `finishIfStarted`). */
  signal?: AbortSignal;
  /**
   * When `signal` aborts after the run was handed to a worker, let it complete and resolve
   * (default false: reject at once, skip the rest of the chain, drop the result). For callers
   * that would wait for the session anyway (`close()` does) and want to keep what it computes;
   * a run still queued is cancelled either way.
   */
  finishIfStarted?: boolean;
}

export interface RunResult {
  outputs: Record<string, HostTensor>;
  /** Milliseconds per session, in chain order. */
  timings: { session: string; ms: number }[];
  /** Which worker ran it. */
  worker: number;
}

export interface SessionPool {
  /** The provider actually in use. */
  readonly provider: ExecutionProvider;
  /** Providers that were tried first and failed, with onnxruntime's reason. */
  readonly fallbacks: readonly { provider: ExecutionProvider; reason: string }[];
  readonly workers: number;
  readonly threads: number;
  /** Inputs and outputs of each session (names, element types, dims; symbolic dims as strings). */
  readonly io: Readonly<Record<string, { inputs: IoMeta[]; outputs: IoMeta[] }>>;
  readonly stats: {
    /** How many times each session has run (counted from completed runs). */
    readonly runs: Readonly<Record<string, number>>;
    /**
     * Workers inside an onnxruntime call right now: a run in progress, including one whose caller
     * aborted it or closed the pool (it is finishing in the background; its result is dropped).
     */
    readonly executing: number;
  };
  /**
   * Run `chain` in one worker. Rejects with E_CANCELLED when `signal` aborts (at once, also while
   * the worker is running it: the rest of the chain is skipped, the result dropped) or when the
   * pool is closed before the run completes.
   */
  run(chain: string | readonly string[], feeds: Record<string, HostTensor>, options?: RunOptions): Promise<RunResult>;
  /**
   * Stop: later runs are refused, queued and running calls reject with E_CANCELLED, and it
   * resolves once every worker has ended by itself — after its current *session* run (not the
   * rest of the chain) has returned and its sessions are released. There is no deadline after
   * which workers are terminated: that cannot be made safe (see the file comment), so a session
   * run that never returns keeps close() waiting. Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

export function providerCandidates(device: Device): ExecutionProvider[] {
  switch (device) {
    case 'cpu':
      return ['cpu'];
    case 'cuda':
    case 'auto':
      return ['cuda', 'cpu'];
    case 'webgpu':
      return ['webgpu', 'cpu'];
  }
}

interface Pending {
  msg: RunMessage;
  transfer: ArrayBuffer[];
  resolve: (r: RunResult) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  settled: boolean;
  finishIfStarted: boolean;
  /** The worker running it, once dispatched. */
  slot?: Slot;
}

interface Slot {
  index: number;
  worker: Worker;
  control: Int32Array;
  busy: Pending | undefined;
  dead: boolean;
  exited: Promise<void>;
}

/** Control words of every live session worker in this process. */
const liveControls = new Set<Int32Array>();
let exitHook = false;

/**
 * The process is exiting (`process.exit()`, an uncaught exception): Node is about to tear down
 * the worker threads, which aborts the process if one is inside onnxruntime. Freeze every worker
 * first — one in a session run is waited for (synchronously: 'exit' listeners cannot wait
 * otherwise), and none starts another onnxruntime call.
 */
function freezeWorkers(): void {
  for (const c of liveControls) {
    Atomics.store(c, CONTROL_CANCEL, CANCEL_ALL);
    while (Atomics.compareExchange(c, CONTROL_STATE, STATE_IDLE, STATE_FROZEN) === STATE_NATIVE) {
      Atomics.wait(c, CONTROL_STATE, STATE_NATIVE);
    }
  }
}

function track(worker: Worker): Int32Array {
  const control = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * Int32Array.BYTES_PER_ELEMENT));
  if (!exitHook) {
    exitHook = true;
    process.on('exit', freezeWorkers);
  }
  liveControls.add(control);
  worker.once('exit', () => liveControls.delete(control));
  return control;
}

const WORKER_URL = new URL('./session-worker.js', import.meta.url);

function startWorker(sessions: SessionSpec[], providers: ExecutionProvider[], threads: number, optimization: SessionPoolOptions['optimization'], deviceId?: number): Promise<{ worker: Worker; control: Int32Array; ready: ReadyMessage }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL);
    const control = track(worker);
    const onMessage = (msg: FromWorker): void => {
      if (msg.type === 'ready') {
        cleanup();
        resolve({ worker, control, ready: msg });
      } else if (msg.type === 'init-error') {
        cleanup();
        // Safe: it has left onnxruntime (every load failed) and waits for messages.
        void worker.terminate();
        reject(
          new GeoDinoError('E_RUNTIME', `onnxruntime could not load ${sessions.map((s) => s.path).join(', ')}: ${msg.message}`, {
            details: { failures: msg.failures },
          }),
        );
      }
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new GeoDinoError('E_RUNTIME', `session worker failed to start: ${err.message}`, { cause: err }));
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new GeoDinoError('E_RUNTIME', `session worker exited with code ${code} while loading the model`));
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage({ type: 'init', control: control.buffer as SharedArrayBuffer, sessions, providers, threads, optimization: optimization ?? 'all', ...(deviceId !== undefined ? { deviceId } : {}) } satisfies ToWorker);
  });
}

/** Prepare feeds for postMessage: transfer whole-buffer views, copy partial views. */
function wireFeeds(feeds: Record<string, HostTensor>, transfer: boolean): { wire: WireTensor[]; buffers: ArrayBuffer[] } {
  const wire: WireTensor[] = [];
  const buffers: ArrayBuffer[] = [];
  for (const [name, t] of Object.entries(feeds)) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) {
      throw new GeoDinoError('E_ARGUMENT', `input ${name}: ${t.data.length} values for shape [${t.dims.join(',')}] (needs ${n})`);
    }
    let data = t.data;
    const whole = data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
    if (transfer && whole && !buffers.includes(data.buffer as ArrayBuffer)) {
      buffers.push(data.buffer as ArrayBuffer);
    } else {
      data = data.slice() as typeof data;
      buffers.push(data.buffer as ArrayBuffer);
    }
    wire.push({ name, type: t.type, dims: [...t.dims], data });
  }
  return { wire, buffers };
}

/**
 * Start `workers` workers, each loading every session. Resolves when all are ready; rejects with
 * E_RUNTIME (naming the files and onnxruntime's reason) when no provider can load them.
 */
export async function createSessionPool(sessions: readonly SessionSpec[], options: SessionPoolOptions = {}): Promise<SessionPool> {
  const log = options.log ?? silentLogger();
  const device = options.device ?? 'auto';
  const gpus = options.deviceIds?.length ? [...options.deviceIds] : null;
  if (gpus && device !== 'cuda') throw new GeoDinoError('E_ARGUMENT', `device ids (${gpus.join(', ')}) need the cuda device (got ${device})`);
  const workersN = Math.max(gpus?.length ?? 1, Math.floor(options.workers ?? 1));
  const gpuOf = (i: number): number | undefined => (gpus ? gpus[i % gpus.length] : undefined);
  const threads = Math.max(1, Math.floor(options.threads ?? Math.max(1, Math.floor(availableParallelism() / workersN))));
  let candidates = providerCandidates(device);
  const skipped: { provider: ExecutionProvider; reason: string }[] = [];
  if (device === 'auto' && !cudaProviderInstalled()) {
    // Nothing to try: the CUDA provider library is not installed (README, "GPU").
    candidates = candidates.filter((c) => c !== 'cuda');
    skipped.push({ provider: 'cuda', reason: 'the CUDA execution provider is not installed (README, "GPU")' });
  }

  // The first worker decides the provider; the others load with that provider only.
  const first = await startWorker([...sessions], candidates, threads, options.optimization, gpuOf(0));
  const provider = first.ready.provider;
  const failed = first.ready.failures.map((f) => {
    const hint = providerHint(f.provider, f.reason);
    return hint ? { ...f, reason: `${f.reason} — ${hint}` } : f;
  });
  const fallbacks = [...skipped, ...failed];
  for (const f of skipped) log.debug({ provider: f.provider, reason: f.reason }, `execution provider ${f.provider} skipped, using ${provider}`);
  for (const f of failed) {
    const level = device === 'auto' ? 'info' : 'warn';
    log[level]({ provider: f.provider, reason: f.reason }, `execution provider ${f.provider} unavailable, using ${provider}`);
  }
  candidates = [provider];
  const slotOf = (index: number, w: { worker: Worker; control: Int32Array }): Slot => ({
    index,
    worker: w.worker,
    control: w.control,
    busy: undefined,
    dead: false,
    exited: new Promise<void>((r) => w.worker.once('exit', () => r())),
  });
  const slots: Slot[] = [slotOf(0, first)];
  try {
    for (let i = 1; i < workersN; i++) slots.push(slotOf(i, await startWorker([...sessions], candidates, threads, options.optimization, gpuOf(i))));
  } catch (err) {
    // Safe: these are loaded and idle (no run was sent).
    await Promise.all(slots.map((s) => s.worker.terminate()));
    throw err;
  }
  log.debug({ provider, workers: workersN, threads, ...(gpus ? { gpus } : {}), sessions: sessions.map((s) => s.name) }, 'sessions loaded');

  const runs: Record<string, number> = {};
  const queue: Pending[] = [];
  let nextId = 1;
  let closed = false;
  let closing: Promise<void> | undefined;

  const settle = (p: Pending, ok: boolean, value: unknown): void => {
    if (p.settled) return;
    p.settled = true;
    if (p.signal && p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
    if (ok) p.resolve(value as RunResult);
    else p.reject(value);
  };

  const dispatch = (): void => {
    for (const slot of slots) {
      if (slot.dead || slot.busy) continue;
      let job: Pending | undefined;
      while ((job = queue.shift()) && job.settled) {
        /* skip cancelled jobs */
      }
      if (!job) return;
      slot.busy = job;
      job.slot = slot;
      try {
        slot.worker.postMessage(job.msg, job.transfer);
      } catch (err) {
        slot.busy = undefined;
        settle(job, false, new GeoDinoError('E_INTERNAL', `cannot send the run to the worker: ${(err as Error).message}`, { cause: err }));
      }
    }
  };

  for (const slot of slots) {
    slot.worker.on('message', (msg: FromWorker) => {
      const job = slot.busy;
      if (!job || (msg.type !== 'result' && msg.type !== 'run-error') || msg.id !== job.msg.id) return;
      slot.busy = undefined;
      if (msg.type === 'result') {
        for (const t of msg.timings) runs[t.session] = (runs[t.session] ?? 0) + 1;
        const outputs: Record<string, HostTensor> = {};
        for (const o of msg.outputs) outputs[o.name] = { type: o.type, dims: o.dims, data: o.data };
        settle(job, true, { outputs, timings: msg.timings, worker: slot.index });
      } else {
        settle(job, false, new GeoDinoError('E_RUNTIME', `inference failed (${job.msg.chain.join(' → ')}): ${msg.message}`));
      }
      dispatch();
    });
    const onDeath = (reason: string): void => {
      if (slot.dead) return;
      slot.dead = true;
      const job = slot.busy;
      slot.busy = undefined;
      if (job) settle(job, false, new GeoDinoError('E_RUNTIME', `session worker ${slot.index} died: ${reason}`));
      if (!closed && slots.every((s) => s.dead)) {
        for (const q of queue.splice(0)) settle(q, false, new GeoDinoError('E_RUNTIME', `no session worker left: ${reason}`));
      } else {
        dispatch();
      }
    };
    slot.worker.on('error', (err) => onDeath(err.message));
    slot.worker.on('exit', (code) => onDeath(`exited with code ${code}`));
  }

  const pool: SessionPool = {
    provider,
    fallbacks,
    workers: workersN,
    threads,
    io: first.ready.io,
    stats: {
      runs,
      get executing() {
        return slots.filter((s) => !s.dead && Atomics.load(s.control, CONTROL_STATE) === STATE_NATIVE).length;
      },
    },
    run(chainIn, feeds, runOptions = {}) {
      if (closed) return Promise.reject(new GeoDinoError('E_INTERNAL', 'session pool used after close()'));
      const chain = typeof chainIn === 'string' ? [chainIn] : [...chainIn];
      for (const c of chain) {
        if (!first.ready.io[c]) return Promise.reject(new GeoDinoError('E_INTERNAL', `no session named ${c} (have ${Object.keys(first.ready.io).join(', ')})`));
      }
      if (runOptions.signal?.aborted) return Promise.reject(new GeoDinoError('E_CANCELLED', 'interrupted'));
      let wire: { wire: WireTensor[]; buffers: ArrayBuffer[] };
      try {
        wire = wireFeeds(feeds, runOptions.transfer ?? true);
      } catch (err) {
        return Promise.reject(err);
      }
      return new Promise<RunResult>((resolve, reject) => {
        const job: Pending = {
          msg: { type: 'run', id: nextId++, chain, feeds: wire.wire, ...(runOptions.outputs ? { outputs: [...runOptions.outputs] } : {}) },
          transfer: wire.buffers,
          resolve,
          reject,
          settled: false,
          finishIfStarted: runOptions.finishIfStarted ?? false,
        };
        if (runOptions.signal) {
          job.signal = runOptions.signal;
          job.onAbort = () => {
            if (job.slot && job.finishIfStarted) return;
            settle(job, false, new GeoDinoError('E_CANCELLED', 'interrupted'));
            // Running: the worker skips the rest of the chain; its result will be dropped.
            if (job.slot?.busy === job) Atomics.store(job.slot.control, CONTROL_CANCEL, job.msg.id);
          };
          runOptions.signal.addEventListener('abort', job.onAbort, { once: true });
        }
        queue.push(job);
        dispatch();
      });
    },
    close() {
      closing ??= (async () => {
        closed = true;
        for (const q of queue.splice(0)) settle(q, false, new GeoDinoError('E_CANCELLED', 'session pool closed before this run started'));
        await Promise.all(
          slots.map(async (s) => {
            Atomics.store(s.control, CONTROL_CANCEL, CANCEL_ALL);
            const busy = s.busy;
            if (busy) {
              settle(busy, false, new GeoDinoError('E_CANCELLED', `session pool closed while this run (${busy.msg.chain.join(' → ')}) was executing; its result is discarded`));
            }
            if (s.dead) return;
            // The worker finishes its current session run, releases its sessions and ends by
            // itself; terminating it instead would abort the process if it is inside onnxruntime.
            try {
              s.worker.postMessage({ type: 'close' } satisfies ToWorker);
            } catch {
              /* already ending */
            }
            await s.exited;
          }),
        );
      })();
      return closing;
    },
  };
  return pool;
}
