/**
 * Executing a monitoring run: the chm pipeline's phases, then what monitoring adds.
 *
 * 1. plan — the region's imagery searched for scenes acquired strictly after the newest scene of
 *    the last succeeded run (STAC `datetime`); none → the run is `skipped` ("no new imagery").
 *    The plan is frozen in `work/<run>/plan.json`, so a resumed run uses the same scenes.
 * 2. predict — the tiles not yet in the run's tile store: here (the model in worker threads), or
 *    on BullMQ workers (`queue`). Per-tile state goes to the store as tiles land.
 * 3. assemble — chm.tif, provenance, item.json, run.json, web layers (the chm package), into
 *    `work/<run>/out`.
 * 4. statistics — zonal statistics over the AOI (`stats.json`, the store); with a land-cover head
 *    (the region's `--landcover`, run on the same backbone pass as canopy height), the area and
 *    share of every class inside the AOI too.
 * 5. change — against the last succeeded run: `change.geojson`, `loss.tif` (the first run is the
 *    baseline: no change files).
 * 6. the STAC item gets the monitoring assets; `work/<run>/out` is renamed to `runs/<run>` — the
 *    run directory appears complete or not at all.
 * 7. alerts — raised (idempotency key in the store first) and delivered.
 * 8. the region's STAC Collection gets the run (and, with land cover, the class table as a
 *    `classification:classes` summary); the run is `succeeded`; its work directory goes.
 *
 * Every step can be repeated: a run interrupted anywhere is resumed by executing it again. A
 * failure marks the run `failed` with its code and message (the next slot starts a new run); an
 * interruption (Ctrl-C, SIGTERM) gives the run back as `queued` for the next daemon to resume.
 */
import { readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  GeoDinoError,
  ensureDir,
  fileExists,
  readJsonFile,
  silentLogger,
  silentProgress,
  throwIfAborted,
  toGeoDinoError,
  writeJsonAtomic,
  type Logger,
  type Progress,
} from '@geo-dino/core';
import { loadAoi } from '@geo-dino/geometry';
import { LANDCOVER_FILE, PLAN_FORMAT, RUN_PLAN_FORMAT, TileStore, assembleRun, batchFor, executionFor, extraHeadsOf, layoutOf, openPlanModel, plannedShards, shardsAffectedBy, planRun, planTileIds, predictTiles, resolveModel, type ChmPlan, type ChmRequest, type RunPlan } from '@geo-dino/chm';
import { SELECTION_FILE, recordShards, shardedPhases } from './sharded-run.js';
import { loadLandcoverHead } from '@geo-dino/landcover';
import type { Device } from '@geo-dino/runtime';
import { EXTENSIONS, MEDIA_TYPES, addItemToCollection, fileChecksum, type JsonObject, type StacAsset, type StacItem } from '@geo-dino/stac';
import { deliverDueAlerts, raiseCanopyLossAlert, type AlertOptions } from './alerts.js';
import { detectChange, type ChangeResult } from './change.js';
import type { RunExecutor } from './daemon.js';
import type { MonitorPaths } from './paths.js';
import { DEFAULT_BATCH_TILES, DEFAULT_QUEUE_NAME, distributeTiles, type QueueSettings } from './queue.js';
import { systemClock, type Clock } from './schedule.js';
import { landcoverStats, zonalStats } from './stats.js';
import { processOwner, type LandcoverStats, type MonitorStore, type Region, type RunRecord, type RunStats } from './store.js';

export interface ExecutorOptions {
  store: MonitorStore;
  paths: MonitorPaths;
  clock?: Clock;
  log?: Logger;
  progress?: Progress;
  env?: NodeJS.ProcessEnv;
  /** Distributed mode: tiles go to BullMQ workers. */
  queue?: (QueueSettings & { batchTiles?: number; pollMs?: number; attempts?: number; redisOutageMs?: number }) | null;
  device?: Device;
  threads?: number;
  workers?: number;
  batch?: number;
  /** Write the PMTiles web layers (default true). */
  webTiles?: boolean;
  alerts?: AlertOptions;
  /** How often a running run records that it is alive (default 15 s). */
  heartbeatMs?: number;
  /** Keep a succeeded run's work directory (plan, tile store) instead of removing it. */
  keepWork?: boolean;
  owner?: string;
}

