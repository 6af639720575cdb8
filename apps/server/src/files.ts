/**
 * Files from disk: URL paths mapped to files that are provably inside a root, and served with
 * HTTP Range (RFC 9110 §14), ETag / If-None-Match / If-Range, and HEAD.
 *
 * Mapping rules (anything else is "not found", with no hint of why):
 * - the raw path is split on "/" before any decoding; each segment is percent-decoded once and must
 *   match `^[A-Za-z0-9_][A-Za-z0-9._-]*$` — so no "..", no hidden files, no encoded "/", "\" or
 *   NUL, no drive letters;
 * - at most 8 segments; the extension must be allowed;
 * - the real path (symlinks resolved) must be inside the real root, and a regular file.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, sep } from 'node:path';

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const MAX_SEGMENTS = 8;

export const CONTENT_TYPES: Record<string, string> = {
  // The PMTiles specification's media type.
  '.pmtiles': 'application/vnd.pmtiles',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.json': 'application/json; charset=utf-8',
  '.geojson': 'application/geo+json; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Decode raw path segments (the part of the URL after a route prefix); null if any is unsafe. */
export function safeSegments(rawPath: string): string[] | null {
  if (rawPath.length === 0 || rawPath.length > 1024) return null;
  const parts = rawPath.split('/');
  if (parts.length > MAX_SEGMENTS) return null;
  const out: string[] = [];
  for (const raw of parts) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (!SEGMENT.test(seg) || seg.length > 255) return null;
    out.push(seg);
  }
  return out;
}

export interface ResolvedFile {
  path: string;
  stat: Stats;
}

/** The real path (and stat) of `segments` under `rootReal` if it is a regular file inside it, else null. */
export async function resolveInside(rootReal: string, segments: readonly string[], allowed: ReadonlySet<string>): Promise<ResolvedFile | null> {
  const last = segments[segments.length - 1];
  if (!last || !allowed.has(extname(last).toLowerCase())) return null;
  let real: string;
  try {
    real = await realpath(join(rootReal, ...segments));
  } catch {
    return null;
  }
  if (!real.startsWith(rootReal.endsWith(sep) ? rootReal : rootReal + sep)) return null;
  try {
    const st = await stat(real);
    return st.isFile() ? { path: real, stat: st } : null;
  } catch {
    return null;
  }
}

export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parse a Range header for a file of `size` bytes: a single range, or null to send the whole file
 * (no header, a unit other than bytes, several ranges), or 'unsatisfiable'.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | null | 'unsatisfiable' {
  if (!header) return null;
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (!m) return null;
  const specs = m[1]!.split(',');
  if (specs.length !== 1) return null; // several ranges: RFC 9110 lets us answer with the whole file
  const r = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(specs[0]!);
  if (!r || (r[1] === '' && r[2] === '')) return null;
  if (r[1] === '') {
    // suffix: the last N bytes
    const n = Number(r[2]);
    if (!Number.isSafeInteger(n)) return null;
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(r[1]);
  const end = r[2] === '' ? size - 1 : Math.min(Number(r[2]), size - 1);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return null;
  if (r[2] !== '' && Number(r[2]) < start) return null; // invalid: ignore the header
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

export interface ServeFileOptions {
  cacheControl: string;
  contentType?: string;
}

/** Serve a file (already resolved and checked) with ranges and validators. */
export async function serveFile(req: IncomingMessage, res: ServerResponse, file: ResolvedFile, opts: ServeFileOptions): Promise<void> {
  const { path, stat: st } = file;
  const size = st.size;
  const etag = `"${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  const head = req.method === 'HEAD';
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('ETag', etag);
  res.setHeader('Last-Modified', st.mtime.toUTCString());
  res.setHeader('Cache-Control', opts.cacheControl);
  res.setHeader('Content-Type', opts.contentType ?? CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream');

  const inm = req.headers['if-none-match'];
  if (inm && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
    res.statusCode = 304;
    res.end();
    return;
  }
  const ifRange = req.headers['if-range'] as string | undefined;
  const rangeHeader = ifRange && ifRange.trim() !== etag ? undefined : req.headers.range;
  const range = parseRange(rangeHeader, size);
  if (range === 'unsatisfiable') {
    res.statusCode = 416;
    res.setHeader('Content-Range', `bytes */${size}`);
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    const body = JSON.stringify({ error: 'range not satisfiable', status: 416 });
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(head ? undefined : body);
    return;
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : size - 1;
  res.statusCode = range ? 206 : 200;
  if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
  res.setHeader('Content-Length', Math.max(0, end - start + 1));
  if (head || size === 0) {
    res.end();
    return;
  }
  await new Promise<void>((resolve) => {
    const stream = createReadStream(path, { start, end });
    stream.on('error', () => {
      res.destroy();
      resolve();
    });
    res.on('close', () => {
      stream.destroy();
      resolve();
    });
    stream.pipe(res);
  });
}
