/**
 * Remote files read in byte ranges: over HTTP(S) Range requests through core's `fetchBytes`, and
 * from object storage (`s3://bucket/key`) through @geo-dino/storage's `s3Get`; both with core's
 * retry policy (deadline over headers and body, retries with backoff on 5xx / 429 / 503 SlowDown /
 * connection errors / truncated bodies, byte caps, errors naming the URL with secrets redacted).
 *
 * {@link RangedByteSource} holds what both share:
 * Small reads (IFDs, tag arrays, small tiles) go through a chunk cache: the file is cut into
 * aligned chunks (64 KiB by default) kept in an LRU with a byte budget, so many small reads near
 * each other cost one request. `readMany` coalesces neighbouring ranges (gap ≤ 64 KiB, merged
 * request ≤ 8 MiB) into one request. Requests per source are bounded (8 at once).
 */
import { fetchBytes, redactUrl, GeoDinoError, throwIfAborted, silentLogger, type Logger, type RetryOptions } from '@geo-dino/core';
import { s3Get, type S3Settings } from '@geo-dino/storage';
import { LruCache, Semaphore } from './lru.js';
import { checkRange, type ByteRange, type ByteSource } from './range.js';
import { MiB } from '../errors.js';

export interface HttpOptions {
  /** Deadline for one request, headers and body (default 30 s). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 4). */
  retries?: number;
  /** First backoff (default 250 ms, doubling). */
  backoffMs?: number;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /** Concurrent requests per file (default 8). */
  maxConcurrency?: number;
  /** Chunk size of the small-read cache (default 64 KiB). */
  chunkBytes?: number;
  /** Byte budget of the chunk cache (default 8 MiB). */
  cacheBytes?: number;
  /** Servers without Range support: download whole files up to this size (default 64 MiB), else fail. */
  maxWholeFileBytes?: number;
}

export interface HttpSourceOptions {
  http?: HttpOptions;
  /** Object storage settings for s3:// URLs (endpoint, anonymous, requester pays); default from the environment. */
  s3?: S3Settings;
  log?: Logger;
  signal?: AbortSignal;
}

const COALESCE_GAP = 64 * 1024;
const MAX_MERGED = 8 * MiB;

function noRange(name: string, limit: number, cause: unknown): GeoDinoError {
  return new GeoDinoError(
    'E_UNSUPPORTED_RASTER',
    `${name}: the server does not support HTTP Range requests and the file is larger than ${limit} bytes`,
    { details: { url: name }, cause },
  );
}

/**
 * The chunk cache, request coalescing and concurrency bound shared by remote sources; a subclass
 * says how to fetch one inclusive byte range.
 */
export abstract class RangedByteSource implements ByteSource {
  private readonly chunks: LruCache<number, Uint8Array>;
  private readonly inflight = new Map<number, Promise<Uint8Array>>();
  private readonly sem: Semaphore;
  protected readonly chunkBytes: number;
  /** Set when the server ignores Range and the file was small enough to keep whole. */
  protected whole: Uint8Array | null = null;
  /** Requests made (for tests and benchmarks). */
  requests = 0;

  protected constructor(
    readonly name: string,
    public size: number,
    protected readonly opts: HttpOptions,
    protected readonly log: Logger,
  ) {
    this.chunkBytes = opts.chunkBytes ?? 64 * 1024;
    this.chunks = new LruCache(opts.cacheBytes ?? 8 * MiB);
    this.sem = new Semaphore(opts.maxConcurrency ?? 8);
  }

  /** Fetch bytes `start..end` (inclusive); `maxBytes` caps the body. */
  protected abstract request(start: number, end: number, what: string, signal: AbortSignal | undefined, maxBytes: number): Promise<Uint8Array>;

  /** Seed the cache with the first chunk, read while opening. */
  protected keepFirstChunk(bytes: Uint8Array): void {
    this.chunks.set(0, bytes, bytes.length);
  }

  protected retryOptions(signal: AbortSignal | undefined, what: string): RetryOptions {
    return {
      ...(this.opts.timeoutMs !== undefined ? { timeoutMs: this.opts.timeoutMs } : {}),
      ...(this.opts.retries !== undefined ? { retries: this.opts.retries } : {}),
      ...(this.opts.backoffMs !== undefined ? { backoffMs: this.opts.backoffMs } : {}),
      ...(signal ? { signal } : {}),
      onRetry: (info) => this.log.warn({ url: info.url, attempt: info.attempt, delayMs: info.delayMs, reason: info.reason }, `retrying range read (${what})`),
    };
  }