/** What `stats.json` in a run directory holds. */
export interface RunSummaryFile {
  format: 'geo-dino-monitor-run';
  region: string;
  run: string;
  previous_run: string | null;
  acquired: { start: string | null; end: string | null; scenes: number };
  statistics: RunStats;
  /** Land cover inside the AOI (regions with a land-cover head), else null. */
  landcover: LandcoverStats | null;
  /** Sharded regions: the shards of the plan, those this run recomputed, and each one's comparison. */
  shards?: {
    planned: number;
    recomputed: number;
    results: { id: string; previous_run: string | null; changes: number | null; loss_area_m2: number | null; changed_area_m2: number | null }[];
  };
  change: null | {
    threshold_m: number;
    min_area_m2: number;
    compared_area_m2: number;
    loss_area_m2: number;
    changed_area_m2: number;
    changes: number;
  };
}

function datetimes(sources: RunPlan['sources']): { start: string | null; end: string | null } {
  const ts = sources.flatMap((s) => [s.startDatetime, s.datetime, s.endDatetime]).filter((t): t is string => typeof t === 'string' && Number.isFinite(Date.parse(t)));
  if (!ts.length) return { start: null, end: null };
  const ms = ts.map((t) => Date.parse(t));
  return { start: new Date(Math.min(...ms)).toISOString(), end: new Date(Math.max(...ms)).toISOString() };
}

/** What every phase function takes from the executor options (defaults filled in). */
export function phaseContext(o: ExecutorOptions & { signal?: AbortSignal }) {
  const log = o.log ?? silentLogger();
  const env = o.env ?? process.env;
  const signal = o.signal;
  return { clock: o.clock ?? systemClock, log, progress: o.progress ?? silentProgress, store: o.store, signal, env, common: { log, env, ...(signal ? { signal } : {}) } };
}

/** stats.json of a run (the run's record as it is now, its statistics and change summary). */
export function runSummary(region: Region, run: RunRecord, statistics: RunStats, landcover: LandcoverStats | null, change: Pick<ChangeResult, 'comparedAreaM2' | 'lossAreaM2' | 'changedAreaM2'> & { count: number } | null, shards?: RunSummaryFile['shards']): RunSummaryFile {
  return {
    format: 'geo-dino-monitor-run',
    region: region.name,
    run: run.id,
    previous_run: run.previousRun,
    acquired: { start: run.acquiredStart, end: run.acquiredEnd, scenes: run.sceneCount ?? 0 },
    statistics,
    landcover,
    ...(shards ? { shards } : {}),
    change: change
      ? { threshold_m: region.lossThresholdM, min_area_m2: region.minAreaM2, compared_area_m2: change.comparedAreaM2, loss_area_m2: change.lossAreaM2, changed_area_m2: change.changedAreaM2, changes: change.count }
      : null,
  };
}

/** Batches of consecutive tile ids (row-major, so a batch is spatially compact). */
export function batchesOf(ids: readonly number[], size: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < ids.length; i += size) out.push(ids.slice(i, i + size));
  return out;
}

export function createExecutor(o: ExecutorOptions): RunExecutor {
  return (run, opts) => executeRun(run, { ...o, ...(opts.signal ? { signal: opts.signal } : {}) }, opts.staleOwner);
}

