/**
 * `geo-dino serve` over a fixture directory of two GDAL-made runs: HTTP Range against the file's
 * bytes, the PMTiles JS reader over HTTP against the same reader on the file, traversal attempts
 * sent raw (as `curl --path-as-is` would), body and polygon caps, headers, and the JSON API
 * against GDAL/numpy (pixel values, polygon statistics).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FetchSource, PMTiles } from 'pmtiles';
import { startServer, type RunningServer, type PointResponse, type RunsResponse, type StatsResponse } from '../src/index.js';
import { makeFixtureRoot, type FixtureRoot } from '../../../test/support/fixture-runs.js';
import { GDAL_PYTHON, requireGdal } from '../../../test/support/tools.js';
import { execFileSync } from 'node:child_process';
import { LocalFileSource } from '../../../packages/pmtiles/test/support.js';

const ORACLE = fileURLToPath(new URL('../../../test/support/gdal-oracle.py', import.meta.url));
const SECRET = 'TOP-SECRET-0f9c2b7e';

const base = mkdtempSync(join(tmpdir(), 'gd-serve-'));
const root = join(base, 'served');
let fx: FixtureRoot;
let server: RunningServer;
let viewerDir: string;

function oracle<T>(...args: string[]): T {
  requireGdal();
  return JSON.parse(execFileSync(GDAL_PYTHON, [ORACLE, ...args], { encoding: 'utf8', timeout: 120_000 })) as T;
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Send a request exactly as written (no path normalisation, no encoding). */
function raw(path: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = connect(server.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const headers = { Host: `127.0.0.1:${server.port}`, Connection: 'close', ...(opts.headers ?? {}) };
    const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
    if (body && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length' || h.toLowerCase() === 'transfer-encoding')) {
      (headers as Record<string, string>)['Content-Length'] = String(body.length);
    }
    sock.on('connect', () => {
      sock.write(`${opts.method ?? 'GET'} ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
      if (body) sock.write(body);
    });
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', reject);
    sock.on('close', () => {
      const all = Buffer.concat(chunks);
      const sep = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, sep).toString('latin1').split('\r\n');
      const status = Number(head[0]!.split(' ')[1]);
      const h: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      let b = all.subarray(sep + 4);
      if (h['transfer-encoding'] === 'chunked') {
        const parts: Buffer[] = [];
        let p = 0;
        for (;;) {
          const e = b.indexOf('\r\n', p);
          const n = parseInt(b.subarray(p, e).toString(), 16);
          if (!n) break;
          parts.push(b.subarray(e + 2, e + 2 + n));
          p = e + 2 + n + 2;
        }
        b = Buffer.concat(parts);
      }
      resolve({ status, headers: h, body: b });
    });
  });
}

const polygonAround = (lon: number, lat: number, d: number, holeD = 0): unknown => ({
  type: 'Feature',
  properties: {},
  geometry: {
    type: 'Polygon',
    coordinates: [
      [[lon - d, lat - d * 0.8], [lon + d, lat - d * 0.7], [lon + d * 0.9, lat + d], [lon - d * 1.1, lat + d * 0.9], [lon - d, lat - d * 0.8]],
      ...(holeD ? [[[lon - holeD, lat - holeD], [lon - holeD, lat + holeD], [lon + holeD, lat + holeD], [lon + holeD, lat - holeD], [lon - holeD, lat - holeD]]] : []),
    ],
  },
});

beforeAll(async () => {
  fx = await makeFixtureRoot(root);
  // Things that must never be served: a file beside the root, a hidden file, links out.
  writeFileSync(join(base, 'secret.json'), JSON.stringify({ secret: SECRET }));
  writeFileSync(join(root, '.hidden.json'), JSON.stringify({ secret: SECRET }));
  symlinkSync(join(base, 'secret.json'), join(root, 'forest', 'link.json'));
  mkdirSync(join(base, 'outside-run'));
  writeFileSync(join(base, 'outside-run', 'x.json'), JSON.stringify({ secret: SECRET }));
  symlinkSync(join(base, 'outside-run'), join(root, 'linked-dir'));
  viewerDir = join(base, 'viewer');
  mkdirSync(join(viewerDir, 'assets'), { recursive: true });
  writeFileSync(join(viewerDir, 'index.html'), '<!doctype html><title>viewer</title><script type="module" src="/assets/app.js"></script>');
  writeFileSync(join(viewerDir, 'assets', 'app.js'), 'console.log(1)');
  server = await startServer({ root, port: 0, viewerDir, maxBodyBytes: 64 * 1024, maxVertices: 500, maxStatsPixels: 200_000 });
}, 180_000);

afterAll(async () => {
  await server?.close();
  rmSync(base, { recursive: true, force: true });
});

describe('HTTP Range', () => {
  const file = (): string => join(root, 'forest', '2024-05-01', 'chm.pmtiles');
  const url = '/data/forest/2024-05-01/chm.pmtiles';

  it('serves single ranges byte-exactly with Content-Range, and whole files otherwise', async () => {
    const bytes = readFileSync(file());
    const size = bytes.length;
    const cases: [string, number, number][] = [
      ['bytes=0-126', 0, 126],
      ['bytes=1000-', 1000, size - 1],
      ['bytes=-500', size - 500, size - 1],
      ['bytes=10-99999999999', 10, size - 1],
      [`bytes=${size - 1}-${size - 1}`, size - 1, size - 1],
    ];
    for (const [range, start, end] of cases) {
      const r = await raw(url, { headers: { Range: range } });
      expect(r.status, range).toBe(206);
      expect(r.headers['content-range']).toBe(`bytes ${start}-${end}/${size}`);
      expect(Number(r.headers['content-length'])).toBe(end - start + 1);
      expect(r.body.equals(bytes.subarray(start, end + 1)), range).toBe(true);
    }
    const whole = await raw(url);
    expect(whole.status).toBe(200);
    expect(whole.headers['accept-ranges']).toBe('bytes');
    expect(whole.body.equals(bytes)).toBe(true);
    // several ranges, or an invalid one: the whole file (RFC 9110 lets a server ignore Range)
    for (const range of ['bytes=0-1,5-6', 'bytes=9-3', 'items=0-5']) {
      const r = await raw(url, { headers: { Range: range } });
      expect(r.status, range).toBe(200);
      expect(r.body.length).toBe(size);
    }
    const past = await raw(url, { headers: { Range: `bytes=${size}-` } });
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${size}`);
  });

  it('handles HEAD, ETag revalidation and If-Range', async () => {
    const size = statSync(file()).size;
    const head = await raw(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(size);
    expect(head.body.length).toBe(0);
    const etag = head.headers['etag']!;
    expect(etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect((await raw(url, { headers: { 'If-None-Match': etag } })).status).toBe(304);
    expect((await raw(url, { headers: { Range: 'bytes=0-9', 'If-Range': etag } })).status).toBe(206);
    const stale = await raw(url, { headers: { Range: 'bytes=0-9', 'If-Range': '"stale"' } });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(size);
  });

  it('lets the pmtiles reader read every tile over HTTP, identical to reading the file', async () => {
    const local = new PMTiles(new LocalFileSource(file()));
    const remote = new PMTiles(new FetchSource(`${server.url}data/forest/2024-05-01/chm.pmtiles`));
    expect(await remote.getMetadata()).toEqual(await local.getMetadata());
    const h = await local.getHeader();
    let n = 0;
    for (let z = h.minZoom; z <= h.maxZoom; z++) {
      const span = 2 ** z;
      const x0 = Math.floor(((h.minLon + 180) / 360) * span);
      const x1 = Math.floor(((h.maxLon + 180) / 360) * span);
      const yOf = (lat: number): number => Math.floor(((1 - Math.log(Math.tan((lat * Math.PI) / 180) + 1 / Math.cos((lat * Math.PI) / 180)) / Math.PI) / 2) * span);
      for (let x = x0; x <= x1; x++)
        for (let y = yOf(h.maxLat); y <= yOf(h.minLat); y++) {
          const a = await local.getZxy(z, x, y);
          const b = await remote.getZxy(z, x, y);
          expect(b === undefined).toBe(a === undefined);
          if (a && b) {
            expect(Buffer.from(b.data).equals(Buffer.from(a.data))).toBe(true);
            n++;
          }
        }
    }
    expect(n).toBe(h.numAddressedTiles);
  });
});

describe('paths outside the directory', () => {
  const attempts = [
    '/data/../secret.json',
    '/data/../../secret.json',
    '/data/%2e%2e/secret.json',
    '/data/%2E%2E/secret.json',
    '/data/..%2fsecret.json',
    '/data/..%2Fsecret.json',
    '/data/%2e%2e%2fsecret.json',
    '/data/%252e%252e/secret.json',
    '/data/..\\secret.json',
    '/data/..%5csecret.json',
    '/data/forest/../../secret.json',
    '/data/forest/%2e%2e/%2e%2e/secret.json',
    '/data//secret.json',
    '/data/%2fetc%2fpasswd',
    '/data/C:%5cWindows%5cwin.ini',
    '/data/forest/link.json',
    '/data/linked-dir/x.json',
    '/data/.hidden.json',
    '/data/%2ehidden.json',
    '/data/forest/2024-05-01/chm.pmtiles%00.json',
    '/data/forest/2024-05-01/chm.pmtiles/..',
    '/data/forest/2024-05-01/provenance.geojson/../../../../secret.json',
    '/data/' + 'a/'.repeat(20) + 'x.json',
    '/data/forest',
    '/../secret.json',
    '/%2e%2e/secret.json',
    '/assets/../../secret.json',
    '/assets/%2e%2e/index.html',
    '//etc/passwd',
    '/etc/passwd',
  ];

  it('answers 404 to every traversal attempt, encoded or not, and never leaks the file', async () => {
    for (const p of attempts) {
      const r = await raw(p);
      expect(r.status, p).toBe(404);
      expect(r.body.toString(), p).not.toContain(SECRET);
      expect(r.headers['content-type'], p).toMatch(/application\/json/);
    }
    // The control: legitimate files are served.
    expect((await raw('/data/forest/2024-05-01/run.json')).status).toBe(200);
    expect((await raw('/assets/app.js')).status).toBe(200);
  });

  it('does not list runs or files reached through links that leave the directory', async () => {
    const runs = (await (await fetch(`${server.url}api/runs`)).json()) as RunsResponse;
    expect(runs.runs.map((r) => r.id).sort()).toEqual(['forest/2024-05-01', 'forest/2025-06-11']);
    expect(JSON.stringify(runs)).not.toContain(SECRET);
  });
});

describe('requests that are refused', () => {
  it('caps request bodies (declared or streamed) and polygon sizes, checks the media type', async () => {
    const big = Buffer.alloc(65 * 1024, 32);
    const declared = await raw('/api/stats?run=forest/2024-05-01', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: big });
    expect(declared.status).toBe(413);
    const chunk = big.toString();
    const chunked = await raw('/api/stats?run=forest/2024-05-01', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
      body: `${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
    });
    expect(chunked.status).toBe(413);
    const many = { type: 'Polygon', coordinates: [Array.from({ length: 600 }, (_, i) => [128.658 + 0.001 * Math.cos((i / 599) * 2 * Math.PI), 37.6686 + 0.001 * Math.sin((i / 599) * 2 * Math.PI)])] };
    const vertices = await raw('/api/stats?run=forest/2024-05-01', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(many) });
    expect(vertices.status).toBe(413);
    expect(vertices.body.toString()).toMatch(/more than 500 vertices/);
    const huge = polygonAround(128.658, 37.6686, 0.05);
    const area = await raw('/api/stats?run=forest/2024-05-01', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(huge) });
    expect(area.status).toBe(413);
    expect(area.body.toString()).toMatch(/limit is 200000/);
    const form = await raw('/api/stats?run=forest/2024-05-01', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{}' });
    expect(form.status).toBe(415);
    const notJson = await raw('/api/stats?run=forest/2024-05-01', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"type":' });
    expect(notJson.status).toBe(400);
    const bowtie = { type: 'Polygon', coordinates: [[[128.657, 37.668], [128.659, 37.669], [128.659, 37.668], [128.657, 37.669], [128.657, 37.668]]] };
    const invalid = await raw('/api/stats?run=forest/2024-05-01', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(bowtie) });
    expect(invalid.status).toBe(400);
    expect(JSON.parse(invalid.body.toString()).error).toMatch(/crosses itself/);
    // The server still answers after all that.
    expect((await raw('/api/config')).status).toBe(200);
  });

  it('refuses other methods, unknown runs and foreign Host headers', async () => {
    expect((await raw('/data/forest/2024-05-01/run.json', { method: 'PUT', body: 'x' })).status).toBe(405);
    expect((await raw('/data/forest/2024-05-01/run.json', { method: 'DELETE' })).status).toBe(405);
    expect((await raw('/api/stats')).status).toBe(405);
    expect((await raw('/api/point?run=nope&lon=1&lat=1')).status).toBe(404);
    expect((await raw('/api/point?run=../forest&lon=1&lat=1')).status).toBe(404);
    expect((await raw('/api/point?run=forest/2024-05-01&lon=abc&lat=1')).status).toBe(400);
    expect((await raw('/api/runs', { headers: { Host: 'attacker.example' } })).status).toBe(421);
    expect((await raw('/api/runs', { headers: { Host: `localhost:${server.port}` } })).status).toBe(200);
  });

  it('sends a CSP and nosniff everywhere and never reflects the request into HTML', async () => {
    const r = await raw('/?q=%3Cscript%3Ealert(1)%3C/script%3E&<img/src=x/onerror=alert(1)>');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(readFileSync(join(viewerDir, 'index.html'), 'utf8'));
    expect(r.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect(r.headers['content-security-policy']).toMatch(/script-src 'self'(;|$)/);
    expect(r.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    const nf = await raw('/nothing-<script>alert(1)</script>');
    expect(nf.status).toBe(404);
    expect(nf.headers['content-type']).toMatch(/application\/json/);
    expect(nf.body.toString()).not.toContain('<script>');
  });

  it('binds to loopback by default', async () => {
    const s = await startServer({ root, port: 0, viewerDir });
    try {
      expect(s.host).toBe('127.0.0.1');
    } finally {
      await s.close();
    }
  });
});

describe('JSON API against GDAL', () => {
  it('lists the runs of one area by date with their layers and DEMO flag', async () => {
    const { runs } = (await (await fetch(`${server.url}api/runs`)).json()) as RunsResponse;
    expect(runs.map((r) => r.id)).toEqual(['forest/2024-05-01', 'forest/2025-06-11']);
    expect(new Set(runs.map((r) => r.area)).size).toBe(1);
    for (const r of runs) {
      expect(r.demo).toBe(true);
      expect(r.layers.map((l) => l.layer)).toEqual(['height', 'uncertainty', 'imagery', 'landcover']);
      const h = r.layers[0]!;
      expect(h.geoDino).toMatchObject({ layer: 'height', units: 'm', demo: true, encoding: { type: 'terrarium', mask: 'alpha' } });
      expect((await fetch(`${server.url}${h.url.slice(1)}`, { headers: { Range: 'bytes=0-6' } })).status).toBe(206);
    }
    expect(runs[1]!.datetime).toBe('2025-06-11T02:40:00Z');
  });

  it('reads the pixel under a point from the COG, with its scene', async () => {
    const chm = join(root, 'forest', '2024-05-01', 'chm.tif');
    // pixel centres: west half, east half, the nodata hole (rows 200-235, cols 250-299), the 7.25 m block
    const pts = oracle<{ col: number; row: number; lon: number; lat: number; values: [number, number] | null }[]>(
      'points', chm, '37,41', '512,300', '260,210', '490,70', '599,439', '0,0',
    );
    for (const p of pts) {
      const r = (await (await fetch(`${server.url}api/point?run=forest/2024-05-01&lon=${p.lon}&lat=${p.lat}`)).json()) as PointResponse;
      expect(r.inside).toBe(true);
      expect(r.pixel).toEqual({ col: p.col, row: p.row });
      if (p.values === null) expect(r.height_m).toBeNull();
      else {
        expect(r.height_m).toBe(p.values[0]);
        expect(r.uncertainty_m).toBe(p.values[1]);
      }
      expect(r.scene?.scene_id).toBe(p.col < 300 ? 'FIXTURE_a_WEST' : 'FIXTURE_a_EAST<script>alert(1)</script>');
      expect(r.scene?.datetime?.slice(0, 10)).toBe('2024-05-01');
    }
    expect(pts.find((p) => p.col === 490)!.values![0]).toBe(7.25);
    const out = (await (await fetch(`${server.url}api/point?run=forest/2024-05-01&lon=128.5&lat=37.5`)).json()) as PointResponse;
    expect(out).toMatchObject({ inside: false, height_m: null, scene: null });
  });

  it('computes polygon statistics as GDAL rasterize + numpy do', async () => {
    const chm = join(root, 'forest', '2025-06-11', 'chm.tif');
    const [c] = oracle<{ lon: number; lat: number }[]>('points', chm, '300,220');
    for (const [name, poly] of [
      ['plain', polygonAround(c!.lon, c!.lat, 0.0009)],
      ['with a hole', polygonAround(c!.lon, c!.lat, 0.0011, 0.0003)],
    ] as const) {
      const file = join(base, `poly-${name.replace(/ /g, '-')}.geojson`);
      writeFileSync(file, JSON.stringify(poly));
      const want = oracle<{ inside: number; valid: number; mean: number; median: number; min: number; max: number; std: number; gt2m: number; gt5m: number; uncertainty: number }>(
        'stats', chm, file,
      );
      const res = await fetch(`${server.url}api/stats?run=forest/2025-06-11`, { method: 'POST', headers: { 'Content-Type': 'application/geo+json' }, body: JSON.stringify(poly) });
      expect(res.status, name).toBe(200);
      const got = (await res.json()) as StatsResponse;
      expect(want.valid, name).toBeGreaterThan(10_000);
      // Pixel-centre tests on the polygon's edge may differ between two rasterisers by a few pixels.
      expect(Math.abs(got.pixels.inside - want.inside), name).toBeLessThanOrEqual(2);
      expect(Math.abs(got.pixels.valid - want.valid), name).toBeLessThanOrEqual(2);
      expect(Math.abs(got.height!.mean - want.mean), name).toBeLessThan(1e-3);
      // the median is read from centimetre bins
      expect(Math.abs(got.height!.median - want.median), name).toBeLessThanOrEqual(0.0101);
      expect(Math.abs(got.height!.std - want.std), name).toBeLessThan(1e-3);
      expect(got.height!.min).toBeCloseTo(want.min, 4);
      expect(got.height!.max).toBeCloseTo(want.max, 4);
      expect(Math.abs(got.canopyCover!.gt2m - want.gt2m), name).toBeLessThan(1e-4);
      expect(Math.abs(got.canopyCover!.gt5m - want.gt5m), name).toBeLessThan(1e-4);
      expect(Math.abs(got.uncertainty!.mean - want.uncertainty), name).toBeLessThan(1e-3);
      expect(got.histogram.counts.reduce((a, b) => a + b, 0)).toBe(got.pixels.valid);
      expect(got.validAreaM2).toBeCloseTo(got.pixels.valid * 0.36, 6);
    }
  });
});
