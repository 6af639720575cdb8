/**
 * `npm run bench -- publish [--size=2048]`: a run published as a static site (`geo-dino publish`,
 * served by a plain static file server with Range support, `http-server`) against the same run in
 * `geo-dino serve`, both in headless Chromium, in the same run:
 * - time to the first value readout: from a click on a freshly loaded page to the height shown
 *   (static: geotiff.js reads the COG header and one tile over Range in a worker; server: /api/point);
 * - time to the AOI statistics of a 1 km² square at the run's centre (full resolution: 0.6 m
 *   pixels, about 2.8 M pixels; static: the worker reads the COG and runs @geo-dino/zonal;
 *   server: /api/stats).
 * Each is the median of `--repeat` fresh page loads (browser cache off). The server's time is the
 * reference; ratio = server time / static time (> 1: the static site is faster).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { writeRunTiles } from '@geo-dino/pmtiles';
import { publishSite, startServer } from '@geo-dino/server';
import { openRaster, transformBetween, WGS84 } from '@geo-dino/tiling';
import type { BenchModule, BenchReport } from './report.js';
import { makeBenchRun } from './pmtiles.js';

const CHROMIUM = process.env['GEO_DINO_CHROMIUM'] || '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function arg(args: readonly string[], name: string, fallback: number): number {
  const a = args.find((x) => x.startsWith(`${name}=`));
  const v = a ? Number(a.slice(name.length + 1)) : fallback;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One fresh page: click at `centre` → height shown; upload `polygon` → statistics shown (ms each). */
async function measure(browser: Browser, url: string, centre: [number, number], polygon: unknown): Promise<{ readoutMs: number; statsMs: number; valid: number }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  try {
    const page = await context.newPage();
    await page.route('**/*', (route) => route.continue({ headers: { ...route.request().headers(), 'cache-control': 'no-cache' } }));
    await page.goto(url);
    // (This package is compiled without the DOM library: the page's globals are typed here.)
    await page.waitForSelector('body[data-ready="1"]', { state: 'attached', timeout: 120_000 });
    type PageMap = { jumpTo(o: { center: [number, number]; zoom: number }): void; project(p: [number, number]): { x: number; y: number }; getCanvas(): { getBoundingClientRect(): { left: number; top: number } } };
    const xy = await page.evaluate(([lon, lat]) => {
      const m = (globalThis as unknown as { geoDino: { map: PageMap } }).geoDino.map;
      m.jumpTo({ center: [lon!, lat!], zoom: 17 });
      const q = m.project([lon!, lat!]);
      const r = m.getCanvas().getBoundingClientRect();
      return { x: r.left + q.x, y: r.top + q.y };
    }, centre);
    const t0 = performance.now();
    await page.mouse.click(xy.x, xy.y);
    await page.waitForSelector('.point-popup .value, .point-popup .muted', { timeout: 120_000 });
    const readoutMs = performance.now() - t0;
    await page.click('.maplibregl-popup-close-button');
    const t1 = performance.now();
    await page.setInputFiles('#upload-input', { name: 'km2.geojson', mimeType: 'application/geo+json', buffer: Buffer.from(JSON.stringify(polygon)) });
    await page.waitForSelector('#stats-panel:not([hidden]), #stats-error:not([hidden])', { timeout: 300_000 });
    const statsMs = performance.now() - t1;
    const err = await page.$eval('#stats-error', (e) => (e.hasAttribute('hidden') ? '' : (e.textContent ?? '')));
    if (err) throw new Error(`statistics failed in ${url}: ${err}`);
    const valid = Number(await page.$eval('td[data-key="validAreaM2"]', (e) => e.textContent?.match(/\((\d+) px\)/)?.[1] ?? 'NaN'));
    return { readoutMs, statsMs, valid };
  } finally {
    await context.close();
  }
}

