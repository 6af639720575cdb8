/**
 * XYZ tiles and TileJSON for GIS clients, judged by the tools users would use:
 * - a QGIS-like HTTP client (Node's fetch): TileJSON 3.0 first, then the tiles its template
 *   names; Terrarium values decoded with the published formula equal GDAL's warp of the COG
 *   (nearest) within 1 cm; coloured tiles are the ramp's colour of those values; content types;
 *   empty tiles 204; bad colour parameters 400;
 * - headless Chromium with a plain MapLibre `raster` source pointed at the TileJSON URL (no
 *   geo-dino code in the page): the canvas shows the ramp's colours of GDAL's values.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import { buildLut, lutIndex } from '@geo-dino/pmtiles';
import { startServer, type RunningServer } from '../src/index.js';
import { makeFixtureRoot, type FixtureRoot } from '../../../test/support/fixture-runs.js';
import { gdalTiles } from '../../../test/support/fixture-run.js';
import { GDAL_PYTHON, requireGdal, requireTool } from '../../../test/support/tools.js';
import { openArchive } from '../../../packages/pmtiles/test/support.js';

const ORACLE = fileURLToPath(new URL('../../../test/support/gdal-oracle.py', import.meta.url));
const CHROMIUM = process.env['GEO_DINO_CHROMIUM'] ?? '/usr/bin/chromium';
const RUN = 'forest/2024-05-01';
const base = mkdtempSync(join(tmpdir(), 'gd-xyz-'));
let fx: FixtureRoot;
let server: RunningServer;
let origin: string;

interface TileJson {
  tilejson: string;
  tiles: string[];
  minzoom: number;
  maxzoom: number;
  bounds: [number, number, number, number];
  center: number[];
  attribution: string;
  encoding?: string;
  format: string;
}

/** XYZ tiles covering a lon/lat box at zoom z (the standard slippy-map formulas). */
function tilesOver([w, s, e, n]: readonly number[], z: number): [number, number, number][] {
  const x = (lon: number): number => Math.floor(((lon + 180) / 360) * 2 ** z);
  const y = (lat: number): number => Math.floor(((1 - Math.log(Math.tan((lat * Math.PI) / 180) + 1 / Math.cos((lat * Math.PI) / 180)) / Math.PI) / 2) * 2 ** z);
  const out: [number, number, number][] = [];
  for (let tx = x(w!); tx <= x(e!); tx++) for (let ty = y(n!); ty <= y(s!); ty++) out.push([z, tx, ty]);
  return out;
}

const fill = (template: string, [z, x, y]: readonly number[]): string => template.replace('{z}', String(z)).replace('{x}', String(x)).replace('{y}', String(y));

