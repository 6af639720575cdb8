/**
 * How to run the model on this machine: worker threads, intra-op threads and batch size.
 *
 * The rule (measured with `npm run bench -- chm`):
 * - one session worker: a second copy of the model costs its memory again and, on a CPU, competes
 *   for the same cores;
 * - CPU intra-op threads = cores − 1 (at least 1): one core stays free for reading, decoding,
 *   warping, blending and compressing, which run beside inference on the main thread, the
 *   decoder pool and libuv's pool; giving onnxruntime every core makes the two fight;
 * - batch: 1 on the CPU (a batch of 4 is no faster per tile there), 4 on CUDA/WebGPU, where a
 *   batch keeps the GPU busy.
 * Explicit `--threads`, `--workers` or `--batch` override the rule.
 */
import { availableParallelism } from 'node:os';
import type { Device, ExecutionProvider } from '@geo-dino/runtime';

export interface ExecutionSettings {
  device: Device;
  workers: number;
  threads: number;
}

export function executionFor(device: Device, requested: { workers?: number; threads?: number } = {}, cores = availableParallelism()): ExecutionSettings {
  return {
    device,
    workers: requested.workers ?? 1,
    threads: requested.threads ?? Math.max(1, cores - 1),
  };
}

/** Default batch for the provider that actually loaded. */
export function batchFor(provider: ExecutionProvider, requested?: number): number {
  return requested ?? (provider === 'cpu' ? 1 : 4);
}