/** Execute (or resume) one run. Returns the run as recorded at the end. */
export async function executeRun(run: RunRecord, o: ExecutorOptions & { signal?: AbortSignal }, staleOwner?: string | null): Promise<RunRecord> {
  const clock = o.clock ?? systemClock;
  const log = o.log ?? silentLogger();
  const owner = o.owner ?? processOwner();
  const store = o.store;
  const claimed = store.claimRun(run.seq, owner, clock.now(), staleOwner);
  if (!claimed) {
    log.info({ region: run.region, run: run.id }, 'another process is executing this run');
    return store.runBySeq(run.seq);
  }
  const region = store.region(run.region);
  const hb = setInterval(() => {
    try {
      store.heartbeat(run.seq, owner, clock.now());
    } catch {
      /* the next beat will tell */
    }
  }, o.heartbeatMs ?? 15_000);
  hb.unref();
  const work = o.paths.work(region.name, run.id);
  let phase = claimed.phase ?? 'plan';
  const setPhase = (p: string): void => {
    phase = p;
    store.updateRun(run.seq, { phase: p });
    log.debug({ region: region.name, run: run.id, phase: p }, 'run phase');
  };
  log.info({ region: region.name, run: run.id, trigger: claimed.trigger, ...(claimed.executions > 1 ? { resumed: true } : {}) }, claimed.executions > 1 ? 'resuming run' : 'run started');
  try {
    const outcome = await phases(claimed, region, work, o, setPhase);
    if (outcome === 'skipped') {
      await rm(work, { recursive: true, force: true });
      return store.runBySeq(run.seq);
    }
    store.updateRun(run.seq, { status: 'succeeded', phase: 'done', finishedAt: clock.now().toISOString() });
    if (!o.keepWork) await rm(work, { recursive: true, force: true }).catch((err: unknown) => log.warn({ work, err }, 'could not remove the run work directory'));
    const done = store.runBySeq(run.seq);
    log.info({ region: region.name, run: run.id, tiles: done.tilesTotal, changes: store.changes(run.seq).length }, 'run succeeded');
    return done;
  } catch (err) {
    const e = toGeoDinoError(err);
    if (e.code === 'E_CANCELLED') {
      store.updateRun(run.seq, { status: 'queued', owner: null, phase });
      log.warn({ region: region.name, run: run.id, phase }, 'run interrupted; it will be resumed by the next `monitor start` or `monitor run`');
      throw e;
    }
    store.updateRun(run.seq, { status: 'failed', errorCode: e.code, errorMessage: e.message, finishedAt: clock.now().toISOString() });
    log.error({ region: region.name, run: run.id, phase, err: e }, `run failed: ${e.message}`);
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
    return store.runBySeq(run.seq);
  } finally {
    clearInterval(hb);
  }
}

