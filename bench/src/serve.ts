/**
 * `npm run bench -- serve [--size=2048] [--seconds=10] [--connections=16]`: how fast `geo-dino serve`
 * answers the HTTP Range requests a map client makes, against serving the same tiles as plain
 * static files.
 *
 * The request list is what the `pmtiles` JS reader actually asks for when it reads every tile of the
 * benchmark run's chm.pmtiles (header + root directory, leaves, tile ranges), recorded from a
 * Source wrapper. The reference is a bare Node static-file server over the same tiles written out
 * as z/x/y.png (no range parsing, no path checks, no security headers). Both on loopback, measured
 * with autocannon in the same run.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { PMTiles, type RangeResponse } from 'pmtiles';
import { writeRasterTiles } from '@geo-dino/pmtiles';
import { LocalSource, startServer } from '@geo-dino/server';
import type { BenchModule, BenchReport } from './report.js';
import { makeBenchRun } from './pmtiles.js';

/** `--name=value` (run.ts treats bare words as benchmark names). */
function arg(args: readonly string[], name: string, fallback: number): number {
  const a = args.find((x) => x.startsWith(`${name}=`));
  const v = a ? Number(a.slice(name.length + 1)) : fallback;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** A local-file Source that records every byte range the reader asks for. */
class RecordingSource extends LocalSource {
  readonly ranges: [number, number][] = [];
  override async getBytes(offset: number, length: number): Promise<RangeResponse> {
    this.ranges.push([offset, length]);
    return super.getBytes(offset, length);
  }
}

interface Load {
  rps: number;
  mbps: number;
  errors: number;
  non2xx: number;
}

async function load(url: string, requests: { path: string; headers?: Record<string, string> }[], seconds: number, connections: number): Promise<Load> {
  const r = await autocannon({ url, connections, duration: seconds, requests: requests.map((q) => ({ method: 'GET', ...q })) });
  return { rps: r.requests.average, mbps: r.throughput.average / 1e6, errors: r.errors, non2xx: r.non2xx };
}

export const serveBench: BenchModule = {
  description: 'geo-dino serve: HTTP Range reads of a PMTiles archive vs the same tiles as static files (autocannon, loopback)',
  async run(args): Promise<BenchReport> {
    const size = arg(args, '--size', 2048);
    const seconds = arg(args, '--seconds', 10);
    const connections = arg(args, '--connections', 16);
    const dir = mkdtempSync(join(tmpdir(), 'gd-bench-serve-'));
    const runDir = join(dir, 'run');
    try {
      makeBenchRun(runDir, size);
      const archive = join(runDir, 'chm.pmtiles');
      await writeRasterTiles(join(runDir, 'chm.tif'), archive, { layer: 'height' });

      // Every tile through the pmtiles reader, recording its byte ranges; write the tiles out as files.
      const src = new RecordingSource(archive);
      const pm = new PMTiles(src);
      const h = await pm.getHeader();
      const staticRoot = join(dir, 'static');
      const files: string[] = [];
      for (let z = h.minZoom; z <= h.maxZoom; z++) {
        const n = 2 ** z;
        const x0 = Math.floor(((h.minLon + 180) / 360) * n);
        const x1 = Math.floor(((h.maxLon + 180) / 360) * n);
        const yOf = (lat: number): number => Math.floor(((1 - Math.log(Math.tan((lat * Math.PI) / 180) + 1 / Math.cos((lat * Math.PI) / 180)) / Math.PI) / 2) * n);
        for (let x = x0; x <= x1; x++)
          for (let y = yOf(h.maxLat); y <= yOf(h.minLat); y++) {
            const t = await pm.getZxy(z, x, y);
            if (!t) continue;
            mkdirSync(join(staticRoot, String(z), String(x)), { recursive: true });
            writeFileSync(join(staticRoot, String(z), String(x), `${y}.png`), Buffer.from(t.data));
            files.push(`/${z}/${x}/${y}.png`);
          }
      }
      const pathOf = '/data/chm.pmtiles';
      const ranged = src.ranges.map(([o, l]) => ({ path: pathOf, headers: { range: `bytes=${o}-${o + l - 1}` } }));

      // Reference: a bare static server.
      const ref = createServer((req, res) => {
        const p = join(staticRoot, (req.url ?? '/').split('?')[0]!);
        let size: number;
        try {
          size = statSync(p).size;
        } catch {
          res.statusCode = 404;
          res.end();
          return;
        }
        res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': size });
        createReadStream(p).pipe(res);
      });
      await new Promise<void>((r) => ref.listen(0, '127.0.0.1', r));
      const refUrl = `http://127.0.0.1:${(ref.address() as AddressInfo).port}`;
      const ours = await startServer({ root: runDir, port: 0 });
      try {
        await load(refUrl, files.map((path) => ({ path })), 2, connections); // warm-up
        await load(ours.url, ranged, 2, connections);
        const base = await load(refUrl, files.map((path) => ({ path })), seconds, connections);
        const got = await load(ours.url.replace(/\/$/, ''), ranged, seconds, connections);
        return {
          name: 'serve',
          context: { sizePx: size, tiles: files.length, rangeRequests: ranged.length, connections, seconds, errors: got.errors + got.non2xx, referenceErrors: base.errors + base.non2xx },
          rows: [
            { metric: 'range requests into chm.pmtiles', value: got.rps, unit: 'req/s', reference: { name: 'the same tiles as static files (bare Node server)', value: base.rps }, better: 'higher' },
            { metric: 'range-request throughput', value: got.mbps, unit: 'MB/s', reference: { name: 'static files', value: base.mbps }, better: 'higher' },
          ],
        };
      } finally {
        await ours.close();
        ref.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
