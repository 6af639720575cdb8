/**
 * The viewer end to end in headless Chromium (Debian chromium + playwright-core, SwiftShader WebGL)
 * against `geo-dino serve` over two GDAL-made runs of one area:
 * - the map reaches idle with no console errors and no request leaves the server's origin;
 * - the canopy layer renders (pixels differ from the background where data exists, equal it
 *   outside; the ramp end colour appears where values reach the max; a ramp change re-colours);
 * - clicking a pixel shows the COG's height ± uncertainty (GDAL), its date and scene, and inside
 *   a transition zone across a scene seamline the blend of the two scenes (the hostile scene id
 *   shown as text, never run); the tile readout matches within the encoding step;
 * - a drawn polygon's statistics panel shows the server's numbers, which match GDAL;
 * - the date picker and the swipe compare show the other run.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { colourDistance, jumpTo, mapIdle, screenPixels, screenPoint } from './support/map-page.js';
import { BACKGROUND, ensureViewerBuilt, oracle, type Pt } from './support/viewer-fixture.js';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startServer, type RunningServer, type StatsResponse } from '@geo-dino/server';
import { makeFixtureRoot, type FixtureRoot } from '../../../test/support/fixture-runs.js';
import { CHROMIUM, requireTool } from '../../../test/support/tools.js';
import { runCli } from '../../../test/support/cli.js';

const VIEWER = fileURLToPath(new URL('..', import.meta.url));

const base = mkdtempSync(join(tmpdir(), 'gd-viewer-'));
let fx: FixtureRoot;
let server: RunningServer;
let context: BrowserContext;
let page: Page;
const consoleErrors: string[] = [];
const foreignRequests: string[] = [];
const dialogs: string[] = [];

beforeAll(async () => {
  requireTool(CHROMIUM, ['--version']);
  ensureViewerBuilt();
  fx = await makeFixtureRoot(join(base, 'served'));
  server = await startServer({ root: fx.root, port: 0, viewerDir: join(VIEWER, 'dist') });
  context = await chromium.launchPersistentContext(join(base, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 800 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-gl=angle',
      '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  const origin = server.url.replace(/\/$/, '');
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:')) foreignRequests.push(u);
  });
  await page.goto(server.url);
  await page.waitForFunction(() => document.body.dataset['ready'] === '1', null, { timeout: 90_000 });
}, 240_000);

afterAll(async () => {
  await context?.close();
  await server?.close();
  rmSync(base, { recursive: true, force: true });
});

describe('viewer', () => {
  it('reaches idle with no errors, offline, and shows the DEMO banner', async () => {
    await mapIdle(page);
    expect(consoleErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
    expect(await page.isVisible('#demo-banner')).toBe(true);
    // The latest run of the area is shown first; both are in the date picker.
    expect(await page.$$eval('#run-select option', (o) => o.map((x) => (x as HTMLOptionElement).value))).toEqual(['forest/2024-05-01', 'forest/2025-06-11']);
    expect(await page.inputValue('#run-select')).toBe('forest/2025-06-11');
    expect(consoleErrors).toEqual([]);
  });

  it('renders the canopy layer where data exists, coloured by the browser ramp', async () => {
    const run = fx.runs[1]!;
    const chm = join(run.fixture.dir, 'chm.tif');
    // Centres of the 0 m block (rows 300-319, cols 80-99) and the 7.25 m (+1.5) block (rows 60-79, cols 480-499).
    const [zero, block, outside] = oracle<Pt[]>('points', chm, '89,309', '489,69', '0,0');
    expect(zero!.values![0]).toBe(0);
    expect(block!.values![0]).toBe(8.75);
    await page.uncheck('#layer-imagery');
    await jumpTo(page, block!.lon, block!.lat, 18);
    await mapIdle(page);
    const [at] = await screenPixels(page, [await screenPoint(page, block!.lon, block!.lat)]);
    expect(colourDistance(at!, BACKGROUND)).toBeGreaterThan(30);
    // At the ramp's max (or above), the last colour of viridis (#fde725) at 85 % opacity over the background.
    await page.fill('#ramp-max', '8.75');
    await page.dispatchEvent('#ramp-max', 'change');
    await mapIdle(page);
    const [top] = await screenPixels(page, [await screenPoint(page, block!.lon, block!.lat)]);
    const want = [0xfd, 0xe7, 0x25].map((c, i) => 0.85 * c + 0.15 * BACKGROUND[i]!);
    expect(colourDistance(top!, want)).toBeLessThanOrEqual(6);
    await jumpTo(page, zero!.lon, zero!.lat, 18);
    await mapIdle(page);
    const [low] = await screenPixels(page, [await screenPoint(page, zero!.lon, zero!.lat)]);
    expect(colourDistance(low!, top!)).toBeGreaterThan(60);
    expect(colourDistance(low!, BACKGROUND)).toBeGreaterThan(20);
    // Outside the raster's footprint: background.
    await jumpTo(page, outside!.lon, outside!.lat, 18);
    await mapIdle(page);
    const corner = await screenPoint(page, outside!.lon - 0.0003, outside!.lat + 0.0003);
    const [beyond] = await screenPixels(page, [corner]);
    expect(colourDistance(beyond!, BACKGROUND)).toBeLessThanOrEqual(2);
    expect(consoleErrors).toEqual([]);
  });

  it('shows the COG height ± uncertainty, date and scene on click; the tile readout agrees to the centimetre', async () => {
    const run = fx.runs[1]!;
    const chm = join(run.fixture.dir, 'chm.tif');
    // (310, 150) lies in the fixture's 30 m transition zone across the west/east seamline (cols 275-325).
    const targets = oracle<Pt[]>('points', chm, '37,41', '512,300', '201,377', '489,69', '310,150');
    for (const t of targets) {
      expect(t.values).not.toBeNull();
      await jumpTo(page, t.lon, t.lat, 19.5);
      const p = await screenPoint(page, t.lon, t.lat);
      await page.mouse.move(p.x, p.y);
      const readout = Number(await page.getAttribute('#readout', 'data-height'));
      // The readout decodes the finest tile (nearest-resampled onto Web Mercator): the pixel or a neighbour.
      const around = oracle<Pt[]>('points', chm, ...[-1, 0, 1].flatMap((dy) => [-1, 0, 1].map((dx) => `${t.col + dx},${t.row + dy}`)));
      expect(around.some((n) => n.values && Math.abs(n.values[0] - readout) <= 0.005 + 1e-6), `readout ${readout} at ${t.col},${t.row}`).toBe(true);
      await page.mouse.click(p.x, p.y);
      await page.waitForSelector('.point-popup .value');
      const shown = await page.$eval('.point-popup .value', (e) => ({ h: (e as HTMLElement).dataset['height'], text: e.textContent }));
      expect(Number(shown.h)).toBe(t.values![0]);
      expect(shown.text).toBe(`${t.values![0].toFixed(2)} m ± ${t.values![1].toFixed(2)} m`);
      const scene = await page.$eval('.point-popup .scene', (e) => e.textContent);
      expect(scene).toBe(t.col < 300 ? 'Scene FIXTURE_b_WEST (fixture)' : 'Scene FIXTURE_b_EAST<script>alert(1)</script> (fixture)');
      expect(await page.$eval('.point-popup', (e) => e.textContent)).toContain('Acquired 2025-06-11');
      const blend = await page.$$eval('.point-popup .blend', (es) => es.map((e) => e.textContent));
      expect(blend).toEqual(Math.abs(t.col + 0.5 - 300) < 25 ? ['Blend of scenes FIXTURE_b_WEST and FIXTURE_b_EAST<script>alert(1)</script> (30 m transition across their seamline)'] : []);
      await page.click('.maplibregl-popup-close-button');
    }
    expect(dialogs).toEqual([]);
    expect(await page.$$('.point-popup script')).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });

  it('draws a polygon and shows the statistics the server computes (which match GDAL)', async () => {
    const run = fx.runs[1]!;
    const chm = join(run.fixture.dir, 'chm.tif');
    const [c] = oracle<Pt[]>('points', chm, '300,220');
    await jumpTo(page, c!.lon, c!.lat, 17.5);
    const centre = await screenPoint(page, c!.lon, c!.lat);
    await page.click('#draw-button');
    for (const [dx, dy] of [[-150, -110], [160, -100], [140, 120], [-130, 130]]) await page.mouse.click(centre.x + dx!, centre.y + dy!, { delay: 20 });
    await page.click('#finish-button');
    await page.waitForSelector('#stats-panel:not([hidden])');
    const mean = Number(await page.getAttribute('td[data-key="mean"]', 'data-value'));
    const meanText = await page.textContent('td[data-key="mean"]');
    const aoi = await page.evaluate(() => (window as unknown as { geoDino: { state: { aoi: unknown } } }).geoDino.state.aoi);
    const res = await fetch(`${server.url}api/stats?run=${encodeURIComponent(run.id)}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(aoi) });
    const s = (await res.json()) as StatsResponse;
    expect(mean).toBe(s.height!.mean);
    expect(meanText).toBe(`${s.height!.mean.toFixed(2)} m`);
    expect(Number(await page.getAttribute('td[data-key="median"]', 'data-value'))).toBe(s.height!.median);
    expect(Number(await page.getAttribute('td[data-key="gt2m"]', 'data-value'))).toBe(s.canopyCover!.gt2m);
    expect(await page.getAttribute('#histogram', 'data-counts')).toBe(s.histogram.counts.join(','));
    // And the server agrees with GDAL for this polygon.
    const file = join(base, 'drawn.geojson');
    writeFileSync(file, JSON.stringify(aoi));
    const want = oracle<{ valid: number; mean: number }>('stats', chm, file);
    expect(want.valid).toBeGreaterThan(1000);
    expect(Math.abs(s.pixels.valid - want.valid)).toBeLessThanOrEqual(2);
    expect(Math.abs(s.height!.mean - want.mean)).toBeLessThan(1e-3);
    expect(consoleErrors).toEqual([]);
  });

  it('takes an uploaded GeoJSON polygon for the statistics too', async () => {
    const run = fx.runs[1]!;
    const [c] = oracle<Pt[]>('points', join(run.fixture.dir, 'chm.tif'), '150,120');
    const d = 0.0004;
    const polygon = { type: 'FeatureCollection', features: [{ type: 'Feature', properties: { name: 'plot 7' }, geometry: { type: 'Polygon', coordinates: [[[c!.lon - d, c!.lat - d], [c!.lon + d, c!.lat - d], [c!.lon + d, c!.lat + d], [c!.lon - d, c!.lat + d], [c!.lon - d, c!.lat - d]]] } }] };
    const before = await page.getAttribute('td[data-key="mean"]', 'data-value');
    await page.setInputFiles('#upload-input', { name: 'plot.geojson', mimeType: 'application/geo+json', buffer: Buffer.from(JSON.stringify(polygon)) });
    await page.waitForFunction((prev) => document.querySelector('td[data-key="mean"]')?.getAttribute('data-value') !== prev, before);
    const res = await fetch(`${server.url}api/stats?run=${encodeURIComponent(run.id)}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(polygon) });
    const s = (await res.json()) as StatsResponse;
    expect(Number(await page.getAttribute('td[data-key="mean"]', 'data-value'))).toBe(s.height!.mean);
    expect(Number(await page.getAttribute('td[data-key="areaM2"]', 'data-value'))).toBe(s.polygon.areaM2);
    // A file that is not GeoJSON gets a message, not a crash.
    await page.setInputFiles('#upload-input', { name: 'notes.json', mimeType: 'application/json', buffer: Buffer.from('{"hello":') });
    await page.waitForSelector('#stats-error:not([hidden])');
    expect(await page.textContent('#stats-error')).toContain('notes.json is not valid GeoJSON');
    await page.click('#clear-button');
    expect(consoleErrors).toEqual([]);
  });

  it('switches date and swipes between two runs of the same area', async () => {
    const [a, b] = fx.runs;
    const blockA = oracle<Pt[]>('points', join(a!.fixture.dir, 'chm.tif'), '489,69')[0]!;
    expect(blockA.values![0]).toBe(7.25);
    // Ramp max 8.75: run 2025 (8.75 m) shows the last colour, run 2024 (7.25 m) does not.
    await jumpTo(page, blockA.lon, blockA.lat, 18);
    await mapIdle(page);
    const at = await screenPoint(page, blockA.lon, blockA.lat);
    const [latest] = await screenPixels(page, [at]);
    await page.selectOption('#run-select', a!.id);
    await mapIdle(page);
    const [earlier] = await screenPixels(page, [at]);
    expect(colourDistance(earlier!, latest!)).toBeGreaterThan(25);
    await page.mouse.click(at.x, at.y);
    await page.waitForSelector('.point-popup .value');
    expect(Number(await page.$eval('.point-popup .value', (e) => (e as HTMLElement).dataset['height']))).toBe(7.25);
    expect(await page.$eval('.point-popup .scene', (e) => e.textContent)).toContain('FIXTURE_a_EAST');
    await page.click('.maplibregl-popup-close-button');

    // Compare 2024 (left) with 2025 (right).
    await page.check('#compare-toggle');
    await page.waitForSelector('#map-compare:not([hidden])');
    await page.selectOption('#compare-select', b!.id);
    await page.waitForFunction(() => {
      const g = (window as unknown as { geoDino: { compareMap: import('maplibre-gl').Map | null } }).geoDino;
      return !!g.compareMap && !!g.compareMap.getLayer('b-height') && g.compareMap.loaded();
    });
    await mapIdle(page);
    const handle = await page.$('#swipe .handle');
    const box = (await handle!.boundingBox())!;
    const maps = (await (await page.$('#maps'))!.boundingBox())!;
    // Drag the divider to the far right: the block shows the left (2024) run.
    await page.mouse.move(box.x + box.width / 2, box.y + 100);
    await page.mouse.down();
    await page.mouse.move(maps.x + maps.width * 0.97, box.y + 100, { steps: 5 });
    await page.mouse.up();
    await mapIdle(page);
    const [left] = await screenPixels(page, [at]);
    expect(colourDistance(left!, earlier!)).toBeLessThanOrEqual(4);
    // ... and to the far left: the right (2025) run.
    const box2 = (await handle!.boundingBox())!;
    await page.mouse.move(box2.x + box2.width / 2, box2.y + 100);
    await page.mouse.down();
    await page.mouse.move(maps.x + maps.width * 0.03, box2.y + 100, { steps: 5 });
    await page.mouse.up();
    await mapIdle(page);
    const [right] = await screenPixels(page, [at]);
    expect(colourDistance(right!, latest!)).toBeLessThanOrEqual(4);
    expect(await page.textContent('#label-right')).toContain('2025-06-11');
    expect(consoleErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
  });

  it('shows a real `geo-dino chm --model demo` run of another area', async () => {
    // A real run of the pipeline with the demo model, over part of the fixture imagery.
    const aoi = join(base, 'demo-aoi.geojson');
    writeFileSync(aoi, JSON.stringify({ type: 'Polygon', coordinates: [[[128.6572, 37.668], [128.6588, 37.668], [128.6588, 37.6692], [128.6572, 37.6692], [128.6572, 37.668]]] }));
    const dir = join(fx.root, 'demo', 'real');
    const made = await runCli(['chm', '--model', 'demo', '--imagery', join(fx.runs[0]!.fixture.dir, 'imagery.tif'), '--aoi', aoi, '--out', dir, '--quiet'], { timeoutMs: 300_000 });
    expect(made.code, `geo-dino chm --model demo failed: ${made.stderr}`).toBe(0);
    await expect.poll(async () => JSON.stringify(await (await fetch(`${server.url}api/runs`)).json()), { timeout: 10_000 }).toContain('demo/real');
    await page.reload();
    await page.waitForFunction(() => document.body.dataset['ready'] === '1', null, { timeout: 90_000 });
    // The most recent run is shown first; areas are listed oldest first.
    expect(await page.inputValue('#run-select')).toBe('demo/real');
    expect(await page.$$eval('#area-select option', (o) => o.map((x) => x.textContent))).toEqual(['fixture-forest', 'demo-aoi']);
    await page.uncheck('#layer-imagery');
    const chm = join(dir, 'chm.tif');
    const size = oracle<{ col: number; row: number }[]>('lonlat', chm, '128.658,37.6686')[0]!;
    const [p] = oracle<Pt[]>('points', chm, `${size.col},${size.row}`);
    expect(p!.values).not.toBeNull();
    expect(await page.isVisible('#demo-banner')).toBe(true);
    await jumpTo(page, p!.lon, p!.lat, 19);
    await mapIdle(page);
    const at = await screenPoint(page, p!.lon, p!.lat);
    const [px] = await screenPixels(page, [at]);
    expect(colourDistance(px!, BACKGROUND)).toBeGreaterThan(20);
    await page.mouse.click(at.x, at.y);
    await page.waitForSelector('.point-popup .value');
    expect(Number(await page.$eval('.point-popup .value', (e) => (e as HTMLElement).dataset['height']))).toBe(p!.values![0]);
    const prov = JSON.parse(readFileSync(join(dir, 'provenance.geojson'), 'utf8')) as { features: { properties: { scene_id: string } }[] };
    expect(await page.$eval('.point-popup .scene', (e) => e.textContent)).toContain(prov.features[0]!.properties.scene_id);
    expect(consoleErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
  });
});
