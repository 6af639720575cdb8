import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GeoDinoError, fetchBytes, fetchJson, backoffDelay, retryAfterMs } from '../src/index.js';

const BODY = Buffer.from(Array.from({ length: 4096 }, (_, i) => i & 0xff));

/** A loopback server whose behaviour per path is scripted by the test, counting hits. */
let server: Server;
let base = '';
const hits = new Map<string, number>();
type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;
const routes = new Map<string, Handler>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const n = (hits.get(path) ?? 0) + 1;
    hits.set(path, n);
    const h = routes.get(path);
    if (!h) {
      res.writeHead(404).end('nope');
      return;
    }
    h(req, res, n);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

function serveRange(req: IncomingMessage, res: ServerResponse): void {
  const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
  if (!m) {
    res.writeHead(200, { 'Content-Length': BODY.length }).end(BODY);
    return;
  }
  const s = Number(m[1]);
  const e = Math.min(BODY.length - 1, Number(m[2]));
  res.writeHead(206, { 'Content-Length': e - s + 1, 'Content-Range': `bytes ${s}-${e}/${BODY.length}` }).end(BODY.subarray(s, e + 1));
}

const fast = { backoffMs: 5, maxBackoffMs: 20, random: () => 0.5 };

describe('fetchBytes', () => {
  it('reads a byte range', async () => {
    routes.set('/range', serveRange);
    const r = await fetchBytes(`${base}/range`, { range: [100, 199] });
    expect(r.status).toBe(206);
    expect(Buffer.from(r.bytes).equals(BODY.subarray(100, 200))).toBe(true);
  });

  it('slices when the server ignores Range', async () => {
    routes.set('/norange', (_req, res) => res.writeHead(200, { 'Content-Length': BODY.length }).end(BODY));
    const r = await fetchBytes(`${base}/norange`, { range: [10, 19] });
    expect(Array.from(r.bytes)).toEqual(Array.from(BODY.subarray(10, 20)));
  });

  it('retries 500s and succeeds', async () => {
    routes.set('/flaky', (req, res, n) => (n < 3 ? res.writeHead(500).end('boom') : serveRange(req, res)));
    const retries: number[] = [];
    const r = await fetchBytes(`${base}/flaky`, { ...fast, range: [0, 9], onRetry: (i) => retries.push(i.attempt) });
    expect(r.bytes.length).toBe(10);
    expect(retries).toEqual([1, 2]);
    expect(hits.get('/flaky')).toBe(3);
  });

  it('waits what Retry-After asks on 429 and 503 (capped), never less than the backoff', async () => {
    routes.set('/busy', (req, res, n) => (n === 1 ? res.writeHead(429, { 'Retry-After': '1' }).end() : n === 2 ? res.writeHead(503, { 'Retry-After': '120' }).end() : serveRange(req, res)));
    const waits: { delayMs: number; reason: string }[] = [];
    const r = await fetchBytes(`${base}/busy`, { ...fast, maxRetryAfterMs: 1500, range: [0, 3], onRetry: (i) => waits.push({ delayMs: i.delayMs, reason: i.reason }) });
    expect(r.bytes.length).toBe(4);
    expect(waits.map((w) => w.delayMs)).toEqual([1000, 1500]);
    expect(waits[0]!.reason).toBe('HTTP 429 (Retry-After 1)');
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(retryAfterMs('soon')).toBeNull();
  });

  it('gives up with E_NETWORK naming the URL and the last reason', async () => {
    routes.set('/down', (_req, res) => res.writeHead(503).end());
    const err = await fetchBytes(`${base}/down`, { ...fast, retries: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GeoDinoError);
    expect((err as GeoDinoError).code).toBe('E_NETWORK');
    expect((err as GeoDinoError).message).toContain(`${base}/down`);
    expect((err as GeoDinoError).message).toMatch(/failed after 3 attempts: HTTP 503/);
  });

  it('does not retry a 404 and reports it', async () => {
    const before = hits.get('/missing') ?? 0;
    const err = (await fetchBytes(`${base}/missing`, fast).catch((e: unknown) => e)) as GeoDinoError;
    expect(err.code).toBe('E_HTTP_STATUS');
    expect(err.message).toMatch(/HTTP 404/);
    expect(hits.get('/missing')).toBe(before + 1);
  });

  it('maps 403 to E_ACCESS_DENIED', async () => {
    routes.set('/gated', (_req, res) => res.writeHead(403).end('gated repo'));
    const err = (await fetchBytes(`${base}/gated`, fast).catch((e: unknown) => e)) as GeoDinoError;
    expect(err.code).toBe('E_ACCESS_DENIED');
  });

  it('retries a truncated body', async () => {
    routes.set('/truncated', (req, res, n) => {
      if (n === 1) {
        res.writeHead(200, { 'Content-Length': 1000 });
        res.write(BODY.subarray(0, 300));
        res.socket?.destroy();
        return;
      }
      serveRange(req, res);
    });
    const r = await fetchBytes(`${base}/truncated`, fast);
    expect(r.bytes.length).toBe(BODY.length);
    expect(hits.get('/truncated')).toBe(2);
  });

  it('a stalled body hits the deadline instead of hanging, then retries', async () => {
    routes.set('/stall', (req, res, n) => {
      if (n === 1) {
        res.writeHead(200, { 'Content-Length': BODY.length });
        res.write(BODY.subarray(0, 10)); // and never finish
        return;
      }
      serveRange(req, res);
    });
    const r = await fetchBytes(`${base}/stall`, { ...fast, timeoutMs: 300 });
    expect(r.bytes.length).toBe(BODY.length);
  });

  it('enforces the byte cap', async () => {
    routes.set('/big', serveRange);
    const err = (await fetchBytes(`${base}/big`, { ...fast, maxBytes: 100 }).catch((e: unknown) => e)) as GeoDinoError;
    expect(err.code).toBe('E_LIMIT');
  });

  it('is cancelled by its signal during backoff', async () => {
    routes.set('/always500', (_req, res) => res.writeHead(500).end());
    const ac = new AbortController();
    const p = fetchBytes(`${base}/always500`, { backoffMs: 10_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const err = (await p.catch((e: unknown) => e)) as GeoDinoError;
    expect(err.code).toBe('E_CANCELLED');
  });

  it('connection refused is retried then reported', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const err = (await fetchBytes(`http://127.0.0.1:${port}/x`, { ...fast, retries: 1 }).catch((e: unknown) => e)) as GeoDinoError;
    expect(err.code).toBe('E_NETWORK');
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it('redacts secrets from URLs in errors', async () => {
    const err = (await fetchBytes(`${base}/missing?sig=SECRET&token=ABC`, fast).catch((e: unknown) => e)) as GeoDinoError;
    expect(err.message).not.toContain('SECRET');
    expect(err.message).not.toContain('ABC');
  });
});

describe('fetchJson', () => {
  it('parses JSON and reports invalid JSON with the URL', async () => {
    routes.set('/json', (_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"a":1}'));
    routes.set('/notjson', (_req, res) => res.writeHead(200).end('<html>'));
    expect(await fetchJson(`${base}/json`)).toEqual({ a: 1 });
    const err = (await fetchJson(`${base}/notjson`).catch((e: unknown) => e)) as GeoDinoError;
    expect(err.code).toBe('E_BAD_JSON');
    expect(err.message).toContain('/notjson');
  });
});

describe('backoffDelay', () => {
  it('doubles up to the cap, with jitter in [0.75, 1.25]', () => {
    expect(backoffDelay(1, { backoffMs: 100, random: () => 0.5 })).toBe(100);
    expect(backoffDelay(3, { backoffMs: 100, random: () => 0.5 })).toBe(400);
    expect(backoffDelay(10, { backoffMs: 100, maxBackoffMs: 1000, random: () => 0.5 })).toBe(1000);
    expect(backoffDelay(1, { backoffMs: 100, random: () => 0 })).toBe(75);
    expect(backoffDelay(1, { backoffMs: 100, random: () => 1 })).toBe(125);
  });
});