  private async fetch(start: number, end: number, what: string, signal?: AbortSignal): Promise<Uint8Array> {
    return this.sem.run(async () => {
      throwIfAborted(signal);
      this.requests++;
      const bytes = await this.request(start, end, what, signal, end - start + 1);
      if (this.size > 0) {
        const want = Math.min(end, this.size - 1) - start + 1;
        if (bytes.length !== want) {
          throw new GeoDinoError('E_NETWORK', `${this.name}: ${what}: server returned ${bytes.length} bytes for range ${start}-${end} (expected ${want})`, {
            details: { url: this.name, start, end },
          });
        }
      }
      return bytes;
    });
  }

  private async direct(offset: number, length: number, what: string, signal?: AbortSignal): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0);
    return this.fetch(offset, offset + length - 1, what, signal);
  }

  private chunk(index: number, what: string, signal?: AbortSignal): Promise<Uint8Array> {
    const hit = this.chunks.get(index);
    if (hit) return Promise.resolve(hit);
    const pending = this.inflight.get(index);
    if (pending) return pending;
    const start = index * this.chunkBytes;
    const end = Math.min(this.size, start + this.chunkBytes) - 1;
    const p = this.direct(start, end - start + 1, what, signal)
      .then((bytes) => {
        this.chunks.set(index, bytes, bytes.length);
        return bytes;
      })
      .finally(() => this.inflight.delete(index));
    this.inflight.set(index, p);
    return p;
  }

  /** Fetch chunks i0..i1, one request for each run of chunks not cached or in flight. */
  private async chunksFor(i0: number, i1: number, what: string, signal?: AbortSignal): Promise<Uint8Array[]> {
    let i = i0;
    while (i <= i1) {
      if (this.chunks.has(i) || this.inflight.has(i)) {
        i++;
        continue;
      }
      let j = i;
      while (j + 1 <= i1 && !this.chunks.has(j + 1) && !this.inflight.has(j + 1)) j++;
      const start = i * this.chunkBytes;
      const end = Math.min(this.size, (j + 1) * this.chunkBytes) - 1;
      const run = this.direct(start, end - start + 1, what, signal);
      const first = i;
      for (let k = i; k <= j; k++) {
        const kk = k;
        const p = run
          .then((bytes) => {
            const part = bytes.slice((kk - first) * this.chunkBytes, Math.min(bytes.length, (kk - first + 1) * this.chunkBytes));
            this.chunks.set(kk, part, part.length);
            return part;
          })
          .finally(() => this.inflight.delete(kk));
        this.inflight.set(kk, p);
      }
      i = j + 1;
    }
    const out: Promise<Uint8Array>[] = [];
    for (let k = i0; k <= i1; k++) out.push(this.chunk(k, what, signal));
    return Promise.all(out);
  }

  async read(offset: number, length: number, what: string, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    checkRange(this.name, this.size, offset, length, what);
    if (this.whole) return this.whole.slice(offset, offset + length);
    if (length === 0) return new Uint8Array(0);
    if (length >= 4 * this.chunkBytes) return this.direct(offset, length, what, signal);
    const i0 = Math.floor(offset / this.chunkBytes);
    const i1 = Math.floor((offset + length - 1) / this.chunkBytes);
    const parts = await this.chunksFor(i0, i1, what, signal);
    const out = new Uint8Array(length);
    for (let k = 0; k < parts.length; k++) {
      const part = parts[k]!;
      const partStart = (i0 + k) * this.chunkBytes;
      const from = Math.max(offset, partStart);
      const to = Math.min(offset + length, partStart + part.length);
      if (to > from) out.set(part.subarray(from - partStart, to - partStart), from - offset);
    }
    return out;
  }

  async readMany(ranges: readonly ByteRange[], what: string, signal?: AbortSignal): Promise<Uint8Array[]> {
    for (const r of ranges) checkRange(this.name, this.size, r.offset, r.length, what);
    if (this.whole) return ranges.map((r) => this.whole!.slice(r.offset, r.offset + r.length));
    const order = ranges.map((r, i) => ({ ...r, i })).filter((r) => r.length > 0).sort((a, b) => a.offset - b.offset);
    const out: Uint8Array[] = ranges.map(() => new Uint8Array(0));
    const groups: { start: number; end: number; members: typeof order }[] = [];
    for (const r of order) {
      const g = groups[groups.length - 1];
      const end = r.offset + r.length;
      if (g && r.offset - g.end <= COALESCE_GAP && Math.max(g.end, end) - g.start <= MAX_MERGED) {
        g.end = Math.max(g.end, end);
        g.members.push(r);
      } else {
        groups.push({ start: r.offset, end, members: [r] });
      }
    }
    await Promise.all(
      groups.map(async (g) => {
        const bytes = await this.read(g.start, g.end - g.start, what, signal);
        for (const m of g.members) out[m.i] = bytes.subarray(m.offset - g.start, m.offset - g.start + m.length);
      }),
    );
    return out;
  }

  async close(): Promise<void> {
    this.chunks.clear();
    this.whole = null;
  }
}

