/**
 * The scheduler and daemon with a controllable clock (ManualClock): due runs fire once, missed
 * runs during downtime fire once after restart, interrupted runs are resumed, failures do not
 * stop other regions, one daemon per store. The executor here is a stand-in that records what it
 * is handed; the real executor is tested in run.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GeoDinoError } from '@geo-dino/core';
import { ManualClock, dueSlot, parseSchedule } from '../src/schedule.js';
import { MonitorStore, processOwner, type RunRecord } from '../src/store.js';
import { monitorPaths, type MonitorPaths } from '../src/paths.js';
import { ownerAlive, runDaemon, runRegionNow, type RunExecutor } from '../src/daemon.js';
import { regionInput } from './support/helpers.js';

const region = regionInput;

/** A dead pid on this host: a process that has exited. */
function deadOwner(): string {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return processOwner(Number(r.stdout));
}

let dir: string;
let store: MonitorStore;
let paths: MonitorPaths;
let calls: { region: string; id: string; trigger: string; slot: string | null; missed: number; staleOwner: string | null | undefined; at: string }[];
let clock: ManualClock;
let failFor: Set<string>;

const executor: RunExecutor = async (run, opts) => {
  calls.push({ region: run.region, id: run.id, trigger: run.trigger, slot: run.slot, missed: run.missedSlots, staleOwner: opts.staleOwner, at: clock.now().toISOString() });
  const claimed = store.claimRun(run.seq, processOwner(), clock.now(), opts.staleOwner);
  if (!claimed) return run;
  if (failFor.has(run.region)) {
    return store.updateRun(run.seq, { status: 'failed', errorCode: 'E_NETWORK', errorMessage: 'stac down', finishedAt: clock.now().toISOString() });
  }
  return store.updateRun(run.seq, { status: 'succeeded', finishedAt: clock.now().toISOString() });
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-sched-'));
  paths = monitorPaths(dir);
  store = MonitorStore.open(paths.store);
  calls = [];
  failFor = new Set();
  clock = new ManualClock('2025-01-01T00:00:00Z');
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Start a daemon and wait until it sleeps; returns a stop function resolving with its summary. */
async function startDaemon(): Promise<{ stop: () => Promise<Awaited<ReturnType<typeof runDaemon>>>; settle: () => Promise<void> }> {
  const ac = new AbortController();
  const p = runDaemon({ store, paths, execute: executor, clock, signal: ac.signal, maxSleepMs: 3600_000 });
  p.catch(() => undefined);
  const settle = async (): Promise<void> => {
    await Promise.race([clock.whenSleeping(1), p.then(() => undefined)]);
  };
  await settle();
  return {
    settle,
    stop: async () => {
      ac.abort();
      return p;
    },
  };
}

async function advanceTo(iso: string, d: { settle: () => Promise<void> }): Promise<void> {
  clock.set(iso);
  await d.settle();
}

describe('schedules', () => {
  it('bad cron expressions and time zones are refused with the expression named', () => {
    const bad = (p: string, tz = 'UTC'): GeoDinoError => {
      try {
        parseSchedule(p, tz);
      } catch (err) {
        return err as GeoDinoError;
      }
      throw new Error(`accepted ${p}`);
    };
    expect(bad('61 * * * *')).toMatchObject({ code: 'E_BAD_SCHEDULE', message: expect.stringContaining('"61 * * * *"') });
    expect(bad('every day').message).toMatch(/not a valid cron expression/);
    expect(bad('0 0 31 2 *').message).toMatch(/never fires/);
    expect(bad('0 0 0 1 1 * 2030').message).toMatch(/year fields/);
    expect(bad('0 3 * * *', 'Mars/Olympus').message).toMatch(/--timezone "Mars\/Olympus"/);
    expect(parseSchedule('@daily').next(new Date('2025-01-01T12:00:00Z'))).toEqual(new Date('2025-01-02T00:00:00Z'));
  });

  it('dueSlot: the first slot after `since` has come; several missed slots fire once, for the latest', () => {
    const s = parseSchedule('0 3 * * *');
    const since = new Date('2025-01-01T00:00:00Z');
    expect(dueSlot(s, since, new Date('2025-01-01T02:59:59Z'))).toBeNull();
    expect(dueSlot(s, since, new Date('2025-01-01T03:00:00Z'))).toEqual({ slot: new Date('2025-01-01T03:00:00Z'), missed: 0 });
    expect(dueSlot(s, since, new Date('2025-01-05T04:00:00Z'))).toEqual({ slot: new Date('2025-01-05T03:00:00Z'), missed: 4 });
    // Time zones: 03:00 in Nairobi (UTC+3) is midnight UTC.
    const nbo = parseSchedule('0 3 * * *', 'Africa/Nairobi');
    expect(dueSlot(nbo, since, new Date('2025-01-02T00:00:00Z'))?.slot).toEqual(new Date('2025-01-02T00:00:00Z'));
  });
});

describe('daemon with a controllable clock', () => {
  it('due runs fire once; missed runs during downtime fire once after restart', async () => {
    store.addRegion(region('forest', '0 3 * * *'), clock.now());
    const d1 = await startDaemon();
    expect(calls).toHaveLength(0);
    await advanceTo('2025-01-01T03:00:00Z', d1);
    expect(calls.map((c) => [c.slot, c.trigger])).toEqual([['2025-01-01T03:00:00.000Z', 'schedule']]);
    // The daemon wakes again later the same day: nothing new is due.
    await advanceTo('2025-01-01T15:00:00Z', d1);
    await advanceTo('2025-01-02T02:59:00Z', d1);
    expect(calls).toHaveLength(1);
    await advanceTo('2025-01-02T03:00:00Z', d1);
    expect(calls.map((c) => c.slot)).toEqual(['2025-01-01T03:00:00.000Z', '2025-01-02T03:00:00.000Z']);
    const s1 = await d1.stop();
    expect(s1.fired).toHaveLength(2);

    // Downtime: 2025-01-03 … 2025-01-06 03:00 pass with no daemon.
    clock.set('2025-01-06T10:00:00Z');
    const d2 = await startDaemon();
    expect(calls).toHaveLength(3);
    expect(calls[2]).toMatchObject({ slot: '2025-01-06T03:00:00.000Z', trigger: 'catch-up', missed: 3 });
    // And it carries on with the normal schedule.
    await advanceTo('2025-01-06T23:00:00Z', d2);
    expect(calls).toHaveLength(3);
    await advanceTo('2025-01-07T03:00:00Z', d2);
    expect(calls).toHaveLength(4);
    expect(calls[3]).toMatchObject({ slot: '2025-01-07T03:00:00.000Z', trigger: 'schedule', missed: 0 });
    await d2.stop();
    const runs = store.runs('forest');
    expect(runs.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(store.region('forest').lastSlot).toBe('2025-01-07T03:00:00.000Z');
  });

  it('a second daemon on the same store is refused while the first runs', async () => {
    const d1 = await startDaemon();
    await expect(runDaemon({ store, paths, execute: executor, clock, once: true, owner: 'otherhost:1' })).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringContaining('already running'),
    });
    await d1.stop();
    // Once stopped, another can start.
    await expect(runDaemon({ store, paths, execute: executor, clock, once: true, owner: 'otherhost:1' })).resolves.toBeDefined();
  });

  it('a daemon lock left by a dead process is taken over', async () => {
    store.acquireDaemon(deadOwner(), clock.now(), () => false);
    await expect(runDaemon({ store, paths, execute: executor, clock, once: true })).resolves.toBeDefined();
  });

  it('interrupted runs are resumed, not fired again', async () => {
    store.addRegion(region('forest', '0 3 * * *'), clock.now());
    clock.set('2025-01-01T03:00:00Z');
    // A daemon fired the 03:00 slot and died during the run.
    const dead = deadOwner();
    const run = store.createRun({ region: 'forest', trigger: 'schedule', slot: '2025-01-01T03:00:00.000Z', expectSlot: null, owner: dead, dir: (id) => paths.run('forest', id) }, clock.now())!;
    expect(run.status).toBe('running');
    clock.set('2025-01-01T03:30:00Z');
    const summary = await runDaemon({ store, paths, execute: executor, clock, once: true });
    expect(summary.resumed).toEqual([{ region: 'forest', run: run.id }]);
    expect(summary.fired).toEqual([]);
    expect(calls).toEqual([expect.objectContaining({ id: run.id, staleOwner: dead })]);
    expect(store.run('forest', run.id).status).toBe('succeeded');
    expect(store.run('forest', run.id).executions).toBe(1);
  });

  it('a run in progress in a live process is left alone; monitor run refuses to start another', async () => {
    store.addRegion(region('forest', '0 3 * * *'), clock.now());
    const live = store.createRun({ region: 'forest', trigger: 'manual', slot: null, owner: processOwner(process.ppid), dir: (id) => paths.run('forest', id) }, clock.now())!;
    expect(ownerAlive(live.owner, live.heartbeatAt, clock.now())).toBe(true);
    const summary = await runDaemon({ store, paths, execute: executor, clock, once: true });
    expect(summary.resumed).toEqual([]);
    await expect(runRegionNow('forest', { store, paths, execute: executor, clock })).rejects.toMatchObject({ code: 'E_ARGUMENT', message: expect.stringContaining('in progress') });
    // The slot that came during the run fires once the run is over.
    clock.set('2025-01-01T03:00:00Z');
    expect((await runDaemon({ store, paths, execute: executor, clock, once: true })).fired).toEqual([]);
    store.updateRun(live.seq, { status: 'succeeded' });
    expect((await runDaemon({ store, paths, execute: executor, clock, once: true })).fired).toHaveLength(1);
  });

  it('a failing region is marked failed and retried at its next slot; other regions run', async () => {
    store.addRegion(region('broken', '0 * * * *'), clock.now());
    store.addRegion(region('fine', '0 * * * *'), clock.now());
    failFor.add('broken');
    const d = await startDaemon();
    await advanceTo('2025-01-01T01:00:00Z', d);
    await advanceTo('2025-01-01T02:00:00Z', d);
    await d.stop();
    const broken = store.runs('broken');
    expect(broken.map((r) => [r.slot, r.status, r.errorMessage])).toEqual([
      ['2025-01-01T02:00:00.000Z', 'failed', 'stac down'],
      ['2025-01-01T01:00:00.000Z', 'failed', 'stac down'],
    ]);
    expect(store.runs('fine').map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
  });

  it('monitor run: unknown region is E_NOT_FOUND naming it; a manual run does not use up a slot', async () => {
    await expect(runRegionNow('nope', { store, paths, execute: executor, clock })).rejects.toMatchObject({ code: 'E_NOT_FOUND', message: expect.stringContaining('"nope"') });
    store.addRegion(region('forest', '0 3 * * *'), clock.now());
    const r: RunRecord = await runRegionNow('forest', { store, paths, execute: executor, clock });
    expect(r).toMatchObject({ trigger: 'manual', status: 'succeeded', slot: null });
    clock.set('2025-01-01T03:00:00Z');
    expect((await runDaemon({ store, paths, execute: executor, clock, once: true })).fired).toHaveLength(1);
  });
});
