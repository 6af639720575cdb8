/**
 * `geo-dino chm` from a tile service, end to end through the CLI: XYZ tiles that
 * `gdal2tiles.py --xyz` made from cogeo.tif, served by Python's `http.server`, against the run
 * from the COG itself (same AOI, demo model): heights agree within resampling tolerance (GDAL
 * reads both chm.tif files). The template's API key never reaches an output; the zoom, template,
 * attribution and "date unknown" (or `--datetime`) are recorded; monitoring refuses a tile
 * service; a tile service without an AOI is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runCli } from './support/cli.js';
import { runPmtilesCli } from './support/pmtiles-cli.js';
import { sharedData } from './support/shared-data.js';
import { makeXyzTiles, startStaticServer, type LoopbackServer } from './support/tile-servers.js';
import { GDAL_PYTHON, requireGdal } from './support/tools.js';

const run = promisify(execFile);
const SECRET = 'SECRET-KEY-123';

let work: string;
let tiles: LoopbackServer;
let env: NodeJS.ProcessEnv;
let aoi: string;

beforeAll(async () => {
  requireGdal();
  work = mkdtempSync(join(tmpdir(), 'geo-dino-tiles-cli-'));
  await makeXyzTiles(sharedData('rasterio', 'cogeo.tif'), join(work, 'xyz'), '17-18');
  tiles = await startStaticServer(join(work, 'xyz'));
  env = { GEO_DINO_HOME: join(work, 'home') };
  aoi = join(work, 'aoi.geojson');
  // Inside cogeo.tif (128.6554-128.6609 E, 37.6664-37.6708 N).
  writeFileSync(aoi, JSON.stringify({ type: 'Polygon', coordinates: [[[128.6565, 37.6675], [128.6598, 37.6675], [128.6598, 37.67], [128.6565, 37.67], [128.6565, 37.6675]]] }));
}, 300_000);

afterAll(async () => {
  await tiles?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** GDAL's comparison of two chm.tif height bands: where both are valid, |a − b| statistics. */
async function compareHeights(a: string, b: string): Promise<{ both: number; onlyA: number; onlyB: number; meanAbs: number; p95: number; bias: number; meanB: number }> {
  const script = `
import json, sys
import numpy as np
from osgeo import gdal
da, db = gdal.Open(sys.argv[1]), gdal.Open(sys.argv[2])  # kept alive while their bands are read
a = da.GetRasterBand(1).ReadAsArray()
b = db.GetRasterBand(1).ReadAsArray()
va, vb = a != -9999, b != -9999
m = va & vb
d = (a[m] - b[m]).astype('float64')
print(json.dumps({'both': int(m.sum()), 'onlyA': int((va & ~vb).sum()), 'onlyB': int((vb & ~va).sum()), 'meanAbs': float(np.abs(d).mean()), 'p95': float(np.percentile(np.abs(d), 95)), 'bias': float(d.mean()), 'meanB': float(b[m].mean())}))
`;
  const { stdout } = await run(GDAL_PYTHON, ['-c', script, a, b]);
  return JSON.parse(stdout) as { both: number; onlyA: number; onlyB: number; meanAbs: number; p95: number; bias: number; meanB: number };
}

