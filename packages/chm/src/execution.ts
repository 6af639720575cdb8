/**
 * How to run the model on this machine: worker threads, intra-op threads and batch size.
 *
 * The rule:
 * - one session worker: a second copy of the model costs its memory again and, on a CPU, competes
 *   for the same cores;
 * - CPU intra-op threads: every core below 8 cores; cores − 1 from 8 cores up. The pipeline's own
 *   work (reading, warping, normalising, compressing, blending: ~0.3 s of CPU per 512² tile)
 *   runs beside inference on the main thread and the thread pools. On 2 cores, keeping a core
 *   for it costs half the model's compute: `npm run bench -- chm` measured the whole pipeline
 *   27 % faster with 2 threads than with 1 (ViT-B, 9 tiles, medians of 2). From 8 cores a spare
 *   core costs ≤ 12.5 % of the compute and keeps the two from preempting each other (reasoned,
 *   not measured here: this project's machine has 2 cores);
 * - batch: 1 on the CPU (a batch of 4 was no faster per tile with the demo model), 4 on
 *   CUDA/WebGPU, where a batch keeps the GPU busy.
 * Explicit `--threads`, `--workers` or `--batch` override the rule.
 */
import { availableParallelism } from 'node:os';
import type { Device, ExecutionProvider } from '@geo-dino/runtime';

export interface ExecutionSettings {
  device: Device;
  workers: number;
  threads: number;
  /** GPUs, one session worker each (`--device cuda:0,cuda:1`). */
  deviceIds?: number[];
}

export function executionFor(device: Device, requested: { workers?: number; threads?: number; deviceIds?: readonly number[] } = {}, cores = availableParallelism()): ExecutionSettings {
  return {
    device,
    ...(requested.deviceIds?.length ? { deviceIds: [...requested.deviceIds] } : {}),
    workers: requested.workers ?? Math.max(1, requested.deviceIds?.length ?? 1),
    threads: requested.threads ?? (cores >= 8 ? cores - 1 : Math.max(1, cores)),
  };
}

/** Default batch for the provider that actually loaded. */
export function batchFor(provider: ExecutionProvider, requested?: number): number {
  return requested ?? (provider === 'cpu' ? 1 : 4);
}
