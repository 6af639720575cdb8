/**
 * `runChm`: plan → predict the tiles not yet in the store → assemble, with the run's state kept
 * beside `--out` so an interrupted run continues where it stopped.
 *
 * State directory `<parent>/.<out-name>.geo-dino-state/`: `plan.json` (the frozen plan: scenes
 * chosen, grid, hashes), `tiles/` (the tile store), `lock` (the pid of the process running it),
 * `staging/` (outputs being assembled). It is removed when the run completes.
 *
 * - Re-running a finished run with the same arguments (same request hash in `<out>/run.json`) is a
 *   no-op that reports the existing outputs.
 * - An interrupted run (Ctrl-C, SIGTERM: stops at a tile boundary — queued batches never start,
 *   the one in the model finishes and is stored, see predict.ts; SIGKILL, crash: loses at most
 *   the tiles in flight) leaves its state; `resume: true` continues it. Without `resume`, an
 *   existing state is an error that says what to do, never silently discarded; a state of a
 *   different request is an error unless the user removes it.
 * - Nothing is written into `--out` until the run is complete.
 * - `out` may be `s3://bucket/prefix`: the run is staged locally, then published (remote.ts).
 */
import { open, readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { GEO_DINO_VERSION, type ErrorCode, ERROR_CODES, type Progress, GeoDinoError, toGeoDinoError, assertWritableDir, ensureDir, fileExists, processAlive, fsError, readJsonFile, silentLogger, silentProgress, throwIfAborted, writeJsonAtomic, type Logger } from '@geo-dino/core';
import type { ModelRunner } from '@geo-dino/model';
import type { Device } from '@geo-dino/runtime';
import { isS3Url } from '@geo-dino/storage';
import { assembleRun, type AssembleResult } from './assemble.js';
import { batchFor, executionFor } from './execution.js';
import { openPlanModel } from './extra-heads.js';
import { planRun, planTileIds, requestHashOf, resolveModel } from './plan.js';
import { predictTiles, type PredictSummary } from './predict.js';
import { runChmToObjectStore } from './remote.js';
import { TileStore } from './tile-store.js';
import { TileFeed } from './feed.js';
import { RUN_PLAN_FORMAT, RUN_PLAN_FORMAT_VERSION, type ChmPlan, type ChmRequest, type CommonOptions, type RunPlan } from './types.js';
import { writeShardedRunTiles } from '@geo-dino/pmtiles';
import { extraHeadsOf } from './extra-heads.js';
import { plannedShards, releaseTiles, ShardLedger, type ShardRecord, tilesFirstNeededBy, writeShard, writeShardedIndex, type ShardedOutputs, type ShardTask } from './sharded.js';
import { shardGridOf, shardTileIds, layoutOf } from './plan.js';
import { listFiles, moveIntoPlace, onnxruntimeVersion, peakRssBytes } from './assemble.js';
import { crsLabel } from '@geo-dino/tiling';
import { publishedSource, tileAttributions } from './sources.js';

export interface ChmRunOptions extends ChmRequest, CommonOptions {
  /** The run directory to create. */
  out: string;
  /** Continue an interrupted run from its state. */
  resume?: boolean;
  /** Replace an existing, different run in `out`. */
  force?: boolean;
  device?: Device;
  /** GPUs for `device: 'cuda'`, one session worker each (`--device cuda:0,cuda:1`). */
  deviceIds?: readonly number[];
  batch?: number;
  threads?: number;
  workers?: number;
  /** Blending window width (does not change the output; bounds memory). */
  chunkWidth?: number;
  /** Write the PMTiles web layers (default true). */
  webTiles?: boolean;
  /** Keep the state directory after success (default false). */
  keepState?: boolean;
  /** The command line, for run.json. */
  command?: readonly string[];
  /**
   * Where the run directory is published (absolute URL, `--stac-base-url`; with an s3:// `out`,
   * that URL by default): the STAC Item(s) and Collection then get absolute `self` links.
   * Without it they have none (self-contained: every href relative).
   */
  stacBaseUrl?: string;
  /**
   * Hand the shards of a sharded run to workers instead of writing them in this process
   * (`--queue`: the monitor package's BullMQ queue). Resolves when every given shard is recorded in
   * the ledger; the coordinator then writes the index files, the web layers and run.json.
   */
  distribute?: (job: { plan: ChmPlan; planPath: string; stateDir: string; shards: ShardTask[]; log: Logger; progress: Progress; signal?: AbortSignal }) => Promise<void>;
  /**
   * Names of shard files that stay in object storage and never come to the local run directory
   * (remote.ts, a distributed run into a bucket without web layers): the ledger does not look for
   * them locally; they are published from the ledger's records.
   */
  remoteShardFiles?: (name: string) => boolean;
}

export interface ChmRunResult {
  out: string;
  /** True when `out` already held this run (nothing was done). */
  upToDate: boolean;
  demo: boolean;
  run: Record<string, unknown>;
  files: { name: string; bytes: number }[];
  tiles: { total: number; predicted: number; resumed: number; empty: number };
  provider: string | null;
  assemble?: AssembleResult;
}

/** Where a run's state lives (beside `out`, on the same file system). */
export function stateDirFor(out: string): string {
  return join(dirname(out), `.${basename(out)}.geo-dino-state`);
}

/** Take the state directory's lock (a file holding our pid); a lock of a dead process is taken over. */
async function lock(stateDir: string): Promise<() => Promise<void>> {
  const path = join(stateDir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.write(String(process.pid));
      await fh.close();
      return async () => {
        await unlink(path).catch(() => undefined);
      };
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw fsError(err, path, 'create');
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new GeoDinoError('E_ARGUMENT', `${stateDir}: another geo-dino process (pid ${pid}) is running this run`, { details: { pid } });
      }
      await unlink(path).catch(() => undefined);
    }
  }
  throw new GeoDinoError('E_WRITE', `${path}: could not take the run's lock`);
}

