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
import { PLAN_FORMAT, TileStore, checkRunEndpoint, extraHeadsOf, openPlanModel, predictTiles, processDistributedShard, readRunPlan, resolveModel, shardRecorded, type ChmPlan, type RunPlan, type ShardTask } from '@geo-dino/chm';
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

/** A shard of a sharded `geo-dino chm` run (issue 13): the worker writes it into the shared state. */
const ShardJobSchema = z.object({
  v: z.literal(1),
  run: z.string(),
  planPath: z.string(),
  stateDir: z.string(),
  model: z.string(),
  zone: z.number().int().nonnegative(),
  shard: z.string(),
  row: z.number().int(),
  col: z.number().int(),
  /** False: the coordinator writes no web layers, so the shard needs no imagery.tif. */
  webTiles: z.boolean().optional(),
  /** The coordinator's S3 endpoint when the state is in object storage behind one (null: AWS). */
  s3Endpoint: z.string().nullable().optional(),
});
export type ShardJobData = z.infer<typeof ShardJobSchema>;
type JobData = TileJobData | ShardJobData;

export interface TileJobResult {
  tiles: number;
  predicted: number;
  skipped: number;
  worker: string;
  /** Shard jobs: the shard, and whether this job wrote it (false: it was already recorded). */
  shard?: string;
  written?: boolean;
}

/** Job ids may not contain `:`; region names and run ids never do. */
export function tileJobId(region: string, run: string, batch: number): string {
  return `${region}.${run}.${batch}`;
}

export interface DistributeCommon {
  /** Job attempts before a unit fails the run (default 5). */
  attempts?: number;
  /** How long Redis may be unreachable while waiting before the run fails (default 5 min). */
  redisOutageMs?: number;
  pollMs?: number;
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
}

export interface DistributeOptions extends DistributeCommon {
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
}

async function tilesPresent(store: TileStore, ids: readonly number[]): Promise<number[]> {
  const missing: number[] = [];
  for (const id of ids) if (!(await fileExists(store.pathOf(id)))) missing.push(id);
  return missing;
}

/** One unit of distributed work: a job, and how the coordinator sees that its result is in place. */
interface WorkUnit<D> {
  jobId: string;
  name: 'tiles' | 'shard';
  data: D;
  /** How many progress units it is worth (tiles, shards). */
  size: number;
  /** How much of it is already done (confirmed against the shared state, not the queue). */
  done(): Promise<number>;
  what: string;
}


/**
 * Coordinator side: queue the units that are not done yet and wait until each is confirmed in the
 * shared state (not merely reported by the queue). A unit whose job failed for good fails the run
 * with the worker's reason; a completed job whose result is missing is queued again.
 */
