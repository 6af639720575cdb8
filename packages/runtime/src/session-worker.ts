/**
 * Worker-thread entry of the session pool: owns onnxruntime sessions (whose `run()` blocks this
 * thread, not the caller's event loop), runs chains of them, sends results back with their
 * buffers transferred.
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { cleanOrtMessage } from './providers.js';
import type { ExecutionProvider } from './providers.js';
import { CANCEL_ALL, CONTROL_CANCEL, CONTROL_STATE, STATE_FROZEN, STATE_IDLE, STATE_NATIVE } from './protocol.js';
import type { FromWorker, InitMessage, IoMeta, RunMessage, ToWorker, WireTensor, TensorData } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('session-worker must run in a worker thread');

let sessions = new Map<string, ort.InferenceSession>();
/** Shared with the pool (protocol.ts, CONTROL_STATE). */
let control: Int32Array | undefined;
/** The run in progress: `close` releases the sessions only after it. */
let active: Promise<void> = Promise.resolve();

class Cancelled extends Error {}

/**
 * Make an onnxruntime call (create, run, release) with the control state saying so: the pool's
 * exit hook waits for it to return before the process tears this thread down, and once the
 * process is exiting no call starts.
 */
async function native<T>(what: string, call: () => Promise<T>): Promise<T> {
  if (control && Atomics.compareExchange(control, CONTROL_STATE, STATE_IDLE, STATE_NATIVE) === STATE_FROZEN) {
    throw new Cancelled(`${what}: not started, the process is exiting`);
  }
  try {
    return await call();
  } finally {
    if (control) {
      Atomics.compareExchange(control, CONTROL_STATE, STATE_NATIVE, STATE_IDLE);
      Atomics.notify(control, CONTROL_STATE);
    }
  }
}

function abandoned(id: number): boolean {
  if (!control) return false;
  const c = Atomics.load(control, CONTROL_CANCEL);
  return c === id || c === CANCEL_ALL || Atomics.load(control, CONTROL_STATE) === STATE_FROZEN;
}

// Failures are reported through exceptions (and logged by the pool); keep native error lines
// about unavailable GPU providers off the user's terminal.
ort.env.logLevel = 'fatal';

function send(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  try {
    port!.postMessage(msg, transfer);
  } catch {
    // A buffer that cannot be transferred (owned by native memory): send a copy instead.
    port!.postMessage(msg);
  }
}

function providerList(p: ExecutionProvider, deviceId?: number): ort.InferenceSession.ExecutionProviderConfig[] {
  if (p === 'cpu') return ['cpu'];
  // GPU providers run what they support and leave the rest to the CPU provider; with several
  // GPUs, each worker its own (`--device cuda:0,cuda:1`).
  if (p === 'cuda' && deviceId !== undefined) return [{ name: 'cuda', deviceId }, 'cpu'];
  return [p, 'cpu'];
}

function ioMeta(list: readonly ort.InferenceSession.ValueMetadata[]): IoMeta[] {
  return list.map((m) => {
    if (m.isTensor) return { name: m.name, type: String(m.type), dims: m.shape.map((d) => (typeof d === 'number' ? d : String(d))) };
    return { name: m.name, type: 'non-tensor', dims: [] };
  });
}

async function init(msg: InitMessage): Promise<void> {
  control = new Int32Array(msg.control);
  const failures: { provider: ExecutionProvider; reason: string }[] = [];
  for (const provider of msg.providers) {
    const created = new Map<string, ort.InferenceSession>();
    try {
      for (const spec of msg.sessions) {
        const options: ort.InferenceSession.SessionOptions = {
          executionProviders: providerList(provider, msg.deviceId),
          graphOptimizationLevel: msg.optimization,
          logSeverityLevel: 3,
          executionMode: 'sequential',
          interOpNumThreads: 1,
          enableCpuMemArena: true,
          enableMemPattern: true,
        };
        if (provider === 'cpu') options.intraOpNumThreads = msg.threads;
        created.set(spec.name, await native(`load ${spec.path}`, () => ort.InferenceSession.create(spec.path, options)));
      }
      sessions = created;
      const io: Record<string, { inputs: IoMeta[]; outputs: IoMeta[] }> = {};
      for (const [name, s] of created) io[name] = { inputs: ioMeta(s.inputMetadata), outputs: ioMeta(s.outputMetadata) };
      send({ type: 'ready', provider, failures, io });
      return;
    } catch (err) {
      for (const s of created.values()) await native('release', () => s.release()).catch(() => undefined);
      failures.push({ provider, reason: cleanOrtMessage(err instanceof Error ? err.message : String(err)) });
    }
  }
  send({
    type: 'init-error',
    message: failures.map((f) => `${f.provider}: ${f.reason}`).join('; '),
    failures,
  });
}

function toOrt(t: WireTensor): ort.Tensor {
  return new ort.Tensor(t.type, t.data as ort.Tensor.DataType, [...t.dims]);
}

async function run(msg: RunMessage): Promise<void> {
  const values = new Map<string, ort.Tensor>();
  for (const f of msg.feeds) values.set(f.name, toOrt(f));
  const timings: { session: string; ms: number }[] = [];
  let lastOutputs: string[] = [];
  for (const name of msg.chain) {
    // Abandoned by its caller or the pool is closing: the rest of the chain is not run.
    if (abandoned(msg.id)) throw new Cancelled(`run ${msg.id} abandoned before ${name}`);
    const s = sessions.get(name);
    if (!s) throw new Error(`no session named ${name} (have ${[...sessions.keys()].join(', ')})`);
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of s.inputNames) {
      const v = values.get(input);
      if (!v) throw new Error(`session ${name}: input ${input} was not provided (have ${[...values.keys()].join(', ')})`);
      feeds[input] = v;
    }
    const t0 = performance.now();
    const out = await native(`run ${name}`, () => s.run(feeds));
    timings.push({ session: name, ms: performance.now() - t0 });
    for (const [k, v] of Object.entries(out)) values.set(k, v);
    lastOutputs = s.outputNames.slice();
  }
  const want = msg.outputs ?? lastOutputs;
  const outputs: WireTensor[] = [];
  const transfer: ArrayBuffer[] = [];
  for (const name of want) {
    const v = values.get(name);
    if (!v) throw new Error(`output ${name} was not produced (have ${[...values.keys()].join(', ')})`);
    const data = v.data as TensorData;
    outputs.push({ name, type: v.type as WireTensor['type'], dims: [...v.dims], data });
    if (data.buffer instanceof ArrayBuffer && !transfer.includes(data.buffer)) transfer.push(data.buffer);
  }
  send({ type: 'result', id: msg.id, outputs, timings }, transfer);
}

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'init') {
    void init(msg);
  } else if (msg.type === 'run') {
    active = run(msg).catch((err: unknown) => {
      // An abandoned run's error is dropped by the pool: its caller was answered when it was abandoned.
      send({ type: 'run-error', id: msg.id, message: cleanOrtMessage(err instanceof Error ? err.message : String(err)) });
    });
  } else if (msg.type === 'close') {
    // Never torn down mid-run: the run in progress ends (or stops at its next step) first, then
    // the sessions are released and the thread ends by itself (the pool never terminates it).
    void (async () => {
      await active;
      for (const s of sessions.values()) await native('release', () => s.release()).catch(() => undefined);
      sessions.clear();
      port.close();
    })();
  }
});