async function readCompletedRun(out: string): Promise<Record<string, unknown> | null> {
  const path = join(out, 'run.json');
  if (!(await fileExists(path))) return null;
  try {
    const run = (await readJsonFile(path)) as Record<string, unknown>;
    return run && typeof run === 'object' ? run : null;
  } catch {
    return null;
  }
}

async function listOutputs(out: string, run: Record<string, unknown>): Promise<{ name: string; bytes: number }[] | null> {
  const names = Array.isArray(run['outputs']) ? (run['outputs'] as unknown[]).filter((n): n is string => typeof n === 'string') : [];
  const files: { name: string; bytes: number }[] = [];
  for (const name of names) {
    const st = await stat(join(out, name)).catch(() => null);
    if (!st?.isFile()) return null;
    files.push({ name, bytes: st.size });
  }
  return files;
}

/** The error to report when prediction and assembly both stopped: a real failure over the cancellation it caused. */
async function firstRealFailure(a: Promise<unknown>, b: Promise<unknown>, fallback: unknown): Promise<unknown> {
  const errs: unknown[] = [];
  for (const p of [a, b]) {
    try {
      await p;
    } catch (err) {
      errs.push(err);
    }
  }
  return errs.find((e) => !(e instanceof GeoDinoError && e.code === 'E_CANCELLED')) ?? errs[0] ?? fallback;
}

