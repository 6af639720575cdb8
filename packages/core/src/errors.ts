/**
 * Typed errors shared by every geo-dino package.
 *
 * Every failure a user can cause or meet is a {@link GeoDinoError} with a stable `code`.
 * The code decides the exit status the CLI returns; the message says what is wrong and names the
 * file, field or value concerned. Codes are part of the public contract: add new ones, never
 * rename or reuse old ones.
 */

import { redactText, redactValue } from './redact.js';

/** What kind of failure a code is; decides the CLI exit status. */
export type ErrorCategory = 'input' | 'environment' | 'internal' | 'cancelled';

/** Exit statuses of the `geo-dino` command. */
export const EXIT = {
  ok: 0,
  internal: 1,
  input: 2,
  environment: 1,
  cancelled: 130,
} as const satisfies Record<ErrorCategory | 'ok', number>;

/** The stable error codes and their categories. */
export const ERROR_CODES = {
  /** A flag, option or config value is invalid. */
  E_ARGUMENT: 'input',
  /** A command that does not exist. */
  E_UNKNOWN_COMMAND: 'input',
  /** An input file is missing or unreadable. */
  E_FILE_NOT_FOUND: 'input',
  /** JSON or GeoJSON that does not parse or does not follow its schema. */
  E_BAD_JSON: 'input',
  /** An AOI geometry that is invalid or unsupported. */
  E_BAD_AOI: 'input',
  /** A raster that is corrupt, hostile or unsupported. */
  E_BAD_RASTER: 'input',
  /** A raster geometry or CRS that cannot be handled. */
  E_UNSUPPORTED_RASTER: 'input',
  /** A CRS that is unknown or cannot be transformed. */
  E_BAD_CRS: 'input',
  /** A model directory, config or weight file that is missing, malformed or inconsistent. */
  E_BAD_MODEL: 'input',
  /** No model could be found where one was asked for. */
  E_MODEL_NOT_FOUND: 'input',
  /** A STAC document or API answer that is invalid. */
  E_BAD_STAC: 'input',
  /** No imagery covers the AOI. */
  E_NO_IMAGERY: 'input',
  /** An AOI that does not overlap the imagery or labels it is used with. */
  E_NO_OVERLAP: 'input',
  /** Labels for training that cannot be used. */
  E_BAD_LABELS: 'input',
  /** A cron schedule, region name or other monitoring input that is invalid. */
  E_BAD_SCHEDULE: 'input',
  /** A named thing (region, run, layer) that does not exist. */
  E_NOT_FOUND: 'input',
  /** A network request that failed after its retries. */
  E_NETWORK: 'environment',
  /** A remote server said no (4xx) in a way retries cannot fix. */
  E_HTTP_STATUS: 'environment',
  /** Access denied: a gated or private resource without the right token. */
  E_ACCESS_DENIED: 'environment',
  /** Writing output failed (unwritable directory, disk full, ...). */
  E_WRITE: 'environment',
  /** An execution provider or native component that does not work on this machine. */
  E_RUNTIME: 'environment',
  /** A service (Redis, a STAC API) that cannot be reached. */
  E_UNAVAILABLE: 'environment',
  /** A resource limit (memory cap, size cap) that an input would exceed. */
  E_LIMIT: 'input',
  /** The operation was interrupted (Ctrl-C, SIGTERM, abort signal). */
  E_CANCELLED: 'cancelled',
  /** A bug: an invariant geo-dino relies on did not hold. */
  E_INTERNAL: 'internal',
  /** A run directory with no web layers (no PMTiles archive the viewer can show), e.g. given to `geo-dino publish`. */
  E_NO_WEB_LAYERS: 'input',
  /** A store (e.g. the monitoring database) is missing or empty while files show it existed. */
  E_STORE_LOST: 'environment',
} as const satisfies Record<string, ErrorCategory>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface GeoDinoErrorOptions {
  /** The underlying error, kept for `--verbose` output and logs. */
  cause?: unknown;
  /** Structured facts about the failure (file, field, value, url, status ...). */
  details?: Record<string, unknown>;
}

export class GeoDinoError extends Error {
  override readonly name = 'GeoDinoError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  /** The message and the details are redacted (passwords and signatures in URLs, see redact.ts). */
  constructor(code: ErrorCode, message: string, options: GeoDinoErrorOptions = {}) {
    super(redactText(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ? (redactValue(options.details, 4) as Record<string, unknown>) : {};
  }

  get category(): ErrorCategory {
    return ERROR_CODES[this.code];
  }

  get exitCode(): number {
    return EXIT[this.category];
  }

  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isGeoDinoError(value: unknown): value is GeoDinoError {
  return value instanceof GeoDinoError;
}

/** Wrap anything thrown into a GeoDinoError, keeping typed errors as they are. */
export function toGeoDinoError(value: unknown, fallback: ErrorCode = 'E_INTERNAL'): GeoDinoError {
  if (isGeoDinoError(value)) return value;
  if (isAbortError(value)) return new GeoDinoError('E_CANCELLED', 'interrupted', { cause: value });
  const message = value instanceof Error ? value.message : String(value);
  return new GeoDinoError(fallback, message, { cause: value });
}

/** True for the errors `AbortSignal` based APIs throw when aborted. */
export function isAbortError(value: unknown): boolean {
  return (
    value instanceof Error &&
    (value.name === 'AbortError' || (value as { code?: unknown }).code === 'ABORT_ERR')
  );
}

/** Throw E_CANCELLED if the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new GeoDinoError('E_CANCELLED', 'interrupted');
}

/** Map a Node.js file-system error to a clear, typed error naming the path. */
export function fsError(err: unknown, path: string, action: 'read' | 'write' | 'open' | 'create'): GeoDinoError {
  const code = (err as { code?: string } | null)?.code;
  if (action === 'read' || action === 'open') {
    if (code === 'ENOENT') return new GeoDinoError('E_FILE_NOT_FOUND', `${path}: no such file`, { cause: err, details: { path } });
    if (code === 'EISDIR') return new GeoDinoError('E_FILE_NOT_FOUND', `${path}: is a directory, expected a file`, { cause: err, details: { path } });
    if (code === 'EACCES' || code === 'EPERM')
      return new GeoDinoError('E_FILE_NOT_FOUND', `${path}: permission denied`, { cause: err, details: { path } });
  }
  const reason =
    code === 'ENOSPC'
      ? 'no space left on device'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EROFS'
          ? 'read-only file system'
          : code === 'ENOENT'
            ? 'directory does not exist'
            : code === 'ENOTDIR' || (code === 'EEXIST' && action === 'create')
              ? 'a parent is not a directory'
              : err instanceof Error
                ? err.message
                : String(err);
  return new GeoDinoError(action === 'read' || action === 'open' ? 'E_FILE_NOT_FOUND' : 'E_WRITE', `${path}: cannot ${action}: ${reason}`, {
    cause: err,
    details: { path, errno: code },
  });
}