async function phases(run: RunRecord, region: Region, work: string, o: ExecutorOptions & { signal?: AbortSignal }, setPhase: (p: string) => void): Promise<'done' | 'skipped'> {
  const { clock, log, progress, store, signal, env, common } = phaseContext(o);
  const runDir = run.dir;
  const out = join(work, 'out');
  const planPath = join(work, 'plan.json');
  const modelRef = region.model ?? 'demo';

  if (!(await fileExists(runDir))) {
    // 1. Plan.
    setPhase('plan');
    await ensureDir(work);
    let planned: { kind: 'single'; plan: RunPlan } | { kind: 'sharded'; plan: ChmPlan; shards: string[] };
    if (await fileExists(planPath)) {
      const stored = (await readJsonFile(planPath)) as RunPlan | ChmPlan;
      if (stored.format === PLAN_FORMAT) planned = { kind: 'single', plan: stored };
      else if (stored.format === RUN_PLAN_FORMAT) planned = { kind: 'sharded', plan: stored, shards: ((await readJsonFile(join(work, SELECTION_FILE))) as { shards: string[] }).shards };
      else throw new GeoDinoError('E_INTERNAL', `${planPath}: not a run plan`);
    } else {
      const previous = store.previousSucceeded(region.name, run.seq);
      const newerThan = previous?.acquiredEnd ?? null;
      const request: ChmRequest = {
        aoi: region.aoiPath,
        imagery: [region.imagery],
        model: modelRef,
        ...(region.collections ? { collections: region.collections } : {}),
        ...(region.maxCloud !== null ? { maxCloud: region.maxCloud } : {}),
        ...(region.shardSize !== null ? { shardSize: region.shardSize } : {}),
        // The head rides on the backbone pass of canopy height (a split model, checked at add).
        ...(region.landcover ? { extraHeads: [(await loadLandcoverHead(region.landcover)).spec] } : {}),
      };
      let fresh: ChmPlan;
      const skip = (message: string): 'skipped' => {
        store.updateRun(run.seq, { status: 'skipped', newerThan, errorMessage: message, finishedAt: clock.now().toISOString(), phase: 'plan' });
        log.info({ region: region.name, run: run.id, newerThan }, `${message}; nothing to do`);
        return 'skipped';
      };
      try {
        fresh = await planRun({ ...request, ...(newerThan ? { newerThan } : {}) }, common);
      } catch (err) {
        const e = toGeoDinoError(err);
        if (e.code === 'E_NO_IMAGERY' && newerThan) return skip(`no imagery newer than ${newerThan}`);
        throw e;
      }
      const t = datetimes(fresh.zones.flatMap((z) => z.sources));
      const history = store.latestShardResults(region.name, run.seq);
      if (region.shardSize === null && fresh.layout === 'single' && !history.length) {
        planned = { kind: 'single', plan: fresh.zones[0]! };
      } else {
        // A region on the shard grid: the whole region planned with all its imagery (newest scene
        // first), and only the shards the new scenes touch — those of the tiles over a new scene's
        // extent — plus any shard without a result yet, recomputed.
        const full = newerThan ? await planRun(request, common) : fresh;
        const newScenes = new Set(fresh.zones.flatMap((z) => z.sources.map((src) => src.id)));
        const touched = new Set<string>();
        for (const z of full.zones) {
          const layout = layoutOf(z);
          for (const src of z.sources) if (newScenes.has(src.id) && src.gridBbox) for (const sh of shardsAffectedBy(z, layout, src.gridBbox)) touched.add(sh.id);
        }
        const have = new Set(history.map((h) => h.shardId));
        const shards = full.zones.flatMap((z) => plannedShards(z).map((sh) => sh.id)).filter((id) => touched.has(id) || !have.has(id));
        if (!shards.length) return skip(`the imagery newer than ${newerThan ?? 'the last run'} touches no shard of the region`);
        log.info({ region: region.name, run: run.id, shards: shards.length, of: full.shards, newerThan }, `${shards.length} of ${full.shards} shards to recompute`);
        await writeJsonAtomic(join(work, SELECTION_FILE), { shards, touched: [...touched].filter((id) => shards.includes(id)) });
        planned = { kind: 'sharded', plan: full, shards };
      }
      await writeJsonAtomic(planPath, planned.plan);
      store.updateRun(run.seq, { newerThan, acquiredStart: t.start, acquiredEnd: t.end, sceneCount: new Set(fresh.zones.flatMap((z) => z.sources.map((src) => src.id))).size });
    }
    throwIfAborted(signal);
    if (planned.kind === 'sharded') await shardedPhases(run, region, work, o, setPhase, planned.plan, planned.shards);
    else await singlePhases(run, region, work, o, setPhase, planned.plan);
  } else {
    // Resumed after the run directory went into place: a sharded run's shards may not be recorded yet.
    await recordShards(run, region, work, o);
  }

  return finishRun(run, region, o, setPhase);
}

