/**
 * Work off the main thread: a pool of worker threads that decode blocks ({@link decodeBlock})
 * and run warp steps ({@link warpStep}). Buffers are transferred both ways (no copies).
 *
 * Workers are unreferenced while idle, so an idle pool never keeps a process alive. The shared
 * pool (`sharedDecoderPool()`) is what readers use unless told otherwise.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { GeoDinoError, type ErrorCode } from '@geo-dino/core';
import { decodeBlock, type BlockTask } from './decode.js';
import { decodeTileImage, type ImageTask } from './image.js';
import { warpJobTransfer, warpStep, type WarpJob, type WarpResult } from '../warp/step.js';

export type BlockDecoder = (task: BlockTask) => Promise<Uint8Array>;
export type WarpRunner = (job: WarpJob) => Promise<WarpResult>;
/** Decodes a tile image of a tile service to planar RGBA (see codec/image.ts). */
export type ImageDecoder = (task: ImageTask) => Promise<Uint8Array>;

/** Warp in the calling thread. */
export const inlineWarp: WarpRunner = async (job) => warpStep(job);

/** Decode in the calling thread (JPEG still runs on libuv's pool through sharp). */
export const inlineDecoder: BlockDecoder = (task) => decodeBlock(task);

/** Decode tile images in the calling thread (libvips still runs on libuv's pool). */
export const inlineImageDecoder: ImageDecoder = (task) => decodeTileImage(task);

interface Pending {
  resolve(v: never): void;
  reject(e: unknown): void;
}

interface Slot {
  worker: Worker;
  busy: number;
}

interface Reply {
  id: number;
  ok: boolean;
  data?: unknown;
  error?: { code: ErrorCode; message: string; details: Record<string, unknown> };
}

const PER_WORKER = 2;

type Kind = 'decode' | 'image' | 'warp' | 'ping';
type Task = BlockTask | ImageTask | WarpJob | null;

export class DecoderPool {
  private readonly slots: Slot[] = [];
  private readonly queue: { id: number; kind: Kind; task: Task; transfer: ArrayBuffer[] }[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(readonly threads: number) {
    if (!Number.isInteger(threads) || threads < 1) throw new GeoDinoError('E_ARGUMENT', `decoder threads must be ≥ 1 (got ${threads})`);
  }

  private submit<T>(kind: Kind, task: Task, transfer: ArrayBuffer[]): Promise<T> {
    if (this.closed) return Promise.reject(new GeoDinoError('E_INTERNAL', 'worker pool is closed'));
    return new Promise<T>((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve: resolve as (v: never) => void, reject });
      this.queue.push({ id, kind, task, transfer });
      this.pump();
    });
  }

  /** A BlockDecoder bound to this pool. */
  readonly decode: BlockDecoder = (task) => {
    const data = task.data.byteOffset === 0 && task.data.byteLength === task.data.buffer.byteLength ? task.data : task.data.slice();
    return this.submit<Uint8Array>('decode', { ...task, data }, [data.buffer as ArrayBuffer]);
  };

  /** An ImageDecoder bound to this pool (tile images of tile services). */
  readonly decodeImage: ImageDecoder = (task) => {
    const data = task.data.byteOffset === 0 && task.data.byteLength === task.data.buffer.byteLength ? task.data : task.data.slice();
    return this.submit<Uint8Array>('image', { ...task, data }, [data.buffer as ArrayBuffer]);
  };

  /** Worker threads running now. */
  get started(): number {
    return this.slots.length;
  }

  /**
   * Start every worker now and wait until each answers, so that the first reads do not pay for
   * thread start-up (module loading takes a few hundred milliseconds per worker).
   */
  async warm(): Promise<void> {
    // Each ping goes to a worker without work, spawning one while fewer than `threads` exist.
    const missing = this.threads - this.slots.length;
    await Promise.all(Array.from({ length: Math.max(0, missing) }, () => this.submit<boolean>('ping', null, [])));
  }

  /** A WarpRunner bound to this pool (the job's buffers are transferred to the worker). */
  readonly warp: WarpRunner = (job) => this.submit<WarpResult>('warp', job, warpJobTransfer(job));

  private spawn(): Slot {
    const worker = new Worker(new URL('./worker.js', import.meta.url));
    const slot: Slot = { worker, busy: 0 };
    worker.on('message', (msg: Reply) => {
      slot.busy--;
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (p) {
        if (msg.ok && msg.data) p.resolve(msg.data as never);
        else p.reject(new GeoDinoError(msg.error?.code ?? 'E_INTERNAL', msg.error?.message ?? 'decoder worker failed', { details: msg.error?.details ?? {} }));
      }
      this.pump();
    });
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      if (!this.closed && code !== 0) this.failAll(new Error(`tiler worker exited with code ${code}`));
    });
    this.slots.push(slot);
    return slot;
  }

  private failAll(err: unknown): void {
    const e = new GeoDinoError('E_INTERNAL', `tiler worker failed: ${(err as Error).message}`, { cause: err });
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.queue.length = 0;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.reduce<Slot | undefined>((best, s) => (s.busy < PER_WORKER && (!best || s.busy < best.busy) ? s : best), undefined);
      if (!slot || (slot.busy > 0 && this.slots.length < this.threads)) {
        if (this.slots.length < this.threads) slot = this.spawn();
      }
      if (!slot || slot.busy >= PER_WORKER) break;
      const job = this.queue.shift()!;
      slot.busy++;
      slot.worker.ref();
      slot.worker.postMessage({ id: job.id, kind: job.kind, task: job.task }, job.transfer);
    }
    for (const s of this.slots) if (s.busy === 0) s.worker.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    const ws = this.slots.splice(0).map((s) => s.worker.terminate());
    await Promise.all(ws);
  }
}

let shared: DecoderPool | null = null;

/** Default number of decoder threads: the machine's parallelism, at most 8. */
export function defaultDecoderThreads(): number {
  return Math.max(1, Math.min(8, availableParallelism()));
}

/** The process-wide pool readers use by default (created on first use). */
export function sharedDecoderPool(): DecoderPool {
  if (!shared) shared = new DecoderPool(defaultDecoderThreads());
  return shared;
}