describe('geo-dino chm from a tile service', () => {
  it('equals the run from the COG within resampling tolerance; records template (redacted), zoom, attribution, date unknown', async () => {
    const fromTiles = join(work, 'run-xyz');
    const fromCog = join(work, 'run-cog');
    const template = `xyz:${tiles.url}/{z}/{x}/{y}.png?api_key=${SECRET}`;
    const a = await runCli(['chm', '--model', 'demo', '--aoi', aoi, '--imagery', template, '--attribution', '© Test Imagery 2024', '--out', fromTiles, '--quiet'], { env, timeoutMs: 300_000 });
    expect(a.code, a.stderr).toBe(0);
    const b = await runCli(['chm', '--model', 'demo', '--aoi', aoi, '--imagery', sharedData('rasterio', 'cogeo.tif'), '--out', fromCog, '--quiet'], { env, timeoutMs: 300_000 });
    expect(b.code, b.stderr).toBe(0);

    const c = await compareHeights(join(fromTiles, 'chm.tif'), join(fromCog, 'chm.tif'));
    // Reported in the issue: the height difference between the two runs.
    console.log(`chm from XYZ tiles vs from the COG: ${c.both} px valid in both, ${c.onlyA}/${c.onlyB} only in one; |Δh| mean ${c.meanAbs.toFixed(3)} m, p95 ${c.p95.toFixed(3)} m, bias ${c.bias.toFixed(3)} m (mean height ${c.meanB.toFixed(2)} m)`);
    expect(c.onlyA + c.onlyB).toBeLessThanOrEqual(0.01 * c.both);
    expect(c.meanAbs).toBeLessThan(1.0);
    expect(Math.abs(c.bias)).toBeLessThan(0.25);

    // No output holds the key.
    for (const f of readdirSync(fromTiles)) expect(readFileSync(join(fromTiles, f)).includes(SECRET), f).toBe(false);
    const prov = JSON.parse(readFileSync(join(fromTiles, 'provenance.geojson'), 'utf8')) as { features: { properties: Record<string, unknown> }[] };
    const p = prov.features[0]!.properties;
    expect(p['href']).toBe(`xyz:${tiles.url}/{z}/{x}/{y}.png?api_key=***`);
    expect(p['datetime']).toBeNull();
    expect(p['tile_service']).toMatchObject({ kind: 'xyz', zoom: '18', tile_matrix_set: 'WebMercatorQuad', attribution: '© Test Imagery 2024', date: 'unknown (tile services carry no acquisition date)' });
    const item = JSON.parse(readFileSync(join(fromTiles, 'item.json'), 'utf8')) as { properties: Record<string, unknown> };
    expect(item.properties['geo-dino:imagery_attribution']).toBe('© Test Imagery 2024');
    expect(item.properties['geo-dino:acquisition_unknown']).toBe(true);
    const meta = runPmtilesCli(['show', join(fromTiles, 'imagery.pmtiles'), '--metadata']);
    expect(meta.code, meta.output).toBe(0);
    expect((JSON.parse(meta.output) as { attribution: string }).attribution).toMatch(/Imagery: © Test Imagery 2024$/); // after the DEMO warning
  }, 600_000);

  it('--datetime and --zoom are recorded and honoured', async () => {
    const out = join(work, 'run-dated');
    const r = await runCli(['chm', '--model', 'demo', '--aoi', aoi, '--imagery', `xyz:${tiles.url}/{z}/{x}/{y}.png`, '--zoom', '17', '--datetime', '2024-05-01', '--out', out, '--quiet', '--no-web-tiles'], {
      env,
      timeoutMs: 300_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const prov = JSON.parse(readFileSync(join(out, 'provenance.geojson'), 'utf8')) as { features: { properties: Record<string, unknown> }[] };
    expect(prov.features[0]!.properties['datetime']).toBe('2024-05-01T00:00:00.000Z');
    expect(prov.features[0]!.properties['tile_service']).toMatchObject({ zoom: '17', date: 'given by --datetime' });
    const item = JSON.parse(readFileSync(join(out, 'item.json'), 'utf8')) as { properties: Record<string, unknown> };
    expect(item.properties['datetime']).toBe('2024-05-01T00:00:00.000Z');
  }, 600_000);

  it('a sharded run from a tile service: every shard records the service, no file holds the key', async () => {
    const out = join(work, 'run-sharded');
    const r = await runCli(['chm', '--model', 'demo', '--aoi', aoi, '--imagery', `xyz:${tiles.url}/{z}/{x}/{y}.png?api_key=${SECRET}`, '--attribution', 'Shard Attr', '--shard-size', '512', '--no-web-tiles', '--out', out, '--quiet'], {
      env,
      timeoutMs: 300_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { layout: string; sources: { href: string }[] };
    expect(run.layout).toBe('sharded');
    expect(run.sources[0]!.href).toContain('api_key=***');
    const files = readdirSync(out, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
    for (const f of files) expect(readFileSync(join(f.parentPath, f.name)).includes(SECRET), f.name).toBe(false);
    const items = files.filter((f) => f.name === 'item.json');
    expect(items.length).toBeGreaterThan(1);
    for (const f of items) {
      const props = (JSON.parse(readFileSync(join(f.parentPath, f.name), 'utf8')) as { properties: Record<string, unknown> }).properties;
      expect(props['geo-dino:imagery_attribution']).toBe('Shard Attr');
    }
  }, 600_000);

  it('raster warp from the tile service matches the warp of the COG (GDAL reads both)', async () => {
    const bbox = '128.6565,37.6675,128.6598,37.67';
    const a = join(work, 'warp-xyz.tif');
    const b = join(work, 'warp-cog.tif');
    const r1 = await runCli(['raster', 'warp', `xyz:${tiles.url}/{z}/{x}/{y}.png`, '--bbox', bbox, '--out', a, '--quiet'], { env, timeoutMs: 300_000 });
    expect(r1.code, r1.stderr).toBe(0);
    const r2 = await runCli(['raster', 'warp', sharedData('rasterio', 'cogeo.tif'), '--bbox', bbox, '--out', b, '--quiet'], { env, timeoutMs: 300_000 });
    expect(r2.code, r2.stderr).toBe(0);
    const script = `
import json, sys
import numpy as np
from osgeo import gdal
da, db = gdal.Open(sys.argv[1]), gdal.Open(sys.argv[2])
a = da.ReadAsArray().astype('int32')
b = db.ReadAsArray().astype('int32')
m = (a[3] == 255) & (b[3] == 255)
d = np.abs(a[:3, m] - b[:3, m])
print(json.dumps({'shape': [list(a.shape), list(b.shape)], 'both': int(m.sum()), 'either': int(((a[3] == 255) | (b[3] == 255)).sum()), 'meanAbs': float(d.mean()), 'p99': float(np.percentile(d, 99))}))
`;
    const { stdout } = await run(GDAL_PYTHON, ['-c', script, a, b]);
    const c = JSON.parse(stdout) as { shape: number[][]; both: number; either: number; meanAbs: number; p99: number };
    console.log(`raster warp from XYZ tiles vs from the COG: ${c.both} of ${c.either} px valid in both; |ΔDN| mean ${c.meanAbs.toFixed(2)}, p99 ${c.p99}`);
    expect(c.shape[0]).toEqual(c.shape[1]);
    expect(c.both).toBeGreaterThanOrEqual(0.99 * c.either);
    expect(c.meanAbs).toBeLessThan(4);
  }, 600_000);

  it('refuses a tile service without an AOI, and monitoring a tile service', async () => {
    const r = await runCli(['chm', '--model', 'demo', '--imagery', `xyz:${tiles.url}/{z}/{x}/{y}.png?token=${SECRET}`, '--out', join(work, 'never')], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--aoi: is required with a tile service \(xyz:http:\/\/127\.0\.0\.1:\d+\/\{z\}\/\{x\}\/\{y\}\.png\?token=\*\*\*\)/);
    expect(r.stderr).not.toContain(SECRET);
    const m = await runCli(['monitor', 'add', 'forest', '--aoi', aoi, '--schedule', '@weekly', '--imagery', `wmts:${tiles.url}/caps.xml`, '--model', 'demo'], { env });
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/--imagery wmts:.*: a tile service carries no acquisition date/);
  }, 120_000);
});
