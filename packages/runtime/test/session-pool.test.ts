/**
 * The session pool with the probe model (y = 2x + 1): results, buffer transfer, provider
 * fallback, several workers, cancellation and closing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '@geo-dino/core';
import { createSessionPool, providerCandidates, PROBE_MODEL_PATH, type SessionPool } from '@geo-dino/runtime';

const probe = [{ name: 'probe', path: PROBE_MODEL_PATH }];
const feed = (values: number[]): { x: { type: 'float32'; dims: number[]; data: Float32Array } } => ({
  x: { type: 'float32', dims: [1, 4], data: Float32Array.from(values) },
});

describe('session pool', () => {
  let pool: SessionPool;
  beforeAll(async () => {
    pool = await createSessionPool(probe, { device: 'cpu', workers: 2, threads: 1 });
  });
  afterAll(async () => pool.close());

  it('runs in a worker and returns outputs with their shape', async () => {
    const r = await pool.run('probe', feed([1, 2, 3, 4]));
    expect(Array.from(r.outputs['y']!.data as Float32Array)).toEqual([3, 5, 7, 9]);
    expect(r.outputs['y']!.dims).toEqual([1, 4]);
    expect(pool.io['probe']).toEqual({ inputs: [{ name: 'x', type: 'float32', dims: [1, 4] }], outputs: [{ name: 'y', type: 'float32', dims: [1, 4] }] });
    expect(pool.provider).toBe('cpu');
  });

  it('transfers a whole-buffer input (no copy) and copies a partial view (leaving the caller\'s buffer intact)', async () => {
    const whole = Float32Array.from([0, 0, 0, 0]);
    await pool.run('probe', { x: { type: 'float32', dims: [1, 4], data: whole } });
    expect(whole.byteLength).toBe(0); // detached: moved to the worker
    const big = Float32Array.from([9, 9, 1, 1, 1, 1, 9, 9]);
    const view = big.subarray(2, 6);
    const r = await pool.run('probe', { x: { type: 'float32', dims: [1, 4], data: view } });
    expect(Array.from(big)).toEqual([9, 9, 1, 1, 1, 1, 9, 9]);
    expect(Array.from(r.outputs['y']!.data as Float32Array)).toEqual([3, 3, 3, 3]);
    const kept = Float32Array.from([1, 1, 1, 1]);
    await pool.run('probe', { x: { type: 'float32', dims: [1, 4], data: kept } }, { transfer: false });
    expect(kept.byteLength).toBe(16);
  });

  it('spreads concurrent runs over the workers and counts every run', async () => {
    const before = pool.stats.runs['probe'] ?? 0;
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => pool.run('probe', feed([i, i, i, i]))));
    rs.forEach((r, i) => expect((r.outputs['y']!.data as Float32Array)[0]).toBe(2 * i + 1));
    expect(new Set(rs.map((r) => r.worker))).toEqual(new Set([0, 1]));
    expect(pool.stats.runs['probe']! - before).toBe(8);
  });

  it('checks feeds and names', async () => {
    await expect(pool.run('probe', { x: { type: 'float32', dims: [1, 4], data: new Float32Array(3) } })).rejects.toThrow(/input x: 3 values for shape \[1,4\]/);
    await expect(pool.run('nope', feed([1, 2, 3, 4]))).rejects.toThrow(/no session named nope/);
    await expect(pool.run('probe', { wrong: feed([1, 2, 3, 4]).x })).rejects.toMatchObject({ code: 'E_RUNTIME', message: expect.stringMatching(/input x was not provided/) });
  });

  it('a run cancelled before it starts rejects with E_CANCELLED', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(pool.run('probe', feed([1, 2, 3, 4]), { signal: ac.signal })).rejects.toMatchObject({ code: 'E_CANCELLED' });
  });
});

describe('providers and failures', () => {
  it('auto = CUDA then CPU; webgpu only on request', () => {
    expect(providerCandidates('auto')).toEqual(['cuda', 'cpu']);
    expect(providerCandidates('webgpu')).toEqual(['webgpu', 'cpu']);
    expect(providerCandidates('cpu')).toEqual(['cpu']);
  });

  it.each(['cuda', 'webgpu'] as const)('%s falls back to the CPU with the reason recorded and logged', async (device) => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = createLogger({ json: true, stream });
    const pool = await createSessionPool(probe, { device, log });
    try {
      expect(pool.provider).toBe('cpu');
      expect(pool.fallbacks.map((f) => f.provider)).toEqual([device]);
      expect(lines.join('')).toContain(`execution provider ${device} unavailable, using cpu`);
      const r = await pool.run('probe', feed([0, 0, 0, 0]));
      expect(Array.from(r.outputs['y']!.data as Float32Array)).toEqual([1, 1, 1, 1]);
    } finally {
      await pool.close();
    }
  });

  it('a file onnxruntime cannot load is E_RUNTIME naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'geo-dino-pool-'));
    const bad = join(dir, 'bad.onnx');
    await writeFile(bad, 'not a model');
    await expect(createSessionPool([{ name: 'bad', path: bad }], { device: 'cpu' })).rejects.toThrow(new RegExp(`could not load ${bad}`));
    await rm(dir, { recursive: true, force: true });
  });

  it('close() ends the workers; later runs are refused', async () => {
    const pool = await createSessionPool(probe, { device: 'cpu' });
    await pool.close();
    await expect(pool.run('probe', feed([1, 2, 3, 4]))).rejects.toThrow(/after close/);
  });
});
