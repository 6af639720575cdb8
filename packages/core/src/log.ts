/**
 * Structured logging: pino underneath, human lines on a TTY, JSON lines with `--json`.
 *
 * Logs always go to stderr; stdout is kept for a command's result (a table or a JSON document),
 * so `geo-dino ... --json | jq` works.
 *
 * Every line is redacted (redact.ts): passwords and signatures in URLs never reach a log, whether
 * they are in the message, a field, or an error's message.
 */
import { pino, type Logger as PinoLogger, type LevelWithSilent, type LoggerOptions as PinoOptions } from 'pino';
import { redactText, redactValue } from './redact.js';
import type { Writable } from 'node:stream';

export type Logger = PinoLogger;
export type LogLevel = LevelWithSilent;

export interface LoggerOptions {
  /** JSON lines instead of human text. */
  json?: boolean;
  /** Only warnings and errors. */
  quiet?: boolean;
  /** Debug output. */
  verbose?: boolean;
  /** Where lines go; stderr by default. */
  stream?: Writable;
  /** Force colours on or off; default: on when the stream is a TTY. */
  color?: boolean;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const COLORS: Record<string, string> = { trace: '90', debug: '90', info: '36', warn: '33', error: '31', fatal: '31' };
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name']);

/** A pino destination that turns JSON log records into one readable line each. */
export function humanStream(out: Writable, color: boolean): { write(chunk: string): boolean } {
  return {
    write(chunk: string): boolean {
      for (const line of chunk.split('\n')) {
        if (line.length === 0) continue;
        out.write(formatHumanLine(line, color) + '\n');
      }
      return true;
    },
  };
}

/** Format one pino JSON record as `level message key=value ...`. Exported for tests. */
export function formatHumanLine(jsonLine: string, color: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const level = LEVEL_NAMES[Number(rec['level'])] ?? 'info';
  const label = level === 'info' ? '' : `${level}: `;
  const painted = color && label ? `\u001b[${COLORS[level]}m${label}\u001b[0m` : label;
  const extras: string[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (OMIT.has(k) || v === undefined) continue;
    if (k === 'err' && v && typeof v === 'object') {
      const e = v as { message?: unknown; code?: unknown };
      extras.push(`err=${JSON.stringify(e.code ? `${String(e.code)}: ${String(e.message)}` : e.message)}`);
      continue;
    }
    extras.push(`${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
  }
  const msg = typeof rec['msg'] === 'string' ? rec['msg'] : '';
  return `${painted}${msg}${extras.length ? (msg ? '  ' : '') + extras.join(' ') : ''}`;
}

/** Pino hooks that redact every record: its fields (before serialisation) and its message strings. */
const redacting: Pick<PinoOptions, 'hooks'> & { formatters: { log: (o: Record<string, unknown>) => Record<string, unknown> } } = {
  formatters: { log: (o) => redactValue(o) as Record<string, unknown> },
  hooks: {
    logMethod(args, method) {
      method.apply(this, args.map((a: unknown) => (typeof a === 'string' ? redactText(a) : a)) as Parameters<typeof method>);
    },
  },
};

export function createLogger(options: LoggerOptions = {}): Logger {
  const out = options.stream ?? process.stderr;
  const level: LogLevel = options.verbose ? 'debug' : options.quiet ? 'warn' : 'info';
  const isTty = (out as { isTTY?: boolean }).isTTY === true;
  if (options.json) {
    return pino(
      { base: undefined, level, hooks: redacting.hooks, formatters: { level: (label: string) => ({ level: label }), log: redacting.formatters.log }, timestamp: pino.stdTimeFunctions.isoTime },
      out,
    );
  }
  // Human mode: pino writes numeric-level JSON into a formatter stream.
  return pino({ base: undefined, level, timestamp: false, ...redacting }, humanStream(out, options.color ?? isTty));
}

/** A logger that drops everything; for libraries called without one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