/** Steps 2–6 of a region whose plan is one shard (module comment). */
async function singlePhases(run: RunRecord, region: Region, work: string, o: ExecutorOptions & { signal?: AbortSignal }, setPhase: (p: string) => void, plan: RunPlan): Promise<void> {
  const { clock, log, progress, store, signal, env, common } = phaseContext(o);
  const runDir = run.dir;
  const out = join(work, 'out');
  const planPath = join(work, 'plan.json');
  const modelRef = region.model ?? 'demo';
  {
    // 2. Predict.
    setPhase('predict');
    const tilesDir = join(work, 'tiles');
    // Distributed: workers of an earlier attempt may still be writing; their temporaries stay.
    const tileStore = await TileStore.open(tilesDir, plan.configHash, { keepTemporaries: !!o.queue });
    const ids = [...planTileIds(plan)];
    const batchTiles = o.queue?.batchTiles ?? DEFAULT_BATCH_TILES;
    store.setTiles(
      run.seq,
      (function* () {
        for (let i = 0; i < ids.length; i++) yield { id: String(ids[i]), batch: Math.floor(i / batchTiles) };
      })(),
      clock.now(),
    );
    const present = await tileStore.completed();
    store.markTilesDone(
      run.seq,
      ids.filter((id) => present.has(id)).map(String),
      clock.now(),
    );
    const todo = ids.filter((id) => !present.has(id));
    const t0 = performance.now();
    let execution: Record<string, unknown>;
    if (todo.length && o.queue) {
      store.updateRun(run.seq, { queue: o.queue.url.replace(/\/\/[^@/]*@/, '//***@') });
      execution = { mode: 'distributed', queue: o.queue.name ?? DEFAULT_QUEUE_NAME, batchTiles };
      await distributeTiles(o.queue, {
        region: region.name,
        run: run.id,
        planPath,
        tilesDir,
        plan,
        model: modelRef,
        batches: batchesOf(ids, batchTiles),
        onTilesDone: (done) => store.markTilesDone(run.seq, done.map(String), clock.now()),
        ...(o.queue.attempts !== undefined ? { attempts: o.queue.attempts } : {}),
        ...(o.queue.pollMs !== undefined ? { pollMs: o.queue.pollMs } : {}),
        ...(o.queue.redisOutageMs !== undefined ? { redisOutageMs: o.queue.redisOutageMs } : {}),
        log,
        progress,
        ...(signal ? { signal } : {}),
      });
    } else if (todo.length) {
      const md = await resolveModel(modelRef, common);
      const exec = executionFor(o.device ?? 'auto', { ...(o.workers !== undefined ? { workers: o.workers } : {}), ...(o.threads !== undefined ? { threads: o.threads } : {}) });
      const runner = await openPlanModel(md.dir, plan, { device: exec.device, threads: exec.threads, workers: exec.workers, log });
      const batch = batchFor(runner.provider, o.batch);
      execution = { mode: 'local', device: exec.device, provider: runner.provider, workers: exec.workers, threads: exec.threads, batch };
      try {
        await predictTiles(plan, todo, runner, tileStore, {
          batch,
          log,
          progress,
          env,
          ...(signal ? { signal } : {}),
          progressTotal: ids.length,
          progressDone: ids.length - todo.length,
          onTile: (r) => store.markTilesDone(run.seq, [String(r.id)], clock.now()),
        });
      } finally {
        await runner.close();
      }
    } else execution = { mode: 'resumed' };
    const predictSeconds = (performance.now() - t0) / 1000;
    throwIfAborted(signal);

    // 3. Assemble into the work directory.
    setPhase('assemble');
    const previous = store.previousSucceeded(region.name, run.seq);
    await assembleRun(plan, tileStore, {
      out,
      staging: join(work, 'staging'),
      replace: true,
      log,
      progress,
      env,
      ...(signal ? { signal } : {}),
      ...(o.webTiles !== undefined ? { webTiles: o.webTiles } : {}),
      runInfo: {
        execution,
        tiles: { total: ids.length, predicted: todo.length, resumed: ids.length - todo.length },
        timings: { predict_s: Number(predictSeconds.toFixed(3)) },
        region: region.name,
        monitor: { region: region.name, run: run.id, trigger: run.trigger, slot: run.slot, previous_run: previous?.id ?? null, newer_than: store.runBySeq(run.seq).newerThan },
      },
    });

    // 4. Statistics.
    setPhase('statistics');
    const aoi = await loadAoi(region.aoiPath);
    const chmPath = join(out, 'chm.tif');
    const stats = await zonalStats(chmPath, aoi, { progress, ...(signal ? { signal } : {}) });
    store.setStats(run.seq, stats);
    const lcHead = extraHeadsOf(plan).find((h) => h.kind === 'land-cover');
    const landcover = lcHead ? await landcoverStats(join(out, LANDCOVER_FILE), aoi, lcHead.spec, { progress, ...(signal ? { signal } : {}) }) : null;
    store.setLandcoverStats(run.seq, landcover);

    // 5. Change against the last succeeded run.
    setPhase('change');
    let change: ChangeResult | null = null;
    const prevChm = previous ? join(previous.dir, 'chm.tif') : null;
    if (previous && prevChm && (await fileExists(prevChm))) {
      change = await detectChange(prevChm, chmPath, {
        thresholdM: region.lossThresholdM,
        minAreaM2: region.minAreaM2,
        aoi,
        lossPath: join(out, 'loss.tif'),
        geojsonPath: join(out, 'change.geojson'),
        properties: { region: region.name, run: run.id, previous_run: previous.id },
        log,
        progress,
        ...(signal ? { signal } : {}),
      });
      store.setChanges(run.seq, change.changes);
    } else {
      if (previous) log.warn({ region: region.name, previous: previous.id, path: prevChm }, 'the previous run has no chm.tif any more; this run is a new baseline');
      store.setChanges(run.seq, []);
    }
    store.updateRun(run.seq, { previousRun: change && previous ? previous.id : null });
    const fresh = store.runBySeq(run.seq);
    const summary = runSummary(region, fresh, stats, landcover, change ? { ...change, count: change.changes.length } : null);
    await writeJsonAtomic(join(out, 'stats.json'), summary);

    // 6. run.json lists the monitoring files; the STAC item gets them as assets; then the run
    // directory goes into place.
    setPhase('publish');
    const added = ['stats.json', ...(change ? ['change.geojson', 'loss.tif'] : [])];
    const runJson = (await readJsonFile(join(out, 'run.json'))) as Record<string, unknown>;
    const outputs = Array.isArray(runJson['outputs']) ? (runJson['outputs'] as unknown[]).filter((n): n is string => typeof n === 'string') : [];
    runJson['outputs'] = [...outputs.filter((n) => !added.includes(n)), ...added];
    await writeJsonAtomic(join(out, 'run.json'), runJson);
    await amendItem(join(out, 'item.json'), region, fresh, stats, change !== null);
    await ensureDir(dirname(runDir));
    try {
      await rename(out, runDir);
    } catch (err) {
      throw new GeoDinoError('E_WRITE', `${runDir}: cannot move the finished run into place: ${(err as Error).message}`, { cause: err });
    }
  }

}

