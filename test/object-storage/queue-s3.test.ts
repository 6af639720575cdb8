/**
 * Distributed sharded runs with the run state in object storage: `geo-dino chm --queue redis://…
 * --out s3://…` and two `geo-dino worker --queue redis://…` processes, each with its own
 * GEO_DINO_HOME, working directory and TMPDIR, sharing nothing with the coordinator but Redis
 * and the S3 server (real redis-server and SeaweedFS on loopback; the imagery is in the bucket).
 * One worker is SIGKILLed while it uploads a shard.
 *
 * Oracles: a single-process run of the same request into a local directory (GDAL compares the
 * zone rasters pixel for pixel); the fault proxy's request log (every object key is PUT
 * successfully at most once: no object is written twice); sha256 of the published objects
 * computed here against the manifest.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Queue } from 'bullmq';
import { rectangleAoi, writeSyntheticScene } from '@geo-dino/chm';
import { requireGdal } from '../support/tools.js';
import { BUCKETS, CLEAN_AWS_ENV, startS3TestBed, type S3TestBed } from '../support/seaweedfs.js';
import { startRedis, type RedisServer } from '../../packages/monitor/test/support/redis.js';
import { killChildren, rasterDiff, startCli, type Proc } from '../monitor/support.js';
import { chm, readJson, tempDir, writeJson } from '../chm/helpers.js';

let dir: string;
let bed: S3TestBed;
let redis: RedisServer;
let args: string[];
const QUEUE = `s3-shards-${process.pid}`;
const B = BUCKETS.private;
const IMAGERY = `s3://${B}/imagery/scene.tif`;

async function keys(prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const r = await bed.server.admin.send(new ListObjectsV2Command({ Bucket: B, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    out.push(...(r.Contents ?? []).map((c) => c.Key!));
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out.sort();
}

async function getObject(key: string): Promise<Buffer> {
  const r = await bed.server.admin.send(new GetObjectCommand({ Bucket: B, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

/** A worker process with a home, working directory and temporary directory of its own. */
function worker(name: string, env: NodeJS.ProcessEnv, onLine?: (line: Record<string, unknown>, p: Proc) => void): Proc {
  const root = join(dir, name);
  mkdirSync(join(root, 'tmp'), { recursive: true });
  return startCli(
    ['worker', '--queue', redis.url, '--queue-name', QUEUE, '--lock-duration-s', '4', '--stalled-interval-s', '1', '--threads', '1', '--json', '-v'],
    { GEO_DINO_HOME: join(root, 'home'), GEO_DINO_MODEL: '', TMPDIR: join(root, 'tmp'), ...env },
    onLine,
    { cwd: root },
  );
}

function s3Env(): NodeJS.ProcessEnv {
  return { ...CLEAN_AWS_ENV, ...bed.server.env(), AWS_ENDPOINT_URL: bed.proxy.endpoint };
}

beforeAll(async () => {
  requireGdal();
  dir = tempDir('queue-s3');
  bed = await startS3TestBed();
  redis = await startRedis();
  const scene = join(dir, 'scene.tif');
  const s = await writeSyntheticScene(scene, { size: 1200, seed: 4 });
  await bed.server.admin.send(new PutObjectCommand({ Bucket: B, Key: 'imagery/scene.tif', Body: readFileSync(scene) }));
  rmSync(scene);
  const aoi = writeJson(join(dir, 'aoi.geojson'), { type: 'MultiPolygon', coordinates: rectangleAoi(s.epsg, s.transform, 1200, 1200, 0.05, 'scene').geometry });
  args = ['--model', 'demo', '--aoi', aoi, '--imagery', IMAGERY, '--tile-size', '256', '--overlap', '32', '--shard-size', '512', '--no-web-tiles', '--threads', '1'];
}, 180_000);

