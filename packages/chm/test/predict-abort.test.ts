/**
 * An abort during `predictTiles` stops at a tile boundary: batches still queued on the runner
 * are cancelled before they start, and the batch in the model finishes and is stored — nothing the
 * model computed is dropped (it would only be computed again by --resume; see predict.ts). The
 * demo model (`--model demo` alone: the built-in synthetic scene) on one worker, with three
 * batches allowed in flight; the runner is wrapped to record each model call and to abort once
 * two calls are waiting on it (so one runs and at least one is queued).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelRunner, RunCallOptions } from '@geo-dino/model';
import { TileStore, openPlanModel, planRun, predictTiles, planTileIds, resolveModel, type TileRecord } from '@geo-dino/chm';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-predict-abort-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('predictTiles interrupted', () => {
  it('cancels the queued batches, finishes and stores the one in the model, and drops nothing computed', async () => {
    const env = { ...process.env, GEO_DINO_HOME: join(dir, 'home'), GEO_DINO_MODEL: '' };
    const md = await resolveModel('demo', { env });
    const plan = (await planRun({ model: 'demo', tileSize: 256, overlap: 32, gsd: 1.2 }, { env, modelDir: md })).zones[0]!;
    const ids = [...planTileIds(plan)];
    const store = await TileStore.open(join(dir, 'tiles'), plan.configHash);
    const runner = await openPlanModel(md.dir, plan, { device: 'cpu', workers: 1, threads: 1 });
    const ac = new AbortController();
    const calls: { options: RunCallOptions | undefined; outcome: 'pending' | 'done' | string }[] = [];
    let waitingAtAbort = -1;
    const wrapped: ModelRunner = Object.assign(Object.create(runner) as ModelRunner, {
      runChm: (px: Float32Array, b: number, h: number, w: number, options?: RunCallOptions) => {
        const call = { options, outcome: 'pending' as string };
        calls.push(call);
        const p = runner.runChm(px, b, h, w, options);
        p.then(
          () => (call.outcome = 'done'),
          (e: { code?: string }) => (call.outcome = e.code ?? 'error'),
        );
        const waiting = calls.filter((c) => c.outcome === 'pending').length;
        if (waiting >= 2 && !ac.signal.aborted) {
          waitingAtAbort = waiting;
          ac.abort();
        }
        return p;
      },
    });
    const stored: TileRecord[] = [];
    try {
      await expect(predictTiles(plan, ids, wrapped, store, { batch: 1, inflight: 3, signal: ac.signal, onTile: (r) => stored.push(r) })).rejects.toMatchObject({ code: 'E_CANCELLED' });
    } finally {
      await runner.close();
    }
    expect(waitingAtAbort, `two model calls never waited at once (${calls.length} calls, ${ids.length} tiles)`).toBeGreaterThanOrEqual(2);
    // Every call could be cancelled, but one that started finishes (not dropped).
    for (const c of calls) expect(c.options).toMatchObject({ signal: ac.signal, finishIfStarted: true });
    const done = calls.filter((c) => c.outcome === 'done').length;
    const cancelled = calls.filter((c) => c.outcome === 'E_CANCELLED').length;
    expect(done + cancelled).toBe(calls.length);
    // Of the calls waiting at the abort, the first was in the model and finished; the rest never started.
    expect(cancelled).toBe(waitingAtAbort - 1);
    // Nothing computed was dropped: one stored tile per model execution (batch 1), each on disk.
    const predicted = stored.filter((r) => !r.empty);
    expect(runner.stats.backboneRuns).toBe(done);
    expect(predicted.length).toBe(done);
    const onDisk = await store.completed();
    for (const r of stored) expect(onDisk.has(r.id)).toBe(true);
    expect(onDisk.size).toBe(stored.length);
    expect(stored.length).toBeLessThan(ids.length);
  });
});