/** Run `geo-dino chm` (see the module comment). */
export async function runChm(options: ChmRunOptions): Promise<ChmRunResult> {
  if (isS3Url(options.out)) return runChmToObjectStore(options, runChm);
  const t0 = performance.now();
  const log: Logger = options.log ?? silentLogger();
  const progress = options.progress ?? silentProgress;
  const signal = options.signal;
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const common = { log, env, cwd, ...(signal ? { signal } : {}) };
  const out = resolve(cwd, options.out);
  const stateDir = stateDirFor(out);

  // The model first: a missing model is the cheapest error to report.
  const md = await resolveModel(options.model, common);
  const requestHash = await requestHashOf(options, md, common);

  // A finished run with the same request: nothing to do.
  const previous = await readCompletedRun(out);
  if (previous && previous['status'] === 'complete' && previous['requestHash'] === requestHash && !options.force) {
    const files = await listOutputs(out, previous);
    if (files) {
      log.info({ out }, 'this run is already complete; nothing to do (pass --force to recompute)');
      const tiles = (previous['tiles'] as ChmRunResult['tiles'] | undefined) ?? { total: 0, predicted: 0, resumed: 0, empty: 0 };
      return { out, upToDate: true, demo: previous['demo'] === true, run: previous, files, tiles, provider: ((previous['execution'] as { provider?: string } | undefined)?.provider) ?? null };
    }
  }
  if ((await fileExists(out)) && !options.force) {
    const what = previous ? `a different run (${String(previous['status'] ?? 'unknown status')}, request ${String(previous['requestHash'] ?? '?').slice(0, 12)})` : 'files that are not a geo-dino run';
    throw new GeoDinoError('E_ARGUMENT', `--out ${out}: already holds ${what}; choose another --out, or pass --force to replace it`, { details: { field: '--out', path: out } });
  }
  await assertWritableDir(dirname(out));
  const planPath = join(stateDir, 'plan.json');
  let plan: ChmPlan;
  let resumed = false;
  let unlock: () => Promise<void>;
  if (await fileExists(planPath)) {
    unlock = await lock(stateDir);
    try {
      const stored = (await readJsonFile(planPath)) as ChmPlan;
      if (stored.format !== RUN_PLAN_FORMAT || stored.formatVersion !== RUN_PLAN_FORMAT_VERSION) {
        throw new GeoDinoError('E_ARGUMENT', `${planPath}: a state from another geo-dino version; remove ${stateDir} to start over`, { details: { path: stateDir } });
      }
      if (stored.requestHash !== requestHash) {
        throw new GeoDinoError(
          'E_ARGUMENT',
          `${stateDir}: holds an interrupted run with different arguments (request ${stored.requestHash.slice(0, 12)}, now ${requestHash.slice(0, 12)}); rerun with the original arguments and --resume, or remove ${stateDir} to start over`,
          { details: { path: stateDir } },
        );
      }
      if (!options.resume) {
        const failed = (await readJsonFile(join(stateDir, FAILURE_FILE)).catch(() => null)) as { code?: ErrorCode; message?: string } | null;
        if (failed?.code && failed.message && failed.code in ERROR_CODES) {
          throw new GeoDinoError(failed.code, `${failed.message} (this run failed with it before; fix the cause and rerun with --resume to keep the finished work, or remove ${stateDir} to start over)`, {
            details: { path: stateDir, previous: true },
          });
        }
        const done =
          stored.layout === 'single'
            ? `${(await (await TileStore.open(join(stateDir, 'tiles'), stored.zones[0]!.configHash)).completed()).size} of ${stored.tiles} tiles done`
            : `${(await readdir(join(stateDir, 'shards')).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).length} of ${stored.shards} shards written`;
        throw new GeoDinoError('E_ARGUMENT', `${stateDir}: an interrupted run of these arguments has ${done}; add --resume to continue it, or remove ${stateDir} to start over`, {
          details: { path: stateDir },
        });
      }
      plan = stored;
      resumed = true;
      log.info({ state: stateDir }, 'resuming an interrupted run');
    } catch (err) {
      await unlock();
      throw err;
    }
  } else {
    if (options.resume) log.info({ state: stateDir }, 'nothing to resume; starting the run');
    // Planning writes nothing: a bad AOI, unreachable imagery or no overlap leaves no trace.
    plan = await planRun(options, { ...common, progress, modelDir: md, ...(options.force ? { force: true } : {}) });
    await ensureDir(stateDir);
    unlock = await lock(stateDir);
    try {
      if (await fileExists(planPath)) throw new GeoDinoError('E_ARGUMENT', `${stateDir}: another geo-dino process started this run meanwhile`, { details: { path: stateDir } });
      await writeJsonAtomic(planPath, plan);
    } catch (err) {
      await unlock();
      throw err;
    }
  }
  try {
    const planSeconds = (performance.now() - t0) / 1000;
    if (plan.layout === 'sharded') {
      return await runSharded(plan, { options, md, out, stateDir, t0, planSeconds, resumed, log, progress, env, signal });
    }
    const whole = plan;
    const plan1: RunPlan = whole.zones[0]!;
    const store = await TileStore.open(join(stateDir, 'tiles'), plan1.configHash);
    const done = await store.completed();
    const todo: number[] = [];
    let total = 0;
    for (const id of planTileIds(plan1)) {
      total++;
      if (!done.has(id)) todo.push(id);
    }
    const already = total - todo.length;
    if (resumed) log.info({ done: already, total }, 'tiles already in the state');
    throwIfAborted(signal);

    const exec = executionFor(options.device ?? 'auto', { ...(options.workers !== undefined ? { workers: options.workers } : {}), ...(options.threads !== undefined ? { threads: options.threads } : {}), ...(options.deviceIds?.length ? { deviceIds: options.deviceIds } : {}) });
    let summary: PredictSummary = { tiles: 0, empty: 0, validPixels: 0, modelCalls: 0, featheredTiles: 0, extraTileInferences: 0, modelSeconds: 0, seconds: 0 };
    let provider: string | null = null;
    let batch = options.batch ?? null;
    let fallbacks: readonly { provider: string; reason: string }[] = [];
    // Executions this process made (a fused graph counts as a backbone run); null when nothing was predicted.
    let modelRuns: { backbone: number; heads: Record<string, number> } | null = null;
    // Prediction and assembly run together: blending follows a row behind inference (TileFeed).
    // A failure of either stops the other; an interruption stops both and leaves the state.
    const inner = new AbortController();
    const onAbort = (): void => inner.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const feed = new TileFeed(done);
    const predicting = (async (): Promise<void> => {
      if (!todo.length) return;
      const runner: ModelRunner = await openPlanModel(md.dir, plan1, { device: exec.device, threads: exec.threads, workers: exec.workers, ...(exec.deviceIds ? { deviceIds: exec.deviceIds } : {}), log });
      provider = runner.provider;
      fallbacks = runner.fallbacks;
      batch = batchFor(runner.provider, options.batch);
      log.info({ device: exec.device, provider, workers: exec.workers, threads: exec.threads, batch }, `execution provider: ${provider}`);
      try {
        summary = await predictTiles(plan1, todo, runner, store, {
          batch,
          log,
          progress,
          env,
          signal: inner.signal,
          ...(options.headers ? { headers: options.headers } : {}),
          progressTotal: total,
          progressDone: already,
          onTile: (r) => feed.offer(r),
        });
      } finally {
        modelRuns = { backbone: runner.stats.backboneRuns, heads: { ...runner.stats.headRuns } };
        await runner.close();
      }
    })();
    predicting.catch((err: unknown) => {
      feed.fail(err);
    });
    const assembling = assembleRun(plan1, store, {
      out,
      staging: join(stateDir, 'staging'),
      replace: options.force ?? false,
      startedAt: t0,
      feed,
      log,
      progress,
      env,
      signal: inner.signal,
      ...(options.chunkWidth !== undefined ? { chunkWidth: options.chunkWidth } : {}),
      ...(options.webTiles !== undefined ? { webTiles: options.webTiles } : {}),
      ...(options.stacBaseUrl ? { stacBaseUrl: options.stacBaseUrl } : {}),
      runInfo: () => ({
        command: options.command ?? null,
        execution: { device: exec.device, provider, fallbacks, workers: exec.workers, threads: exec.threads, batch, modelRuns },
        tiles: { total, predicted: summary.tiles - summary.empty, empty: summary.empty, resumed: already, modelCalls: summary.modelCalls },
        sceneFeather: sceneFeatherInfo(plan1, summary),
        timings: {
          plan_s: Number(planSeconds.toFixed(3)),
          predict_s: Number(summary.seconds.toFixed(3)),
          tiles_per_s: summary.seconds > 0 ? Number(((summary.tiles - summary.empty) / summary.seconds).toFixed(4)) : null,
        },
      }),
    });
    assembling.catch(() => inner.abort());
    let result: AssembleResult;
    try {
      [, result] = await Promise.all([predicting, assembling]);
    } catch (err) {
      // Let both settle (the runner closed, the staging directory removed) before reporting.
      await Promise.allSettled([predicting, assembling]);
      // An interruption of the user wins; otherwise the first real failure (not the abort it caused).
      const first = await firstRealFailure(predicting, assembling, err);
      if (first instanceof GeoDinoError && first.code === 'E_CANCELLED') {
        const n = (await store.completed()).size;
        log.warn({ state: stateDir, done: n, total }, `interrupted with ${n} of ${total} tiles done; rerun the same command with --resume to continue`);
      }
      throw first;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (!options.keepState) await rm(stateDir, { recursive: true, force: true }).catch((err: unknown) => log.warn({ state: stateDir, err }, 'could not remove the run state'));
    const tiles = { total, predicted: summary.tiles - summary.empty, resumed: already, empty: summary.empty };
    return { out, upToDate: false, demo: whole.demo, run: result.run, files: result.files, tiles, provider, assemble: result };
  } catch (err) {
    // A failure (not an interruption) is recorded beside the state, so that a rerun without
    // --resume reports it again instead of "an interrupted run"; finished work is kept.
    const e = toGeoDinoError(err);
    if (e.code !== 'E_CANCELLED') await writeJsonAtomic(join(stateDir, FAILURE_FILE), { code: e.code, message: e.message, at: new Date().toISOString() }).catch(() => undefined);
    throw err;
  } finally {
    await unlock();
  }
}

/**
 * run.json's `sceneFeather`: the transition zone's width, the seamlines, and the extra inference
 * feathering cost (tiles predicted once per scene, model inputs beyond one per tile; this
 * process's work: a resumed run counts what it predicted).
 */
function sceneFeatherInfo(plan: RunPlan, counts: { featheredTiles: number; extraTileInferences: number }, seams = plan.sceneFeather?.seams.length ?? 0): Record<string, unknown> {
  const f = plan.sceneFeather;
  return {
    metres: f?.metres ?? 0,
    px: f?.px ?? 0,
    seams,
    featheredTiles: counts.featheredTiles,
    extraTileInferences: counts.extraTileInferences,
    ...(f?.radiometry ? { harmonised: f.radiometry.flatMap((r, i) => (r ? [{ scene: plan.sources[i]!.id, to: plan.sources[r.reference]!.id, gain: r.gain, offset: r.offset }] : [])) } : {}),
    // The seamlines of the (first) zone in its grid pixels: where the transition zones are centred
    // (the first 100; the plan holds them all, provenance.geojson the zones).
    lines: (f?.seams ?? []).slice(0, 100).map((s) => ({
      scenes: [plan.sources[s.a]!.id, plan.sources[s.b]!.id],
      featherPx: s.featherPx,
      // A scene inside another's extent: the zone follows its footprint edge (no seamline points).
      ...(s.footprint ? { footprint: true } : {}),
      points: s.positions.map((p, k) => {
        const along = s.start + (k + 0.5) * s.step;
        return s.axis === 'x' ? [Number(p.toFixed(2)), along] : [along, Number(p.toFixed(2))];
      }),
    })),
  };
}

/** The last failure of a run, beside its state. */
const FAILURE_FILE = 'failure.json';

interface ShardedContext {
  options: ChmRunOptions;
  md: Awaited<ReturnType<typeof resolveModel>>;
  out: string;
  stateDir: string;
  t0: number;
  planSeconds: number;
  resumed: boolean;
  log: Logger;
  progress: NonNullable<ChmRunOptions['progress']>;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal | undefined;
}

/**
 * A sharded run (sharded.ts): zone by zone, shard by shard, prediction a shard ahead of blending;
 * finished shards recorded in the ledger, tiles deleted once their shards are written; then the
 * run's index files, web layers and run.json, and the whole directory moved into place.
 */
async function runSharded(plan: ChmPlan, ctx: ShardedContext): Promise<ChmRunResult> {
  const { options, out, stateDir, log } = ctx;
  const outDir = join(stateDir, 'out');
  const written = await writeShards(plan, ctx, outDir, null);
  const { run } = await finishSharded(plan, ctx, outDir, written);
  await moveIntoPlace(outDir, out, options.force ?? false, log);
  if (!options.keepState) await rm(stateDir, { recursive: true, force: true }).catch((err: unknown) => log.warn({ state: stateDir, err }, 'could not remove the run state'));
  const files = await listFiles(out);
  return {
    out,
    upToDate: false,
    demo: plan.demo,
    run,
    files,
    tiles: { total: plan.tiles, predicted: written.counts.predicted, resumed: 0, empty: written.counts.empty },
    provider: written.provider,
  };
}

interface ShardsWritten {
  counts: { predicted: number; empty: number; modelCalls: number; featheredTiles: number; extraTileInferences: number; predictSeconds: number; shardsWritten: number; shardsResumed: number; tilesReleased: number; storePeakBytes: number };
  exec: ReturnType<typeof executionFor>;
  provider: string | null;
  batch: number | null;
  ledger: ShardLedger;
  /** The shards this call was asked for (all planned shards when null was given). */
  selected: number;
}

/**
 * The shard loop of a sharded run: zone by zone, shard by shard (only those in `only` when given),
 * prediction a shard ahead of blending; finished shards recorded in the ledger (those already
 * recorded with matching files are kept), tiles deleted once the shards that need them are written.
 */
async function writeShards(plan: ChmPlan, ctx: ShardedContext, outDir: string, only: ReadonlySet<string> | null): Promise<ShardsWritten> {
  const { options, md, stateDir, log, progress, env, signal } = ctx;
  await ensureDir(outDir);
  const ledger = new ShardLedger(join(stateDir, 'shards'), outDir, options.remoteShardFiles);
  const exec = executionFor(options.device ?? 'auto', { ...(options.workers !== undefined ? { workers: options.workers } : {}), ...(options.threads !== undefined ? { threads: options.threads } : {}), ...(options.deviceIds?.length ? { deviceIds: options.deviceIds } : {}) });
  let runner: ModelRunner | null = null;
  let batch = options.batch ?? null;
  const counts = { predicted: 0, empty: 0, modelCalls: 0, featheredTiles: 0, extraTileInferences: 0, predictSeconds: 0, shardsWritten: 0, shardsResumed: 0, tilesReleased: 0, storePeakBytes: 0 };
  const selected = only ? only.size : plan.shards;
  const shardTask = progress.start('shards', { total: selected, unit: 'shards' });
  const tasks: ShardTask[] = [];
  try {
    for (const zone of plan.zones) {
      throwIfAborted(signal);
      const layout = layoutOf(zone);
      const store = await TileStore.open(join(stateDir, 'tiles', zone.shards.zone), zone.configHash);
      // With a selection, the other shards are not planned for this call (their tiles are not kept).
      const shards = plannedShards(zone, layout).filter((s) => !only || only.has(s.id));
      const planned = new Set(shards.map((s) => s.id));
      const written = new Set<string>();
      const todoShards = [];
      for (const s of shards) {
        if (await ledger.verified(s.id, log)) {
          written.add(s.id);
          counts.shardsResumed++;
          shardTask.tick();
        } else todoShards.push(s);
      }
      // Tiles left over from shards written before an interruption.
      counts.tilesReleased += await releaseTiles(zone, layout, await store.completed(), planned, written, store);
      if (options.distribute) {
        const zi = plan.zones.indexOf(zone);
        tasks.push(...todoShards.map((s) => ({ zone: zi, shard: s.id, row: s.row, col: s.col })));
        continue;
      }
      const stored = await store.completed();
      const todo = new Set(todoShards.map((s) => s.id));
      const feed = new TileFeed(stored);
      const inner = new AbortController();
      const onAbort = (): void => inner.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      // The predictor stays at most one shard ahead of blending (bounded state).
      let blended = 0;
      let wake: (() => void) | null = null;
      const predicting = (async (): Promise<void> => {
        const sg = shardGridOf(zone);
        for (let k = 0; k < todoShards.length; k++) {
          // One shard ahead of blending, and never into the next band before this one is written
          // (its tiles straddling into the next band are released, then predicted again there).
          const newBand = k > 0 && sg.band(todoShards[k]!) !== sg.band(todoShards[k - 1]!);
          while (k > blended + 1 || (newBand && k > blended)) {
            throwIfAborted(inner.signal);
            await new Promise<void>((r) => (wake = r));
          }
          throwIfAborted(inner.signal);
          const ids = [...tilesFirstNeededBy(zone, layout, todoShards[k]!, todo, (id) => feed.has(id))];
          if (!ids.length) continue;
          if (!runner) {
            runner = await openPlanModel(md.dir, zone, { device: exec.device, threads: exec.threads, workers: exec.workers, ...(exec.deviceIds ? { deviceIds: exec.deviceIds } : {}), log });
            batch = batchFor(runner.provider, options.batch);
            log.info({ device: exec.device, provider: runner.provider, workers: exec.workers, threads: exec.threads, batch }, `execution provider: ${runner.provider}`);
          }
          const sum = await predictTiles(zone, ids, runner, store, {
            batch: batch ?? 1,
            log,
            env,
            signal: inner.signal,
            ...(options.headers ? { headers: options.headers } : {}),
            onTile: (r) => feed.offer(r),
          });
          counts.predicted += sum.tiles - sum.empty;
          counts.empty += sum.empty;
          counts.modelCalls += sum.modelCalls;
          counts.featheredTiles += sum.featheredTiles;
          counts.extraTileInferences += sum.extraTileInferences;
          counts.predictSeconds += sum.seconds;
        }
      })();
      predicting.catch((err: unknown) => feed.fail(err));
      const assembling = (async (): Promise<void> => {
        for (const s of todoShards) {
          throwIfAborted(inner.signal);
          const rec = await writeShard(zone, s, store, feed, outDir, {
            ...(options.chunkWidth !== undefined ? { chunkWidth: options.chunkWidth } : {}),
            webTiles: options.webTiles !== false,
            log,
            signal: inner.signal,
          });
          await ledger.record(rec);
          written.add(s.id);
          counts.shardsWritten++;
          counts.storePeakBytes = Math.max(counts.storePeakBytes, await store.bytes());
          counts.tilesReleased += await releaseTiles(zone, layout, shardTileIds(zone, layout, s), planned, written, store, feed, shardGridOf(zone).band(s));
          blended++;
          const w = wake as (() => void) | null;
          wake = null;
          w?.();
          shardTask.tick();
          log.debug({ shard: s.id, valid: rec.validPixels }, 'shard written');
        }
      })();
      assembling.catch(() => {
        inner.abort();
        const w = wake as (() => void) | null;
        w?.();
      });
      try {
        await Promise.all([predicting, assembling]);
      } catch (err) {
        await Promise.allSettled([predicting, assembling]);
        throw await firstRealFailure(predicting, assembling, err);
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    }
    if (options.distribute && tasks.length) {
      await options.distribute({ plan, planPath: join(stateDir, 'plan.json'), stateDir, shards: tasks, log, progress, ...(signal ? { signal } : {}) });
      for (const t of tasks) {
        if (!(await ledger.verified(t.shard, log))) throw new GeoDinoError('E_INTERNAL', `shard ${t.shard}: the workers reported it done, but it is not recorded with matching files in ${ledger.dir}`, { details: { shard: t.shard } });
        counts.shardsWritten++;
        shardTask.tick();
      }
      // Every shard is written: no tile is needed any more.
      await rm(join(stateDir, 'tiles'), { recursive: true, force: true });
    }
    shardTask.finish();
  } catch (err) {
    if (err instanceof GeoDinoError && err.code === 'E_CANCELLED') {
      log.warn({ state: stateDir, shards: counts.shardsWritten + counts.shardsResumed, total: plan.shards }, `interrupted with ${counts.shardsWritten + counts.shardsResumed} of ${plan.shards} shards written; rerun the same command with --resume to continue`);
    }
    throw err;
  } finally {
    const r = runner as ModelRunner | null;
    if (r) await r.close();
  }
  return { counts, exec, provider: (runner as ModelRunner | null)?.provider ?? null, batch, ledger, selected };
}

/** The run-level files of a sharded run in `outDir`: index files, web layers, run.json. */
async function finishSharded(plan: ChmPlan, ctx: ShardedContext, outDir: string, w: ShardsWritten, runInfo: Record<string, unknown> = {}): Promise<{ run: Record<string, unknown>; index: ShardedOutputs }> {
  const { options, log, progress, signal } = ctx;
  const { counts, exec, batch, ledger } = w;
  const index = await writeShardedIndex(plan, outDir, ledger, { log, ...(signal ? { signal } : {}), ...(options.stacBaseUrl ? { stacBaseUrl: options.stacBaseUrl } : {}) });
  if (index.validPixels === 0) {
    throw new GeoDinoError('E_NO_OVERLAP', `${plan.aoi.source}: no valid imagery inside the AOI (every pixel is masked or outside the scenes)`, { details: { aoi: plan.aoi.source } });
  }
  // Web layers: one pyramid per layer over every shard and zone.
  let webTiles: string[] = [];
  if (options.webTiles !== false) {
    const lc = extraHeadsOf(plan.zones[0]!).find((h) => h.kind === 'land-cover');
    try {
      const attribution = tileAttributions(plan.zones.flatMap((z) => z.sources));
      const web = await writeShardedRunTiles(outDir, index.shardDirs, {
        demo: plan.demo,
        ...(attribution.length ? { imageryAttribution: attribution.join('; ') } : {}),
        log,
        progress,
        ...(signal ? { signal } : {}),
        ...(lc ? { landcoverClasses: lc.spec.classes.map((c) => ({ value: c.value, name: c.name, color: c.color })) } : {}),
      });
      webTiles = Object.values(web).filter((w) => w).map((w) => basename(w!.path));
    } catch (err) {
      if (!(err instanceof GeoDinoError && err.code === 'E_UNSUPPORTED_RASTER')) throw err;
      log.warn({ err: err.message }, 'web layers not written');
    }
  }
  const run: Record<string, unknown> = {
    format: 'geo-dino-run',
    formatVersion: 1,
    kind: 'chm',
    status: 'complete',
    layout: 'sharded',
    created: new Date().toISOString(),
    demo: plan.demo,
    ...(plan.demo ? { warning: 'DEMO: random-weight model; heights are not real canopy heights' } : {}),
    command: options.command ?? null,
    versions: { 'geo-dino': GEO_DINO_VERSION, node: process.version, 'onnxruntime-node': onnxruntimeVersion() },
    model: { ...plan.zones[0]!.model },
    requestHash: plan.requestHash,
    configHash: plan.configHash,
    aoi: { source: plan.aoi.source, areaKm2: plan.aoi.areaM2 / 1e6 },
    shards: { size: plan.shardSize, count: index.shards, ...(w.selected !== plan.shards ? { planned: plan.shards } : {}), index: 'shards.geojson', collection: 'collection.json', zones: index.zones },
    webTiles,
    zones: plan.zones.map((z) => ({ zone: z.shards.zone, crs: crsLabel(z.grid.crs), epsg: z.grid.crs.epsg, width: z.grid.width, height: z.grid.height, gsd: z.grid.gsd, transform: z.grid.transform, tiles: z.tiling.tiles, shards: z.shards.count })),
    tiling: { ...plan.zones[0]!.tiling, tiles: plan.tiles },
    sources: plan.zones[0]!.sources.map((s) => ({ id: s.id, ...publishedSource(s), collection: s.collection, datetime: s.datetime, item: s.itemHref })),
    pixels: { valid: index.validPixels },
    statistics: index.stats,
    execution: { device: exec.device, provider: w.provider, workers: exec.workers, threads: exec.threads, batch },
    tiles: { total: plan.tiles, predicted: counts.predicted, empty: counts.empty, modelCalls: counts.modelCalls, released: counts.tilesReleased },
    sceneFeather: sceneFeatherInfo(plan.zones[0]!, counts, plan.zones.reduce((n, z) => n + (z.sceneFeather?.seams.length ?? 0), 0)),
    state: { tileStorePeakBytes: counts.storePeakBytes, shardsWritten: counts.shardsWritten, shardsResumed: counts.shardsResumed },
    timings: { plan_s: Number(ctx.planSeconds.toFixed(3)), predict_s: Number(counts.predictSeconds.toFixed(3)), total_s: Number(((performance.now() - ctx.t0) / 1000).toFixed(3)) },
    memory: { maxRssBytes: peakRssBytes() },
    ...runInfo,
  };
  run['outputs'] = [...(await listFiles(outDir)).map((f) => f.name).filter((n) => n !== 'run.json'), 'run.json'];
  await writeJsonAtomic(join(outDir, 'run.json'), run);
  return { run, index };
}

export interface PlannedShardsOptions extends CommonOptions, Pick<ChmRunOptions, 'device' | 'deviceIds' | 'batch' | 'threads' | 'workers' | 'chunkWidth' | 'webTiles' | 'headers' | 'command' | 'distribute'> {
  /** The model directory or `demo` the plan was made with. */
  model: string;
  /**
   * The run's state directory (yours: e.g. a monitoring run's work directory): the ledger
   * (`shards/`), the tile stores (`tiles/`) and the outputs (`out/`). Calling again with the same
   * directory keeps the shards already recorded (resume).
   */
  stateDir: string;
  /** Fields added to run.json (monitoring: the region and run). */
  runInfo?: Record<string, unknown>;
}

export interface PlannedShardsResult {
  /** `<stateDir>/out`: shards/<id>/ of the shards written, the index files, run.json. Not moved anywhere. */
  outDir: string;
  run: Record<string, unknown>;
  index: ShardedOutputs;
  /** The ledger records of the shards asked for, in processing order. */
  shards: ShardRecord[];
  tiles: { predicted: number; empty: number };
  provider: string | null;
}

/**
 * Write only some shards of a sharded plan (monitoring: the shards new scenes touch), through the
 * same shard loop as `geo-dino chm` (prediction a shard ahead of blending, a tile straddling two
 * asked-for shards predicted once, the ledger with checksums), then the run-level files of those
 * shards (tile index, zone VRTs, STAC Collection, provenance, web layers, run.json) in
 * `<stateDir>/out`. Each written shard equals the same shard of a full run of the plan.
 */
export async function runPlannedShards(plan: ChmPlan, shardIds: Iterable<string>, options: PlannedShardsOptions): Promise<PlannedShardsResult> {
  const t0 = performance.now();
  const log = options.log ?? silentLogger();
  const progress = options.progress ?? silentProgress;
  const env = options.env ?? process.env;
  const only = new Set(shardIds);
  const known = new Set<string>();
  for (const zone of plan.zones) for (const s of plannedShards(zone)) known.add(s.id);
  const unknown = [...only].filter((id) => !known.has(id));
  if (unknown.length) {
    throw new GeoDinoError('E_ARGUMENT', `shard ${unknown.slice(0, 5).join(', ')}: not a planned shard of this plan (it has ${known.size}: ${[...known].slice(0, 5).join(', ')}${known.size > 5 ? ', …' : ''})`, { details: { shards: unknown } });
  }
  if (!only.size) throw new GeoDinoError('E_ARGUMENT', 'no shard to write: the selection is empty');
  const md = await resolveModel(options.model, { log, env, ...(options.cwd ? { cwd: options.cwd } : {}), ...(options.signal ? { signal: options.signal } : {}) });
  const outDir = join(options.stateDir, 'out');
  const ctx: ShardedContext = {
    options: { ...options, out: outDir },
    md,
    out: outDir,
    stateDir: options.stateDir,
    t0,
    planSeconds: 0,
    resumed: false,
    log,
    progress,
    env,
    signal: options.signal,
  };
  const written = await writeShards(plan, ctx, outDir, only);
  const { run, index } = await finishSharded(plan, ctx, outDir, written, options.runInfo ?? {});
  const shards: ShardRecord[] = [];
  for (const zone of plan.zones) {
    for (const s of plannedShards(zone)) {
      if (!only.has(s.id)) continue;
      const r = await written.ledger.read(s.id);
      if (!r) throw new GeoDinoError('E_INTERNAL', `shard ${s.id}: written but not recorded in ${written.ledger.dir}`);
      shards.push(r);
    }
  }
  return { outDir, run, index, shards, tiles: { predicted: written.counts.predicted, empty: written.counts.empty }, provider: written.provider };
}
