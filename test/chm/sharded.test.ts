/**
 * National-scale layout (issue 13): the global shard grid, sharded run directories, shard-level
 * resume, dry runs.
 *
 * - A run cut into small shards equals the single-shard run of the same grid, pixel for pixel
 *   (GDAL reads the zone VRT of the sharded run and the chm.tif of the single run).
 * - Resume: a run interrupted after some shards, with one written shard corrupted on disk,
 *   recomputes that shard (checksum) and ends equal to the reference.
 * - Zones: Kenya's AOI is split into zone parts whose areas add up to the AOI's (no gap, no
 *   overlap), planned in a dry run on a coarse raster.
 * - Bad input: a shard size that is not a multiple of the block size.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { rectangleAoi, runChm, writeSyntheticScene, stateDirFor } from '@geo-dino/chm';
import { geodesicArea, loadAoi } from '@geo-dino/geometry';
import { zonePartsOf } from '@geo-dino/tiling';
import { sharedData } from '../support/shared-data.js';
import { PMTiles } from 'pmtiles';
import { LocalSource, startServer } from '@geo-dino/server';
import { GDAL_PYTHON, requireGdal } from '../support/tools.js';
import { chm, gdalBand, readJson, tempDir, writeJson } from './helpers.js';

let dir: string;
let home: string;
let scene: string;
let aoiPath: string;
beforeAll(async () => {
  dir = tempDir('sharded');
  home = join(dir, 'home');
  scene = join(dir, 'scene.tif');
  const s = await writeSyntheticScene(scene, { size: 1400, seed: 3 });
  const aoi = rectangleAoi(s.epsg, s.transform, 1400, 1400, 0.05, 'scene');
  aoiPath = writeJson(join(dir, 'aoi.geojson'), { type: 'MultiPolygon', coordinates: aoi.geometry });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const common = (): string[] => ['--model', 'demo', '--aoi', aoiPath, '--imagery', scene, '--tile-size', '256', '--overlap', '32'];

/** Every tile of the finest zoom of an archive (read with the reference `pmtiles` JS reader), keyed by x/y. */
async function finestTiles(path: string): Promise<Map<string, string>> {
  const p = new PMTiles(new LocalSource(path));
  const h = await p.getHeader();
  const z = h.maxZoom;
  const n = 2 ** z;
  const tx = (lon: number): number => Math.floor(((lon + 180) / 360) * n);
  const ty = (lat: number): number => Math.floor(((1 - Math.log(Math.tan((lat * Math.PI) / 180) + 1 / Math.cos((lat * Math.PI) / 180)) / Math.PI) / 2) * n);
  const out = new Map<string, string>();
  for (let x = tx(h.minLon); x <= tx(h.maxLon); x++) {
    for (let y = ty(h.maxLat); y <= ty(h.minLat); y++) {
      const t = await p.getZxy(z, x, y);
      if (t) out.set(`${x}/${y}`, Buffer.from(t.data).toString('base64'));
    }
  }
  return out;
}

/** Both bands of a raster GDAL opens, as arrays. */
function bands(path: string): { width: number; height: number; values: Float64Array }[] {
  return [gdalBand(path, 1), gdalBand(path, 2)];
}

