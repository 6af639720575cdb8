/**
 * Distribution by shard (issue 13): `geo-dino chm --queue redis://…` hands each shard of a sharded
 * run to `geo-dino worker` processes (a real redis-server on loopback, two workers; one is
 * SIGKILLed inside its second shard). The run completes, every shard is recorded once, the killed
 * worker's shard is written by the other worker, and the zone raster equals a single-process
 * run's pixel for pixel.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { rectangleAoi, writeSyntheticScene } from '@geo-dino/chm';
import { requireGdal } from '../support/tools.js';
import { startRedis, type RedisServer } from '../../packages/monitor/test/support/redis.js';
import { killChildren, rasterDiff, startCli, type Proc } from '../monitor/support.js';
import { chm, readJson, tempDir, writeJson } from './helpers.js';

let dir: string;
let home: string;
let redis: RedisServer;
let args: string[];
const QUEUE = `shards-${process.pid}`;

beforeAll(async () => {
  requireGdal();
  dir = tempDir('sharded-queue');
  home = join(dir, 'home');
  redis = await startRedis();
  const scene = join(dir, 'scene.tif');
  const s = await writeSyntheticScene(scene, { size: 1200, seed: 4 });
  const aoi = writeJson(join(dir, 'aoi.geojson'), { type: 'MultiPolygon', coordinates: rectangleAoi(s.epsg, s.transform, 1200, 1200, 0.05, 'scene').geometry });
  args = ['--model', 'demo', '--aoi', aoi, '--imagery', scene, '--tile-size', '256', '--overlap', '32', '--shard-size', '512', '--no-web-tiles', '--threads', '1'];
}, 120_000);

afterAll(async () => {
  killChildren();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('sharded runs on a queue', () => {
  it('two workers, one SIGKILLed mid-shard: every shard written once, output equal to a single-process run', async () => {
    const ref = await chm([...args, '--out', join(dir, 'local')], home, { timeoutMs: 300_000 });
    expect(ref.code, ref.stderr).toBe(0);

    const env = { GEO_DINO_HOME: home };
    const workerArgs = ['worker', '--queue', redis.url, '--queue-name', QUEUE, '--lock-duration-s', '4', '--stalled-interval-s', '1', '--threads', '1', '--json', '-v'];
    let killedDuring: string | null = null;
    let started = 0;
    const a: Proc = startCli(workerArgs, env, (line, p) => {
      if (line['msg'] === 'shard started' && ++started === 2 && !killedDuring) {
        killedDuring = String(line['job']);
        p.proc.kill('SIGKILL');
      }
    });
    const b: Proc = startCli(workerArgs, env);
    const out = join(dir, 'queued');
    const coord = startCli(['chm', ...args, '--out', out, '--queue', redis.url, '--queue-name', QUEUE, '--json'], env);
    const code = await Promise.race([coord.exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 400_000))]);
    expect(code, JSON.stringify(coord.lines.slice(-5))).toBe(0);
    expect(await a.exited).toBeNull();
    expect(a.proc.signalCode).toBe('SIGKILL');
    expect(killedDuring).not.toBeNull();
    b.proc.kill('SIGTERM');
    expect(await b.exited).toBe(0);

    const run = readJson<{ layout: string; shards: { count: number; zones: { vrt: string }[] }; state: { shardsWritten: number } }>(join(out, 'run.json'));
    expect(run.layout).toBe('sharded');
    expect(run.state.shardsWritten).toBe(run.shards.count);
    const shards = readdirSync(join(out, 'shards')).filter((n) => !n.startsWith('.'));
    expect(shards).toHaveLength(run.shards.count);
    // No temporary shard folder left by the killed worker.
    expect(readdirSync(join(out, 'shards')).filter((n) => n.startsWith('.'))).toEqual([]);

    // Each shard written by exactly one job; the killed worker's shard by the other worker.
    const written = [...a.lines, ...b.lines].filter((l) => l['msg'] === 'shard written').map((l) => String(l['shard']));
    expect(written.sort()).toEqual([...shards].sort());
    const queue = new Queue(QUEUE, { connection: { url: redis.url } });
    try {
      const job = await queue.getJob(killedDuring!);
      expect(await job!.getState()).toBe('completed');
      expect(job!.attemptsStarted + job!.stalledCounter).toBeGreaterThanOrEqual(2);
      expect((job!.returnvalue as { worker: string }).worker).not.toContain(`:${a.proc.pid}`);
    } finally {
      await queue.close();
    }
    // Pixel for pixel the single-process run.
    const localRun = readJson<{ shards: { zones: { vrt: string }[] } }>(join(dir, 'local', 'run.json'));
    const d = rasterDiff(join(dir, 'local', localRun.shards.zones[0]!.vrt), join(out, run.shards.zones[0]!.vrt));
    expect(d.differing).toBe(0);
    expect(existsSync(join(out, 'collection.json'))).toBe(true);
  }, 600_000);
});