export class HttpByteSource extends RangedByteSource {
  private constructor(
    readonly url: string,
    opts: HttpOptions,
    log: Logger,
  ) {
    super(redactUrl(url), 0, opts, log);
  }

  private headers(): { headers?: Record<string, string> } {
    return this.opts.headers ? { headers: this.opts.headers } : {};
  }

  protected async request(start: number, end: number, what: string, signal: AbortSignal | undefined, maxBytes: number): Promise<Uint8Array> {
    return (await fetchBytes(this.url, { ...this.retryOptions(signal, what), ...this.headers(), range: [start, end], maxBytes })).bytes;
  }

  static async open(url: string, options: HttpSourceOptions = {}): Promise<HttpByteSource> {
    const http = options.http ?? {};
    const log = options.log ?? silentLogger();
    const src = new HttpByteSource(url, http, log);
    const limit = http.maxWholeFileBytes ?? 64 * MiB;
    const fail = (err: unknown): never => {
      if (err instanceof GeoDinoError && err.code === 'E_LIMIT') throw noRange(src.name, limit, err);
      throw err;
    };
    const first = await fetchBytes(url, { ...src.retryOptions(options.signal, 'file header'), ...src.headers(), range: [0, src.chunkBytes - 1], maxBytes: limit }).catch(fail);
    src.requests++;
    const cr = first.headers.get('content-range');
    const m = cr ? /bytes\s+(\d+)-(\d+)\/(\d+|\*)/i.exec(cr) : null;
    if (m && m[3] !== '*') {
      src.size = Number(m[3]);
      src.keepFirstChunk(first.bytes);
      return src;
    }
    if (m && m[3] === '*') {
      throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${src.name}: the server does not say how long the file is (Content-Range ${cr})`, {
        details: { url: src.name },
      });
    }
    // No Content-Range: the server ignored Range and sent the whole file.
    log.warn({ url: src.name }, 'server ignores HTTP Range requests; downloading the whole file');
    const res = await fetchBytes(url, { ...src.retryOptions(options.signal, 'whole file'), ...src.headers(), maxBytes: limit }).catch(fail);
    src.whole = res.bytes;
    src.size = res.bytes.length;
    return src;
  }
}

/** An object in S3 or an S3-compatible store, `s3://bucket/key`. */
export class S3ByteSource extends RangedByteSource {
  private constructor(
    readonly url: string,
    opts: HttpOptions,
    log: Logger,
    private readonly s3: S3Settings | undefined,
  ) {
    super(url, 0, opts, log);
  }

  protected async request(start: number, end: number, what: string, signal: AbortSignal | undefined, maxBytes: number): Promise<Uint8Array> {
    return (await s3Get(this.url, [start, end], { ...this.retryOptions(signal, what), maxBytes, log: this.log, ...(this.s3 ? { s3: this.s3 } : {}) })).bytes;
  }

  static async open(url: string, options: HttpSourceOptions = {}): Promise<S3ByteSource> {
    const log = options.log ?? silentLogger();
    const src = new S3ByteSource(url, options.http ?? {}, log, options.s3);
    const first = await s3Get(url, [0, src.chunkBytes - 1], { ...src.retryOptions(options.signal, 'file header'), maxBytes: src.chunkBytes, log, ...(options.s3 ? { s3: options.s3 } : {}) });
    src.requests++;
    src.size = first.size;
    src.keepFirstChunk(first.bytes);
    return src;
  }
}
