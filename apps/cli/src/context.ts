/**
 * What every command gets: a logger, progress, the output conventions and a cancellation signal.
 *
 * Conventions: results go to stdout (a table, or one JSON document with `--json`); logs and
 * progress go to stderr (human on a TTY, JSON lines with `--json`, silent with `--quiet`).
 */
import type { Writable } from 'node:stream';
import {
  GeoDinoError,
  createLogger,
  createProgress,
  progressModeFor,
  type Logger,
  type Progress,
  type ProgressMode,
} from '@geo-dino/core';

export interface GlobalOptions {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
}

export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface CommandContext {
  readonly options: GlobalOptions;
  readonly log: Logger;
  readonly progress: Progress;
  readonly progressMode: ProgressMode;
  readonly signal: AbortSignal;
  readonly io: CliIo;
  /** Print a command's result: `value` as JSON with --json, else `human()` lines. */
  result(value: unknown, human: () => string): void;
}

export function createContext(options: GlobalOptions, io: CliIo, signal: AbortSignal): CommandContext {
  const log = createLogger({ json: options.json, quiet: options.quiet, verbose: options.verbose, stream: io.stderr });
  const progressMode = progressModeFor({ json: options.json, quiet: options.quiet, stream: io.stderr });
  const progress = createProgress({ mode: progressMode, stream: io.stderr });
  return {
    options,
    log,
    progress,
    progressMode,
    signal,
    io,
    result(value, human) {
      if (options.json) io.stdout.write(JSON.stringify(value, null, 2) + '\n');
      else {
        const text = human();
        if (text) io.stdout.write(text.endsWith('\n') ? text : text + '\n');
      }
    },
  };
}

/** Render rows as an aligned text table. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Repeated `--header "Name: value"` flags → a header object (one clear error for a malformed one). */
export function parseHeaders(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of list) {
    const i = h.indexOf(':');
    if (i <= 0) throw new GeoDinoError('E_ARGUMENT', `--header: expected "Name: value" (got ${JSON.stringify(h)})`, { details: { field: '--header' } });
    out[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  return out;
}
