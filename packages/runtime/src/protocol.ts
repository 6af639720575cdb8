/**
 * Messages between the session pool (main thread) and its worker threads. Tensor data travels as
 * typed arrays whose buffers are transferred, not copied.
 */
import type { ExecutionProvider } from './providers.js';

export type TensorType = 'float32' | 'float16' | 'int64' | 'int32' | 'uint8' | 'int8' | 'bool';

export type TensorData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;

/** A tensor on the host: element type, shape and data (row-major). */
export interface HostTensor {
  type: TensorType;
  dims: readonly number[];
  data: TensorData;
}

export interface WireTensor extends HostTensor {
  name: string;
}

export interface IoMeta {
  name: string;
  type: string;
  /** Symbolic dimensions are strings. */
  dims: (number | string)[];
}

export interface SessionSpec {
  /** Key used in `run` chains (e.g. `backbone`, `head:chm`). */
  name: string;
  /** Path of the .onnx file (external data is resolved beside it). */
  path: string;
}

/**
 * Control words shared by the pool and one worker (an `Int32Array` over `InitMessage.control`),
 * read and written with `Atomics` so they work while the other thread is blocked in onnxruntime.
 *
 * - `CONTROL_STATE`: `STATE_IDLE`, `STATE_NATIVE` while the worker is inside an onnxruntime call
 *   (session create, run, release), `STATE_FROZEN` once the process is exiting: the worker
 *   never enters onnxruntime again. Tearing down a worker's JavaScript environment (terminate(),
 *   process.exit()) while it is inside onnxruntime aborts the whole process, so the pool's exit
 *   hook freezes every worker, waiting for a running call to return first.
 * - `CONTROL_CANCEL`: the id of a run to abandon at its next step (`CANCEL_ALL`: every run, the
 *   pool is closing); checked by the worker between the sessions of a chain.
 */
export const CONTROL_WORDS = 2;
export const CONTROL_STATE = 0;
export const CONTROL_CANCEL = 1;
export const STATE_IDLE = 0;
export const STATE_NATIVE = 1;
export const STATE_FROZEN = 2;
export const CANCEL_ALL = -1;

export interface InitMessage {
  type: 'init';
  /** `CONTROL_WORDS` Int32 words, see `CONTROL_STATE`. */
  control: SharedArrayBuffer;
  sessions: SessionSpec[];
  /** Providers to try, in order; the first with which every session loads is used. */
  providers: ExecutionProvider[];
  threads: number;
  optimization: 'disabled' | 'basic' | 'extended' | 'all';
  /** GPU of this worker (`cuda:<n>`), when the pool spreads workers over several. */
  deviceId?: number;
}

export interface RunMessage {
  type: 'run';
  id: number;
  chain: string[];
  feeds: WireTensor[];
  /** Names to return (from any step); default: every output of the last step. */
  outputs?: string[];
}

export interface CloseMessage {
  type: 'close';
}

export type ToWorker = InitMessage | RunMessage | CloseMessage;

export interface ReadyMessage {
  type: 'ready';
  provider: ExecutionProvider;
  failures: { provider: ExecutionProvider; reason: string }[];
  io: Record<string, { inputs: IoMeta[]; outputs: IoMeta[] }>;
}

export interface InitErrorMessage {
  type: 'init-error';
  message: string;
  failures: { provider: ExecutionProvider; reason: string }[];
}

export interface ResultMessage {
  type: 'result';
  id: number;
  outputs: WireTensor[];
  /** Milliseconds per session run, in chain order. */
  timings: { session: string; ms: number }[];
}

export interface RunErrorMessage {
  type: 'run-error';
  id: number;
  message: string;
}

export type FromWorker = ReadyMessage | InitErrorMessage | ResultMessage | RunErrorMessage;
