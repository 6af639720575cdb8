/**
 * HTTP with the failure handling every remote read in geo-dino needs: a deadline covering the
 * whole exchange (headers and body, so a stalled body cannot hang a run), retries with
 * exponential backoff and jitter on 5xx, 429 and connection errors, a check that the body is as
 * long as announced (truncated bodies are retried), a byte cap, and clear errors naming the URL.
 *
 * Used by the tiler (COG range reads), the STAC client, `model pull` and webhooks.
 */
import { GeoDinoError, isGeoDinoError } from './errors.js';
import { redactUrl as redact } from './redact.js';

export interface RetryOptions {
  /** Retries after the first attempt (default 4). */
  retries?: number;
  /** First backoff in ms (default 250); doubles each retry, with ±25 % jitter. */
  backoffMs?: number;
  /** Upper bound for one backoff (default 8000 ms). */
  maxBackoffMs?: number;
  /** Deadline for one attempt, headers and body together (default 30000 ms, never beyond `deadlineMs`). */
  timeoutMs?: number;
  /**
   * Deadline for the whole call, every attempt and backoff included (default: the process-wide
   * value of {@link configureHttp}, 60 s, `--timeout`; at least `timeoutMs` when that is given).
   * A server that accepts connections and never answers fails within it.
   */
  deadlineMs?: number;
  /** Called before each retry, for logging. */
  onRetry?: (info: { url: string; attempt: number; delayMs: number; reason: string }) => void;
  signal?: AbortSignal;
  /** Random source for jitter (tests pass a constant). */
  random?: () => number;
  /**
   * Longest wait a server's `Retry-After` (on 429 and 503) may impose before a retry (default
   * 60000 ms); a longer one is shortened to this. The wait is never shorter than the backoff.
   */
  maxRetryAfterMs?: number;
}

export interface FetchBytesOptions extends RetryOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Inclusive byte range [start, end]; sends `Range` and expects 206 (or 200 with the whole file). */
  range?: readonly [number, number];
  /** Refuse bodies longer than this (default 512 MiB). */
  maxBytes?: number;
  /** Statuses accepted as success besides 2xx (for example 304). */
  acceptStatus?: readonly number[];
}

export interface BytesResponse {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
  url: string;
}

const DEFAULTS = { retries: 4, backoffMs: 250, maxBackoffMs: 8000, timeoutMs: 30_000, maxBytes: 512 * 1024 * 1024 };

/** Process-wide defaults of remote reads (the CLI's `--timeout`). */
const processDefaults = { deadlineMs: 60_000 };

/**
 * Set process-wide defaults for remote reads: `deadlineMs`, the longest one read may take with its
 * retries (default 60 s). Returns the previous values.
 */
export function configureHttp(options: { deadlineMs?: number }): { deadlineMs: number } {
  const previous = { ...processDefaults };
  if (options.deadlineMs !== undefined) {
    if (!(options.deadlineMs > 0) || !Number.isFinite(options.deadlineMs)) throw new GeoDinoError('E_ARGUMENT', `--timeout: must be a positive number of seconds (got ${options.deadlineMs / 1000})`);
    processDefaults.deadlineMs = options.deadlineMs;
  }
  return previous;
}

class RetryableError extends Error {}

export function backoffDelay(attempt: number, opts: RetryOptions = {}): number {
  const base = opts.backoffMs ?? DEFAULTS.backoffMs;
  const max = opts.maxBackoffMs ?? DEFAULTS.maxBackoffMs;
  const random = opts.random ?? Math.random;
  const raw = Math.min(max, base * 2 ** (attempt - 1));
  return Math.round(raw * (0.75 + 0.5 * random()));
}

