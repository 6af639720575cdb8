/**
 * `geo-dino publish` (issue 17): a static site of runs.
 * - Two GDAL-made runs of one area: the site holds the viewer, site.json (static mode, basemap),
 *   runs.json (relative layer URLs, the COG grids the browser reads), a STAC catalog, and the
 *   runs' files byte for byte; `--link` links them instead (relative links).
 * - A sharded run (`geo-dino chm --shard-size`): the static index lists the zone's shard COGs from
 *   the tile index; @geo-dino/zonal over those COGs (as the browser reads them: each COG alone,
 *   mosaicked by their windows) gives exactly the statistics and point values `geo-dino serve`
 *   computes from the zone VRT.
 * - Bad input: a run directory without web layers, a missing directory, an --out that is not a
 *   site: exit 2, one line naming it, nothing written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAoi } from '@geo-dino/geometry';
import { openRaster } from '@geo-dino/tiling';
import { rectangleAoi, writeSyntheticScene } from '@geo-dino/chm';
import { startServer, windowRaster, type RunInfo, type SiteConfig, type StatsResponse } from '@geo-dino/server';
import { MosaicRaster, polygonStats, valueAt } from '@geo-dino/zonal';
import { makeFixtureRoot, type FixtureRoot } from './support/fixture-runs.js';
import { validateStac } from './support/stac-validator.js';
import { runCli } from './support/cli.js';
import { chm, tempDir, writeJson } from './chm/helpers.js';

let dir: string;
let fx: FixtureRoot;
beforeAll(async () => {
  dir = tempDir('publish');
  fx = await makeFixtureRoot(join(dir, 'runs'));
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const runDirOf = (i: number): string => fx.runs[i]!.fixture.dir;

describe('geo-dino publish', () => {
  it('writes a static site of two runs of an area', async () => {
    const out = join(dir, 'site');
    const r = await runCli(['publish', runDirOf(0), runDirOf(1), '--out', out, '--basemap', 'https://tiles.example.org/style.json', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(out, 'index.html'))).toBe(true);
    const site = JSON.parse(readFileSync(join(out, 'site.json'), 'utf8')) as SiteConfig;
    expect(site).toMatchObject({ mode: 'static', basemap: 'https://tiles.example.org/style.json', runs: 'runs.json' });
    const { runs } = JSON.parse(readFileSync(join(out, 'runs.json'), 'utf8')) as { runs: RunInfo[] };
    expect(runs.map((x) => x.id)).toEqual(['2024-05-01', '2025-06-11']);
    // One area: the date picker offers both.
    expect(new Set(runs.map((x) => x.area)).size).toBe(1);
    for (const [i, run] of runs.entries()) {
      const src = runDirOf(i);
      expect(run.layers.map((l) => l.url)).toEqual(run.layers.map((l) => `data/${run.id}/${l.file}`));
      for (const l of run.layers) expect(readFileSync(join(out, l.url)).equals(readFileSync(join(src, l.file)))).toBe(true);
      expect(readFileSync(join(out, 'data', run.id, 'chm.tif')).equals(readFileSync(join(src, 'chm.tif')))).toBe(true);
      // The grid the browser reads, as the tiler (GDAL-checked elsewhere) sees chm.tif.
      const cog = await openRaster(join(src, 'chm.tif'));
      const h = run.static!.heights[0]!;
      expect(h).toMatchObject({ name: 'chm.tif', width: cog.info.width, height: cog.info.height, bandCount: 2, geoTransform: [...cog.info.geoTransform!] });
      expect(h.parts).toEqual([{ href: `data/${run.id}/chm.tif`, x: 0, y: 0, width: cog.info.width, height: cog.info.height }]);
      expect(h.crs.definition).toBe(cog.info.crs!.definition);
      await cog.close();
      expect(run.static!.provenance).toBe(`data/${run.id}/provenance.geojson`);
    }
    const catalog = JSON.parse(readFileSync(join(out, 'catalog.json'), 'utf8')) as { type: string; links: { rel: string; href: string }[] };
    expect(catalog.type).toBe('Catalog');
    expect(catalog.links.filter((l) => l.rel === 'item').map((l) => l.href)).toEqual(runs.map((x) => `./data/${x.id}/item.json`));
    // The catalog and the Items it links are valid STAC (stac-node-validator, offline schemas).
    const v = validateStac([join(out, 'catalog.json'), ...runs.map((x) => join(out, 'data', x.id, 'item.json'))]);
    expect(v.ok, v.output).toBe(true);
    // Published again over itself: replaced.
    const again = await runCli(['publish', runDirOf(1), '--out', out]);
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(readFileSync(join(out, 'runs.json'), 'utf8')) as { runs: RunInfo[] }).runs.map((x) => x.id)).toEqual(['2025-06-11']);
    expect(existsSync(join(out, 'data', '2024-05-01'))).toBe(false);
  }, 120_000);

  it('links the run directories with --link (relative links)', async () => {
    const out = join(dir, 'linked');
    const r = await runCli(['publish', runDirOf(0), '--out', out, '--link']);
    expect(r.code, r.stderr).toBe(0);
    const data = join(out, 'data', '2024-05-01');
    expect(lstatSync(data).isSymbolicLink()).toBe(true);
    expect(readlinkSync(data).startsWith('/')).toBe(false);
    expect(readFileSync(join(data, 'chm.pmtiles')).equals(readFileSync(join(runDirOf(0), 'chm.pmtiles')))).toBe(true);
  }, 60_000);

  it('refuses a run directory without web layers, a missing one, and an --out that is not a site', async () => {
    const bare = join(dir, 'bare');
    mkdirSync(bare, { recursive: true });
    writeFileSync(join(bare, 'run.json'), '{}');
    const out = join(dir, 'never');
    const r = await runCli(['publish', runDirOf(0), bare, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bare: no web layers');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(out)).toBe(false);
    const missing = await runCli(['publish', join(dir, 'nope'), '--out', out]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope: no such run directory');
    const occupied = join(dir, 'occupied');
    mkdirSync(occupied);
    writeFileSync(join(occupied, 'notes.txt'), 'mine');
    const o = await runCli(['publish', runDirOf(0), '--out', occupied]);
    expect(o.code).toBe(2);
    expect(o.stderr).toContain('is not a site geo-dino published');
    expect(readFileSync(join(occupied, 'notes.txt'), 'utf8')).toBe('mine');
    const bad = await runCli(['publish', runDirOf(0), '--out', out, '--basemap', 'not a url']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--basemap');
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('publishes a sharded run: the shard COGs found through the tile index give the server statistics exactly', async () => {
    const home = join(dir, 'home');
    const scene = join(dir, 'scene.tif');
    const s = await writeSyntheticScene(scene, { size: 1100, seed: 5 });
    const aoi = rectangleAoi(s.epsg, s.transform, 1100, 1100, 0.05, 'scene');
    const aoiPath = writeJson(join(dir, 'aoi.geojson'), { type: 'MultiPolygon', coordinates: aoi.geometry });
    const runDir = join(dir, 'national', 'sharded');
    const made = await chm(['--model', 'demo', '--aoi', aoiPath, '--imagery', scene, '--tile-size', '256', '--overlap', '32', '--out', runDir, '--shard-size', '512'], home, { timeoutMs: 400_000 });
    expect(made.code, made.stderr).toBe(0);
    const index = JSON.parse(readFileSync(join(runDir, 'shards.geojson'), 'utf8')) as { features: { properties: { location: string } }[] };
    expect(index.features.length).toBeGreaterThan(1);

    const out = join(dir, 'sharded-site');
    const r = await runCli(['publish', runDir, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const { runs } = JSON.parse(readFileSync(join(out, 'runs.json'), 'utf8')) as { runs: RunInfo[] };
    const run = runs[0]!;
    expect(run.layers.some((l) => l.file === 'chm.pmtiles')).toBe(true);
    const zone = run.static!.heights[0]!;
    expect(zone.name).toMatch(/^chm-\d+[NS]\.vrt$/);
    expect(zone.parts.map((p) => p.href).sort()).toEqual(index.features.map((f) => `data/sharded/${f.properties.location}`).sort());
    for (const p of zone.parts) expect(existsSync(join(out, p.href))).toBe(true);

    // The browser's way (each shard COG alone, placed by its window) against the server's (the VRT).
    const opened: Awaited<ReturnType<typeof openRaster>>[] = [];
    const grid = await openRaster(join(runDir, zone.name));
    const mosaic = new MosaicRaster(
      { ...windowRaster(grid), name: zone.name },
      zone.parts.map((p) => ({
        ...p,
        open: async () => {
          const src = await openRaster(join(out, p.href));
          opened.push(src);
          return windowRaster(src);
        },
      })),
    );
    const srv = await startServer({ root: join(dir, 'national'), port: 0 });
    try {
      const [w, so, e, n] = aoi.bbox;
      const poly = { type: 'Polygon', coordinates: [[[w + (e - w) * 0.2, so + (n - so) * 0.15], [w + (e - w) * 0.85, so + (n - so) * 0.25], [w + (e - w) * 0.7, so + (n - so) * 0.9], [w + (e - w) * 0.1, so + (n - so) * 0.7], [w + (e - w) * 0.2, so + (n - so) * 0.15]]] };
      const res = await fetch(`${srv.url}api/stats?run=sharded`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(poly) });
      const want = (await res.json()) as StatsResponse;
      expect(want.pixels.valid).toBeGreaterThan(10_000);
      const got = await polygonStats(mosaic, parseAoi(poly, 'poly'), { maxPixels: 1e9 });
      const { run: _r, polygon: _p, ...wantStats } = want;
      expect(got).toEqual(wantStats);
      for (const [fx2, fy] of [[0.3, 0.3], [0.52, 0.48], [0.8, 0.7]] as const) {
        const lon = w + (e - w) * fx2;
        const lat = so + (n - so) * fy;
        const p = (await (await fetch(`${srv.url}api/point?run=sharded&lon=${lon}&lat=${lat}`)).json()) as { height_m: number | null; uncertainty_m: number | null };
        const v = await valueAt(mosaic, lon, lat, [0, 1]);
        expect(v.values).toEqual([p.height_m, p.uncertainty_m]);
      }
    } finally {
      await srv.close();
      await grid.close();
      for (const o of opened) await o.close();
    }
  }, 600_000);
});
