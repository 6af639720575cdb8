/**
 * Distributed mode on BullMQ + Redis.
 *
 * The coordinator (`monitor run|start --queue redis://…`) plans a run, then puts its tiles on the
 * queue in batches — one job per batch, with a deterministic job id `<region>.<run>.<batch>`, so
 * re-adding a batch (a restarted coordinator) is a no-op while the job exists. Workers
 * (`geo-dino worker --queue redis://…`, any number, on any machine that sees the run's work
 * directory at the same path) predict a batch's tiles with the model in worker threads (so the
 * event loop stays free and BullMQ keeps renewing the job's lock during long tiles) and write each
 * tile atomically to the run's tile store. A plan with a land-cover head is predicted with the head
 * attached (the same backbone pass; the head graph is read from the path in the plan, checked
 * against its hash, so it too must be at the same path on every worker). Delivery is at least
 * once: a batch whose worker died is handed to another after its lock expires; tiles already in
 * the store are skipped, and a tile predicted twice is written with the same bytes, so the result
 * does not change. The coordinator watches the jobs, confirms each completed batch against the
 * tile store, and assembles the run when every tile is in.
 *
 * Redis must run with `maxmemory-policy noeviction` (an evicted job key silently loses work; this
 * is checked and refused) and should persist with AOF (`appendonly yes`; warned about when off).
 */
import { hostname } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { GeoDinoError, fileExists, redactUrl, readJsonFile, silentLogger, silentProgress, throwIfAborted, toGeoDinoError, z, parseWith, type Logger, type Progress } from '@geo-dino/core';
import { PLAN_FORMAT, TileStore, extraHeadsOf, openPlanModel, predictTiles, resolveModel, type RunPlan } from '@geo-dino/chm';
import type { ModelRunner } from '@geo-dino/model';
import type { Device } from '@geo-dino/runtime';
import { systemClock } from './schedule.js';

export const DEFAULT_QUEUE_NAME = 'geo-dino-tiles';
/** Default job lock: well above the slowest batch (a 1024-px CHMv2 tile takes ~30 s on 2 CPU cores). */
export const DEFAULT_LOCK_DURATION_MS = 10 * 60_000;
export const DEFAULT_BATCH_TILES = 4;

export interface QueueSettings {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…`. */
  url: string;
  /** Queue name (default `geo-dino-tiles`). */
  name?: string;
  /** BullMQ key prefix (default `bull`). */
  prefix?: string;
}

export interface RedisCheck {
  url: string;
  version: string;
  maxmemoryPolicy: string;
  aofEnabled: boolean;
  warnings: string[];
}

/** The URL with its password hidden, for messages. */
export function redactRedisUrl(url: string): string {
  return redactUrl(url).replace(/\/$/, '');
}

/** Check a `--queue` value: a redis:// or rediss:// URL. */
export function parseQueueUrl(url: string, field = '--queue'): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new GeoDinoError('E_ARGUMENT', `${field}: ${JSON.stringify(url)} is not a URL; expected redis://host:port`, { details: { field } });
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new GeoDinoError('E_ARGUMENT', `${field}: ${JSON.stringify(redactRedisUrl(url))} must be a redis:// or rediss:// URL`, { details: { field } });
  }
  if (!u.hostname) throw new GeoDinoError('E_ARGUMENT', `${field}: ${JSON.stringify(redactRedisUrl(url))} has no host`, { details: { field } });
  return url;
}

function infoField(info: string, key: string): string | null {
  const m = new RegExp(`^${key}:(.*)$`, 'm').exec(info);
  return m ? m[1]!.trim() : null;
}

/**
 * Connect once, with a deadline, and read what BullMQ needs: a clear E_UNAVAILABLE instead of
 * ioredis's endless reconnection when Redis cannot be reached; E_UNAVAILABLE when the eviction
 * policy is not `noeviction`; a warning when AOF persistence is off.
 */
