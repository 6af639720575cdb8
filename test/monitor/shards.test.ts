/**
 * Monitoring at regional scale (issue 13, item 7): a region on the global shard grid.
 *
 * A region of several shards (`shardSize` 1024 over a 1500 × 1500 px synthetic scene, demo model)
 * is run once (every shard computed), then a new scene arrives that covers the inside of one tile
 * of one shard (the shards whose pixels it can change are those of the tiles over it: one):
 * - exactly that shard is recomputed; every file of the first run is untouched (sha256 and mtime,
 *   read here), the store's per-shard history has one new row, for that shard;
 * - its change is computed against its previous result only, and equals GDAL's (numpy loss mask,
 *   gdal.Polygonize) on the two results of that shard;
 * - the region's current map (zone VRT over each shard's latest result) equals, pixel for pixel
 *   (GDAL), an independent full `geo-dino chm` run over all the imagery with the same shard size,
 *   and the run's statistics (combined from the shards') equal GDAL/numpy's over that map;
 * - a new scene near a shard border recomputes every shard of the tiles over it (computed here),
 *   and the current map still equals a full run;
 * - on a queue (real redis-server), a sharded region's shards are worker jobs, and its current map
 *   equals the full run;
 * - with no newer imagery the next run is skipped.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChm } from '@geo-dino/chm';
import { silentLogger } from '@geo-dino/core';
import { discoverRuns } from '@geo-dino/server';
import { ManualClock, MonitorStore, addRegion, createExecutor, monitorPaths, regionHistory, runRegionNow, runTileWorker, type MonitorPaths, type RunRecord } from '@geo-dino/monitor';
import { GDAL_PYTHON, requireGdal } from '../support/tools.js';
import { ORIGIN, makeScenes, type SceneSpec } from '../../packages/monitor/test/support/helpers.js';
import { startRedis } from '../../packages/monitor/test/support/redis.js';
import { validateStac } from '../support/stac-validator.js';
import { rasterDiff } from './support.js';

const CHANGE_ORACLE = fileURLToPath(new URL('../../packages/monitor/test/support/change_oracle.py', import.meta.url));
const STATS_ORACLE = fileURLToPath(new URL('../support/gdal-oracle.py', import.meta.url));
const SIZE = 1500;
const GSD = 0.6;
const SHARD = 1024;
const INSET = 30;

let root: string;
let home: string;
let paths: MonitorPaths;
let store: MonitorStore;
let clock: ManualClock;
const env = (): NodeJS.ProcessEnv => ({ ...process.env, GEO_DINO_HOME: home });

beforeAll(() => {
  requireGdal();
  root = mkdtempSync(join(tmpdir(), 'geo-dino-monitor-shards-'));
  home = join(root, 'home');
  paths = monitorPaths(home);
  store = MonitorStore.open(paths.store);
  clock = new ManualClock('2025-01-01T00:00:00Z');
});

afterAll(() => {
  store?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

function executor(): ReturnType<typeof createExecutor> {
  return createExecutor({ store, paths, clock, env: env(), webTiles: false, threads: 1 });
}

/** Every file under `dir`: relative path → sha256 and mtime (read here, independently of the code under test). */
function snapshot(dir: string): Map<string, { sha256: string; mtimeMs: number }> {
  const out = new Map<string, { sha256: string; mtimeMs: number }>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), { sha256: createHash('sha256').update(readFileSync(p)).digest('hex'), mtimeMs: statSync(p).mtimeMs });
    }
  };
  walk(dir);
  return out;
}

interface RunJson {
  zones: { zone: string; transform: number[]; width: number; height: number }[];
  tiling: { tileSize: number; stride: number };
}