/** Wait `ms`; E_CANCELLED as soon as `signal` aborts (the backoff between retries). */
export function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new GeoDinoError('E_CANCELLED', 'interrupted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new GeoDinoError('E_CANCELLED', 'interrupted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function statusError(url: string, status: number, statusText: string, body: string): GeoDinoError {
  const snippet = body.replace(/\s+/g, ' ').trim().slice(0, 200);
  const what = `${redact(url)}: HTTP ${status}${statusText ? ' ' + statusText : ''}${snippet ? ` (${snippet})` : ''}`;
  if (status === 401 || status === 403) {
    return new GeoDinoError('E_ACCESS_DENIED', `${what}: access denied`, { details: { url: redact(url), status } });
  }
  return new GeoDinoError('E_HTTP_STATUS', what, { details: { url: redact(url), status } });
}

/** Milliseconds a `Retry-After` header asks for (seconds or an HTTP date); null when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (value === null) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - now) : null;
}

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

async function readBody(res: Response, url: string, maxBytes: number, expected: number | null): Promise<Uint8Array> {
  if (expected !== null && expected > maxBytes) {
    throw new GeoDinoError('E_LIMIT', `${redact(url)}: response of ${expected} bytes exceeds the ${maxBytes}-byte cap`, {
      details: { url: redact(url), bytes: expected, maxBytes },
    });
  }
  const reader = res.body?.getReader();
  if (!reader) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new GeoDinoError('E_LIMIT', `${redact(url)}: response exceeds the ${maxBytes}-byte cap`, {
        details: { url: redact(url), maxBytes },
      });
    }
    chunks.push(value);
  }
  if (expected !== null && total !== expected) {
    throw new RetryableError(`body truncated: got ${total} of ${expected} bytes`);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/**
 * Fetch a URL into memory with retries. Throws E_HTTP_STATUS / E_ACCESS_DENIED for final 4xx,
 * E_NETWORK after the last retry, E_LIMIT over the byte cap, E_CANCELLED when aborted.
 */
export async function fetchBytes(url: string, options: FetchBytesOptions = {}): Promise<BytesResponse> {
  const retries = options.retries ?? DEFAULTS.retries;
  const deadlineMs = options.deadlineMs ?? Math.max(processDefaults.deadlineMs, options.timeoutMs ?? 0);
  const started = Date.now();
  const deadlineError = (): GeoDinoError =>
    new GeoDinoError('E_NETWORK', `${redact(url)}: gave up after ${deadlineMs / 1000} s (--timeout): ${lastReason || 'no answer'}`, {
      details: { url: redact(url), deadlineMs, reason: lastReason },
    });
  const maxBytes = options.maxBytes ?? DEFAULTS.maxBytes;
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  // `user:password@` in the URL becomes Basic authentication (fetch refuses URLs holding credentials).
  let target = url;
  try {
    const u = new URL(url);
    if ((u.username || u.password) && (u.protocol === 'http:' || u.protocol === 'https:')) {
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
        headers['Authorization'] = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
      }
      u.username = '';
      u.password = '';
      target = u.toString();
    }
  } catch {
    // not a URL: fetch says so below
  }
  if (options.range) headers['Range'] = `bytes=${options.range[0]}-${options.range[1]}`;
  let lastReason = '';
  /** What the last answer's Retry-After asked for (429/503 only). */
  let serverDelayMs: number | null = null;

  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) {
      const backoff = backoffDelay(attempt, options);
      const delayMs = serverDelayMs === null ? backoff : Math.max(backoff, Math.min(serverDelayMs, options.maxRetryAfterMs ?? 60_000));
      serverDelayMs = null;
      // No time left for another attempt after the wait: fail now.
      if (Date.now() - started + delayMs >= deadlineMs) throw deadlineError();
      options.onRetry?.({ url: redact(url), attempt, delayMs, reason: lastReason });
      await sleepUnlessAborted(delayMs, options.signal);
    }
    if (options.signal?.aborted) throw new GeoDinoError('E_CANCELLED', 'interrupted');
    const timeoutMs = Math.min(options.timeoutMs ?? DEFAULTS.timeoutMs, deadlineMs - (Date.now() - started));
    if (timeoutMs <= 0) throw deadlineError();
    const controller = new AbortController();
    const onOuterAbort = (): void => controller.abort();
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const res = await fetch(target, {
        method: options.method ?? 'GET',
        headers,
        // (a copy typed Uint8Array<ArrayBuffer> satisfies both Node's and the DOM's BodyInit)
        ...(options.body !== undefined ? { body: typeof options.body === 'string' ? options.body : new Uint8Array(options.body) } : {}),
        signal: controller.signal,
        redirect: 'follow',
      });
      const accepted = (res.status >= 200 && res.status < 300) || (options.acceptStatus ?? []).includes(res.status);
      if (!accepted) {
        const text = await res.text().catch(() => '');
        if (isRetryableStatus(res.status)) {
          lastReason = `HTTP ${res.status}`;
          if (res.status === 429 || res.status === 503) {
            serverDelayMs = retryAfterMs(res.headers.get('retry-after'));
            if (serverDelayMs !== null) lastReason += ` (Retry-After ${res.headers.get('retry-after')})`;
          }
          continue;
        }
        throw statusError(url, res.status, res.statusText, text);
      }
      let expected: number | null = null;
      const len = res.headers.get('content-length');
      if (len !== null && /^\d+$/.test(len) && !res.headers.get('content-encoding')) expected = Number(len);
      if (options.range && res.status === 206) {
        const want = options.range[1] - options.range[0] + 1;
        const cr = res.headers.get('content-range');
        const m = cr ? /bytes (\d+)-(\d+)\/(\d+|\*)/.exec(cr) : null;
        if (m && Number(m[1]) !== options.range[0]) {
          throw new GeoDinoError('E_NETWORK', `${redact(url)}: server answered range ${cr} for bytes ${options.range[0]}-${options.range[1]}`);
        }
        // A range past the end is shortened by the server; that is legitimate.
        if (expected === null && m) expected = Number(m[2]) - Number(m[1]) + 1;
        if (expected !== null && expected > want) expected = want;
      }
      const bytes = await readBody(res, url, maxBytes, expected);
      if (options.range && res.status === 200) {
        // Server ignored Range: slice what was asked for.
        return {
          status: 206,
          headers: res.headers,
          bytes: bytes.subarray(options.range[0], Math.min(bytes.length, options.range[1] + 1)),
          url: res.url || url,
        };
      }
      return { status: res.status, headers: res.headers, bytes, url: res.url || url };
    } catch (err) {
      if (isGeoDinoError(err)) throw err;
      if (options.signal?.aborted) throw new GeoDinoError('E_CANCELLED', 'interrupted');
      if (controller.signal.aborted) {
        lastReason = `no complete answer within ${timeoutMs} ms`;
      } else if (err instanceof RetryableError) {
        lastReason = err.message;
      } else {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        lastReason = cause?.code ?? cause?.message ?? (err as Error).message;
      }
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onOuterAbort);
    }
  }
  throw new GeoDinoError('E_NETWORK', `${redact(url)}: failed after ${retries + 1} attempts: ${lastReason}`, {
    details: { url: redact(url), attempts: retries + 1, reason: lastReason },
  });
}

/** Fetch and parse JSON, with retries; errors name the URL. */
export async function fetchJson(url: string, options: FetchBytesOptions = {}): Promise<unknown> {
  const res = await fetchBytes(url, {
    ...options,
    headers: { Accept: 'application/json, application/geo+json', ...(options.headers ?? {}) },
  });
  const text = new TextDecoder().decode(res.bytes);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new GeoDinoError('E_BAD_JSON', `${redact(url)}: invalid JSON: ${(err as Error).message}`, {
      cause: err,
      details: { url: redact(url) },
    });
  }
}

export function isHttpUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}

