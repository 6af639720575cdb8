/**
 * A site written by `geo-dino publish`, in headless Chromium, served by plain static file servers
 * (not geo-dino's): `http-server` (Range support) and a tiny Node server without Range.
 * - the site loads in static mode with no console errors, the DEMO banner and the layers'
 *   attributions; the height layer renders;
 * - a click shows the COG's value (GDAL) within 1 cm, with date and scene from provenance;
 * - a drawn polygon's statistics, computed in the browser, equal `geo-dino serve`'s /api/stats
 *   exactly (full resolution), and a polygon over the pixel cap is computed on an overview the
 *   panel names with its pixel size;
 * - the date picker switches runs;
 * - a sharded run: values and statistics from the shard COGs (found through the tile index) equal
 *   the server's from the zone VRT;
 * - without Range support, a missing file, or a COG layout the browser reader cannot handle
 *   (a stripped GeoTIFF): a clear message in the page naming the problem, no hang.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as netServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { colourDistance, jumpTo, mapIdle, screenPixels, screenPoint } from './support/map-page.js';
import { BACKGROUND, ensureViewerBuilt, oracle, type Pt } from './support/viewer-fixture.js';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startServer, type RunInfo, type RunningServer, type StatsResponse } from '@geo-dino/server';
import { makeFixtureRoot, type FixtureRoot } from '../../../test/support/fixture-runs.js';
import { CHROMIUM, GDAL_PYTHON, requireGdal, requireTool } from '../../../test/support/tools.js';
import { runCli } from '../../../test/support/cli.js';
import { chm as chmCli, writeJson } from '../../../test/chm/helpers.js';
import { rectangleAoi, writeSyntheticScene } from '@geo-dino/chm';

const VIEWER = fileURLToPath(new URL('..', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

const base = mkdtempSync(join(tmpdir(), 'gd-static-'));
let fx: FixtureRoot;
let api: RunningServer;
let httpServer: ChildProcess;
let staticUrl: string;
let noRange: Server;
let noRangeUrl: string;
let context: BrowserContext;
let page: Page;
const consoleErrors: string[] = [];
const foreignRequests: string[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = netServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.geojson': 'application/geo+json' };

/** A static file server that ignores Range (always the whole file, 200). */
function startNoRangeServer(root: string): Promise<Server> {
  const s = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    let file = join(root, path);
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': statSync(file).size });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(s)));
}

async function openPage(url: string): Promise<Page> {
  const p = await context.newPage();
  p.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  p.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  p.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(staticUrl) && !u.startsWith('data:') && !u.startsWith('blob:')) foreignRequests.push(u);
  });
  await p.goto(url);
  return p;
}

