/**
 * Distributed monitoring, end to end through the CLI: a real redis-server (apt) on loopback, a
 * coordinator (`geo-dino monitor run --queue`) and two `geo-dino worker` processes; one worker is
 * killed with SIGKILL in the middle of a batch. The run must complete, every planned tile must be
 * in the tile store exactly once, the killed worker's batch must have been delivered again, and
 * the outputs must equal a single-process run's of the same region.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { planTileIds, type RunPlan } from '@geo-dino/chm';
import { MonitorStore, monitorPaths } from '@geo-dino/monitor';
import { runCli } from '../support/cli.js';
import { requireGdal } from '../support/tools.js';
import { makeScenes } from '../../packages/monitor/test/support/helpers.js';
import { freePort, startRedis, type RedisServer } from '../../packages/monitor/test/support/redis.js';
import { killChildren, onlyRun, rasterDiff, startCli, type Proc } from './support.js';

let root: string;
let home: string;
let redis: RedisServer;
let catalog: string;
let aoi: string;
const QUEUE = `test-${process.pid}`;
const env = (): NodeJS.ProcessEnv => ({ GEO_DINO_HOME: home });

beforeAll(async () => {
  requireGdal();
  root = mkdtempSync(join(tmpdir(), 'geo-dino-distributed-'));
  home = join(root, 'home');
  redis = await startRedis();
  ({ catalog, aoi } = makeScenes(join(root, 'imagery'), [{ id: 's2025', datetime: '2025-06-01T08:00:00Z' }], [1600, 1200], 11));
  // The demo model once, before processes race to create it.
  const r = await runCli(['monitor', 'add', 'ref', '--aoi', aoi, '--schedule', '@daily', '--imagery', catalog, '--model', 'demo', '--loss-threshold-m', '2'], { env: env() });
  expect(r.code, r.stderr).toBe(0);
  const d = await runCli(['monitor', 'add', 'dist', '--aoi', aoi, '--schedule', '@daily', '--imagery', catalog, '--model', 'demo', '--loss-threshold-m', '2'], { env: env() });
  expect(d.code, d.stderr).toBe(0);
}, 300_000);

afterAll(async () => {
  killChildren();
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const start = (args: string[], onLine?: (line: Record<string, unknown>, p: Proc) => void): Proc => startCli(args, env(), onLine);

describe('distributed runs on BullMQ', () => {
  it('two workers, one SIGKILLed mid-batch: the run completes, every tile once, output equal to a single-process run', async () => {
    // The single-process reference.
    const ref = await runCli(['monitor', 'run', 'ref', '--no-web-tiles', '--threads', '1', '--json'], { env: env(), timeoutMs: 300_000 });
    expect(ref.code, ref.stderr).toBe(0);

    const workerArgs = ['worker', '--queue', redis.url, '--queue-name', QUEUE, '--lock-duration-s', '4', '--stalled-interval-s', '1', '--threads', '1', '--json', '-v'];
    let killedDuring: string | null = null;
    let started = 0;
    const a = start(workerArgs, (line, p) => {
      // Kill worker A once it is inside its second batch.
      if (line['msg'] === 'tile batch started' && ++started === 2 && !killedDuring) {
        killedDuring = String(line['job']);
        p.proc.kill('SIGKILL');
      }
    });
    const b = start(workerArgs);
    const coord = start(['monitor', 'run', 'dist', '--queue', redis.url, '--queue-name', QUEUE, '--batch-tiles', '2', '--no-web-tiles', '--keep-state', '--threads', '1', '--json']);
    const code = await Promise.race([coord.exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 280_000))]);
    expect(code, JSON.stringify(coord.lines.slice(-5))).toBe(0);
    expect(await a.exited).toBeNull(); // killed
    expect(a.proc.signalCode).toBe('SIGKILL');
    expect(killedDuring).not.toBeNull();
    // Worker B stops cleanly on SIGTERM.
    b.proc.kill('SIGTERM');
    expect(await b.exited).toBe(0);

    const paths = monitorPaths(home);
    const store = MonitorStore.open(paths.store);
    try {
      const dist = onlyRun(store, 'dist');
      const single = onlyRun(store, 'ref');
      expect(dist.status).toBe('succeeded');
      expect(dist.queue).toBe(redis.url);
      // Every planned tile is in the store, once; per-tile state says done.
      const work = paths.work('dist', dist.id);
      const plan = JSON.parse(readFileSync(join(work, 'plan.json'), 'utf8')) as RunPlan;
      const planned = [...planTileIds(plan)].sort((x, y) => x - y);
      const files: string[] = [];
      for (const shard of readdirSync(join(work, 'tiles')).filter((n) => /^\d+$/.test(n))) files.push(...readdirSync(join(work, 'tiles', shard)));
      expect(files.filter((f) => !/^\d+\.tile$/.test(f))).toEqual([]); // no temporaries left
      expect(files.map((f) => Number(f.replace('.tile', ''))).sort((x, y) => x - y)).toEqual(planned);
      expect(dist.tilesTotal).toBe(planned.length);
      expect(dist.tilesDone).toBe(planned.length);
      expect(store.tiles(dist.seq).map((t) => Number(t.id)).sort((x, y) => x - y)).toEqual(planned);
      expect(store.tiles(dist.seq).every((t) => t.state === 'done')).toBe(true);

      // The killed worker's batch was delivered again (at least once), and completed.
      const queue = new Queue(QUEUE, { connection: { url: redis.url } });
      try {
        const job = await queue.getJob(killedDuring!);
        expect(job).toBeDefined();
        expect(await job!.getState()).toBe('completed');
        expect(job!.attemptsStarted + job!.stalledCounter).toBeGreaterThanOrEqual(2);
        expect((job!.returnvalue as { worker: string }).worker).not.toContain(`:${a.proc.pid}`);
        const jobs = await queue.getJobs(['completed', 'failed', 'wait', 'active', 'delayed']);
        expect(jobs.filter((j) => j.data.run === dist.id)).toHaveLength(Math.ceil(planned.length / 2));
      } finally {
        await queue.close();
      }

      // Outputs equal the single-process run's.
      expect(single.status).toBe('succeeded');
      expect(single.tilesTotal).toBe(planned.length);
      const d = rasterDiff(join(single.dir, 'chm.tif'), join(dist.dir, 'chm.tif'));
      expect(d.differing).toBe(0);
      // Provenance: the same polygons (its header carries the plan's config hash, which includes the
      // region's own AOI path and so differs between the two regions).
      const prov = (dir: string): unknown => (JSON.parse(readFileSync(join(dir, 'provenance.geojson'), 'utf8')) as { features: unknown }).features;
      expect(prov(dist.dir)).toEqual(prov(single.dir));
      expect(store.stats(dist.seq)).toEqual(store.stats(single.seq));
      const distRun = JSON.parse(readFileSync(join(dist.dir, 'run.json'), 'utf8')) as { execution: { mode: string }; grid: unknown };
      const refRun = JSON.parse(readFileSync(join(single.dir, 'run.json'), 'utf8')) as { execution: { mode: string }; grid: unknown };
      expect(distRun.execution.mode).toBe('distributed');
      expect(refRun.execution.mode).toBe('local');
      expect(distRun.grid).toEqual(refRun.grid);
      // Both workers completed batches (A one before it was killed, B the rest and A's second).
      const done = [...a.lines, ...b.lines].filter((l) => l['msg'] === 'tile batch done');
      expect(new Set(done.map((l) => l['worker'])).size).toBe(2);
      expect(existsSync(join(dist.dir, 'chm.tif'))).toBe(true);
    } finally {
      store.close();
    }
  }, 600_000);

  it('unreachable Redis: monitor run and worker fail at once with a clear message', async () => {
    const dead = `redis://127.0.0.1:${await freePort()}`;
    const r = await runCli(['monitor', 'run', 'dist', '--queue', dead], { env: env(), timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${dead.replace(/[/.]/g, '\\$&')}: cannot connect to Redis: ECONNREFUSED`));
    const w = await runCli(['worker', '--queue', dead], { env: env(), timeoutMs: 60_000 });
    expect(w.code).toBe(1);
    expect(w.stderr).toMatch(/cannot connect to Redis/);
    // Nothing was started for the region.
    const store = MonitorStore.open(monitorPaths(home).store);
    try {
      expect(store.runs('dist')).toHaveLength(1);
    } finally {
      store.close();
    }
  });
});
