/**
 * Remote COGs over HTTP Range requests from a loopback server, with injected faults: 500s,
 * stalled bodies, truncated bodies, a server that ignores Range, 404. Retries succeed or a clear
 * error naming the URL follows; nothing hangs. Pixels read remotely equal GDAL's local reads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { GeoDinoError } from '@geo-dino/core';
import { openRaster, type HttpOptions } from '@geo-dino/tiling';
import { sharedData } from '../../test/support/shared-data.js';
import { requireGdal } from '../../test/support/tools.js';
import { diff, gdalRead } from './support/gdal.js';

const FILES: Record<string, Uint8Array> = {
  'cogeo.tif': readFileSync(sharedData('rasterio', 'cogeo.tif')),
  'RGB.byte.tif': readFileSync(sharedData('rasterio', 'RGB.byte.tif')),
};

let server: Server;
let base: string;
const log: { path: string; range: string | undefined }[] = [];
/** Per fault mode, how many requests have been seen (faults apply to the first ones). */
const seen = new Map<string, number>();

beforeAll(async () => {
  requireGdal();
  server = createServer((req, res) => {
    const [, mode, name] = (req.url ?? '').split('/');
    const file = FILES[name ?? ''];
    log.push({ path: req.url ?? '', range: req.headers.range });
    const n = (seen.get(mode!) ?? 0) + 1;
    seen.set(mode!, n);
    if (!file) {
      res.writeHead(404).end('not found');
      return;
    }
    if (mode === 'always500' || (mode === 'flaky500' && n % 3 !== 0)) {
      res.writeHead(500).end('boom');
      return;
    }
    const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
    if (mode === 'norange' || !m) {
      res.writeHead(200, { 'Content-Length': file.length });
      res.end(file);
      return;
    }
    const s = Number(m[1]);
    const e = Math.min(file.length - 1, Number(m[2]));
    const body = file.subarray(s, e + 1);
    const headers = { 'Content-Length': body.length, 'Content-Range': `bytes ${s}-${e}/${file.length}`, 'Accept-Ranges': 'bytes' };
    if (mode === 'stall' && n % 2 === 1) {
      // Headers, half the body, then silence (the connection stays open).
      res.writeHead(206, headers);
      res.write(body.subarray(0, body.length >> 1));
      return;
    }
    if (mode === 'truncate' && n % 2 === 1) {
      res.writeHead(206, headers);
      res.write(body.subarray(0, body.length >> 1));
      res.destroy();
      return;
    }
    res.writeHead(206, headers);
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const FAST: HttpOptions = { timeoutMs: 400, retries: 4, backoffMs: 5 };

async function readAll(url: string, http: HttpOptions = FAST): Promise<{ bands: ArrayLike<number>[]; valid: Uint8Array; width: number; height: number }> {
  const src = await openRaster(url, { http });
  try {
    const { width, height } = src.info;
    const d = await src.read({ x: 0, y: 0, width, height });
    return { bands: d.bands, valid: d.valid, width, height };
  } finally {
    await src.close();
  }
}

function expectSameAsGdal(file: string, got: Awaited<ReturnType<typeof readAll>>): void {
  const ref = gdalRead(sharedData('rasterio', file), [0, 0, got.width, got.height]);
  got.bands.forEach((b, i) => expect(diff(b, ref.bands[i]!).count, `band ${i + 1}`).toBe(0));
  expect(diff(got.valid, ref.valid).count).toBe(0);
}

describe('HTTP range reads', () => {
  it('a remote COG reads exactly as GDAL reads the file, in few coalesced requests', async () => {
    log.length = 0;
    const got = await readAll(`${base}/ok/cogeo.tif`);
    expectSameAsGdal('cogeo.tif', got);
    const reqs = log.filter((l) => l.path === '/ok/cogeo.tif');
    expect(reqs.every((r) => r.range !== undefined)).toBe(true);
    // Header chunk, then the 4 tiles (+ mask tiles) coalesced: far fewer requests than blocks.
    expect(reqs.length).toBeLessThanOrEqual(4);
  });

  it('overviews are read remotely too', async () => {
    const src = await openRaster(`${base}/ok/cogeo.tif`, { http: FAST });
    try {
      const d = await src.read({ x: 0, y: 0, width: 128, height: 128 }, { level: 3 });
      const ref = gdalRead(sharedData('rasterio', 'cogeo.tif'), [0, 0, 128, 128], { level: 3 });
      d.bands.forEach((b, i) => expect(diff(b, ref.bands[i]!).count).toBe(0));
    } finally {
      await src.close();
    }
  });

  it('500s are retried with backoff until the read succeeds', async () => {
    seen.delete('flaky500');
    expectSameAsGdal('RGB.byte.tif', await readAll(`${base}/flaky500/RGB.byte.tif`));
    expect(seen.get('flaky500')!).toBeGreaterThan(3);
  });

  it('a stalled body hits the deadline and is retried; nothing hangs', { timeout: 30_000 }, async () => {
    seen.delete('stall');
    const t0 = Date.now();
    expectSameAsGdal('cogeo.tif', await readAll(`${base}/stall/cogeo.tif`));
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('a truncated body is detected and retried', async () => {
    seen.delete('truncate');
    expectSameAsGdal('cogeo.tif', await readAll(`${base}/truncate/cogeo.tif`));
    expect(seen.get('truncate')!).toBeGreaterThan(2);
  });

  it('a server that always fails: E_NETWORK naming the URL after the last retry', { timeout: 30_000 }, async () => {
    const url = `${base}/always500/cogeo.tif`;
    const err = await openRaster(url, { http: { ...FAST, retries: 2 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GeoDinoError);
    expect((err as GeoDinoError).code).toBe('E_NETWORK');
    expect((err as GeoDinoError).message).toContain(url);
    expect((err as GeoDinoError).message).toMatch(/failed after 3 attempts: HTTP 500/);
  });

  it('a stalled server with no retries left: E_NETWORK, not a hang', { timeout: 30_000 }, async () => {
    seen.set('stall', 0);
    const err = await openRaster(`${base}/stall/cogeo.tif`, { http: { timeoutMs: 300, retries: 0 } }).catch((e: unknown) => e);
    expect((err as GeoDinoError).code).toBe('E_NETWORK');
    expect((err as GeoDinoError).message).toMatch(/no complete answer within 300 ms/);
  });

  it('404: E_HTTP_STATUS naming the URL', async () => {
    await expect(openRaster(`${base}/ok/missing.tif`, { http: FAST })).rejects.toMatchObject({ code: 'E_HTTP_STATUS', message: expect.stringContaining('/ok/missing.tif: HTTP 404') });
  });

  it('a server ignoring Range: small files are fetched whole, large ones refused', async () => {
    expectSameAsGdal('cogeo.tif', await readAll(`${base}/norange/cogeo.tif`));
    await expect(openRaster(`${base}/norange/RGB.byte.tif`, { http: { ...FAST, maxWholeFileBytes: 1_000_000 } })).rejects.toMatchObject({
      code: 'E_UNSUPPORTED_RASTER',
      message: expect.stringMatching(/does not support HTTP Range requests/),
    });
  });
});