describe('sharded runs', () => {
  let single: ReturnType<typeof bands>;
  it('a single-shard run keeps the simple layout', async () => {
    const out = join(dir, 'single');
    const r = await chm([...common(), '--out', out, '--shard-size', '65536'], home, { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(out, 'chm.tif'))).toBe(true);
    expect(existsSync(join(out, 'shards'))).toBe(false);
    single = bands(join(out, 'chm.tif'));
  }, 300_000);

  it('equals the single-shard run pixel for pixel when cut into 512-px shards', async () => {
    requireGdal();
    const out = join(dir, 'sharded');
    const r = await chm([...common(), '--out', out, '--shard-size', '512'], home, { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const run = readJson<{ layout: string; shards: { count: number; zones: { vrt: string }[] }; tiles: { total: number; predicted: number; empty: number; released: number } }>(join(out, 'run.json'));
    expect(run.layout).toBe('sharded');
    expect(run.shards.count).toBeGreaterThan(4);
    // Every tile predicted (once per processing band it meets), every stored copy deleted once its shards were written.
    expect(run.tiles.predicted + run.tiles.empty).toBeGreaterThanOrEqual(run.tiles.total);
    expect(run.tiles.released).toBe(run.tiles.predicted + run.tiles.empty);
    const vrt = join(out, run.shards.zones[0]!.vrt);
    const sharded = bands(vrt);
    for (let b = 0; b < 2; b++) {
      expect([sharded[b]!.width, sharded[b]!.height]).toEqual([single[b]!.width, single[b]!.height]);
      let diff = 0;
      for (let i = 0; i < single[b]!.values.length; i++) if (single[b]!.values[i] !== sharded[b]!.values[i]) diff++;
      expect(diff, `band ${b + 1}: pixels that differ`).toBe(0);
    }
    // The tile index opens in GDAL/OGR with one feature per shard and the COG's location.
    const ogr = execFileSync(GDAL_PYTHON, ['-c', `from osgeo import ogr; ds = ogr.Open(${JSON.stringify(join(out, 'shards.geojson'))}); l = ds.GetLayer(0); print(l.GetFeatureCount()); print(l.GetNextFeature().GetField('location'))`], { encoding: 'utf8' }).trim().split('\n');
    expect(Number(ogr[0])).toBe(run.shards.count);
    expect(existsSync(join(out, ogr[1]!))).toBe(true);
    // The STAC collection links every shard's Item.
    const coll = readJson<{ links: { rel: string; href: string }[] }>(join(out, 'collection.json'));
    expect(coll.links.filter((l) => l.rel === 'item')).toHaveLength(run.shards.count);
    // One height pyramid over every shard: its finest tiles equal the single run's, tile for tile.
    const a = await finestTiles(join(dir, 'single', 'chm.pmtiles'));
    const b = await finestTiles(join(out, 'chm.pmtiles'));
    expect(a.size).toBeGreaterThan(4);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [k, v] of a) expect(b.get(k), `tile ${k}`).toBe(v);
  }, 300_000);

  it('bands one shard wide predict band-border tiles again and still give the same pixels', async () => {
    const out = join(dir, 'banded');
    const r = await chm([...common(), '--out', out, '--shard-size', '512', '--band-width', '1', '--no-web-tiles'], home, { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const run = readJson<{ shards: { zones: { vrt: string }[] }; tiles: { total: number; predicted: number; empty: number; released: number } }>(join(out, 'run.json'));
    expect(run.tiles.predicted + run.tiles.empty).toBeGreaterThan(run.tiles.total);
    expect(run.tiles.released).toBe(run.tiles.predicted + run.tiles.empty);
    const banded = bands(join(out, run.shards.zones[0]!.vrt));
    for (let b = 0; b < 2; b++) {
      let diff = 0;
      for (let i = 0; i < single[b]!.values.length; i++) if (single[b]!.values[i] !== banded[b]!.values[i]) diff++;
      expect(diff, `band ${b + 1}: pixels that differ`).toBe(0);
    }
    rmSync(out, { recursive: true, force: true });
  }, 300_000);

  it('geo-dino serve answers points and polygon statistics of the sharded run as of the single run', async () => {
    const srv = await startServer({ root: dir, port: 0, viewerDir: dir });
    try {
      const runs = (await (await fetch(`${srv.url}api/runs`)).json()) as { runs: { id: string; files: { chm: boolean } }[] };
      const ids = runs.runs.map((r) => r.id).sort();
      // The shard folders are parts of the sharded run, not runs of their own.
      expect(ids).toEqual(['sharded', 'single']);
      const item = readJson<{ bbox: number[] }>(join(dir, 'single', 'item.json'));
      const [w, s, e, n] = item.bbox as [number, number, number, number];
      for (const [fx, fy] of [
        [0.3, 0.3],
        [0.5, 0.5],
        [0.71, 0.22],
      ] as const) {
        const q = `lon=${w + fx * (e - w)}&lat=${s + fy * (n - s)}`;
        const a = (await (await fetch(`${srv.url}api/point?run=single&${q}`)).json()) as { height_m: number | null; uncertainty_m: number | null };
        const b = (await (await fetch(`${srv.url}api/point?run=sharded&${q}`)).json()) as { height_m: number | null; uncertainty_m: number | null };
        expect(a.height_m).not.toBeNull();
        expect([b.height_m, b.uncertainty_m]).toEqual([a.height_m, a.uncertainty_m]);
      }
      const poly = { type: 'Polygon', coordinates: [[[w + 0.2 * (e - w), s + 0.2 * (n - s)], [w + 0.8 * (e - w), s + 0.25 * (n - s)], [w + 0.6 * (e - w), s + 0.8 * (n - s)], [w + 0.2 * (e - w), s + 0.2 * (n - s)]]] };
      const post = async (run: string): Promise<Record<string, unknown>> => {
        const r = await fetch(`${srv.url}api/stats?run=${run}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(poly) });
        expect(r.status).toBe(200);
        const j = (await r.json()) as Record<string, unknown>;
        delete j['run'];
        return j;
      };
      const a = await post('single');
      expect((a['pixels'] as { valid: number }).valid).toBeGreaterThan(1000);
      expect(await post('sharded')).toEqual(a);
    } finally {
      await srv.close();
    }
  }, 120_000);

  it('resumes at the first unfinished shard and recomputes a shard corrupted on disk', async () => {
    const out = join(dir, 'resumed');
    const state = stateDirFor(out);
    const ac = new AbortController();
    const ledger = join(state, 'shards');
    const poll = setInterval(() => {
      if (existsSync(ledger) && readdirSync(ledger).filter((n) => n.endsWith('.json')).length >= 3) ac.abort();
    }, 20);
    const opts = { model: 'demo', aoi: aoiPath, imagery: [scene], tileSize: 256, overlap: 32, shardSize: 512, webTiles: false, out, device: 'cpu' as const, env: { ...process.env, GEO_DINO_HOME: home } };
    await expect(runChm({ ...opts, signal: ac.signal })).rejects.toMatchObject({ code: 'E_CANCELLED' });
    clearInterval(poll);
    const done = readdirSync(ledger).filter((n) => n.endsWith('.json'));
    expect(done.length).toBeGreaterThanOrEqual(3);
    // Corrupt one written shard's COG (same size, other bytes).
    const victim = done[0]!.replace(/\.json$/, '');
    const cog = join(state, 'out', 'shards', victim, 'chm.tif');
    const bytes = readFileSync(cog);
    for (let i = bytes.length - 4096; i < bytes.length; i++) bytes[i] = bytes[i]! ^ 0xff;
    writeFileSync(cog, bytes);
    const r = await runChm({ ...opts, resume: true });
    const run = r.run as { shards: { count: number }; state: { shardsResumed: number; shardsWritten: number } };
    expect(run.state.shardsResumed).toBe(done.length - 1);
    expect(run.state.shardsWritten).toBe(run.shards.count - (done.length - 1));
    const resumed = bands(join(out, 'chm-' + readJson<{ shards: { zones: { zone: string }[] } }>(join(out, 'run.json')).shards.zones[0]!.zone + '.vrt'));
    for (let b = 0; b < 2; b++) {
      let diff = 0;
      for (let i = 0; i < single[b]!.values.length; i++) if (single[b]!.values[i] !== resumed[b]!.values[i]) diff++;
      expect(diff, `band ${b + 1}: pixels that differ after resume`).toBe(0);
    }
  }, 300_000);

  it('a run that failed reports its real error again on a rerun, and --resume continues it (issue 14, finding 9)', async () => {
    const out = join(dir, 'failing');
    const state = stateDirFor(out);
    const ac = new AbortController();
    const poll = setInterval(() => {
      if (existsSync(join(state, 'plan.json'))) ac.abort();
    }, 10);
    const opts = { model: 'demo', aoi: aoiPath, imagery: [scene], tileSize: 256, overlap: 32, shardSize: 65536, webTiles: false, out, device: 'cpu' as const, env: { ...process.env, GEO_DINO_HOME: home } };
    await expect(runChm({ ...opts, signal: ac.signal })).rejects.toMatchObject({ code: 'E_CANCELLED' });
    clearInterval(poll);
    // A file where the tile store wants a folder: every tile write fails.
    mkdirSync(join(state, 'tiles'), { recursive: true });
    writeFileSync(join(state, 'tiles', '0'), 'in the way');
    const args = [...common(), '--out', out, '--shard-size', '65536', '--no-web-tiles'];
    const failed = await chm([...args, '--resume'], home, { timeoutMs: 300_000 });
    expect(failed.code).toBe(1);
    const again = await chm(args, home, { timeoutMs: 300_000 });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/tiles\/0.*this run failed with it before; fix the cause and rerun with --resume/s);
    expect(again.stderr).not.toMatch(/an interrupted run/);
    rmSync(join(state, 'tiles', '0'));
    const resumed = await chm([...args, '--resume'], home, { timeoutMs: 300_000 });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(existsSync(state)).toBe(false);
    rmSync(out, { recursive: true, force: true });
  }, 300_000);

  it('refuses a shard size that is not a multiple of the block size', async () => {
    const r = await chm([...common(), '--out', join(dir, 'bad'), '--shard-size', '1000'], home);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--shard-size: .*multiple of (the )?512/);
    expect(existsSync(join(dir, 'bad'))).toBe(false);
  });
});

describe('zones and dry runs', () => {
  it('maps an AOI across a UTM zone border in both zones with no gap (valid area = AOI area)', async () => {
    requireGdal();
    // A 0.6 m scene in zone 36N whose eastern part lies past 36°E, in zone 37.
    const sceneZ = join(dir, 'scene-zones.tif');
    const s = await writeSyntheticScene(sceneZ, { size: 1200, seed: 9, origin: [833_500, 32_400] });
    const aoi = rectangleAoi(s.epsg, s.transform, 1200, 1200, 40, 'zones');
    const aoiZ = writeJson(join(dir, 'aoi-zones.geojson'), { type: 'MultiPolygon', coordinates: aoi.geometry });
    const out = join(dir, 'zones');
    const r = await chm(['--model', 'demo', '--aoi', aoiZ, '--imagery', sceneZ, '--out', out, '--tile-size', '256', '--overlap', '32', '--no-web-tiles'], home, { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const run = readJson<{ zones: { zone: string }[]; shards: { zones: { zone: string; vrt: string }[] } }>(join(out, 'run.json'));
    expect(run.zones.map((z) => z.zone)).toEqual(['36N', '37N']);
    // GDAL counts the valid pixels of each zone's VRT; their ground area adds up to the AOI's.
    let area = 0;
    for (const z of run.shards.zones) {
      const b = gdalBand(join(out, z.vrt), 1);
      let n = 0;
      for (const v of b.values) if (v !== -9999) n++;
      expect(n, z.zone).toBeGreaterThan(10_000);
      area += n * 0.36;
    }
    const geodesic = geodesicArea(aoi.geometry);
    // Transverse Mercator near the zone edges scales areas by k² ≈ 1.0008 (3° from the central meridian).
    expect(Math.abs(area - geodesic) / geodesic).toBeLessThan(0.005);
    rmSync(out, { recursive: true, force: true });
  }, 300_000);

  it('splits Kenya by UTM zone and hemisphere with no gap: the parts add up to the AOI', async () => {
    const aoi = await loadAoi(sharedData('aoi', 'kenya.geojson'));
    const parts = zonePartsOf(aoi.geometry);
    expect(parts.map((p) => p.zone).sort()).toEqual(['36N', '36S', '37N', '37S']);
    const sum = parts.reduce((a, p) => a + geodesicArea(p.geometry), 0);
    expect(Math.abs(sum - aoi.areaM2) / aoi.areaM2).toBeLessThan(1e-6);
  });

  it('plans AOIs much larger than the imagery on AOI ∩ imagery, up to the whole world (issue 14, finding 2)', async () => {
    const cogeo = sharedData('rasterio', 'cogeo.tif');
    const box = (name: string, ring: number[][]): string => writeJson(join(dir, `${name}.geojson`), { type: 'Polygon', coordinates: [ring] });
    const dry = async (aoi: string): Promise<{ code: number | null; plan: { zones: { zone: string; width: number; height: number; tiles: number }[]; shards: number; tiles: number; aoi: { areaKm2: number } } | null; stderr: string }> => {
      const r = await chm(['--model', 'demo', '--aoi', aoi, '--imagery', cogeo, '--dry-run', '--rate', '1', '--json'], home, { timeoutMs: 120_000 });
      return { code: r.code, plan: r.code === 0 ? JSON.parse(r.stdout) : null, stderr: r.stderr };
    };
    // 1.5° × 1.5° around the 600 m scene: the grid is the scene's, not the AOI's 222,444 × 278,159.
    const around = await dry(box('around', [[127.9, 36.9], [129.4, 36.9], [129.4, 38.4], [127.9, 38.4], [127.9, 36.9]]));
    expect(around.code, around.stderr).toBe(0);
    expect(around.plan!.zones.map((z) => z.zone)).toEqual(['52N']);
    expect(Math.max(around.plan!.zones[0]!.width, around.plan!.zones[0]!.height)).toBeLessThan(1200);
    expect(around.plan!.tiles).toBeLessThanOrEqual(9);
    // The exact world box: the whole Earth (≈ 510 million km²), planned on the scene's zone alone.
    const world = await dry(box('world', [[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]));
    expect(world.code, world.stderr).toBe(0);
    expect(Math.abs(world.plan!.aoi.areaKm2 - 510_065_621.7) / 510_065_621.7).toBeLessThan(1e-6);
    expect(world.plan!.zones.map((z) => z.zone)).toEqual(['52N']);
    expect(world.plan!.tiles).toBe(around.plan!.tiles);
    // An edge from 179° to -179° crosses the antimeridian by this project's convention: the
    // error says so and how to write a near-world AOI instead.
    const strip = await dry(box('strip', [[-179, -80], [179, -80], [179, 80], [-179, 80], [-179, -80]]));
    expect(strip.code).toBe(2);
    expect(strip.stderr).toMatch(/does not overlap the imagery .*read as crossing the antimeridian.*use --bbox/);
    const bbox = await chm(['--model', 'demo', '--bbox', '-179,-80,179,80', '--imagery', cogeo, '--dry-run', '--rate', '1', '--json'], home, { timeoutMs: 120_000 });
    expect(bbox.code, bbox.stderr).toBe(0);
    expect((JSON.parse(bbox.stdout) as { tiles: number }).tiles).toBe(around.plan!.tiles);
  }, 300_000);

  it('plans Kenya on a coarse raster in a dry run without predicting', async () => {
    requireGdal();
    const raster = join(dir, 'kenya-rgb.tif');
    execFileSync(GDAL_PYTHON, [
      '-c',
      `from osgeo import gdal
ds = gdal.GetDriverByName('GTiff').Create(${JSON.stringify(raster)}, 400, 400, 3, gdal.GDT_Byte, ['TILED=YES'])
ds.SetGeoTransform((33.5, 9.0 / 400, 0, 5.5, 0, -10.5 / 400)); ds.SetProjection('EPSG:4326')
for i, c in enumerate((gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand)):
    b = ds.GetRasterBand(i + 1); b.Fill(60 + 40 * i); b.SetColorInterpretation(c)
ds = None`,
    ]);
    const r = await chm(['--model', 'demo', '--aoi', sharedData('aoi', 'kenya.geojson'), '--imagery', raster, '--out', join(dir, 'kenya'), '--dry-run', '--rate', '2', '--json'], home, { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as { zones: { zone: string; aoiKm2: number; shards: number; tiles: number }[]; shards: number; tiles: number; aoi: { areaKm2: number }; estimatedSeconds: number; layout: string };
    expect(plan.layout).toBe('sharded');
    expect(plan.zones.map((z) => z.zone).sort()).toEqual(['36N', '36S', '37N', '37S']);
    // Kenya is ≈ 580,000 km²: ≈ 8 million 512² tiles with 64 px overlap at 0.6 m, 24 km² shards.
    expect(plan.tiles).toBeGreaterThan(7_000_000);
    expect(plan.tiles).toBeLessThan(9_500_000);
    expect(plan.shards).toBe(plan.zones.reduce((n, z) => n + z.shards, 0));
    expect(plan.shards).toBeGreaterThan(20_000);
    const zoneArea = plan.zones.reduce((a, z) => a + z.aoiKm2, 0);
    expect(Math.abs(zoneArea - plan.aoi.areaKm2) / plan.aoi.areaKm2).toBeLessThan(1e-4);
    expect(plan.estimatedSeconds).toBe(Math.round(plan.tiles / 2));
    expect(existsSync(join(dir, 'kenya'))).toBe(false);

    // The same country cut into 512-px shards is an absurd plan without --force: refused before
    // anything is predicted or written, with the figures.
    const absurd = await chm(['--model', 'demo', '--aoi', sharedData('aoi', 'kenya.geojson'), '--imagery', raster, '--out', join(dir, 'kenya'), '--shard-size', '512'], home, { timeoutMs: 120_000 });
    expect(absurd.code).toBe(2);
    expect(absurd.stderr).toMatch(/the plan has \d+\+? shards and \d+ tiles .*needs --force/);
    expect(existsSync(join(dir, 'kenya'))).toBe(false);
    expect(existsSync(join(dir, '.kenya.geo-dino-state'))).toBe(false);
  }, 180_000);
});