/** Steps 7–8 (module comment): alerts, the region's collection. */
async function finishRun(run: RunRecord, region: Region, o: ExecutorOptions & { signal?: AbortSignal }, setPhase: (p: string) => void): Promise<'done'> {
  const clock = o.clock ?? systemClock;
  const log = o.log ?? silentLogger();
  const store = o.store;
  const signal = o.signal;
  const runDir = run.dir;
  // 7. Alerts.
  setPhase('alerts');
  const fresh = store.runBySeq(run.seq);
  const changes = store.changes(run.seq);
  if (fresh.previousRun && changes.length) {
    const previous = store.run(region.name, fresh.previousRun);
    // A sharded region: the loss rasters are per shard (a VRT per zone), and the alert lists the shards that changed.
    const shards = store.shardResults(run.seq).filter((r) => (r.changes ?? 0) > 0);
    const lossRaster = (await fileExists(join(runDir, 'loss.tif'))) ? join(runDir, 'loss.tif') : join(runDir, (await readdir(runDir)).find((n) => /^loss-.*\.vrt$/.test(n)) ?? 'loss.tif');
    raiseCanopyLossAlert(store, region, fresh, previous, changes, { changeGeojson: join(runDir, 'change.geojson'), lossRaster }, {
      ...o.alerts,
      clock,
      log,
      ...(shards.length
        ? {
            shards: shards.map((r) => ({
              id: r.shardId,
              previous_run: r.previousRunSeq !== null ? store.runBySeq(r.previousRunSeq).id : null,
              changes: r.changes ?? 0,
              changed_area_m2: r.changedAreaM2 ?? 0,
              loss_raster: join(runDir, 'shards', r.shardId, 'loss.tif'),
            })),
          }
        : {}),
    });
    await deliverDueAlerts(store, { ...o.alerts, clock, log, ...(signal ? { signal } : {}) });
  }

  // 8. The region's collection.
  setPhase('catalog');
  await addItemToCollection(o.paths.collection(region.name), join(runDir, 'item.json'), {
    id: region.name,
    title: `geo-dino monitoring: ${region.name}`,
    description: `Canopy-height${region.landcover ? ' and land-cover' : ''} runs of monitored region ${region.name} (schedule ${region.schedule} ${region.timezone}; imagery ${region.imagery}).`,
    keywords: ['canopy height', 'monitoring', 'geo-dino'],
    extra: { 'geo-dino:region': region.name, ...landcoverSummary(store.landcoverStats(run.seq)) },
  });
  return 'done';
}