describe('monitoring a region shard by shard', () => {
  let catalog: string;
  let aoi: string;
  let first: RunRecord;
  let secondRun: RunRecord;
  let chosen: string;
  const S2024: SceneSpec = { id: 's2024', datetime: '2024-06-01T08:00:00Z' };
  let S2025: SceneSpec;

  it('the first run computes every shard and records each in the per-shard history', async () => {
    ({ catalog, aoi } = makeScenes(join(root, 'imagery'), [S2024], [SIZE, SIZE]));
    await addRegion(store, paths, { name: 'wide', aoi, schedule: '0 3 * * 1', imagery: catalog, model: 'demo', shardSize: SHARD, lossThresholdM: 2, minAreaM2: 500 }, { env: env(), clock });
    expect(store.region('wide').shardSize).toBe(SHARD);
    clock.set('2025-01-06T03:00:00Z');
    first = await runRegionNow('wide', { store, paths, execute: executor(), clock });
    expect(first, first.errorMessage ?? '').toMatchObject({ status: 'succeeded', previousRun: null });
    const rows = store.shardResults(first.seq);
    expect(rows.length).toBeGreaterThanOrEqual(4);
    const run = JSON.parse(readFileSync(join(first.dir, 'run.json'), 'utf8')) as RunJson & { layout: string; shards: { count: number } };
    expect(run.layout).toBe('sharded');
    expect(run.shards.count).toBe(rows.length);
    expect(readdirSync(join(first.dir, 'shards')).sort()).toEqual(rows.map((r) => r.shardId).sort());
    for (const r of rows) {
      // The recorded checksum is the file's (hashed here).
      expect(createHash('sha256').update(readFileSync(join(paths.region('wide'), r.path))).digest('hex')).toBe(r.sha256);
      expect(r).toMatchObject({ run: first.id, status: 'computed', previousRunSeq: null, changes: null });
      expect(store.shardHistory('wide', r.shardId)).toHaveLength(1);
    }
    // The region's current map is this run's mosaic (GDAL reads both VRTs).
    const zone = run.zones[0]!.zone;
    const d = rasterDiff(join(paths.region('wide'), 'current', `chm-${zone}.vrt`), join(first.dir, `chm-${zone}.vrt`));
    expect(d).toMatchObject({ differing: 0, gt: true });

    // A tile that lies inside one shard and inside the AOI: the new scene covers its core only
    // (the part no other tile overlaps), so one shard's pixels can change.
    const z = run.zones[0]!;
    const { tileSize: T, stride } = run.tiling;
    const [gx, , , gy] = z.transform as [number, number, number, number, number, number];
    const aoiBox = [ORIGIN[0] + INSET, ORIGIN[1] - SIZE * GSD + INSET, ORIGIN[0] + SIZE * GSD - INSET, ORIGIN[1] - INSET];
    let core: [number, number, number, number] | null = null;
    for (let i = 0; !core && i * stride + T <= z.height; i++) {
      for (let j = 0; !core && j * stride + T <= z.width; j++) {
        const box = [gx + j * stride * GSD, gy - (i * stride + T) * GSD, gx + (j * stride + T) * GSD, gy - i * stride * GSD];
        // The tile's core (the part no other tile overlaps) inside the AOI, the tile inside a shard.
        const k = (T - stride) * GSD;
        const inAoi = box[0]! + k >= aoiBox[0]! && box[1]! + k >= aoiBox[1]! && box[2]! - k <= aoiBox[2]! && box[3]! - k <= aoiBox[3]!;
        const shard = rows.find((r) => box[0]! >= r.bounds[0] && box[1]! >= r.bounds[1] && box[2]! <= r.bounds[2] && box[3]! <= r.bounds[3]);
        if (inAoi && shard) {
          chosen = shard.shardId;
          const m = 12; // pixels of margin inside the core
          const px0 = j * stride + (T - stride) + m;
          const px1 = j * stride + stride - m;
          const py0 = i * stride + (T - stride) + m;
          const py1 = i * stride + stride - m;
          // Metres from the scenes' top-left corner.
          const ox = Math.round((gx - ORIGIN[0]) / GSD);
          const oy = Math.round((ORIGIN[1] - gy) / GSD);
          core = [(ox + px0) * GSD, (oy + py0) * GSD, (ox + px1) * GSD, (oy + py1) * GSD];
        }
      }
    }
    expect(core, `a tile inside one shard and the AOI (grid ${JSON.stringify(z)}, shards ${JSON.stringify(rows.map((r) => r.bounds))})`).not.toBeNull();
    const [a, b, c, e] = core!;
    const cx = (a + c) / 2;
    const cy = (b + e) / 2;
    // A 60 m × 60 m clearing in the middle of the new scene.
    S2025 = { id: 's2025', datetime: '2025-06-01T08:00:00Z', extent: core!, clear: [[Math.round((cx - 30) / GSD) * GSD, Math.round((cy - 30) / GSD) * GSD, Math.round((cx + 30) / GSD) * GSD, Math.round((cy + 30) / GSD) * GSD]] };
  }, 900_000);

  it('a new scene over one shard: that shard alone is recomputed and compared with its previous result', async () => {
    const before = snapshot(first.dir);
    const currentBefore = new Map(store.latestShardResults('wide').map((r) => [r.shardId, r]));
    makeScenes(join(root, 'imagery'), [S2024, S2025], [SIZE, SIZE]);
    clock.set('2025-06-09T03:00:00Z');
    // The work directory is kept (a resume from it is tested next).
    const second = await runRegionNow('wide', { store, paths, execute: createExecutor({ store, paths, clock, env: env(), webTiles: false, threads: 1, keepWork: true }), clock });
    secondRun = second;
    expect(second, second.errorMessage ?? '').toMatchObject({ status: 'succeeded', newerThan: '2024-06-01T08:00:00.000Z', acquiredEnd: '2025-06-01T08:00:00.000Z', sceneCount: 1, previousRun: first.id });
    // One shard recomputed, the others untouched.
    const rows = store.shardResults(second.seq);
    expect(rows.map((r) => r.shardId)).toEqual([chosen]);
    expect(readdirSync(join(second.dir, 'shards'))).toEqual([chosen]);
    // Every file of the first run is as it was (its item.json is rewritten in place by the region's
    // collection, with the same content).
    const after = snapshot(first.dir);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [f, b] of before) expect(after.get(f), f).toEqual(f === 'item.json' ? { ...b, mtimeMs: after.get(f)!.mtimeMs } : b);
    for (const [id, prev] of currentBefore) {
      const history = store.shardHistory('wide', id);
      expect(history.map((h) => h.run)).toEqual(id === chosen ? [second.id, first.id] : [first.id]);
      if (id !== chosen) expect(store.latestShardResults('wide').find((r) => r.shardId === id)).toMatchObject({ run: first.id, sha256: prev.sha256 });
    }
    const row = rows[0]!;
    expect(row).toMatchObject({ run: second.id, previousRunSeq: first.seq });
    expect(createHash('sha256').update(readFileSync(join(paths.region('wide'), row.path))).digest('hex')).toBe(row.sha256);
    // The change, against that shard's previous result, equals GDAL's.
    const prevChm = join(paths.region('wide'), currentBefore.get(chosen)!.path);
    const newChm = join(paths.region('wide'), row.path);
    const oracle = JSON.parse(execFileSync(GDAL_PYTHON, [CHANGE_ORACLE, 'oracle', prevChm, newChm, '2', '500'], { encoding: 'utf8', timeout: 120_000 }).trim().split('\n').pop()!) as { polygons: { pixels: number }[] };
    const changes = store.changes(second.seq);
    expect(changes.length).toBeGreaterThan(0);
    expect(changes.map((ch) => ch.pixels).sort((x, y) => y - x)).toEqual(oracle.polygons.map((p) => p.pixels).sort((x, y) => y - x));
    expect(row.changes).toBe(changes.length);
    const fc = JSON.parse(readFileSync(join(second.dir, 'change.geojson'), 'utf8')) as { features: { properties: Record<string, unknown> }[] };
    expect(fc.features).toHaveLength(changes.length);
    for (const f of fc.features) expect(f.properties).toMatchObject({ shard: chosen, run: second.id, previous_run: first.id });
    // The alert summarises the change per shard.
    const alerts = store.alerts({ runSeq: second.seq });
    expect(alerts).toHaveLength(1);
    const payload = JSON.parse(alerts[0]!.payload) as { changes: unknown[]; shards: { id: string; previous_run: string; changes: number; loss_raster: string }[]; files: { loss_raster: string } };
    expect(payload.changes).toHaveLength(changes.length);
    expect(payload.shards).toEqual([expect.objectContaining({ id: chosen, previous_run: first.id, changes: changes.length, loss_raster: join(second.dir, 'shards', chosen, 'loss.tif') })]);
    expect(existsSync(payload.shards[0]!.loss_raster)).toBe(true);
    expect(payload.files.loss_raster).toMatch(/loss-36N\.vrt$/);
    // Both runs are Items of the region's STAC Collection (valid STAC), the second's footprint that one shard's.
    const col = JSON.parse(readFileSync(paths.collection('wide'), 'utf8')) as { links: { rel: string; title: string }[] };
    expect(col.links.filter((l) => l.rel === 'item').map((l) => l.title)).toEqual([`wide-${first.id}`, `wide-${second.id}`]);
    const item = JSON.parse(readFileSync(join(second.dir, 'item.json'), 'utf8')) as { properties: Record<string, unknown>; assets: Record<string, unknown> };
    expect(item.properties).toMatchObject({ 'geo-dino:shards_recomputed': [chosen], 'geo-dino:previous_run': first.id });
    expect(Object.keys(item.assets).sort()).toEqual(['change', 'collection', 'shards', 'stats']);
    const v = validateStac([paths.collection('wide'), join(first.dir, 'item.json'), join(second.dir, 'item.json')]);
    expect(v.ok, v.output).toBe(true);
    expect(regionHistory(store, 'wide').runs[0]!.shards).toEqual([expect.objectContaining({ id: chosen, previousRun: first.id, changes: changes.length })]);
    const stats = JSON.parse(readFileSync(join(second.dir, 'stats.json'), 'utf8')) as { shards: { recomputed: number; planned: number } };
    expect(stats.shards).toMatchObject({ recomputed: 1, planned: currentBefore.size });
    // The current map points at the new result for that shard and the first run's for the others.
    const index = JSON.parse(readFileSync(join(paths.region('wide'), 'current', 'shards.geojson'), 'utf8')) as { features: { properties: { id: string; location: string } }[] };
    expect(index.features).toHaveLength(currentBefore.size);
    for (const f of index.features) expect(f.properties.location).toBe(`../${f.properties.id === chosen ? row.path : currentBefore.get(f.properties.id)!.path}`);
    const currentRun = JSON.parse(readFileSync(join(paths.region('wide'), 'current', 'run.json'), 'utf8')) as Record<string, unknown>;
    expect(currentRun).toMatchObject({ region: 'wide', current: true, layout: 'sharded', runs: [first.id, second.id].sort() });
    // The run's statistics are those of the current map (from the shards' own): against GDAL/numpy
    // over the current map's zone VRT, the AOI rasterised by GDAL.
    const geomPath = join(root, 'aoi-geometry.json');
    writeFileSync(geomPath, JSON.stringify((JSON.parse(readFileSync(paths.aoi('wide'), 'utf8')) as { features: { geometry: unknown }[] }).features[0]!.geometry));
    const zone = rows[0]!.zone;
    const o = JSON.parse(execFileSync(GDAL_PYTHON, [STATS_ORACLE, 'stats', join(paths.region('wide'), 'current', `chm-${zone}.vrt`), geomPath], { encoding: 'utf8', timeout: 120_000 }).trim().split('\n').pop()!) as { inside: number; valid: number; mean: number; max: number; gt2m: number; gt5m: number };
    const st = store.stats(second.seq)!;
    expect(Math.abs(st.pixelsInside - o.inside)).toBeLessThanOrEqual(Math.ceil(o.inside * 1e-4));
    expect(Math.abs(st.pixelsValid - o.valid)).toBeLessThanOrEqual(Math.ceil(o.valid * 1e-4));
    expect(st.meanHeightM!).toBeCloseTo(o.mean, 2);
    expect(st.maxHeightM!).toBeCloseTo(o.max, 4);
    expect(st.cover2mPercent!).toBeCloseTo(100 * o.gt2m, 1);
    expect(st.cover5mPercent!).toBeCloseTo(100 * o.gt5m, 1);
  }, 900_000);

  it('a run interrupted after its directory went into place records its shards when resumed', async () => {
    const rows = store.shardResults(secondRun.seq);
    const current = readFileSync(join(paths.region('wide'), 'current', 'shards.geojson'), 'utf8');
    // As if the process died right after the rename: no rows, no current map, the run not finished.
    store.setShardResults(secondRun.seq, []);
    rmSync(join(paths.region('wide'), 'current'), { recursive: true });
    store.updateRun(secondRun.seq, { status: 'queued', owner: null, phase: 'publish' });
    const resumed = await runRegionNow('wide', { store, paths, execute: executor(), clock });
    expect(resumed).toMatchObject({ id: secondRun.id, status: 'succeeded' });
    expect(store.shardResults(secondRun.seq).map((r) => ({ ...r, createdAt: null }))).toEqual(rows.map((r) => ({ ...r, createdAt: null })));
    const again = JSON.parse(readFileSync(join(paths.region('wide'), 'current', 'shards.geojson'), 'utf8')) as { features: { properties: Record<string, unknown> }[] };
    const strip = (fc: { features: { properties: Record<string, unknown> }[] }): unknown => fc.features.map((f) => ({ ...f, properties: { ...f.properties, updated: null } }));
    expect(strip(again)).toEqual(strip(JSON.parse(current) as { features: { properties: Record<string, unknown> }[] }));
    expect(existsSync(paths.work('wide', secondRun.id))).toBe(false);
    // The alert was raised once.
    expect(store.alerts({ runSeq: secondRun.seq })).toHaveLength(1);
  }, 300_000);

  it('the current map equals an independent full run over all the imagery, pixel for pixel', async () => {
    const out = join(root, 'full');
    const full = await runChm({ aoi, imagery: [catalog], model: 'demo', shardSize: SHARD, out, webTiles: false, threads: 1, env: env() });
    const zone = (full.run['shards'] as { zones: { zone: string; vrt: string }[] }).zones[0]!;
    const d = rasterDiff(join(paths.region('wide'), 'current', `chm-${zone.zone}.vrt`), join(out, zone.vrt));
    expect(d.size[2]).toBe(2);
    expect(d).toMatchObject({ differing: 0, gt: true });
  }, 900_000);

  it('a new scene near a shard border: every shard of the tiles over it is recomputed, and the map still equals a full run', async () => {
    const run = JSON.parse(readFileSync(join(first.dir, 'run.json'), 'utf8')) as RunJson;
    const z = run.zones[0]!;
    const { tileSize: T, stride } = run.tiling;
    const [gx, , , gy] = z.transform as [number, number, number, number, number, number];
    const rows = store.latestShardResults('wide');
    // A shard with an east neighbour; the new scene is a strip inside it, 10 m from that border.
    const a = rows.find((r) => rows.some((n) => Math.abs(n.bounds[0] - r.bounds[2]) < 1e-6 && Math.abs(n.bounds[3] - r.bounds[3]) < 1e-6))!;
    expect(a).toBeDefined();
    const midY = (a.bounds[1] + a.bounds[3]) / 2;
    // Metres from the scenes' top-left corner (x right, y down), on whole pixels.
    const snap = (v: number): number => Math.round(v / GSD) * GSD;
    const extent: [number, number, number, number] = [snap(a.bounds[2] - 70 - ORIGIN[0]), snap(ORIGIN[1] - (midY + 30)), snap(a.bounds[2] - 10 - ORIGIN[0]), snap(ORIGIN[1] - (midY - 30))];
    // Independently: the tiles over the scene, and the shards those tiles overlap.
    const px0 = Math.floor((ORIGIN[0] + extent[0] - gx) / GSD);
    const px1 = Math.ceil((ORIGIN[0] + extent[2] - gx) / GSD);
    const py0 = Math.floor((gy - (ORIGIN[1] - extent[1])) / GSD);
    const py1 = Math.ceil((gy - (ORIGIN[1] - extent[3])) / GSD);
    const expected = new Set<string>();
    for (let i = 0; i * stride < z.height; i++) {
      for (let j = 0; j * stride < z.width; j++) {
        const [tx0, ty0, tx1, ty1] = [j * stride, i * stride, j * stride + T, i * stride + T];
        if (tx1 <= px0 || tx0 >= px1 || ty1 <= py0 || ty0 >= py1) continue;
        const box = [gx + tx0 * GSD, gy - ty1 * GSD, gx + tx1 * GSD, gy - ty0 * GSD];
        for (const r of rows) if (box[0]! < r.bounds[2] && box[2]! > r.bounds[0] && box[1]! < r.bounds[3] && box[3]! > r.bounds[1]) expected.add(r.shardId);
      }
    }
    expect(expected.size).toBeGreaterThanOrEqual(2);
    makeScenes(join(root, 'imagery'), [S2024, S2025, { id: 's2026', datetime: '2026-05-01T08:00:00Z', extent }], [SIZE, SIZE]);
    clock.set('2026-05-11T03:00:00Z');
    const third = await runRegionNow('wide', { store, paths, execute: executor(), clock });
    expect(third, third.errorMessage ?? '').toMatchObject({ status: 'succeeded', sceneCount: 1 });
    expect(store.shardResults(third.seq).map((r) => r.shardId)).toEqual([...expected].sort());
    const out = join(root, 'full-2026');
    const full = await runChm({ aoi, imagery: [catalog], model: 'demo', shardSize: SHARD, out, webTiles: false, threads: 1, env: env() });
    const zone = (full.run['shards'] as { zones: { zone: string; vrt: string }[] }).zones[0]!;
    expect(rasterDiff(join(paths.region('wide'), 'current', `chm-${zone.zone}.vrt`), join(out, zone.vrt))).toMatchObject({ differing: 0, gt: true });
  }, 900_000);

  it('on a queue (real redis-server, an in-process worker): every shard is a job, and the current map equals the full run', async () => {
    const redis = await startRedis();
    const ac = new AbortController();
    const name = `monitor-shards-${process.pid}`;
    const worker = runTileWorker({ url: redis.url, name, threads: 1, env: env(), signal: ac.signal });
    let jobs = -1;
    try {
      await addRegion(store, paths, { name: 'queued', aoi, schedule: '0 3 * * 1', imagery: catalog, model: 'demo', shardSize: SHARD }, { env: env(), clock });
      const execute = createExecutor({ store, paths, clock, env: env(), webTiles: false, threads: 1, queue: { url: redis.url, name, pollMs: 200 } });
      const run = await runRegionNow('queued', { store, paths, execute, clock });
      expect(run, run.errorMessage ?? '').toMatchObject({ status: 'succeeded', queue: redis.url });
      const full = JSON.parse(readFileSync(join(root, 'full-2026', 'run.json'), 'utf8')) as { shards: { count: number; zones: { zone: string; vrt: string }[] } };
      expect(store.shardResults(run.seq)).toHaveLength(full.shards.count);
      const zone = full.shards.zones[0]!;
      expect(rasterDiff(join(paths.region('queued'), 'current', `chm-${zone.zone}.vrt`), join(root, 'full-2026', zone.vrt))).toMatchObject({ differing: 0, gt: true });
      ac.abort();
      jobs = (await worker).jobs;
      expect(jobs).toBe(full.shards.count);
    } finally {
      ac.abort();
      await worker.catch(() => undefined);
      await redis.stop();
    }
  }, 900_000);

  it('with no newer imagery the next run is skipped and nothing is recomputed', async () => {
    clock.set('2026-05-18T03:00:00Z');
    const third = await runRegionNow('wide', { store, paths, execute: executor(), clock });
    expect(third.status).toBe('skipped');
    expect(store.shardResults(third.seq)).toEqual([]);
  }, 300_000);
});

