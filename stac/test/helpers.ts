/**
 * Test helpers: a scripted HTTP server on loopback (to replay recorded STAC API answers and
 * misbehave on purpose), and a static file server for a catalog folder.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { expect } from 'vitest';
import { GeoDinoError } from '@geo-dino/core';
import { GDAL_PYTHON, requireGdal } from '../../test/support/tools.js';

export interface RecordedRequest {
  method: string;
  url: string;
  body: string;
  headers: IncomingMessage['headers'];
}

export interface TestServer {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export type Handler = (req: RecordedRequest, res: ServerResponse, base: string) => unknown;

export async function startServer(handler: Handler): Promise<TestServer> {
  const requests: RecordedRequest[] = [];
  let base = '';
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: RecordedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', body: Buffer.concat(chunks).toString(), headers: req.headers };
      requests.push(r);
      Promise.resolve(handler(r, res, base)).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return {
    url: base,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = typeof value === 'string' ? value : JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Serve a folder read-only (GET), with Range support, as a static catalog host would. */
export function serveDirectory(root: string): Handler {
  return async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = normalize(join(root, path));
    if (!file.startsWith(normalize(root))) {
      res.writeHead(403).end();
      return;
    }
    try {
      const st = await stat(file);
      if (!st.isFile()) throw new Error('not a file');
      const bytes = await readFile(file);
      const range = /bytes=(\d+)-(\d+)/.exec(String(req.headers['range'] ?? ''));
      if (range) {
        const s = Number(range[1]);
        const e = Math.min(Number(range[2]), bytes.length - 1);
        res.writeHead(206, { 'Content-Range': `bytes ${s}-${e}/${bytes.length}`, 'Content-Length': e - s + 1 });
        res.end(bytes.subarray(s, e + 1));
        return;
      }
      res.writeHead(200, { 'Content-Length': bytes.length });
      res.end(bytes);
    } catch {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"code":"NotFound","description":"Not Found"}');
    }
  };
}

export function readJson<T = Record<string, unknown>>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** Await `p` and check it fails with a GeoDinoError of `code` whose message matches. */
export async function expectError(p: Promise<unknown>, code: string, message: RegExp): Promise<GeoDinoError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(GeoDinoError);
  expect((err as GeoDinoError).code).toBe(code);
  expect((err as GeoDinoError).message).toMatch(message);
  return err as GeoDinoError;
}

export type Geom = { type: string; coordinates: unknown };

/**
 * OGR oracle (independent of geo-dino's polygon code): km² of `aoi`, and of `aoi` ∩
 * union(`footprints`), measured by GDAL in the WGS84 equal-area projection EPSG:6933.
 */
export function ogrCoverage(aoi: Geom, footprints: readonly Geom[]): { aoiKm2: number; coveredKm2: number } {
  requireGdal();
  const script = `
import json, sys
from osgeo import ogr, osr
d = json.load(sys.stdin)
src = osr.SpatialReference(); src.ImportFromEPSG(4326); src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
dst = osr.SpatialReference(); dst.ImportFromEPSG(6933)
ct = osr.CoordinateTransformation(src, dst)
def g(x):
    geom = ogr.CreateGeometryFromJson(json.dumps(x)); geom.Transform(ct); return geom
aoi = g(d['aoi'])
u = None
for f in d['footprints']:
    fg = g(f)
    u = fg if u is None else u.Union(fg)
cov = aoi.Intersection(u).GetArea() if u is not None else 0.0
print(json.dumps({'aoiKm2': aoi.GetArea() / 1e6, 'coveredKm2': cov / 1e6}))
`;
  const out = execFileSync(GDAL_PYTHON, ['-c', script], { input: JSON.stringify({ aoi, footprints }) });
  return JSON.parse(out.toString()) as { aoiKm2: number; coveredKm2: number };
}
