/**
 * `geo-dino serve` under hostile and careless requests (issue 14): polygon work bounded and taken
 * off the event loop behind a limit taken before the body is read, vertices counted at every
 * depth, polygons beside the raster answered with no pixels, oversized bodies not drained, the
 * DNS-rebinding guard decided by the bound address, no absolute paths in error messages.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exposureWarning, hostAllowed, hostOf, isLoopback, scrubPaths, startServer, type RunningServer, type StatsResponse } from '../src/index.js';
import { makeFixtureRoot } from '../../../test/support/fixture-runs.js';

const base = mkdtempSync(join(tmpdir(), 'gd-serve-hard-'));
const root = join(base, 'served');
let server: RunningServer;

interface Answer {
  status: number;
  headers: string;
  body: string;
}

/** Send one raw request on a fresh connection to `port` and read the answer until the server closes. */
function send(port: number, head: string, body: string | Buffer = '', host = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, host);
    const chunks: Buffer[] = [];
    sock.on('connect', () => {
      sock.write(head);
      if (body.length) sock.write(body);
    });
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', reject);
    sock.on('close', () => {
      const all = Buffer.concat(chunks).toString('utf8');
      const sep = all.indexOf('\r\n\r\n');
      resolve({ status: Number(all.split(' ')[1]), headers: all.slice(0, sep), body: all.slice(sep + 4) });
    });
  });
}

function post(port: number, path: string, json: unknown, extra = ''): Promise<Answer> {
  const body = JSON.stringify(json);
  return send(port, `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n`, body);
}

const square = (lon0: number, lat0: number, lon1: number, lat1: number): unknown => ({
  type: 'Polygon',
  coordinates: [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]],
});

beforeAll(async () => {
  await makeFixtureRoot(root);
  server = await startServer({ root, port: 0, viewerDir: join(base, 'no-viewer'), maxBodyBytes: 64 * 1024, maxVertices: 500, maxStatsPixels: 200_000 });
}, 180_000);

afterAll(async () => {
  await server?.close();
  rmSync(base, { recursive: true, force: true });
});

