/**
 * `geo-dino serve s3://bucket/prefix`: runs published to object storage, served by proxying.
 *
 * Choice: the server reads the objects (ranges, through @geo-dino/storage with the AWS credential
 * chain, retries and byte caps) and answers the viewer itself, instead of handing the browser
 * presigned URLs. So the viewer is the same as for a directory, the bucket needs no CORS rules
 * and no public access, credentials never reach the browser, and requester-pays buckets work;
 * the cost is that the traffic flows through the server (run it near the bucket).
 *
 * A run is a "directory" under the prefix holding `manifest.json` (written last by
 * `publishDirectory`), so half-published runs are never listed; only objects of listed runs are
 * served, with the same path and extension rules as files on disk.
 */
import { extname } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RangeResponse, Source } from 'pmtiles';
import { silentLogger, type Logger } from '@geo-dino/core';
import { MANIFEST_NAME, parseS3Url, s3Get, s3List, type S3ListEntry } from '@geo-dino/storage';
import { CONTENT_TYPES, parseRange } from './files.js';
import { describeRun, MAX_RUN_JSON_BYTES, sortAndGroup, type RunFiles, type RunInfo } from './runs.js';

const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const MAX_DEPTH = 4;
const MAX_RUNS = 500;
/** Largest single GET made for a client's request; longer bodies are streamed in pieces this big. */
const PIECE = 8 << 20;

interface Entry {
  url: string;
  size: number;
  etag: string;
  lastModified: Date;
}

function entryOf(url: string, e: S3ListEntry): Entry {
  return { url, size: e.size, etag: e.etag ?? `"${e.size.toString(16)}"`, lastModified: e.lastModified ?? new Date(0) };
}

/** A pmtiles Source over an object. */
class ObjectSource implements Source {
  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {}
  getKey(): string {
    return this.url;
  }
  async getBytes(offset: number, length: number): Promise<RangeResponse> {
    const { bytes } = await s3Get(this.url, [offset, offset + length - 1], { maxBytes: length, log: this.log });
    return { data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer };
  }
}

export class ObjectRunTree {
  /** Objects of complete runs, by run id then file name. */
  private files = new Map<string, Map<string, Entry>>();

  private constructor(
    readonly root: string,
    private readonly log: Logger,
  ) {}

  /** Open `s3://bucket/prefix` (listing it once, so a missing bucket or denied access fails now). */
  static async open(root: string, log: Logger = silentLogger()): Promise<ObjectRunTree> {
    parseS3Url(root, 'serve');
    const tree = new ObjectRunTree(root.replace(/\/+$/, ''), log);
    await tree.discover();
    return tree;
  }

  /** List the prefix; every directory holding a manifest.json (at most 4 levels down) is a run. */
  async discover(): Promise<RunInfo[]> {
    const { bucket, key } = parseS3Url(this.root + '/');
    const all = await s3List(`s3://${bucket}/${key}`, { log: this.log });
    const dirs = new Map<string, Map<string, Entry>>();
    for (const o of all) {
      const rel = o.key.slice(key.length);
      const parts = rel.split('/');
      const name = parts.pop()!;
      if (!NAME.test(name) || parts.length > MAX_DEPTH || !parts.every((p) => NAME.test(p))) continue;
      const id = parts.join('/') || '.';
      let d = dirs.get(id);
      if (!d) dirs.set(id, (d = new Map()));
      d.set(name, entryOf(`s3://${bucket}/${o.key}`, o));
    }
    const files = new Map<string, Map<string, Entry>>();
    const runs: RunInfo[] = [];
    for (const [id, names] of [...dirs].sort(([a], [b]) => a.localeCompare(b))) {
      if (!names.has(MANIFEST_NAME) || runs.length >= MAX_RUNS) continue;
      files.set(id, names);
      runs.push(await describeRun(id, new Set(names.keys()), this.runFiles(names), this.log));
    }
    this.files = files;
    return sortAndGroup(runs);
  }

  private runFiles(names: Map<string, Entry>): RunFiles {
    const get = (name: string): Entry => {
      const e = names.get(name);
      if (!e) throw new Error(`${name}: not in the run`);
      return e;
    };
    return {
      readJson: async (name) => {
        const e = names.get(name);
        if (!e || e.size > MAX_RUN_JSON_BYTES) return null;
        try {
          const { bytes } = await s3Get(e.url, null, { maxBytes: MAX_RUN_JSON_BYTES, log: this.log });
          const v = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
          return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
        } catch {
          return null;
        }
      },
      size: async (name) => get(name).size,
      source: (name) => new ObjectSource(get(name).url, this.log),
    };
  }

  /** The `s3://` prefix of run `id` (its files are `<prefix>/<name>`). */
  prefixOf(id: string): string {
    return id === '.' ? this.root : `${this.root}/${id}`;
  }

  /** The object of `file` in run `id`, if the run is listed and holds it. */
  entry(id: string, file: string): Entry | null {
    return this.files.get(id)?.get(file) ?? null;
  }

  /** The object a /data/ path names (run id segments, then the file), or null. */
  resolve(segments: readonly string[], allowed: ReadonlySet<string>): Entry | null {
    const file = segments[segments.length - 1];
    if (!file || !allowed.has(extname(file).toLowerCase())) return null;
    return this.entry(segments.slice(0, -1).join('/') || '.', file);
  }

  /** Answer a GET/HEAD for an object: validators, a single range, the body proxied in bounded pieces. */
  async serve(req: IncomingMessage, res: ServerResponse, e: Entry, cacheControl: string): Promise<void> {
    const head = req.method === 'HEAD';
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('ETag', e.etag);
    res.setHeader('Last-Modified', e.lastModified.toUTCString());
    res.setHeader('Cache-Control', cacheControl);
    res.setHeader('Content-Type', CONTENT_TYPES[extname(e.url).toLowerCase()] ?? 'application/octet-stream');
    const inm = req.headers['if-none-match'];
    if (inm && inm.split(',').some((t) => t.trim() === e.etag || t.trim() === '*')) {
      res.statusCode = 304;
      res.end();
      return;
    }
    const ifRange = req.headers['if-range'] as string | undefined;
    const range = parseRange(ifRange && ifRange.trim() !== e.etag ? undefined : req.headers.range, e.size);
    if (range === 'unsatisfiable') {
      res.statusCode = 416;
      res.setHeader('Content-Range', `bytes */${e.size}`);
      res.end();
      return;
    }
    const start = range ? range.start : 0;
    const end = range ? range.end : e.size - 1;
    res.statusCode = range ? 206 : 200;
    if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${e.size}`);
    res.setHeader('Content-Length', Math.max(0, end - start + 1));
    if (head || e.size === 0) {
      res.end();
      return;
    }
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    try {
      for (let at = start; at <= end && !ac.signal.aborted; at += PIECE) {
        const { bytes } = await s3Get(e.url, [at, Math.min(end, at + PIECE - 1)], { maxBytes: PIECE, log: this.log, signal: ac.signal });
        if (!res.write(bytes)) await new Promise<void>((r) => res.once('drain', () => r()));
      }
      res.end();
    } catch (err) {
      // Before the first byte the caller answers with an error; after it, only a cut can say so.
      if (!res.headersSent) throw err;
      this.log.warn({ url: e.url, err }, 'object read failed while proxying it');
      res.destroy();
    }
  }
}