describe('a region across two UTM zones', () => {
  // A 420 m scene (EPSG:32636) straddling 36°E, the border of zones 36 and 37 (≈ 214 m from its west edge).
  const ACROSS: [number, number] = [833_760, 32_400];
  it('is planned and monitored per zone: shards of both zones, one VRT each; new imagery east of the border recomputes 37N shards only', async () => {
    const dir = join(root, 'across');
    const s1: SceneSpec = { id: 'a2024', datetime: '2024-06-01T08:00:00Z' };
    const { catalog, aoi } = makeScenes(dir, [s1], [700, 700], 5, ACROSS);
    await addRegion(store, paths, { name: 'across', aoi, schedule: '0 3 * * 1', imagery: catalog, model: 'demo', shardSize: 512 }, { env: env(), clock });
    clock.set('2026-06-01T03:00:00Z');
    const webExecutor = createExecutor({ store, paths, clock, env: env(), threads: 1 });
    const first = await runRegionNow('across', { store, paths, execute: webExecutor, clock });
    expect(first, first.errorMessage ?? '').toMatchObject({ status: 'succeeded' });
    const rows = store.shardResults(first.seq);
    expect([...new Set(rows.map((r) => r.zone))].sort()).toEqual(['36N', '37N']);
    expect(rows.find((r) => r.zone === '37N')!.crs).toBe('EPSG:32637');
    for (const zone of ['36N', '37N']) {
      expect(rasterDiff(join(paths.region('across'), 'current', `chm-${zone}.vrt`), join(first.dir, `chm-${zone}.vrt`))).toMatchObject({ differing: 0, gt: true });
    }
    // The current map has one height pyramid over both zones, and `geo-dino serve` lists it with the region's runs.
    expect(existsSync(join(paths.region('across'), 'current', 'chm.pmtiles'))).toBe(true);
    const served = await discoverRuns(paths.region('across'), silentLogger());
    const cur = served.find((r) => r.id === 'current')!;
    expect(cur).toMatchObject({ area: 'across', chmRasters: ['chm-36N.vrt', 'chm-37N.vrt'] });
    expect(cur.layers.map((l) => l.file)).toContain('chm.pmtiles');
    // New imagery 90–180 m east of the border: zone 37N's shards only.
    makeScenes(dir, [s1, { id: 'a2025', datetime: '2025-06-01T08:00:00Z', extent: [300, 150, 390, 270] }], [700, 700], 5, ACROSS);
    clock.set('2026-06-08T03:00:00Z');
    const second = await runRegionNow('across', { store, paths, execute: webExecutor, clock });
    expect(second, second.errorMessage ?? '').toMatchObject({ status: 'succeeded', sceneCount: 1 });
    const again = store.shardResults(second.seq);
    expect(again.length).toBeGreaterThan(0);
    expect(again.every((r) => r.zone === '37N')).toBe(true);
    for (const r of store.latestShardResults('across')) expect(r.run).toBe(r.zone === '36N' || !again.some((x) => x.shardId === r.shardId) ? first.id : second.id);
  }, 900_000);
});
