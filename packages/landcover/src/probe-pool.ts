/**
 * Per-tile probe work (gradients, confusion matrices) spread over worker threads. Each tile's
 * result is computed whole by one worker and the caller adds results in tile order, so the sums —
 * and the trained head — do not depend on the number of workers or on their timing. With one
 * worker (or none available) everything runs on the calling thread.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { GeoDinoError } from '@geo-dino/core';
import { tileConfusion, tileGradient, type LinearHead, type PixelPass, type ProbeTile } from './probe.js';

export interface ProbeJob {
  seq: number;
  kind: 'gradient' | 'confusion';
  K: number;
  C: number;
  W: Float64Array | Float32Array;
  b: Float64Array | Float32Array;
  classWeights?: Float64Array;
  tile: ProbeTile;
}

export interface ProbeReply {
  seq: number;
  pass?: PixelPass;
  gW?: Float64Array;
  gb?: Float64Array;
  confusion?: Float64Array;
  error?: string;
}

const WORKER_URL = new URL('./probe-worker.js', import.meta.url);

/** Default: one worker per core but one (the main thread reads the cache meanwhile), at most 8. */
export function defaultProbeWorkers(): number {
  return Math.max(1, Math.min(8, availableParallelism() - 1));
}

export class ProbePool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly waiting: (() => void)[] = [];
  private readonly pending = new Map<number, { resolve: (r: ProbeReply) => void; reject: (e: unknown) => void }>();
  private seq = 0;
  private failure: unknown = null;

  constructor(readonly size: number) {
    if (size <= 1) return;
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_URL);
      w.unref();
      w.on('message', (r: ProbeReply) => {
        const p = this.pending.get(r.seq);
        if (!p) return;
        this.pending.delete(r.seq);
        this.release(w);
        if (r.error !== undefined) p.reject(new GeoDinoError('E_INTERNAL', `land-cover probe worker: ${r.error}`));
        else p.resolve(r);
      });
      w.on('error', (err) => {
        this.failure ??= err;
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  private release(w: Worker): void {
    this.idle.push(w);
    this.waiting.shift()?.();
  }

  private async acquire(): Promise<Worker> {
    while (!this.idle.length) await new Promise<void>((r) => this.waiting.push(r));
    return this.idle.shift()!;
  }

  private async run(job: Omit<ProbeJob, 'seq'>): Promise<ProbeReply> {
    if (this.failure) throw this.failure;
    const w = await this.acquire();
    const seq = this.seq++;
    return new Promise<ProbeReply>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      // The tile's buffers move to the worker; the weights are copied (each job has its own).
      w.postMessage({ ...job, seq }, [job.tile.features.buffer as ArrayBuffer, job.tile.labels.buffer as ArrayBuffer]);
    });
  }

  /** Gradient of one tile (see tileGradient). The tile's buffers are given away. */
  async gradient(head: LinearHead, tile: ProbeTile, classWeights: Float64Array): Promise<{ pass: PixelPass; gW: Float64Array; gb: Float64Array }> {
    if (!this.workers.length) {
      const gW = new Float64Array(head.K * head.C);
      const gb = new Float64Array(head.K);
      return { pass: tileGradient(head, tile, classWeights, gW, gb), gW, gb };
    }
    const r = await this.run({ kind: 'gradient', K: head.K, C: head.C, W: head.W, b: head.b, classWeights, tile });
    return { pass: r.pass!, gW: r.gW!, gb: r.gb! };
  }

  /** Confusion matrix of one tile (see tileConfusion). The tile's buffers are given away. */
  async confusion(head: LinearHead, tile: ProbeTile): Promise<{ pass: PixelPass; confusion: Float64Array }> {
    if (!this.workers.length) {
      const confusion = new Float64Array(head.K * head.K);
      return { pass: tileConfusion(head, tile, confusion), confusion };
    }
    const r = await this.run({ kind: 'confusion', K: head.K, C: head.C, W: head.W, b: head.b, tile });
    return { pass: r.pass!, confusion: r.confusion! };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    this.idle.length = 0;
  }
}