beforeAll(async () => {
  requireTool(CHROMIUM, ['--version']);
  requireGdal();
  ensureViewerBuilt();
  fx = await makeFixtureRoot(join(base, 'served'));
  const sites = join(base, 'sites');
  const publish = async (name: string): Promise<void> => {
    const r = await runCli(['publish', ...fx.runs.map((x) => x.fixture.dir), '--out', join(sites, name)]);
    if (r.code !== 0) throw new Error(`publish failed: ${r.stderr}`);
  };
  await publish('site');
  await publish('missing');
  rmSync(join(sites, 'missing', 'data', '2025-06-11', 'chm.tif'));
  await publish('strips');
  // The same pixels, stripped instead of tiled: a layout the browser reader refuses.
  const strips = join(sites, 'strips', 'data', '2025-06-11', 'chm.tif');
  execFileSync(GDAL_PYTHON, ['-c', `from osgeo import gdal; gdal.Translate(${JSON.stringify(strips + '.tmp.tif')}, ${JSON.stringify(strips)}, creationOptions=['TILED=NO','COMPRESS=DEFLATE'])`]);
  execFileSync('mv', [strips + '.tmp.tif', strips]);

  api = await startServer({ root: fx.root, port: 0, viewerDir: join(VIEWER, 'dist') });
  const port = await freePort();
  httpServer = spawn(process.execPath, [join(ROOT, 'node_modules', 'http-server', 'bin', 'http-server'), sites, '-p', String(port), '-a', '127.0.0.1', '-c-1', '--silent'], { stdio: 'ignore' });
  staticUrl = `http://127.0.0.1:${port}/`;
  for (let i = 0; ; i++) {
    if ((await fetch(`${staticUrl}site/site.json`).catch(() => null))?.status === 200) break;
    if (i > 300) throw new Error('http-server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  noRange = await startNoRangeServer(join(sites, 'site'));
  noRangeUrl = `http://127.0.0.1:${(noRange.address() as AddressInfo).port}/`;

  context = await chromium.launchPersistentContext(join(base, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--use-gl=angle', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
  });
  page = await openPage(`${staticUrl}site/`);
  await page.waitForFunction(() => document.body.dataset['ready'] === '1', null, { timeout: 90_000 });
}, 300_000);

afterAll(async () => {
  await context?.close();
  await api?.close();
  httpServer?.kill();
  await new Promise<void>((r) => (noRange ? noRange.close(() => r()) : r()));
  rmSync(base, { recursive: true, force: true });
});

describe('published static site', () => {
  it('loads in static mode with no errors, the DEMO banner and attributions, and renders the height layer', async () => {
    await mapIdle(page);
    expect(await page.getAttribute('body', 'data-mode')).toBe('static');
    expect(await page.isVisible('#demo-banner')).toBe(true);
    expect(await page.$$eval('#run-select option', (o) => o.map((x) => (x as HTMLOptionElement).value))).toEqual(['2024-05-01', '2025-06-11']);
    const { runs } = JSON.parse(readFileSync(join(base, 'sites', 'site', 'runs.json'), 'utf8')) as { runs: RunInfo[] };
    const attribution = runs[1]!.layers.find((l) => l.id === 'height')!.attribution!;
    expect(attribution).toBeTruthy();
    expect(await page.$eval('.maplibregl-ctrl-attrib', (e) => e.textContent ?? '')).toContain(attribution.slice(0, 40));
    const chm = join(fx.runs[1]!.fixture.dir, 'chm.tif');
    const [block] = oracle<Pt[]>('points', chm, '489,69');
    await page.uncheck('#layer-imagery');
    await jumpTo(page, block!.lon, block!.lat, 18);
    await mapIdle(page);
    expect(colourDistance((await screenPixels(page, [await screenPoint(page, block!.lon, block!.lat)]))[0]!, BACKGROUND)).toBeGreaterThan(30);
    expect(consoleErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
  });

  it('shows the COG value (within 1 cm of GDAL), date and scene on click', async () => {
    const chm = join(fx.runs[1]!.fixture.dir, 'chm.tif');
    for (const t of oracle<Pt[]>('points', chm, '37,41', '512,300', '201,377')) {
      expect(t.values).not.toBeNull();
      await jumpTo(page, t.lon, t.lat, 19.5);
      const p = await screenPoint(page, t.lon, t.lat);
      await page.mouse.click(p.x, p.y);
      await page.waitForSelector('.point-popup .value');
      const shown = await page.$eval('.point-popup .value', (e) => ({ h: (e as HTMLElement).dataset['height'], u: (e as HTMLElement).dataset['uncertainty'] }));
      expect(Math.abs(Number(shown.h) - t.values![0])).toBeLessThanOrEqual(0.01);
      expect(Math.abs(Number(shown.u) - t.values![1])).toBeLessThanOrEqual(0.01);
      expect(await page.$eval('.point-popup .scene', (e) => e.textContent)).toBe(t.col < 300 ? 'Scene FIXTURE_b_WEST (fixture)' : 'Scene FIXTURE_b_EAST<script>alert(1)</script> (fixture)');
      expect(await page.$eval('.point-popup', (e) => e.textContent)).toContain('Acquired 2025-06-11');
      await page.click('.maplibregl-popup-close-button');
    }
    expect(consoleErrors).toEqual([]);
  });

  it("computes a drawn polygon's statistics in the browser, equal to the server's /api/stats", async () => {
    const run = fx.runs[1]!;
    const [c] = oracle<Pt[]>('points', join(run.fixture.dir, 'chm.tif'), '300,220');
    await jumpTo(page, c!.lon, c!.lat, 17.5);
    const centre = await screenPoint(page, c!.lon, c!.lat);
    await page.click('#draw-button');
    for (const [dx, dy] of [[-150, -110], [160, -100], [140, 120], [-130, 130]]) await page.mouse.click(centre.x + dx!, centre.y + dy!, { delay: 20 });
    await page.click('#finish-button');
    await page.waitForSelector('#stats-panel:not([hidden])');
    const aoi = await page.evaluate(() => (window as unknown as { geoDino: { state: { aoi: unknown } } }).geoDino.state.aoi);
    const browser = await page.evaluate(() => (window as unknown as { geoDino: { state: { stats: unknown } } }).geoDino.state.stats);
    const res = await fetch(`${api.url}api/stats?run=${encodeURIComponent(run.id)}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(aoi) });
    const server = (await res.json()) as StatsResponse;
    expect(server.pixels.valid).toBeGreaterThan(1000);
    const { resolution, run: _r, ...got } = browser as StatsResponse & { resolution: { fullResolution: boolean } };
    const { run: _s, ...want } = server;
    expect(got).toEqual(want);
    expect(resolution.fullResolution).toBe(true);
    expect(Number(await page.getAttribute('td[data-key="mean"]', 'data-value'))).toBe(server.height!.mean);
    expect(await page.getAttribute('#histogram', 'data-counts')).toBe(server.histogram.counts.join(','));
    expect(await page.textContent('#stats-note')).toContain('full resolution');
    expect(consoleErrors).toEqual([]);
  });

  it('switches runs with the date picker and compares them', async () => {
    const [a] = fx.runs;
    const blockA = oracle<Pt[]>('points', join(a!.fixture.dir, 'chm.tif'), '489,69')[0]!;
    await page.selectOption('#run-select', '2024-05-01');
    await jumpTo(page, blockA.lon, blockA.lat, 18);
    await mapIdle(page);
    const at = await screenPoint(page, blockA.lon, blockA.lat);
    await page.mouse.click(at.x, at.y);
    await page.waitForSelector('.point-popup .value');
    expect(Number(await page.$eval('.point-popup .value', (e) => (e as HTMLElement).dataset['height']))).toBe(blockA.values![0]);
    expect(await page.$eval('.point-popup .scene', (e) => e.textContent)).toContain('FIXTURE_a_EAST');
    await page.click('.maplibregl-popup-close-button');
    // Swipe compare with the other date: the second map shows the 2025 run's height layer.
    await page.check('#compare-toggle');
    await page.waitForSelector('#map-compare:not([hidden])');
    await page.selectOption('#compare-select', '2025-06-11');
    await page.waitForFunction(() => {
      const g = (window as unknown as { geoDino: { compareMap: import('maplibre-gl').Map | null } }).geoDino;
      return !!g.compareMap && !!g.compareMap.getLayer('b-height') && g.compareMap.loaded();
    });
    expect(await page.textContent('#label-right')).toContain('2025-06-11');
    await page.uncheck('#compare-toggle');
    expect(consoleErrors).toEqual([]);
  });

  it('computes a polygon over the pixel cap on an overview, named in the panel with its pixel size', async () => {
    const p = await openPage(`${staticUrl}site/?fullResPixels=2000`);
    await p.waitForFunction(() => document.body.dataset['ready'] === '1', null, { timeout: 90_000 });
    const chm = join(fx.runs[1]!.fixture.dir, 'chm.tif');
    const [a, b] = oracle<Pt[]>('points', chm, '100,100', '400,300');
    const polygon = { type: 'Polygon', coordinates: [[[a!.lon, a!.lat], [b!.lon, a!.lat], [b!.lon, b!.lat], [a!.lon, b!.lat], [a!.lon, a!.lat]]] };
    await p.setInputFiles('#upload-input', { name: 'big.geojson', mimeType: 'application/geo+json', buffer: Buffer.from(JSON.stringify(polygon)) });
    await p.waitForSelector('#stats-panel:not([hidden])');
    const level = Number(await p.getAttribute('#stats-note', 'data-level'));
    expect(level).toBeGreaterThanOrEqual(1);
    const size = Number(await p.getAttribute('#stats-note', 'data-pixel-size'));
    expect(await p.textContent('#stats-note')).toContain(`overview level ${level} (${size.toFixed(2)} m pixels)`);
    const full = (await (await fetch(`${api.url}api/stats?run=${encodeURIComponent(fx.runs[1]!.id)}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(polygon) })).json()) as StatsResponse;
    expect(size).toBeCloseTo(Math.sqrt(full.pixelAreaM2) * 2 ** level, 6);
    // An overview's mean is close to the full-resolution mean (the fixture's blocks are large).
    expect(Math.abs(Number(await p.getAttribute('td[data-key="mean"]', 'data-value')) - full.height!.mean)).toBeLessThan(1);
    await p.close();
    expect(consoleErrors).toEqual([]);
  });

  it('says so in the page when the server does not support Range requests (no hang)', async () => {
    const errors = consoleErrors.length;
    const p = await context.newPage();
    await p.goto(noRangeUrl);
    await p.waitForSelector('#map-error:not([hidden])', { timeout: 30_000 });
    expect(await p.textContent('#map-error')).toContain('does not support HTTP Range requests');
    await p.close();
    consoleErrors.splice(errors);
  });

  it('names a missing file in the page', async () => {
    const p = await context.newPage();
    await p.goto(`${staticUrl}missing/`);
    await p.waitForSelector('#map-error:not([hidden])', { timeout: 30_000 });
    expect(await p.textContent('#map-error')).toContain('data/2025-06-11/chm.tif is missing from the published site');
    await p.close();
  });

  it('refuses a COG layout the browser reader cannot handle, with a message instead of a value', async () => {
    const p = await context.newPage();
    await p.goto(`${staticUrl}strips/`);
    await p.waitForFunction(() => document.body.dataset['ready'] === '1', null, { timeout: 90_000 });
    const [t] = oracle<Pt[]>('points', join(fx.runs[1]!.fixture.dir, 'chm.tif'), '201,377');
    const xy = await p.evaluate(([lon, lat]) => {
      const m = (window as unknown as { geoDino: { map: import('maplibre-gl').Map } }).geoDino.map;
      m.jumpTo({ center: [lon!, lat!], zoom: 19 });
      const q = m.project([lon!, lat!]);
      const r = m.getCanvas().getBoundingClientRect();
      return { x: r.left + q.x, y: r.top + q.y };
    }, [t!.lon, t!.lat]);
    await p.mouse.click(xy.x, xy.y);
    await p.waitForSelector('.maplibregl-popup-content');
    await expect.poll(() => p.textContent('.maplibregl-popup-content'), { timeout: 30_000 }).toContain('a COG layout the browser reader cannot handle (stripped, not tiled)');
    expect(await p.$('.point-popup .value')).toBeNull();
    await p.close();
  });

  it("reads a sharded run from its shard COGs: statistics and values equal the server's", async () => {
    const work = join(base, 'national');
    const scene = join(work, 'scene.tif');
    mkdirSync(work, { recursive: true });
    const sc = await writeSyntheticScene(scene, { size: 1100, seed: 5 });
    const aoi = rectangleAoi(sc.epsg, sc.transform, 1100, 1100, 0.05, 'scene');
    const aoiPath = writeJson(join(work, 'aoi.geojson'), { type: 'MultiPolygon', coordinates: aoi.geometry });
    const runDir = join(work, 'runs', 'sharded');
    const made = await chmCli(['--model', 'demo', '--aoi', aoiPath, '--imagery', scene, '--tile-size', '256', '--overlap', '32', '--out', runDir, '--shard-size', '512'], join(work, 'home'), { timeoutMs: 400_000 });
    expect(made.code, made.stderr).toBe(0);
    const pub = await runCli(['publish', runDir, '--out', join(base, 'sites', 'sharded')]);
    expect(pub.code, pub.stderr).toBe(0);
    const { runs } = JSON.parse(readFileSync(join(base, 'sites', 'sharded', 'runs.json'), 'utf8')) as { runs: RunInfo[] };
    expect(runs[0]!.static!.heights[0]!.parts.length).toBeGreaterThan(1);
    const srv = await startServer({ root: join(work, 'runs'), port: 0 });
    const p = await openPage(`${staticUrl}sharded/`);
    try {
      await p.waitForFunction(() => document.body.dataset['ready'] === '1', null, { timeout: 90_000 });
      const [w, so, e, n] = aoi.bbox;
      const at = (fx: number, fy: number): [number, number] => [w + (e - w) * fx, so + (n - so) * fy];
      const polygon = { type: 'Polygon', coordinates: [[at(0.2, 0.15), at(0.85, 0.25), at(0.7, 0.9), at(0.1, 0.7), at(0.2, 0.15)]] };
      await p.setInputFiles('#upload-input', { name: 'shards.geojson', mimeType: 'application/geo+json', buffer: Buffer.from(JSON.stringify(polygon)) });
      await p.waitForSelector('#stats-panel:not([hidden])', { timeout: 120_000 });
      const browser = await p.evaluate(() => (window as unknown as { geoDino: { state: { stats: unknown } } }).geoDino.state.stats);
      const server = (await (await fetch(`${srv.url}api/stats?run=sharded`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(polygon) })).json()) as StatsResponse;
      expect(server.pixels.valid).toBeGreaterThan(10_000);
      const { resolution, run: _r, ...got } = browser as StatsResponse & { resolution: { fullResolution: boolean } };
      const { run: _s, ...want } = server;
      expect(resolution.fullResolution).toBe(true);
      expect(got).toEqual(want);
      // A click in another shard than the polygon's centre.
      const [lon, lat] = at(0.8, 0.75);
      const xy = await p.evaluate(([lon, lat]) => {
        const m = (window as unknown as { geoDino: { map: import('maplibre-gl').Map } }).geoDino.map;
        m.jumpTo({ center: [lon!, lat!], zoom: 19 });
        const q = m.project([lon!, lat!]);
        const r = m.getCanvas().getBoundingClientRect();
        return { x: r.left + q.x, y: r.top + q.y };
      }, [lon, lat]);
      await p.mouse.click(xy.x, xy.y);
      await p.waitForSelector('.point-popup');
      const clicked = await p.evaluate(() => (window as unknown as { geoDino: { state: { point: { lon: number; lat: number; height_m: number | null; uncertainty_m: number | null } } } }).geoDino.state.point);
      const sp = (await (await fetch(`${srv.url}api/point?run=sharded&lon=${clicked.lon}&lat=${clicked.lat}`)).json()) as { height_m: number | null; uncertainty_m: number | null };
      expect(sp.height_m).not.toBeNull();
      expect([clicked.height_m, clicked.uncertainty_m]).toEqual([sp.height_m, sp.uncertainty_m]);
      expect(consoleErrors).toEqual([]);
    } finally {
      await p.close();
      await srv.close();
    }
  }, 600_000);
});
