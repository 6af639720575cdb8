/**
 * The monitoring daemon (`geo-dino monitor start`) and manual runs (`monitor run`).
 *
 * The daemon loops: resume interrupted runs, fire the regions whose schedule slot has come (once
 * per slot; after downtime, once for all the slots missed), deliver pending alerts, then sleep
 * until the next slot or alert retry (at most `maxSleepMs`). State is entirely in the store, so a
 * restarted daemon carries on where the last one stopped:
 *
 * - a slot is recorded as fired in the same transaction that creates its run, before the run
 *   starts; a crash during the run leaves it `running` under a dead owner, and the next daemon
 *   (or `monitor run`) resumes it instead of firing the slot again;
 * - one daemon per store: a second one refuses to start while the first is alive;
 * - a run whose owner process is gone is resumed: on this host, when its pid no longer exists;
 *   on another host, when its heartbeat is older than `staleAfterMs`.
 */
import { hostname } from 'node:os';
import { GeoDinoError, processAlive, silentLogger, toGeoDinoError, type Logger } from '@geo-dino/core';
import { deliverDueAlerts, type AlertOptions } from './alerts.js';
import type { MonitorPaths } from './paths.js';
import { dueSlot, parseSchedule, systemClock, type Clock } from './schedule.js';
import { processOwner, type MonitorStore, type Region, type RunRecord } from './store.js';

/** Executes a run it has been handed (claiming it first); records success or failure in the store. */
export type RunExecutor = (run: RunRecord, options: { staleOwner?: string | null; signal?: AbortSignal }) => Promise<RunRecord>;

export const DEFAULT_STALE_AFTER_MS = 5 * 60_000;

/** Is the process named by `owner` (`host:pid`) still working on something? */
export function ownerAlive(owner: string | null, heartbeatAt: string | null, now: Date, staleAfterMs = DEFAULT_STALE_AFTER_MS): boolean {
  if (!owner) return false;
  const i = owner.lastIndexOf(':');
  const host = owner.slice(0, i);
  const pid = Number(owner.slice(i + 1));
  if (host === hostname() && Number.isInteger(pid) && pid > 0) return processAlive(pid);
  if (!heartbeatAt) return false;
  return now.getTime() - Date.parse(heartbeatAt) < staleAfterMs;
}

/** Unfinished runs nobody is executing: queued and never claimed, or running under a dead owner. */
export function orphanedRuns(store: MonitorStore, now: Date, staleAfterMs = DEFAULT_STALE_AFTER_MS): RunRecord[] {
  return store.unfinishedRuns().filter((r) => !ownerAlive(r.owner, r.heartbeatAt, now, staleAfterMs));
}

export interface ManualRunOptions {
  store: MonitorStore;
  paths: MonitorPaths;
  execute: RunExecutor;
  clock?: Clock;
  log?: Logger;
  signal?: AbortSignal;
  staleAfterMs?: number;
}

/**
 * `monitor run <region>`: run now. When the region has an interrupted run, that run is resumed;
 * when it has a run in progress in a live process, E_ARGUMENT says so.
 */
export async function runRegionNow(region: string, o: ManualRunOptions): Promise<RunRecord> {
  const clock = o.clock ?? systemClock;
  const now = clock.now();
  o.store.region(region);
  const active = o.store.activeRun(region);
  if (active) {
    if (ownerAlive(active.owner, active.heartbeatAt, now, o.staleAfterMs) && active.owner !== null) {
      throw new GeoDinoError('E_ARGUMENT', `region ${region} has a run in progress (${active.id}, ${active.owner}); wait for it or stop that process`, {
        details: { region, run: active.id, owner: active.owner },
      });
    }
    (o.log ?? silentLogger()).info({ region, run: active.id }, 'resuming an interrupted run');
    return o.execute(active, { staleOwner: active.owner, ...(o.signal ? { signal: o.signal } : {}) });
  }
  const run = o.store.createRun({ region, trigger: 'manual', slot: null, owner: processOwner(), dir: (id) => o.paths.run(region, id) }, now);
  if (!run) throw new GeoDinoError('E_INTERNAL', `region ${region}: could not create a run`);
  return o.execute(run, o.signal ? { signal: o.signal } : {});
}

export interface DaemonOptions extends ManualRunOptions {
  /** Longest sleep between checks (default 60 s). */
  maxSleepMs?: number;
  /** One pass (resume, fire what is due, deliver alerts), then return. */
  once?: boolean;
  alerts?: AlertOptions;
  /** Who this daemon is (default `host:pid`). */
  owner?: string;
}

export interface DaemonSummary {
  fired: { region: string; run: string; slot: string; missed: number }[];
  resumed: { region: string; run: string }[];
  finished: { region: string; run: string; status: string }[];
}