describe('polygon work is bounded before it starts', () => {
  it('counts vertices at every nesting depth (a polygon inside five GeometryCollections)', async () => {
    const ring = Array.from({ length: 600 }, (_, i) => [128.658 + 0.001 * Math.cos((i / 599) * 2 * Math.PI), 37.6686 + 0.001 * Math.sin((i / 599) * 2 * Math.PI)]);
    let g: unknown = { type: 'Polygon', coordinates: [ring] };
    for (let i = 0; i < 5; i++) g = { type: 'GeometryCollection', geometries: [g] };
    const r = await post(server.port, '/api/stats?run=forest/2024-05-01', { type: 'Feature', properties: {}, geometry: g });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).error).toMatch(/more than 500 vertices/);
  });

  it('takes the statistics slot before reading the body: a second request is refused 503 while the first is still sending', async () => {
    const s = await startServer({ root, port: 0, viewerDir: join(base, 'no-viewer'), statsConcurrency: 1 });
    try {
      const body = JSON.stringify(square(128.6575, 37.668, 128.6585, 37.669));
      // The first request announces its body and waits for 100 Continue: the server has taken
      // its slot by then; its body is never sent.
      const first: Socket = connect(s.port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => {
        first.on('error', reject);
        first.on('data', (d) => {
          if (d.toString().startsWith('HTTP/1.1 100')) resolve();
        });
        first.write(`POST /api/stats?run=forest/2024-05-01 HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
      });
      const second = await post(s.port, '/api/stats?run=forest/2024-05-01', JSON.parse(body));
      expect(second.status).toBe(503);
      first.write(body);
      first.destroy();
      // Once the first is gone the slot is free again.
      let third: Answer;
      do third = await post(s.port, '/api/stats?run=forest/2024-05-01', JSON.parse(body));
      while (third.status === 503);
      expect(third.status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

describe('polygons beside the raster', () => {
  // The fixture raster lies near 128.66 E, 37.67 N.
  const cases: [string, unknown][] = [
    ['west of the raster', square(128.5, 37.66, 128.55, 37.67)],
    ['east of the raster', square(128.8, 37.66, 128.85, 37.67)],
    ['across the antimeridian', square(179.5, 37.66, 180.5, 37.67)],
    ['at the north pole', { type: 'Polygon', coordinates: [[[-10, 85], [10, 85], [0, 90], [-10, 85]]] }],
    ['down to the south pole', square(-170, -90, 170, -80)],
  ];
  for (const [name, poly] of cases) {
    it(`${name}: 200 with no pixels`, async () => {
      const r = await post(server.port, '/api/stats?run=forest/2024-05-01', poly);
      expect(r.status, r.body).toBe(200);
      const s = JSON.parse(r.body) as StatsResponse;
      expect(s.pixels).toEqual({ inside: 0, valid: 0, nodata: 0 });
      expect(s.height).toBeNull();
    });
  }
});

describe('oversized bodies', () => {
  it('answers 413 and closes the connection instead of reading the rest of the body', async () => {
    const declared = 2 * 1024 ** 3;
    const sock = connect(server.port, '127.0.0.1');
    let sent = 0;
    let answer = '';
    const chunk = Buffer.alloc(1024 * 1024, 32);
    const limit = 512 * 1024 * 1024;
    const result = await new Promise<{ closed: boolean; sent: number }>((resolve) => {
      sock.on('data', (d) => (answer += d.toString()));
      sock.on('error', () => undefined);
      sock.on('close', () => resolve({ closed: true, sent }));
      sock.on('connect', () => {
        sock.write(`POST /api/stats?run=forest/2024-05-01 HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`);
        const pump = (): void => {
          // Write while the server reads; stop after `limit` bytes (a server draining the body reads all of them).
          while (sent < limit && !sock.destroyed) {
            sent += chunk.length;
            if (!sock.write(chunk)) return void sock.once('drain', pump);
          }
          if (sent >= limit) resolve({ closed: false, sent });
        };
        pump();
      });
    });
    sock.destroy();
    expect(answer).toMatch(/^HTTP\/1.1 413/);
    expect(result.closed).toBe(true);
    expect(result.sent).toBeLessThan(limit);
  });
});

describe('DNS rebinding guard and error messages', () => {
  it('decides from the bound address and the Host header, not from the --host spelling', async () => {
    for (const host of ['127.1', '[::1]']) {
      const s = await startServer({ root, port: 0, viewerDir: join(base, 'no-viewer'), host });
      try {
        expect(s.loopback).toBe(true);
        const target = s.host;
        const foreign = await send(s.port, `GET /api/runs HTTP/1.1\r\nHost: attacker.example:${s.port}\r\nConnection: close\r\n\r\n`, '', target);
        expect(foreign.status, host).toBe(421);
        const local = await send(s.port, `GET /api/runs HTTP/1.1\r\nHost: localhost:${s.port}\r\nConnection: close\r\n\r\n`, '', target);
        expect(local.status, host).toBe(200);
      } finally {
        await s.close();
      }
    }
  });

  it('answers names only when allowed (--allow-host), IP addresses and localhost always', async () => {
    const s = await startServer({ root, port: 0, viewerDir: join(base, 'no-viewer'), allowHosts: ['geo.example.lan'] });
    try {
      const get = (h: string): Promise<Answer> => send(s.port, `GET /api/config HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`);
      expect((await get(`geo.example.lan:${s.port}`)).status).toBe(200);
      expect((await get(`127.0.0.1:${s.port}`)).status).toBe(200);
      expect((await get('[::1]')).status).toBe(200);
      expect((await get('rebind.attacker.example')).status).toBe(421);
      expect((await get('127.1')).status).toBe(421);
      expect((await get('')).status).toBe(421);
    } finally {
      await s.close();
    }
    expect(isLoopback('0.0.0.0')).toBe(false);
    expect(isLoopback('::')).toBe(false);
    expect(isLoopback('::ffff:127.0.0.1')).toBe(true);
    expect(hostAllowed(hostOf('0x7f000001'), new Set())).toBe(false);
    // What a server bound to 0.0.0.0 says: who can read, and how the Host check keeps rebinding out.
    expect(exposureWarning('0.0.0.0', ['geo.example.lan'])).toMatch(/anyone who can reach 0\.0\.0\.0 can read every run.*IP address, localhost or geo\.example\.lan.*--allow-host.*DNS rebinding/);
  });

  it('names files relative to the served directory in error messages', async () => {
    const broken = join(root, 'broken', '2024-01-01');
    cpSync(join(root, 'forest', '2024-05-01'), broken, { recursive: true });
    writeFileSync(join(broken, 'chm.tif'), Buffer.concat([Buffer.from('II*\0'), Buffer.alloc(64, 0xff)]));
    // (the run list is cached for 2 s)
    let r: Answer;
    const started = Date.now();
    do r = await send(server.port, `GET /api/point?run=broken/2024-01-01&lon=128.658&lat=37.6686 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    while (r.status === 404 && Date.now() - started < 10_000);
    expect(r.status).toBe(400);
    expect(r.body).toMatch(/chm\.tif/);
    expect(r.body).not.toContain(base);
    expect(scrubPaths(`${root}/a/chm.tif: bad; also /home/someone/x.tif failed`, [root])).toBe('a/chm.tif: bad; also x.tif failed');
  });
});