afterAll(async () => {
  killChildren();
  await redis?.stop();
  await bed?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('distributed runs with their state in object storage', () => {
  it('two workers sharing only Redis and the bucket, one SIGKILLed while uploading a shard: every object written once, output equal to a single-process run', async () => {
    const home = join(dir, 'coordinator');
    const ref = await chm([...args, '--out', join(dir, 'local')], home, { env: s3Env(), timeoutMs: 400_000 });
    expect(ref.code, ref.stderr).toBe(0);

    let killedDuring: string | null = null;
    let current: string | null = null;
    let a!: Proc;
    const timer = setInterval(() => {
      // Kill worker a as soon as one of its shard files is being uploaded (its attempt's key
      // carries its pid), before it can record the shard.
      if (killedDuring || !a?.proc.pid) return;
      if (bed.proxy.log.some((l) => l.method === 'PUT' && l.path.includes('/attempts/') && l.path.includes(`-${a.proc.pid}-`))) {
        killedDuring = current;
        a.proc.kill('SIGKILL');
      }
    }, 5);
    a = worker('a', s3Env(), (line) => {
      if (line['msg'] === 'shard started') current = String(line['job']);
    });
    const b = worker('b', s3Env());
    const OUT = `s3://${B}/runs/queued`;
    const coord = startCli(['chm', ...args, '--out', OUT, '--queue', redis.url, '--queue-name', QUEUE, '--json'], { GEO_DINO_HOME: home, GEO_DINO_MODEL: '', ...s3Env() });
    const code = await Promise.race([coord.exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 540_000))]);
    clearInterval(timer);
    expect(code, JSON.stringify(coord.lines.slice(-5))).toBe(0);
    expect(await a.exited).toBeNull();
    expect(a.proc.signalCode).toBe('SIGKILL');
    expect(killedDuring).not.toBeNull();
    b.proc.kill('SIGTERM');
    expect(await b.exited).toBe(0);

    const run = JSON.parse((await getObject('runs/queued/run.json')).toString()) as { layout: string; shards: { count: number; zones: { vrt: string }[] }; state: { shardsWritten: number } };
    expect(run.layout).toBe('sharded');
    expect(run.state.shardsWritten).toBe(run.shards.count);
    const published = await keys('runs/queued/');
    expect(published).toContain('runs/queued/manifest.json');
    const shardIds = [...new Set(published.filter((k) => k.startsWith('runs/queued/shards/')).map((k) => k.split('/')[3]!))].sort();
    expect(shardIds).toHaveLength(run.shards.count);
    // The run state (plan, attempts, ledger) is gone once the run is published.
    expect(await keys('runs/.queued.geo-dino-state/')).toEqual([]);

    // Each shard recorded by exactly one worker; the killed worker's shard by the other.
    const written = [...a.lines, ...b.lines].filter((l) => l['msg'] === 'shard written').map((l) => String(l['shard']));
    expect(written.sort()).toEqual(shardIds);
    const queue = new Queue(QUEUE, { connection: { url: redis.url } });
    try {
      const job = await queue.getJob(killedDuring!);
      expect(await job!.getState()).toBe('completed');
      expect((job!.returnvalue as { worker: string; written: boolean }).worker).not.toContain(`:${a.proc.pid}`);
      // The jobs name object storage only: nothing of the coordinator's file system.
      expect(job!.data).toMatchObject({ planPath: expect.stringMatching(/^s3:\/\/gd-private\/runs\/\.queued\.geo-dino-state\/[0-9a-f]{16}\/plan\.json$/), stateDir: expect.stringMatching(/^s3:\/\//), s3Endpoint: bed.proxy.endpoint });
    } finally {
      await queue.close();
    }

    // No object written twice: every key was PUT successfully at most once (the proxy saw every
    // request), and the killed worker's attempt was never recorded.
    const puts = bed.proxy.log.filter((l) => l.method === 'PUT' && l.status >= 200 && l.status < 300 && !l.path.includes('/imagery/'));
    const counts = new Map<string, number>();
    for (const p of puts) counts.set(p.path, (counts.get(p.path) ?? 0) + 1);
    expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
    const ledgerPuts = puts.filter((p) => /\/shards\/[^/]+\.json$/.test(p.path) && p.path.includes('.geo-dino-state'));
    expect(ledgerPuts).toHaveLength(run.shards.count);
    expect(bed.proxy.log.some((l) => l.method === 'PUT' && l.path.includes(`-${a.proc.pid}-`))).toBe(true);
    // Without web layers the coordinator never downloads the shard rasters: they were copied on the
    // server from the recorded attempts into the run's prefix; item.json (which the STAC Collection
    // rewrites) and provenance.geojson came to the coordinator and were uploaded from there.
    expect(bed.proxy.log.filter((l) => l.method === 'GET' && /\/attempts\/.*\.tif$/.test(l.path))).toEqual([]);
    expect(bed.proxy.log.some((l) => l.method === 'GET' && /\/attempts\/.*\/provenance\.geojson$/.test(l.path))).toBe(true);
    for (const id of shardIds) {
      const chmPut = puts.find((p) => p.path === `/${B}/runs/queued/shards/${id}/chm.tif`);
      expect(chmPut?.copySource, id).toMatch(new RegExp(`^/?${B}/runs/\\.queued\\.geo-dino-state/[0-9a-f]{16}/attempts/${id}/[^/]+/chm\\.tif$`));
      expect(chmPut?.copySource).not.toContain(`-${a.proc.pid}-`);
      expect(puts.find((p) => p.path === `/${B}/runs/queued/shards/${id}/item.json`)?.copySource).toBeNull();
    }

    // The manifest's checksums hold for every published object.
    const manifest = JSON.parse((await getObject('runs/queued/manifest.json')).toString()) as { files: { path: string; 'file:checksum': string; 'file:size': number }[] };
    expect(manifest.files.map((f) => `runs/queued/${f.path}`).sort()).toEqual(published.filter((k) => !k.endsWith('manifest.json')));
    const copy = join(dir, 'downloaded');
    for (const f of manifest.files) {
      const bytes = await getObject(`runs/queued/${f.path}`);
      expect(f['file:size']).toBe(bytes.length);
      expect(f['file:checksum']).toBe('1220' + createHash('sha256').update(bytes).digest('hex'));
      mkdirSync(join(copy, f.path, '..'), { recursive: true });
      writeFileSync(join(copy, f.path), bytes);
    }
    // Pixel for pixel the single-process run (GDAL reads both zone rasters).
    const localRun = readJson<{ shards: { count: number; zones: { vrt: string }[] } }>(join(dir, 'local', 'run.json'));
    expect(localRun.shards.count).toBe(run.shards.count);
    const d = rasterDiff(join(dir, 'local', localRun.shards.zones[0]!.vrt), join(copy, run.shards.zones[0]!.vrt));
    expect(d.gt).toBe(true);
    expect(d.differing).toBe(0);
  }, 600_000);

  it('the coordinator SIGKILLed while it waits: rerun with --resume, recorded shards are neither queued nor written again', async () => {
    const home = join(dir, 'coordinator');
    const OUT = `s3://${B}/runs/resumed`;
    const queueName = `${QUEUE}-resume`;
    // Scratch folders a dead worker of this host left (removed) and a live process's (kept).
    const scratch = join(dir, 'w-resume', 'home', 'scratch');
    const host = hostname().replace(/[^A-Za-z0-9_-]/g, '_');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const deadDir = join(scratch, `0123456789abcdef.36N_R0000_C0000.${host}-${dead}-k1-deadbeef`);
    const liveDir = join(scratch, `0123456789abcdef.36N_R0000_C0000.${host}-${process.pid}-k1-deadbeef`);
    mkdirSync(join(deadDir, 'tiles'), { recursive: true });
    mkdirSync(liveDir, { recursive: true });
    const w = startCli(
      ['worker', '--queue', redis.url, '--queue-name', queueName, '--threads', '1', '--json', '-v'],
      { GEO_DINO_HOME: join(dir, 'w-resume', 'home'), GEO_DINO_MODEL: '', ...s3Env() },
      undefined,
      { cwd: dir },
    );
    const isRecord = (path: string): boolean => path.startsWith(`/${B}/runs/.resumed.geo-dino-state/`) && /\/shards\/[^/]+\.json$/.test(path);
    // With web layers: the coordinator downloads every shard file (the pyramids read them).
    const webArgs = args.filter((a) => a !== '--no-web-tiles');
    const first = startCli(['chm', ...webArgs, '--out', OUT, '--queue', redis.url, '--queue-name', queueName, '--json'], { GEO_DINO_HOME: home, GEO_DINO_MODEL: '', ...s3Env() });
    const timer = setInterval(() => {
      if (bed.proxy.log.filter((l) => l.method === 'PUT' && isRecord(l.path) && l.status === 200).length >= 2) first.proc.kill('SIGKILL');
    }, 5);
    await first.exited;
    clearInterval(timer);
    expect(first.proc.signalCode).toBe('SIGKILL');
    expect(await keys('runs/resumed/')).toEqual([]);

    const again = startCli(['chm', ...webArgs, '--out', OUT, '--queue', redis.url, '--queue-name', queueName, '--resume', '--json'], { GEO_DINO_HOME: home, GEO_DINO_MODEL: '', ...s3Env() });
    const code = await Promise.race([again.exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 400_000))]);
    expect(code, JSON.stringify(again.lines.slice(-5))).toBe(0);
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    const run = JSON.parse((await getObject('runs/resumed/run.json')).toString()) as { shards: { count: number } };
    const written = w.lines.filter((l) => l['msg'] === 'shard written').map((l) => String(l['shard']));
    expect(written).toHaveLength(run.shards.count);
    expect(new Set(written).size).toBe(run.shards.count);
    // The rerun queued only the shards not recorded when it started (at least 2 were).
    const waiting = again.lines.find((l) => l['msg'] === 'shards on the queue: waiting for workers');
    expect(waiting?.['jobs']).toBeLessThanOrEqual(run.shards.count - 2);
    const records = bed.proxy.log.filter((l) => l.method === 'PUT' && isRecord(l.path) && l.status === 200);
    expect(records).toHaveLength(run.shards.count);
    const published = await keys('runs/resumed/');
    expect(published.filter((k) => k.endsWith('manifest.json'))).toEqual(['runs/resumed/manifest.json']);
    expect(published).toContain('runs/resumed/chm.pmtiles');
    // Shard rasters equal to the workers' uploads were copied on the server, not uploaded again.
    const chmPuts = bed.proxy.log.filter((l) => l.method === 'PUT' && /^\/[^/]+\/runs\/resumed\/shards\/[^/]+\/chm\.tif$/.test(l.path) && l.status === 200);
    expect(chmPuts).toHaveLength(run.shards.count);
    expect(chmPuts.every((l) => l.copySource?.includes('/attempts/'))).toBe(true);
    const manifest = JSON.parse((await getObject('runs/resumed/manifest.json')).toString()) as { files: { path: string; 'file:checksum': string }[] };
    for (const f of manifest.files.filter((x) => x.path.endsWith('.tif'))) {
      expect(f['file:checksum'], f.path).toBe('1220' + createHash('sha256').update(await getObject(`runs/resumed/${f.path}`)).digest('hex'));
    }
    expect(await keys('runs/.resumed.geo-dino-state/')).toEqual([]);
    expect(existsSync(deadDir)).toBe(false);
    expect(readdirSync(scratch)).toEqual([basename(liveDir)]);
  }, 600_000);

  it('without web layers, the coordinator SIGKILLed while it copies shard rasters into place: --resume completes, no object written twice', async () => {
    const home = join(dir, 'coordinator');
    const OUT = `s3://${B}/runs/collected`;
    const queueName = `${QUEUE}-collect`;
    const w = startCli(['worker', '--queue', redis.url, '--queue-name', queueName, '--threads', '1', '--json'], { GEO_DINO_HOME: join(dir, 'w-collect', 'home'), GEO_DINO_MODEL: '', ...s3Env() }, undefined, { cwd: dir });
    const env = { GEO_DINO_HOME: home, GEO_DINO_MODEL: '', ...s3Env() };
    const isCopy = (l: { method: string; path: string; copySource: string | null }): boolean => l.method === 'PUT' && l.path.startsWith(`/${B}/runs/collected/shards/`) && l.copySource !== null;
    const first = startCli(['chm', ...args, '--out', OUT, '--queue', redis.url, '--queue-name', queueName, '--json'], env);
    const timer = setInterval(() => {
      if (bed.proxy.log.some(isCopy)) first.proc.kill('SIGKILL');
    }, 2);
    await first.exited;
    clearInterval(timer);
    expect(first.proc.signalCode).toBe('SIGKILL');
    expect(await keys('runs/collected/manifest.json')).toEqual([]);

    const again = await chm([...args, '--out', OUT, '--queue', redis.url, '--queue-name', queueName, '--resume'], home, { env: s3Env(), timeoutMs: 300_000 });
    expect(again.code, again.stderr).toBe(0);
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    const run = JSON.parse((await getObject('runs/collected/run.json')).toString()) as { shards: { count: number } };
    const manifest = JSON.parse((await getObject('runs/collected/manifest.json')).toString()) as { files: { path: string; 'file:checksum': string; 'file:size': number }[] };
    const rasters = manifest.files.filter((f) => /^shards\/[^/]+\/chm\.tif$/.test(f.path));
    expect(rasters).toHaveLength(run.shards.count);
    for (const f of rasters) {
      const bytes = await getObject(`runs/collected/${f.path}`);
      expect(f['file:size']).toBe(bytes.length);
      expect(f['file:checksum'], f.path).toBe('1220' + createHash('sha256').update(bytes).digest('hex'));
    }
    expect(manifest.files.map((f) => `runs/collected/${f.path}`).sort()).toEqual((await keys('runs/collected/')).filter((k) => !k.endsWith('manifest.json')));
    const puts = bed.proxy.log.filter((l) => l.method === 'PUT' && l.status >= 200 && l.status < 300 && l.path.startsWith(`/${B}/runs/collected`));
    const counts = new Map<string, number>();
    for (const p of puts) counts.set(p.path, (counts.get(p.path) ?? 0) + 1);
    expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
    expect(await keys('runs/.collected.geo-dino-state/')).toEqual([]);
  }, 600_000);

  /** Start a worker with `env`, hand it one shard job of a run in the bucket, return the error it logs. */
  async function failedJob(name: string, env: NodeJS.ProcessEnv): Promise<{ code?: string; message?: string } | undefined> {
    const queueName = `${QUEUE}-${name}`;
    const w = startCli(['worker', '--queue', redis.url, '--queue-name', queueName, '--json'], { ...CLEAN_AWS_ENV, GEO_DINO_HOME: join(dir, name), ...env });
    const queue = new Queue(queueName, { connection: { url: redis.url } });
    const stateDir = `s3://${B}/runs/.x.geo-dino-state/0123456789abcdef`;
    try {
      await queue.add('shard', { v: 1, run: 'r', planPath: `${stateDir}/plan.json`, stateDir, model: 'demo', zone: 0, shard: 's', row: 0, col: 0, s3Endpoint: bed.proxy.endpoint }, { jobId: 'r.s', attempts: 1 });
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && !w.lines.some((l) => l['msg'] === 'tile batch failed')) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await queue.close();
    }
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    return (w.lines.find((l) => l['msg'] === 'tile batch failed') as { err?: { code?: string; message?: string } } | undefined)?.err;
  }

  it('a worker without credentials: its job fails with one clear error naming the object and what to set', async () => {
    const err = await failedJob('nocreds', { AWS_ENDPOINT_URL: bed.proxy.endpoint });
    const planUrl = `s3://${B}/runs/.x.geo-dino-state/0123456789abcdef/plan.json`;
    expect(err?.code).toBe('E_ACCESS_DENIED');
    expect(err?.message).toMatch(new RegExp(`^${planUrl.replace(/[.]/g, '\\.')}: access denied \\(HTTP 403`));
    expect(err?.message).toContain('requests were unsigned: set AWS credentials');
  }, 120_000);

  it('a worker without the endpoint of a run whose bucket is behind one: one line saying to set --s3-endpoint', async () => {
    const err = await failedJob('noendpoint', { AWS_ACCESS_KEY_ID: bed.server.accessKeyId, AWS_SECRET_ACCESS_KEY: bed.server.secretAccessKey });
    expect(err?.code).toBe('E_ARGUMENT');
    expect(err?.message).toBe(
      `s3://${B}/runs/.x.geo-dino-state/0123456789abcdef: the run's bucket is at the S3 endpoint ${bed.proxy.endpoint} (the coordinator's), but this worker has no --s3-endpoint, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL and would ask AWS; start the worker with --s3-endpoint <url> (the address of that service from this machine)`,
    );
    expect(JSON.stringify(err)).not.toContain(bed.server.secretAccessKey);
  }, 120_000);
});
