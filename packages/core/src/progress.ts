/**
 * Progress reporting for anything that takes more than a few seconds.
 *
 * Three modes, chosen once per command:
 * - `tty`: a bar redrawn in place on stderr (done/total, rate, ETA);
 * - `json`: `{"type":"progress",...}` lines on stderr, throttled;
 * - `silent`: nothing (with `--quiet`, or when stderr is not a TTY).
 *
 * Library code takes a {@link Progress} and calls `start()`; it never decides the mode.
 */
import type { Writable } from 'node:stream';

export type ProgressMode = 'tty' | 'json' | 'silent';

export interface ProgressSnapshot {
  task: string;
  unit: string;
  done: number;
  total: number | null;
  /** Units per second since the task started. */
  rate: number;
  /** Seconds left at the current rate; null when unknown. */
  etaSeconds: number | null;
  elapsedSeconds: number;
}

export interface ProgressTask {
  /** Add `n` (default 1) finished units. */
  tick(n?: number): void;
  /** Set the finished count. */
  update(done: number): void;
  /** Change the total (when it becomes known). */
  setTotal(total: number): void;
  /** Mark the task finished and print its last state. */
  finish(): void;
  snapshot(): ProgressSnapshot;
}

export interface Progress {
  start(task: string, options?: { total?: number; unit?: string; done?: number }): ProgressTask;
}

export interface ProgressOptions {
  mode: ProgressMode;
  stream?: Writable;
  /** Minimum milliseconds between redraws or events. */
  intervalMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** Pick the mode the CLI conventions ask for. */
export function progressModeFor(opts: { json?: boolean; quiet?: boolean; stream?: Writable }): ProgressMode {
  if (opts.quiet) return 'silent';
  if (opts.json) return 'json';
  const s = opts.stream ?? process.stderr;
  return (s as { isTTY?: boolean }).isTTY === true ? 'tty' : 'silent';
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(r).padStart(2, '0')}s`;
  return `${r}s`;
}

export function formatProgressLine(p: ProgressSnapshot, width = 24): string {
  const rate = p.rate >= 10 ? p.rate.toFixed(0) : p.rate.toFixed(2);
  if (p.total === null || p.total <= 0) {
    return `${p.task} ${p.done} ${p.unit} ${rate} ${p.unit}/s ${formatDuration(p.elapsedSeconds)}`;
  }
  const frac = Math.min(1, p.done / p.total);
  const filled = Math.round(frac * width);
  const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
  const eta = p.etaSeconds === null ? '' : ` ETA ${formatDuration(p.etaSeconds)}`;
  return `${p.task} [${bar}] ${p.done}/${p.total} ${p.unit} ${rate} ${p.unit}/s${eta}`;
}

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const interval = options.intervalMs ?? (options.mode === 'json' ? 1000 : 100);
  const now = options.now ?? (() => performance.now());

  return {
    start(task, startOpts = {}): ProgressTask {
      const unit = startOpts.unit ?? 'items';
      let total: number | null = startOpts.total ?? null;
      const initial = startOpts.done ?? 0;
      let done = initial;
      const t0 = now();
      let lastEmit = -Infinity;
      let finished = false;

      const snapshot = (): ProgressSnapshot => {
        const elapsed = Math.max(1e-9, (now() - t0) / 1000);
        const rate = (done - initial) / elapsed;
        const left = total === null ? null : Math.max(0, total - done);
        return {
          task,
          unit,
          done,
          total,
          rate,
          etaSeconds: left === null ? null : rate > 0 ? left / rate : null,
          elapsedSeconds: elapsed,
        };
      };

      const emit = (force: boolean): void => {
        if (options.mode === 'silent') return;
        const t = now();
        if (!force && t - lastEmit < interval) return;
        lastEmit = t;
        const s = snapshot();
        if (options.mode === 'json') {
          stream.write(
            JSON.stringify({
              type: 'progress',
              task: s.task,
              unit: s.unit,
              done: s.done,
              total: s.total,
              rate: Number(s.rate.toFixed(4)),
              eta_s: s.etaSeconds === null ? null : Number(s.etaSeconds.toFixed(1)),
              elapsed_s: Number(s.elapsedSeconds.toFixed(3)),
              finished,
            }) + '\n',
          );
        } else {
          stream.write(`\r\u001b[2K${formatProgressLine(s)}${finished ? '\n' : ''}`);
        }
      };

      return {
        tick(n = 1) {
          done += n;
          emit(false);
        },
        update(value) {
          done = value;
          emit(false);
        },
        setTotal(value) {
          total = value;
          emit(false);
        },
        finish() {
          if (finished) return;
          finished = true;
          emit(true);
        },
        snapshot,
      };
    },
  };
}

/** A Progress that reports nothing; the default for library calls. */
export const silentProgress: Progress = createProgress({ mode: 'silent' });