export const publishBench: BenchModule = {
  description: 'static site (geo-dino publish + http-server, values from COGs in the browser) vs geo-dino serve: first readout and 1 km² AOI statistics in Chromium',
  explicitOnly: true,
  async run(args): Promise<BenchReport> {
    const size = arg(args, '--size', 2048);
    const repeat = arg(args, '--repeat', 3);
    const dir = mkdtempSync(join(tmpdir(), 'gd-bench-publish-'));
    let http: ChildProcess | null = null;
    let browser: Browser | null = null;
    const server = { close: async (): Promise<void> => undefined };
    try {
      const run = join(dir, 'runs', 'bench');
      makeBenchRun(run, size);
      await writeRunTiles(run, { imagery: join(run, 'imagery.tif') });
      await publishSite({ runs: [run], out: join(dir, 'site'), viewerDir: join(ROOT, 'apps', 'viewer', 'dist') });
      const srv = await startServer({ root: join(dir, 'runs'), port: 0, viewerDir: join(ROOT, 'apps', 'viewer', 'dist') });
      server.close = () => srv.close();
      const port = await freePort();
      http = spawn(process.execPath, [join(ROOT, 'node_modules', 'http-server', 'bin', 'http-server'), join(dir, 'site'), '-p', String(port), '-a', '127.0.0.1', '-c-1', '--silent'], { stdio: 'ignore' });
      const staticUrl = `http://127.0.0.1:${port}/`;
      for (let i = 0; !(await fetch(`${staticUrl}site.json`).then((r) => r.ok).catch(() => false)); i++) {
        if (i > 300) throw new Error('http-server did not start');
        await new Promise((r) => setTimeout(r, 100));
      }

      // A 1 km² square (in the run's UTM grid) at the centre of the run.
      const cog = await openRaster(join(run, 'chm.tif'));
      const gt = cog.info.geoTransform!;
      const t = transformBetween(WGS84, cog.info.crs!, 'bench');
      const cx = gt[0] + (cog.info.width / 2) * gt[1];
      const cy = gt[3] + (cog.info.height / 2) * gt[5];
      const ring = [[-500, -500], [500, -500], [500, 500], [-500, 500], [-500, -500]].map(([dx, dy]) => t.inverse(cx + dx!, cy + dy!));
      const centre = t.inverse(cx + 13.3, cy - 7.1);
      await cog.close();
      const polygon = { type: 'Polygon', coordinates: [ring] };

      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--use-gl=angle', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--disable-background-networking'],
      });
      const stat: Awaited<ReturnType<typeof measure>>[] = [];
      const api: Awaited<ReturnType<typeof measure>>[] = [];
      for (let i = 0; i < repeat; i++) {
        api.push(await measure(browser, srv.url, centre, polygon));
        stat.push(await measure(browser, staticUrl, centre, polygon));
      }
      if (stat[0]!.valid !== api[0]!.valid) throw new Error(`the static site counted ${stat[0]!.valid} valid pixels, the server ${api[0]!.valid}`);
      const sr = median(stat.map((m) => m.readoutMs));
      const ar = median(api.map((m) => m.readoutMs));
      const ss = median(stat.map((m) => m.statsMs));
      const as = median(api.map((m) => m.statsMs));
      return {
        name: 'publish',
        context: { rasterPx: `${size}x${size}`, gsd_m: 0.6, aoi: '1 km² square', aoiValidPixels: stat[0]!.valid, repeat, browser: 'Chromium headless (SwiftShader)', staticServer: 'http-server 14 (Range)' },
        rows: [
          { metric: 'static site: click → height shown (fresh page)', value: sr, unit: 'ms', reference: { name: 'geo-dino serve /api/point, same click', value: ar }, better: 'lower' },
          { metric: 'static site: 1 km² AOI → statistics shown (full resolution, Web Worker)', value: ss, unit: 'ms', reference: { name: 'geo-dino serve /api/stats, same polygon', value: as }, better: 'lower' },
        ],
      };
    } finally {
      await browser?.close();
      http?.kill();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