/** Run the daemon until `signal` aborts (or one pass with `once`). */
export async function runDaemon(o: DaemonOptions): Promise<DaemonSummary> {
  const clock = o.clock ?? systemClock;
  const log = o.log ?? silentLogger();
  const owner = o.owner ?? processOwner();
  const staleAfterMs = o.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  const maxSleep = o.maxSleepMs ?? 60_000;
  const summary: DaemonSummary = { fired: [], resumed: [], finished: [] };

  const got = o.store.acquireDaemon(owner, clock.now(), (who, hb) => ownerAlive(who, hb, clock.now(), staleAfterMs));
  if (!got.ok) {
    throw new GeoDinoError('E_UNAVAILABLE', `${o.store.path}: a monitoring daemon is already running (${got.owner}, last seen ${got.heartbeatAt}); stop it first`, {
      details: { owner: got.owner },
    });
  }
  log.info({ store: o.store.path, owner }, 'monitoring daemon started');
  const signalOpt = o.signal ? { signal: o.signal } : {};
  const execute = async (run: RunRecord, staleOwner?: string | null): Promise<void> => {
    try {
      const done = await o.execute(run, { ...signalOpt, ...(staleOwner !== undefined ? { staleOwner } : {}) });
      summary.finished.push({ region: done.region, run: done.id, status: done.status });
    } catch (err) {
      const e = toGeoDinoError(err);
      if (e.code === 'E_CANCELLED') throw e;
      // The executor records run failures itself; anything reaching here is logged and the daemon goes on.
      log.error({ region: run.region, run: run.id, err: e }, 'run executor failed');
    }
  };
  try {
    for (;;) {
      if (o.signal?.aborted) break;
      o.store.daemonHeartbeat(owner, clock.now());
      // 1. Interrupted runs.
      for (const run of orphanedRuns(o.store, clock.now(), staleAfterMs)) {
        if (o.signal?.aborted) break;
        log.info({ region: run.region, run: run.id, owner: run.owner }, 'resuming an interrupted run');
        summary.resumed.push({ region: run.region, run: run.id });
        await execute(run, run.status === 'running' ? run.owner : undefined);
      }
      // 2. Due schedules.
      for (const region of o.store.regions()) {
        if (o.signal?.aborted) break;
        if (!region.enabled) continue;
        const fired = fireIfDue(o, region, clock.now(), log, owner);
        if (!fired) continue;
        summary.fired.push({ region: region.name, run: fired.id, slot: fired.slot!, missed: fired.missedSlots });
        await execute(fired);
      }
      // 3. Alerts waiting for another delivery round.
      await deliverDueAlerts(o.store, { ...o.alerts, clock, log, ...signalOpt });
      if (o.once || o.signal?.aborted) break;
      // 4. Sleep until something is due.
      const now = clock.now();
      let wake = now.getTime() + maxSleep;
      for (const region of o.store.regions()) {
        if (!region.enabled) continue;
        const next = nextSlot(region, log);
        if (next) wake = Math.min(wake, next.getTime());
      }
      const alertAt = o.store.nextAlertAttempt();
      if (alertAt) wake = Math.min(wake, Date.parse(alertAt));
      const ms = wake - now.getTime();
      if (ms > 0) await clock.sleep(ms, o.signal);
    }
  } finally {
    o.store.releaseDaemon(owner);
    log.info({ owner }, 'monitoring daemon stopped');
  }
  return summary;
}

function scheduleOf(region: Region, log: Logger): ReturnType<typeof parseSchedule> | null {
  try {
    return parseSchedule(region.schedule, region.timezone);
  } catch (err) {
    log.error({ region: region.name, err: toGeoDinoError(err) }, 'the region schedule cannot be evaluated; skipping it');
    return null;
  }
}

function nextSlot(region: Region, log: Logger): Date | null {
  const s = scheduleOf(region, log);
  return s ? s.next(new Date(region.lastSlot ?? region.createdAt)) : null;
}

/** Create the run for a region's due slot (recording the slot as fired), or null. */
export function fireIfDue(o: Pick<DaemonOptions, 'store' | 'paths'>, region: Region, now: Date, log: Logger = silentLogger(), owner: string = processOwner()): RunRecord | null {
  const schedule = scheduleOf(region, log);
  if (!schedule) return null;
  const due = dueSlot(schedule, new Date(region.lastSlot ?? region.createdAt), now);
  if (!due) return null;
  // A region with a run in progress fires when it is done (the slot stays due meanwhile).
  if (o.store.activeRun(region.name)) return null;
  const run = o.store.createRun(
    {
      region: region.name,
      trigger: due.missed > 0 ? 'catch-up' : 'schedule',
      slot: due.slot.toISOString(),
      missedSlots: due.missed,
      expectSlot: region.lastSlot,
      owner,
      dir: (id) => o.paths.run(region.name, id),
    },
    now,
  );
  if (run) {
    log.info(
      { region: region.name, run: run.id, slot: run.slot, ...(due.missed ? { missed: due.missed } : {}) },
      due.missed ? `schedule due; ${due.missed} earlier slot${due.missed === 1 ? ' was' : 's were'} missed while geo-dino was not running: running once for all` : 'schedule due',
    );
  }
  return run;
}