/** A STAC asset for `dir/file` (relative href) with its size and checksum (file extension). */
export async function checksummedAsset(dir: string, file: string, type: string, roles: string[], title: string): Promise<StacAsset> {
  const { checksum, size } = await fileChecksum(join(dir, file));
  return { href: `./${file}`, type, roles, title, 'file:checksum': checksum, 'file:size': size };
}

/** Add the monitoring files and figures to the run's STAC item. */
async function amendItem(itemPath: string, region: Region, run: RunRecord, stats: RunStats, withChange: boolean): Promise<void> {
  const item = (await readJsonFile(itemPath)) as StacItem;
  const dir = dirname(itemPath);
  const asset = (file: string, type: string, roles: string[], title: string): Promise<StacAsset> => checksummedAsset(dir, file, type, roles, title);
  // run.json was rewritten (its outputs list): refresh its checksum.
  const runAsset = item.assets['run'];
  if (runAsset) {
    const { checksum, size } = await fileChecksum(join(dir, 'run.json'));
    item.assets['run'] = { ...runAsset, 'file:checksum': checksum, 'file:size': size };
  }
  item.assets['stats'] = await asset('stats.json', MEDIA_TYPES.json, ['metadata'], 'Zonal statistics of the region and change summary');
  if (withChange) {
    item.assets['change'] = await asset('change.geojson', MEDIA_TYPES.geojson, ['data'], `Canopy loss of at least ${region.lossThresholdM} m over at least ${region.minAreaM2} m² since run ${run.previousRun}`);
    item.assets['loss'] = await asset('loss.tif', MEDIA_TYPES.cog, ['data'], 'Height loss (before − after, m; negative = gain)');
  }
  item.id = `${region.name}-${run.id}`;
  item.properties = { ...item.properties, ...regionRunProperties(region, run, stats) };
  await writeJsonAtomic(itemPath, item);
}

/** A region run's STAC Item properties: region, run, previous run and the map's statistics. */
export function regionRunProperties(region: Region, run: RunRecord, stats: RunStats): JsonObject {
  return {
    'geo-dino:region': region.name,
    'geo-dino:run': run.id,
    'geo-dino:previous_run': run.previousRun,
    'geo-dino:mean_height_m': stats.meanHeightM,
    'geo-dino:canopy_cover_2m_percent': stats.cover2mPercent,
    'geo-dino:canopy_cover_5m_percent': stats.cover5mPercent,
    'geo-dino:valid_percent': stats.validPercent,
  };
}

/** Collection fields for a region with land cover: the class table as a classification summary. */
function landcoverSummary(lc: LandcoverStats | null): JsonObject {
  if (!lc) return {};
  return {
    stac_extensions: [EXTENSIONS.classification],
    summaries: {
      'classification:classes': [
        ...lc.classes.map((c) => ({ value: c.value, name: c.name, ...(c.title ? { title: c.title } : {}), color_hint: c.color.replace('#', '') })),
        { value: lc.nodata, name: 'no_data', nodata: true },
      ],
    },
  };
}
