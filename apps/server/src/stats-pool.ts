/**
 * Admission and isolation for `POST /api/stats`: a fixed number of slots, each with its own worker
 * thread (started on first use). A slot is taken before the request body is read, so a request
 * that finds every slot busy is answered 503 at once and costs nothing; a job that runs past its
 * deadline, or whose client went away, has its worker terminated (the stats worker holds no
 * native resources, so that is safe) and a fresh one starts for the next job.
 */
import { Worker } from 'node:worker_threads';
import { GeoDinoError, type ErrorCategory, type ErrorCode } from '@geo-dino/core';
import type { HeightStats } from './raster.js';

export interface StatsJob {
  id: number;
  /** The run's directory, and its height rasters (chm.tif, or one VRT per UTM zone of a sharded run). */
  dir: string;
  chmRasters: string[];
  /** The request body (a GeoJSON polygon), as received. */
  body: Uint8Array;
  maxVertices: number;
  maxEdgePairs: number;
  maxPixels: number;
}

export interface StatsResult {
  polygon: { areaM2: number; vertices: number; bbox: [number, number, number, number] };
  stats: HeightStats;
}

export type StatsReply =
  | { id: number; ok: true; result: StatsResult }
  | { id: number; ok: false; error: { code: ErrorCode; message: string; category: ErrorCategory } };

/** The worker script: dist/stats-worker.js (also when this module runs from src/ under a test runner). */
function workerUrl(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../dist/stats-worker.js', here) : new URL('./stats-worker.js', here);
}

interface Slot {
  worker: Worker | null;
  busy: boolean;
}

export interface StatsLease {
  /** Run one job on this slot's worker; rejects with E_CANCELLED when `signal` aborts, E_LIMIT past the deadline. */
  run(job: Omit<StatsJob, 'id'>, signal?: AbortSignal): Promise<StatsResult>;
  release(): void;
}

export class StatsPool {
  private readonly slots: Slot[];
  private nextId = 1;
  private closed = false;

  constructor(
    size: number,
    /** Longest a job may run, ms. */
    private readonly deadlineMs: number,
  ) {
    this.slots = Array.from({ length: size }, () => ({ worker: null, busy: false }));
  }

  get busy(): number {
    return this.slots.filter((s) => s.busy).length;
  }

  /** A free slot, or null when all are busy (answer 503 without reading the request). */
  tryAcquire(): StatsLease | null {
    if (this.closed) return null;
    const slot = this.slots.find((s) => !s.busy);
    if (!slot) return null;
    slot.busy = true;
    let released = false;
    return {
      run: (job, signal) => this.runOn(slot, { ...job, id: this.nextId++ }, signal),
      release: () => {
        if (released) return;
        released = true;
        slot.busy = false;
      },
    };
  }

  private runOn(slot: Slot, job: StatsJob, signal?: AbortSignal): Promise<StatsResult> {
    if (signal?.aborted) return Promise.reject(new GeoDinoError('E_CANCELLED', 'interrupted'));
    if (!slot.worker) {
      slot.worker = new Worker(workerUrl());
      slot.worker.unref();
    }
    const worker = slot.worker;
    return new Promise<StatsResult>((resolve, reject) => {
      const kill = (err: GeoDinoError): void => {
        cleanup();
        if (slot.worker === worker) slot.worker = null;
        void worker.terminate();
        reject(err);
      };
      const onMessage = (reply: StatsReply): void => {
        if (reply.id !== job.id) return;
        cleanup();
        if (reply.ok) resolve(reply.result);
        else reject(new GeoDinoError(reply.error.code, reply.error.message));
      };
      const onError = (err: Error): void => kill(new GeoDinoError('E_INTERNAL', `statistics worker failed: ${err.message}`, { cause: err }));
      const onExit = (): void => kill(new GeoDinoError('E_INTERNAL', 'statistics worker stopped'));
      const onAbort = (): void => kill(new GeoDinoError('E_CANCELLED', 'interrupted'));
      const timer = setTimeout(
        () => kill(new GeoDinoError('E_LIMIT', `the statistics took longer than ${Math.round(this.deadlineMs / 1000)} s; use a smaller polygon`, { details: { deadlineMs: this.deadlineMs } })),
        this.deadlineMs,
      );
      const cleanup = (): void => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        signal?.removeEventListener('abort', onAbort);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => (s.worker ? s.worker.terminate() : undefined)));
    for (const s of this.slots) s.worker = null;
  }
}
