/**
 * What every command gets: a logger, progress, the output conventions and a cancellation signal.
 *
 * Conventions: results go to stdout (a table, or one JSON document with `--json`); logs and
 * progress go to stderr (human on a TTY, JSON lines with `--json`, silent with `--quiet`).
 */
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { redactTileUrl, type TileServiceParams } from '@geo-dino/tiling';
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

/** The tile-service flags of every command that reads imagery (`xyz:` templates, `wmts:` services). */
export function addTileServiceOptions(cmd: Command): Command {
  return cmd
    .option('--zoom <level>', 'tile services: level to read (XYZ zoom, or WMTS TileMatrix identifier); default: the nearest level at least as fine as the output pixel size at the AOI')
    .option('--layer <id>', 'WMTS: layer to read (required when the service has several)')
    .option('--tile-matrix-set <id>', 'WMTS: tile matrix set (default: Web Mercator when offered, else the first in a CRS geo-dino knows)')
    .option('--attribution <text>', 'tile services: attribution/licence recorded in provenance, the STAC Item and the viewer (default: what a WMTS declares)')
    .option('--blank-tile <sha256>', 'tile services: SHA-256 of a tile that means "no data here" (repeatable)', (v: string, prev: string[] = []) => [...prev, v]);
}

/** The tile-service parameters from those flags; undefined when none is given. */
export function tileServiceParams(raw: Record<string, unknown>): TileServiceParams | undefined {
  const str = (k: string, flag: string): string | undefined => {
    const v = raw[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !v.trim()) throw new GeoDinoError('E_ARGUMENT', `${flag}: must not be empty`, { details: { field: flag } });
    return v.trim();
  };
  const zoom = str('zoom', '--zoom');
  const layer = str('layer', '--layer');
  const tileMatrixSet = str('tileMatrixSet', '--tile-matrix-set');
  const attribution = str('attribution', '--attribution');
  const blank = (raw['blankTile'] as string[] | undefined) ?? [];
  for (const b of blank) {
    if (!/^[0-9a-f]{64}$/i.test(b)) throw new GeoDinoError('E_ARGUMENT', `--blank-tile: expected the SHA-256 of a tile, 64 hex digits (got ${JSON.stringify(b)}); e.g. sha256sum blank.png`, { details: { field: '--blank-tile' } });
  }
  const p: TileServiceParams = {
    ...(zoom !== undefined ? { zoom } : {}),
    ...(layer !== undefined ? { layer } : {}),
    ...(tileMatrixSet !== undefined ? { tileMatrixSet } : {}),
    ...(attribution !== undefined ? { attribution } : {}),
    ...(blank.length ? { blankTiles: blank.map((b) => b.toLowerCase()) } : {}),
  };
  return Object.keys(p).length ? p : undefined;
}

/** The command line as run.json records it: keys in URLs and templates redacted, header values hidden. */
export function recordedCommand(argv: readonly string[]): string[] {
  return ['geo-dino', ...argv.map((a, i) => (argv[i - 1] === '--header' ? `${a.split(':')[0]}: ***` : a.startsWith('--header=') ? `--header=${a.slice(9).split(':')[0]}: ***` : redactTileUrl(a)))];
}