export async function checkRedis(url: string, options: { timeoutMs?: number; log?: Logger } = {}): Promise<RedisCheck> {
  parseQueueUrl(url);
  const shown = redactRedisUrl(url);
  const timeoutMs = options.timeoutMs ?? 5000;
  const client = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  let lastError: { code?: string; message?: string } | null = null;
  client.on('error', (err: { code?: string; message?: string }) => {
    lastError = err; // the socket's reason (ECONNREFUSED, ENOTFOUND…); connect() only says "closed"
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    try {
      await Promise.race([
        client.connect(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      const e = (lastError ?? err) as { code?: string; message?: string };
      throw new GeoDinoError('E_UNAVAILABLE', `${shown}: cannot connect to Redis: ${e.code ?? e.message ?? String(err)} (is redis-server running and reachable from here?)`, {
        cause: err,
        details: { url: shown },
      });
    }
    let info: string;
    try {
      info = await client.info();
    } catch (err) {
      throw new GeoDinoError('E_UNAVAILABLE', `${shown}: Redis answered the connection but not INFO: ${(err as Error).message}`, { cause: err, details: { url: shown } });
    }
    const policy = infoField(info, 'maxmemory_policy') ?? 'unknown';
    const aof = infoField(info, 'aof_enabled') === '1';
    const version = infoField(info, 'redis_version') ?? 'unknown';
    if (policy !== 'noeviction') {
      throw new GeoDinoError(
        'E_UNAVAILABLE',
        `${shown}: Redis maxmemory-policy is ${policy}; BullMQ needs noeviction (an evicted job is lost work). Set it with \`CONFIG SET maxmemory-policy noeviction\` and in redis.conf`,
        { details: { url: shown, maxmemoryPolicy: policy } },
      );
    }
    const warnings: string[] = [];
    if (!aof) warnings.push('AOF persistence is off (appendonly no): a Redis restart loses queued jobs; set `appendonly yes` (appendfsync everysec)');
    for (const w of warnings) (options.log ?? silentLogger()).warn({ redis: shown }, w);
    return { url: shown, version, maxmemoryPolicy: policy, aofEnabled: aof, warnings };
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

function connectionOf(url: string): { url: string; maxRetriesPerRequest: null; connectTimeout: number } {
  return { url, maxRetriesPerRequest: null, connectTimeout: 10_000 };
}

// ------------------------------------------------------------------------------------------------
// Jobs

const TileJobSchema = z.object({
  v: z.literal(1),
  region: z.string(),
  run: z.string(),
  planPath: z.string(),
  tilesDir: z.string(),
  configHash: z.string(),
  model: z.string(),
  tiles: z.array(z.number().int().nonnegative()).min(1),
});
export type TileJobData = z.infer<typeof TileJobSchema>;

export interface TileJobResult {
  tiles: number;
  predicted: number;
  skipped: number;
  worker: string;
}

/** Job ids may not contain `:`; region names and run ids never do. */
export function tileJobId(region: string, run: string, batch: number): string {
  return `${region}.${run}.${batch}`;
}

export interface DistributeOptions {
  region: string;
  run: string;
  planPath: string;
  tilesDir: string;
  plan: RunPlan;
  model: string;
  /** Tile ids, per batch (index = batch number). */
  batches: readonly (readonly number[])[];
  /** Called with tiles confirmed in the store. */
  onTilesDone?: (ids: number[]) => void;
  /** Job attempts before a batch fails the run (default 5). */
  attempts?: number;
  /** How long Redis may be unreachable while waiting before the run fails (default 5 min). */
  redisOutageMs?: number;
  pollMs?: number;
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
}

async function tilesPresent(store: TileStore, ids: readonly number[]): Promise<number[]> {
  const missing: number[] = [];
  for (const id of ids) if (!(await fileExists(store.pathOf(id)))) missing.push(id);
  return missing;
}

/**
 * Coordinator side: queue the batches that still have tiles to do and wait until every tile is in
 * the store. A batch whose job failed for good (its attempts used up) fails the run with the
 * worker's reason.
 */
export async function distributeTiles(settings: QueueSettings, o: DistributeOptions): Promise<void> {
  const log = o.log ?? silentLogger();
  const name = settings.name ?? DEFAULT_QUEUE_NAME;
  // Keep temporaries: workers may be writing tiles right now (a resumed run).
  const store = await TileStore.open(o.tilesDir, o.plan.configHash, { keepTemporaries: true });
  // Commands fail after their retries (instead of waiting forever) so an outage is noticed.
  const queue = new Queue<TileJobData, TileJobResult>(name, {
    connection: { ...connectionOf(settings.url), maxRetriesPerRequest: 20, retryStrategy: (times: number) => Math.min(1000 * times, 5000) },
    ...(settings.prefix ? { prefix: settings.prefix } : {}),
  });
  queue.on('error', (err) => log.warn({ err }, 'queue connection error'));
  const total = o.batches.reduce((s, b) => s + b.length, 0);
  const pending = new Map<number, readonly number[]>();
  let done = 0;
  const task = (o.progress ?? silentProgress).start('tiles on the queue', { total, unit: 'tiles' });
  const add = async (batch: number, tiles: readonly number[]): Promise<void> => {
    const data: TileJobData = { v: 1, region: o.region, run: o.run, planPath: o.planPath, tilesDir: o.tilesDir, configHash: o.plan.configHash, model: o.model, tiles: [...tiles] };
    await queue.add('tiles', data, {
      jobId: tileJobId(o.region, o.run, batch),
      attempts: o.attempts ?? 5,
      backoff: { type: 'exponential', delay: 5000 },
      removeOnComplete: { age: 7 * 86400 },
      removeOnFail: { age: 30 * 86400 },
    });
  };
  try {
    for (const [i, tiles] of o.batches.entries()) {
      const missing = await tilesPresent(store, tiles);
      if (missing.length === 0) {
        done += tiles.length;
        o.onTilesDone?.([...tiles]);
        continue;
      }
      if (missing.length < tiles.length) o.onTilesDone?.(tiles.filter((t) => !missing.includes(t)));
      done += tiles.length - missing.length;
      const existing = await queue.getJob(tileJobId(o.region, o.run, i));
      if (existing) {
        const state = await existing.getState();
        // A finished job whose tiles are not all there (or a failed one, from an earlier attempt
        // of this run): replace it.
        if (state === 'completed' || state === 'failed') {
          await existing.remove();
          await add(i, tiles);
        }
      } else await add(i, tiles);
      pending.set(i, tiles);
    }
    task.update(done);
    log.info({ queue: name, redis: redactRedisUrl(settings.url), batches: pending.size, tiles: total - done }, 'tile batches queued; waiting for workers');
    let lastWorkerCheck = 0;
    let warnedNoWorkers = false;
    let outageSince: number | null = null;
    // One poll at a time; a poll that does not answer within `pollDeadline` counts as an outage
    // (Redis commands wait for reconnection, they do not fail fast).
    let current: Promise<unknown> | null = null;
    const outageLimit = o.redisOutageMs ?? 5 * 60_000;
    const pollDeadline = Math.min(15_000, Math.max(1000, outageLimit / 2));
    while (pending.size) {
      throwIfAborted(o.signal);
      current ??= pollOnce().then(
        () => 'ok' as const,
        (err: unknown) => err,
      );
      const timer = new AbortController();
      const outcome = await Promise.race([current, systemClock.sleep(pollDeadline, timer.signal).then(() => 'slow' as const)]);
      timer.abort();
      if (outcome !== 'slow') current = null;
      if (outcome === 'ok') outageSince = null;
      else {
        if (outcome instanceof GeoDinoError) throw outcome;
        // Redis went away mid-run: wait for it (workers do too), within limits.
        outageSince ??= Date.now();
        const lost = Date.now() - outageSince;
        const why = outcome === 'slow' ? `no answer within ${pollDeadline / 1000} s` : (outcome as Error).message;
        if (lost >= outageLimit - pollDeadline) {
          throw new GeoDinoError('E_UNAVAILABLE', `${redactRedisUrl(settings.url)}: lost Redis for ${Math.round((lost + (outcome === 'slow' ? pollDeadline : 0)) / 1000)} s while waiting for tiles (${why}); the run can be started again once Redis is back`, {
            details: { url: redactRedisUrl(settings.url) },
          });
        }
        log.warn({ redis: redactRedisUrl(settings.url), reason: why }, 'cannot reach Redis; waiting for it');
      }
      throwIfAborted(o.signal);
      if (!pending.size) break;
      if (Date.now() - lastWorkerCheck > 30_000) {
        lastWorkerCheck = Date.now();
        const workers = await queue.getWorkersCount().catch(() => -1);
        if (workers === 0 && !warnedNoWorkers) {
          warnedNoWorkers = true;
          log.warn({ queue: name, redis: redactRedisUrl(settings.url) }, `no worker is connected to queue ${name}; start \`geo-dino worker --queue ${redactRedisUrl(settings.url)}\``);
        } else if (workers > 0) warnedNoWorkers = false;
      }
      await systemClock.sleep(o.pollMs ?? 1000, o.signal);
    }
    task.finish();
    // Every tile is in: temporaries left by killed workers can go.
    await TileStore.open(o.tilesDir, o.plan.configHash);
  } finally {
    // A Redis that is gone would keep close() waiting: give it a few seconds, then drop the connection.
    const t = new AbortController();
    const closed = await Promise.race([queue.close().then(() => true, () => true), systemClock.sleep(5000, t.signal).then(() => false)]);
    t.abort();
    if (!closed) void queue.disconnect().catch(() => undefined);
  }

  async function pollOnce(): Promise<void> {
    for (const [i, tiles] of [...pending]) {
      const job = await queue.getJob(tileJobId(o.region, o.run, i));
      const state = job ? await job.getState() : 'unknown';
      if (state === 'completed' || !job) {
        const missing = await tilesPresent(store, tiles);
        if (missing.length === 0) {
          pending.delete(i);
          done += tiles.length;
          task.update(done);
          o.onTilesDone?.([...tiles]);
          continue;
        }
        // Completed but tiles missing (the store was cleaned meanwhile), or the job vanished: again.
        log.warn({ batch: i, missing: missing.length }, 'a tile batch is not in the store; queueing it again');
        if (job) await job.remove();
        await add(i, tiles);
      } else if (state === 'failed') {
        throw new GeoDinoError('E_INTERNAL', `tile batch ${i} of run ${o.run} failed on the workers after ${job.attemptsMade} attempts: ${job.failedReason}`, {
          details: { batch: i, reason: job.failedReason },
        });
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Worker

export interface WorkerOptions extends QueueSettings {
  /** Jobs processed at once (default 1: one model run at a time uses the machine). */
  concurrency?: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** Use this model directory for every job (its weights must match the plan's); default: the job's. */
  model?: string;
  device?: Device;
  threads?: number;
  workers?: number;
  batch?: number;
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  signal?: AbortSignal;
  /** Called after each job (tests, metrics). */
  onJob?: (result: TileJobResult & { job: string }) => void;
}

/** `geo-dino worker`: process tile batches until `signal` aborts; then finish the current job and close. */
export async function runTileWorker(o: WorkerOptions): Promise<{ jobs: number; tiles: number }> {
  const log = o.log ?? silentLogger();
  const check = await checkRedis(o.url, { log });
  const name = o.name ?? DEFAULT_QUEUE_NAME;
  const me = `${hostname()}:${process.pid}`;
  const plans = new Map<string, RunPlan>();
  let runner: { key: string; runner: ModelRunner } | null = null;
  const totals = { jobs: 0, tiles: 0 };

  const planOf = async (path: string, configHash: string): Promise<RunPlan> => {
    const cached = plans.get(path);
    if (cached && cached.configHash === configHash) return cached;
    const plan = (await readJsonFile(path)) as RunPlan;
    if (plan.format !== PLAN_FORMAT || plan.configHash !== configHash) {
      throw new GeoDinoError('E_ARGUMENT', `${path}: not the plan this job was made for (config ${String(plan.configHash).slice(0, 12)}, job ${configHash.slice(0, 12)})`);
    }
    if (plans.size > 8) plans.clear();
    plans.set(path, plan);
    return plan;
  };
  const runnerOf = async (model: string, plan: RunPlan): Promise<ModelRunner> => {
    // One runner per model and set of heads: a job of a plan with other heads reopens it.
    const key = [model, plan.model.weightsSha256, ...extraHeadsOf(plan).map((h) => `${h.name}:${h.spec.sha256}`)].join('\n');
    if (runner?.key === key) return runner.runner;
    if (runner) await runner.runner.close();
    runner = null;
    const md = await resolveModel(model, { log, ...(o.env ? { env: o.env } : {}) });
    const r = await openPlanModel(md.dir, plan, {
      log,
      ...(o.device ? { device: o.device } : {}),
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
      ...(o.workers !== undefined ? { workers: o.workers } : {}),
    });
    runner = { key, runner: r };
    log.info({ model: md.meta.name, provider: r.provider, heads: extraHeadsOf(plan).map((h) => h.name) }, 'model loaded');
    return r;
  };

  // Evidence that the event loop stays free while the model runs (the job lock is renewed on it).
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  const processor = async (job: Job<TileJobData, TileJobResult>): Promise<TileJobResult> => {
    loop.reset();
    const d = parseWith(TileJobSchema, job.data, { source: `job ${job.id}`, code: 'E_BAD_JSON' });
    log.debug({ job: job.id, region: d.region, run: d.run, tiles: d.tiles.length, attempt: job.attemptsStarted }, 'tile batch started');
    const plan = await planOf(d.planPath, d.configHash);
    const model = await runnerOf(o.model ?? d.model, plan);
    const store = await TileStore.open(d.tilesDir, d.configHash, { keepTemporaries: true });
    const missing: number[] = [];
    for (const id of d.tiles) if (!(await fileExists(store.pathOf(id)))) missing.push(id);
    let n = 0;
    if (missing.length) {
      await predictTiles(plan, missing, model, store, {
        log,
        ...(o.batch !== undefined ? { batch: o.batch } : {}),
        ...(o.env ? { env: o.env } : {}),
        onTile: () => {
          n++;
          void job.updateProgress({ done: d.tiles.length - missing.length + n, total: d.tiles.length }).catch(() => undefined);
        },
      });
    }
    const result: TileJobResult = { tiles: d.tiles.length, predicted: missing.length, skipped: d.tiles.length - missing.length, worker: me };
    log.info({ job: job.id, region: d.region, run: d.run, ...result, eventLoopMaxDelayMs: Math.round(loop.max / 1e6) }, 'tile batch done');
    totals.jobs++;
    totals.tiles += missing.length;
    o.onJob?.({ ...result, job: String(job.id) });
    return result;
  };

  const worker = new Worker<TileJobData, TileJobResult>(name, processor, {
    connection: connectionOf(o.url),
    ...(o.prefix ? { prefix: o.prefix } : {}),
    name: me,
    concurrency: o.concurrency ?? 1,
    lockDuration: o.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS,
    stalledInterval: o.stalledIntervalMs ?? 30_000,
    maxStalledCount: 3,
    autorun: false,
  });
  worker.on('failed', (job, err) => log.warn({ job: job?.id, attempts: job?.attemptsMade, err: toGeoDinoError(err) }, 'tile batch failed'));
  worker.on('error', (err) => log.warn({ err }, 'worker connection error'));
  worker.on('stalled', (id) => log.warn({ job: id }, 'a tile batch stalled (its worker stopped renewing the lock); it goes back to the queue'));
  log.info({ queue: name, redis: check.url, redisVersion: check.version, aof: check.aofEnabled, lockDurationMs: o.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS, worker: me }, 'worker ready');
  const running = worker.run();
  running.catch(() => undefined);
  await new Promise<void>((resolve) => {
    if (o.signal?.aborted) return resolve();
    o.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  log.info({ worker: me }, 'stopping: finishing the current batch');
  await worker.close();
  await running.catch(() => undefined);
  loop.disable();
  const r = runner as { key: string; runner: ModelRunner } | null;
  if (r) await r.runner.close();
  return totals;
}
