/**
 * Schedules and time.
 *
 * A region's schedule is a cron expression (5 fields, or 6 with seconds; croner's syntax, with
 * `@daily`-style nicknames), evaluated in the region's IANA time zone (default UTC). Each time the
 * expression matches is a *slot*. The scheduler fires a region when its next slot after the last
 * fired one (or after the region was added) has come; if the daemon was down over several slots,
 * it fires once, for the latest, and records how many were missed.
 *
 * Everything that reads the time takes a {@link Clock}, so tests drive the scheduler with a
 * {@link ManualClock} instead of waiting.
 */
import { Cron } from 'croner';
import { GeoDinoError } from '@geo-dino/core';

export interface Clock {
  now(): Date;
  /** Resolve after `ms` of this clock's time, or when `signal` aborts (then resolve too). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, Math.max(0, ms));
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/**
 * A clock that only moves when told to. `sleep` resolves when `advance`/`set` pass its deadline;
 * `sleepers` says how many are waiting (so a test can wait until the daemon is idle).
 */
export class ManualClock implements Clock {
  private t: number;
  private waiters: { at: number; resolve: () => void }[] = [];
  private idleWaiters: { n: number; resolve: () => void }[] = [];

  constructor(start: Date | string | number) {
    this.t = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.t);
  }

  get sleepers(): number {
    return this.waiters.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const w = { at: this.t + Math.max(0, ms), resolve: () => resolve() };
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      w.resolve = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiters.push(w);
      this.notifyIdle();
      if (w.at <= this.t) this.release();
    });
  }

  /** Resolve when at least `n` sleepers wait (the code under test has gone idle). */
  whenSleeping(n = 1): Promise<void> {
    if (this.waiters.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push({ n, resolve }));
  }

  advance(ms: number): void {
    this.set(this.t + ms);
  }

  set(to: Date | string | number): void {
    const t = new Date(to).getTime();
    if (t < this.t) throw new Error('ManualClock cannot go back');
    this.t = t;
    this.release();
  }

  private release(): void {
    const due = this.waiters.filter((w) => w.at <= this.t);
    this.waiters = this.waiters.filter((w) => w.at > this.t);
    for (const w of due) w.resolve();
  }

  private notifyIdle(): void {
    const ready = this.idleWaiters.filter((w) => this.waiters.length >= w.n);
    this.idleWaiters = this.idleWaiters.filter((w) => this.waiters.length < w.n);
    for (const w of ready) w.resolve();
  }
}

/**
 * The shortest interval a schedule may have: one hour (each run maps the whole region and compares
 * it with the previous run; imagery does not change faster than that). A schedule whose minute
 * field (or seconds field, with 6 fields) names more than one value can fire sooner and is refused.
 */
export const MIN_SCHEDULE_INTERVAL_MS = 3600_000;

/** The values a cron minute/second field (0-59) names; null when it is not plain numbers, ranges, steps or `*`. */
function fieldValues(field: string): Set<number> | null {
  const out = new Set<number>();
  for (const part of field.split(',')) {
    const m = /^(\*|\?|(\d{1,2})(?:-(\d{1,2}))?)(?:\/(\d{1,2}))?$/.exec(part);
    if (!m) return null;
    const lo = m[1] === '*' || m[1] === '?' ? 0 : Number(m[2]);
    const hi = m[1] === '*' || m[1] === '?' ? 59 : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? 59 : lo;
    const step = m[4] !== undefined ? Math.max(1, Number(m[4])) : 1;
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

export interface Schedule {
  pattern: string;
  timezone: string;
  /** The first slot strictly after `after`, or null when the schedule never fires again. */
  next(after: Date): Date | null;
  /** The latest slot at or before `at`, or null. */
  latestAtOrBefore(at: Date): Date | null;
}

/** Parse and check a cron expression; E_BAD_SCHEDULE names the expression and what is wrong. */
export function parseSchedule(pattern: string, timezone = 'UTC', field = '--schedule'): Schedule {
  const p = pattern.trim();
  const fields = p.startsWith('@') ? 5 : p.split(/\s+/).length;
  if (fields === 7) {
    throw new GeoDinoError('E_BAD_SCHEDULE', `${field} ${JSON.stringify(pattern)}: year fields are not supported; use 5 fields (minute hour day month weekday) or 6 (with seconds first)`, {
      details: { pattern },
    });
  }
  let cron: Cron;
  try {
    cron = new Cron(p, { timezone, paused: true });
    // Time-zone errors surface on first evaluation.
    cron.nextRun(new Date(0));
  } catch (err) {
    const why = (err as Error).message.replace(/^Cron(Pattern|Date)?:\s*/i, '');
    const isTz = /timezone/i.test(why);
    throw new GeoDinoError(
      'E_BAD_SCHEDULE',
      isTz ? `--timezone ${JSON.stringify(timezone)} is not a valid IANA time zone (e.g. UTC, Europe/Berlin)` : `${field} ${JSON.stringify(pattern)}: not a valid cron expression: ${why}`,
      { details: { pattern, timezone } },
    );
  }
  // Refuse schedules that can fire more often than once an hour.
  if (!p.startsWith('@')) {
    const f = p.split(/\s+/);
    for (const [name, part] of fields === 6 ? ([['second', f[0]!], ['minute', f[1]!]] as const) : ([['minute', f[0]!]] as const)) {
      const values = fieldValues(part);
      if (values && values.size > 1) {
        throw new GeoDinoError(
          'E_BAD_SCHEDULE',
          `${field} ${JSON.stringify(pattern)}: fires more than once an hour (${name} field ${JSON.stringify(part)} names ${values.size} values); the shortest interval is 1 hour (e.g. "0 * * * *" hourly, "0 3 * * *" daily at 03:00)`,
          { details: { pattern, minIntervalMs: MIN_SCHEDULE_INTERVAL_MS } },
        );
      }
    }
  }
  // Refuse schedules that never fire (e.g. 31 February), checked over the next 8 years.
  const probe = cron.nextRun(new Date());
  if (!probe || probe.getTime() - Date.now() > 8 * 366 * 86400_000) {
    throw new GeoDinoError('E_BAD_SCHEDULE', `${field} ${JSON.stringify(pattern)}: this schedule never fires`, { details: { pattern } });
  }
  return {
    pattern: p,
    timezone,
    next(after) {
      return cron.nextRun(after) ?? null;
    },
    latestAtOrBefore(at) {
      // previousRuns is exclusive of its reference: look from 1 ms later.
      return cron.previousRuns(1, new Date(at.getTime() + 1))[0] ?? null;
    },
  };
}

export interface DueSlot {
  /** The slot to fire (the latest that has come). */
  slot: Date;
  /** Slots that came and are covered by this one firing (0 when it is on time). */
  missed: number;
}

/**
 * Whether a region is due at `now`: its first slot after `since` (the last fired slot, or the
 * time it was added) has come. Missed slots are counted up to `countLimit`.
 */
export function dueSlot(schedule: Schedule, since: Date, now: Date, countLimit = 10_000): DueSlot | null {
  const first = schedule.next(since);
  if (!first || first.getTime() > now.getTime()) return null;
  const latest = schedule.latestAtOrBefore(now) ?? first;
  let missed = 0;
  for (let t: Date | null = first; t && t.getTime() < latest.getTime() && missed < countLimit; t = schedule.next(t)) missed++;
  return { slot: latest, missed };
}