async function rgbaOf(bytes: ArrayBuffer): Promise<Uint8Array> {
  const { data } = await sharp(Buffer.from(bytes)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

beforeAll(async () => {
  requireGdal();
  fx = await makeFixtureRoot(join(base, 'served'));
  // A page of our own beside no geo-dino code: MapLibre from its npm package, a plain raster source.
  const viewerDir = join(base, 'page');
  mkdirSync(join(viewerDir, 'assets'), { recursive: true });
  const mlDist = dirname(createRequire(import.meta.url).resolve('maplibre-gl/package.json'));
  cpSync(join(mlDist, 'dist'), join(viewerDir, 'assets', 'maplibre'), { recursive: true });
  writeFileSync(
    join(viewerDir, 'index.html'),
    '<!doctype html><html><head><link rel="stylesheet" href="/assets/maplibre/maplibre-gl.css"></head><body style="margin:0"><div id="map" style="width:512px;height:512px"></div><script type="module" src="/assets/page.js"></script></body></html>',
  );
  writeFileSync(
    join(viewerDir, 'assets', 'page.js'),
    `import * as maplibregl from '/assets/maplibre/maplibre-gl.mjs';
const q = new URLSearchParams(location.search);
const map = new maplibregl.Map({ container: 'map', style: { version: 8, sources: {}, layers: [{ id: 'bg', type: 'background', paint: { 'background-color': '#000000' } }] },
  center: [Number(q.get('lon')), Number(q.get('lat'))], zoom: Number(q.get('z')), fadeDuration: 0, attributionControl: false, canvasContextAttributes: { preserveDrawingBuffer: true } });
window.geoMap = map;
map.on('load', () => {
  map.addSource('chm', { type: 'raster', url: q.get('tilejson'), tileSize: 256 });
  map.addLayer({ id: 'chm', type: 'raster', source: 'chm', paint: { 'raster-resampling': 'nearest', 'raster-fade-duration': 0 } });
  map.once('idle', () => { window.geoReady = true; });
});
`,
  );
  server = await startServer({ root: fx.root, port: 0, viewerDir });
  origin = server.url.replace(/\/$/, '');
}, 240_000);

afterAll(async () => {
  await server?.close();
  rmSync(base, { recursive: true, force: true });
});

describe('XYZ + TileJSON over HTTP (a QGIS-like client)', () => {
  it('TileJSON 3.0 names the archive zooms and bounds; its tiles hold the COG values (Terrarium) within 1 cm', async () => {
    const res = await fetch(`${origin}/tiles/${RUN}/height/tilejson.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const tj = (await res.json()) as TileJson;
    const header = await openArchive(join(fx.root, ...RUN.split('/'), 'chm.pmtiles')).getHeader();
    expect(tj).toMatchObject({ tilejson: '3.0.0', minzoom: header.minZoom, maxzoom: header.maxZoom, format: 'png', encoding: 'terrarium' });
    expect(tj.tiles).toEqual([`${origin}/tiles/${RUN}/height/{z}/{x}/{y}.png`]);
    const run = fx.runs.find((r) => r.id === RUN)!.fixture;
    tj.bounds.forEach((v, i) => expect(v).toBeCloseTo(run.bbox[i]!, 5));

    const tiles = tilesOver(tj.bounds, tj.maxzoom);
    const oracle = gdalTiles(join(run.dir, 'chm.tif'), join(base, 'oracle'), 'near', [1], tiles);
    let compared = 0;
    let off = 0;
    let maskDiff = 0;
    for (const t of tiles) {
      const r = await fetch(fill(tj.tiles[0]!, t));
      if (r.status === 204) continue;
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('image/png');
      const px = await rgbaOf(await r.arrayBuffer());
      const want = oracle.get(t.join('/'))!;
      for (let i = 0; i < 256 * 256; i++) {
        const valid = px[i * 4 + 3] === 255;
        if (valid !== want.valid[i]! > 0) maskDiff++;
        if (!valid || !(want.valid[i]! > 0)) continue;
        const v = px[i * 4]! * 256 + px[i * 4 + 1]! + px[i * 4 + 2]! / 256 - 32768; // Terrarium, as MapLibre decodes it
        compared++;
        if (Math.abs(v - want.bands[0]![i]!) > 0.01) off++;
      }
    }
    expect(compared).toBeGreaterThan(run.width * run.height);
    expect(off / compared).toBeLessThan(0.001);
    expect(maskDiff / compared).toBeLessThan(0.001);
  });

  it('coloured PNG tiles on request (colormap_name + rescale): the ramp colour of the COG value', async () => {
    const tj = (await (await fetch(`${origin}/tiles/${RUN}/height/tilejson.json?colormap_name=viridis&rescale=0,30`)).json()) as TileJson;
    expect(tj.tiles[0]).toBe(`${origin}/tiles/${RUN}/height/{z}/{x}/{y}.png?colormap_name=viridis&rescale=0%2C30`);
    expect(tj.encoding).toBeUndefined();
    const run = fx.runs.find((r) => r.id === RUN)!.fixture;
    const tiles = tilesOver(tj.bounds, tj.maxzoom).slice(0, 4);
    const oracle = gdalTiles(join(run.dir, 'chm.tif'), join(base, 'oracle-c'), 'near', [1], tiles);
    const lut = buildLut('viridis');
    let compared = 0;
    let wrong = 0;
    for (const t of tiles) {
      const r = await fetch(fill(tj.tiles[0]!, t));
      if (r.status === 204) continue;
      expect(r.headers.get('content-type')).toBe('image/png');
      const px = await rgbaOf(await r.arrayBuffer());
      const want = oracle.get(t.join('/'))!;
      for (let i = 0; i < 256 * 256; i++) {
        if (px[i * 4 + 3] !== 255 || !(want.valid[i]! > 0)) continue;
        compared++;
        // The LUT entry of the value, or its neighbour where the value sits on a bin edge.
        const k = lutIndex(want.bands[0]![i]!, 0, 30);
        const near = [k - 1, k, k + 1].filter((j) => j >= 0 && j < 256);
        if (!near.some((j) => lut[j * 3] === px[i * 4] && lut[j * 3 + 1] === px[i * 4 + 1] && lut[j * 3 + 2] === px[i * 4 + 2])) wrong++;
      }
    }
    expect(compared).toBeGreaterThan(10_000);
    expect(wrong / compared).toBeLessThan(0.001);
  });

  it('content types everywhere; empty tiles are 204; bad requests are 400/404 with a JSON reason', async () => {
    const img = (await (await fetch(`${origin}/tiles/${RUN}/imagery/tilejson.json`)).json()) as TileJson;
    expect(img.tiles[0]).toMatch(/\{y\}\.webp$/);
    const [z, x, y] = tilesOver(img.bounds, img.maxzoom)[0]!;
    const webp = await fetch(fill(img.tiles[0]!, [z, x, y]));
    expect([200, 204]).toContain(webp.status);
    if (webp.status === 200) expect(webp.headers.get('content-type')).toBe('image/webp');
    const lc = await fetch(`${origin}/tiles/${RUN}/landcover/tilejson.json?colormap_name=viridis`);
    expect(lc.status).toBe(200);
    const pm = await fetch(`${origin}/data/${RUN}/chm.pmtiles`, { headers: { Range: 'bytes=0-126' } });
    expect(pm.headers.get('content-type')).toBe('application/vnd.pmtiles');
    const empty = await fetch(`${origin}/tiles/${RUN}/height/3/0/0.png`);
    expect(empty.status).toBe(204);
    const bad: [string, number, RegExp][] = [
      [`/tiles/${RUN}/height/tilejson.json?colormap_name=rainbow`, 400, /colormap_name must be one of viridis/],
      [`/tiles/${RUN}/height/tilejson.json?rescale=5,1`, 400, /rescale must be min,max with min < max/],
      [`/tiles/${RUN}/height/5/1/1.webp`, 404, /this layer's tiles are \.png/],
      [`/tiles/${RUN}/nope/tilejson.json`, 404, /unknown layer/],
      [`/tiles/forest/1999-01-01/height/tilejson.json`, 404, /unknown run/],
      [`/tiles/${RUN}/height/3/9/0.png`, 404, /not found/],
    ];
    for (const [path, status, msg] of bad) {
      const r = await fetch(`${origin}${path}`);
      expect(r.status, path).toBe(status);
      expect(((await r.json()) as { error: string }).error, path).toMatch(msg);
    }
  });
});

describe('a plain MapLibre raster source in Chromium', () => {
  it('shows the coloured tiles from the TileJSON URL: canvas pixels are the ramp colours of the COG values', async () => {
    requireTool(CHROMIUM, ['--version'], 'install Debian chromium (apt), as .ci/run does');
    const run = fx.runs.find((r) => r.id === RUN)!.fixture;
    const [w, s, e, n] = run.bbox;
    const tj = (await (await fetch(`${origin}/tiles/${RUN}/height/tilejson.json`)).json()) as TileJson;
    const lon = (w + e) / 2;
    const lat = (s + n) / 2;
    const z = tj.maxzoom;
    const tilejson = `/tiles/${RUN}/height/tilejson.json?colormap_name=viridis&rescale=0,30`;
    const context = await chromium.launchPersistentContext(join(base, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 512, height: 512 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--use-gl=angle', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      const tileStatuses: number[] = [];
      page.on('response', (r) => {
        if (r.url().includes('/tiles/') && !r.url().includes('tilejson')) tileStatuses.push(r.status());
      });
      await page.goto(`${server.url}index.html?lon=${lon}&lat=${lat}&z=${z}&tilejson=${encodeURIComponent(tilejson)}`);
      await page.waitForFunction(() => (window as unknown as { geoReady?: boolean }).geoReady === true, undefined, { timeout: 60_000 });
      expect(errors).toEqual([]);
      expect(tileStatuses.length).toBeGreaterThan(0);
      expect(tileStatuses.every((st) => st === 200 || st === 204)).toBe(true);
      // Sample a grid of screen pixels: their lon/lat (MapLibre's own unproject) and colour.
      const samples = (await page.evaluate(() => {
        const map = (window as unknown as { geoMap: { getCanvas(): HTMLCanvasElement; unproject(p: [number, number]): { lng: number; lat: number } } }).geoMap;
        const canvas = map.getCanvas();
        const c2 = document.createElement('canvas');
        c2.width = canvas.width;
        c2.height = canvas.height;
        const ctx = c2.getContext('2d')!;
        ctx.drawImage(canvas, 0, 0);
        const ratio = canvas.width / canvas.clientWidth;
        const out: [number, number, number, number, number][] = [];
        for (let py = 40; py < 480; py += 37) {
          for (let px = 40; px < 480; px += 37) {
            const ll = map.unproject([px + 0.5, py + 0.5]);
            const d = ctx.getImageData(Math.floor((px + 0.5) * ratio), Math.floor((py + 0.5) * ratio), 1, 1).data;
            out.push([ll.lng, ll.lat, d[0]!, d[1]!, d[2]!]);
          }
        }
        return out;
      })) as [number, number, number, number, number][];
      const values = JSON.parse(
        execFileSync(GDAL_PYTHON, [ORACLE, 'lonlat', join(run.dir, 'chm.tif'), ...samples.map(([a, b]) => `${a},${b}`)], { encoding: 'utf8', timeout: 120_000 }),
      ) as { values: (number | null)[] | null }[];
      const lut = buildLut('viridis');
      let inside = 0;
      let match = 0;
      samples.forEach(([, , r, g, b], i) => {
        const v = values[i]!.values?.[0];
        if (v === null || v === undefined) return;
        inside++;
        const k = lutIndex(v, 0, 30);
        const ok = [k - 2, k - 1, k, k + 1, k + 2].some((j) => j >= 0 && j < 256 && Math.abs(lut[j * 3]! - r) <= 3 && Math.abs(lut[j * 3 + 1]! - g) <= 3 && Math.abs(lut[j * 3 + 2]! - b) <= 3);
        if (ok) match++;
      });
      expect(inside).toBeGreaterThan(50);
      // Screen pixels on a tile pixel's edge may show the neighbour: nearly all match.
      expect(match / inside).toBeGreaterThan(0.9);
    } finally {
      await context.close();
    }
  }, 180_000);
});