async function distributeUnits<D extends JobData>(settings: QueueSettings, units: readonly WorkUnit<D>[], o: DistributeCommon & { label: string; unit: string; onDone?: (u: WorkUnit<D>) => void }): Promise<void> {
  const log = o.log ?? silentLogger();
  const name = settings.name ?? DEFAULT_QUEUE_NAME;
  // Commands fail after their retries (instead of waiting forever) so an outage is noticed.
  const queue = new Queue<JobData, unknown, string>(name, {
    connection: { ...connectionOf(settings.url), maxRetriesPerRequest: 20, retryStrategy: (times: number) => Math.min(1000 * times, 5000) },
    ...(settings.prefix ? { prefix: settings.prefix } : {}),
  });
  queue.on('error', (err) => log.warn({ err }, 'queue connection error'));
  const total = units.reduce((s, u) => s + u.size, 0);
  const pending = new Set<WorkUnit<D>>();
  let done = 0;
  const task = (o.progress ?? silentProgress).start(o.label, { total, unit: o.unit });
  const add = async (u: WorkUnit<D>): Promise<void> => {
    await queue.add(u.name, u.data, {
      jobId: u.jobId,
      attempts: o.attempts ?? 5,
      backoff: { type: 'exponential', delay: 5000 },
      removeOnComplete: { age: 7 * 86400 },
      removeOnFail: { age: 30 * 86400 },
    });
  };
  try {
    for (const u of units) {
      const have = await u.done();
      done += have;
      if (have >= u.size) {
        o.onDone?.(u);
        continue;
      }
      const existing = await queue.getJob(u.jobId);
      if (existing) {
        const state = await existing.getState();
        // A finished job whose result is not all there (or a failed one, from an earlier attempt
        // of this run): replace it.
        if (state === 'completed' || state === 'failed') {
          await existing.remove();
          await add(u);
        }
      } else await add(u);
      pending.add(u);
    }
    task.update(done);
    log.info({ queue: name, redis: redactRedisUrl(settings.url), jobs: pending.size, [o.unit]: total - done }, `${o.label}: waiting for workers`);
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
          throw new GeoDinoError('E_UNAVAILABLE', `${redactRedisUrl(settings.url)}: lost Redis for ${Math.round((lost + (outcome === 'slow' ? pollDeadline : 0)) / 1000)} s while waiting for ${o.unit} (${why}); the run can be started again once Redis is back`, {
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
  } finally {
    // A Redis that is gone would keep close() waiting: give it a few seconds, then drop the connection.
    const t = new AbortController();
    const closed = await Promise.race([queue.close().then(() => true, () => true), systemClock.sleep(5000, t.signal).then(() => false)]);
    t.abort();
    if (!closed) void queue.disconnect().catch(() => undefined);
  }

  async function pollOnce(): Promise<void> {
    for (const u of [...pending]) {
      const job = await queue.getJob(u.jobId);
      const state = job ? await job.getState() : 'unknown';
      if (state === 'completed' || !job) {
        const have = await u.done();
        if (have >= u.size) {
          pending.delete(u);
          done += u.size;
          task.update(done);
          o.onDone?.(u);
          continue;
        }
        // Completed but not in the shared state (it was cleaned meanwhile), or the job vanished: again.
        log.warn({ job: u.jobId, what: u.what }, 'a finished job\'s result is not in the shared state; queueing it again');
        if (job) await job.remove();
        await add(u);
      } else if (state === 'failed') {
        throw new GeoDinoError('E_INTERNAL', `${u.what} failed on the workers after ${job.attemptsMade} attempts: ${job.failedReason}`, {
          details: { job: u.jobId, reason: job.failedReason },
        });
      }
    }
  }
}

/**
 * Coordinator side of a distributed monitoring run: queue the tile batches that still have tiles
 * to do and wait until every tile is in the store.
 */
export async function distributeTiles(settings: QueueSettings, o: DistributeOptions): Promise<void> {
  // Keep temporaries: workers may be writing tiles right now (a resumed run).
  const store = await TileStore.open(o.tilesDir, o.plan.configHash, { keepTemporaries: true });
  const units: WorkUnit<TileJobData>[] = o.batches.map((tiles, i) => ({
    jobId: tileJobId(o.region, o.run, i),
    name: 'tiles',
    data: { v: 1, region: o.region, run: o.run, planPath: o.planPath, tilesDir: o.tilesDir, configHash: o.plan.configHash, model: o.model, tiles: [...tiles] },
    size: tiles.length,
    done: async () => tiles.length - (await tilesPresent(store, tiles)).length,
    what: `tile batch ${i} of run ${o.run}`,
  }));
  await distributeUnits(settings, units, { ...o, label: 'tiles on the queue', unit: 'tiles', onDone: (u) => o.onTilesDone?.([...u.data.tiles]) });
  // Every tile is in: temporaries left by killed workers can go.
  await TileStore.open(o.tilesDir, o.plan.configHash);
}

export interface DistributeShardsOptions extends DistributeCommon {
  /** Short id of the run (job ids: `<run>.<shard>`). */
  run: string;
  planPath: string;
  stateDir: string;
  model: string;
  shards: readonly ShardTask[];
  /** False when the run writes no web layers (`--no-web-tiles`). */
  webTiles?: boolean;
  /** The coordinator's S3 endpoint (state in object storage), for the workers' first check. */
  s3Endpoint?: string | null;
}

/**
 * Coordinator side of a distributed sharded `geo-dino chm` run (`--queue`): one job per shard;
 * workers write finished shards into the run's shared state — a directory every machine sees at
 * the same path, or an s3:// prefix (`--out s3://…`, @geo-dino/chm remote-shards.ts: no shared
 * file system) — and the coordinator waits until each shard is recorded in the ledger.
 */
export async function distributeShards(settings: QueueSettings, o: DistributeShardsOptions): Promise<void> {
  const units: WorkUnit<ShardJobData>[] = o.shards.map((t) => ({
    jobId: `${o.run}.${t.shard}`,
    name: 'shard',
    data: { v: 1, run: o.run, planPath: o.planPath, stateDir: o.stateDir, model: o.model, zone: t.zone, shard: t.shard, row: t.row, col: t.col, ...(o.webTiles === false ? { webTiles: false } : {}), ...(o.s3Endpoint !== undefined ? { s3Endpoint: o.s3Endpoint } : {}) },
    size: 1,
    done: async () => ((await shardRecorded(o.stateDir, t.shard, { ...(o.log ? { log: o.log } : {}) })) ? 1 : 0),
    what: `shard ${t.shard} of run ${o.run}`,
  }));
  await distributeUnits(settings, units, { ...o, label: 'shards on the queue', unit: 'shards' });
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
  /** GPUs, one session worker each (`--device cuda:0,cuda:1`). */
  deviceIds?: readonly number[];
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
      ...(o.deviceIds?.length ? { deviceIds: o.deviceIds } : {}),
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
  const runPlans = new Map<string, ChmPlan>();
  const shardJob = async (job: Job<JobData, TileJobResult>): Promise<TileJobResult> => {
    const d = parseWith(ShardJobSchema, job.data, { source: `job ${job.id}`, code: 'E_BAD_JSON' });
    checkRunEndpoint(d.stateDir, d.s3Endpoint, o.env);
    let plan = runPlans.get(d.planPath);
    if (!plan) {
      plan = await readRunPlan(d.planPath, { log, ...(o.env ? { env: o.env } : {}) });
      if (runPlans.size > 4) runPlans.clear();
      runPlans.set(d.planPath, plan);
    }
    const model = await runnerOf(o.model ?? d.model, plan.zones[0]!);
    log.debug({ job: job.id, shard: d.shard, attempt: job.attemptsStarted }, 'shard started');
    const r = await processDistributedShard(plan, { zone: d.zone, shard: d.shard, row: d.row, col: d.col }, model, d.stateDir, {
      log,
      ...(o.batch !== undefined ? { batch: o.batch } : {}),
      ...(o.env ? { env: o.env } : {}),
      ...(d.webTiles === false ? { webTiles: false } : {}),
    });
    const result: TileJobResult = { tiles: r.predicted, predicted: r.predicted, skipped: 0, worker: me, shard: d.shard, written: r.written };
    log.info({ job: job.id, shard: d.shard, ...result, eventLoopMaxDelayMs: Math.round(loop.max / 1e6) }, r.written ? 'shard written' : 'shard already recorded');
    totals.jobs++;
    totals.tiles += r.predicted;
    o.onJob?.({ ...result, job: String(job.id) });
    return result;
  };
  const processor = async (job: Job<JobData, TileJobResult>): Promise<TileJobResult> => {
    loop.reset();
    if (job.name === 'shard') return shardJob(job);
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

  const worker = new Worker<JobData, TileJobResult>(name, processor, {
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
