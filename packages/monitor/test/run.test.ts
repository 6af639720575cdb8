/**
 * Monitoring runs end to end, in process: the real chm pipeline (demo model, synthetic scenes in a
 * static STAC catalog that grows over time), zonal statistics and change detection checked against
 * GDAL/numpy on the run's own chm.tif files, alerts to a local receiver, the region's STAC
 * Collection validated by stac-node-validator, and a STAC source that fails.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/schedule.js';
import { MonitorStore } from '../src/store.js';
import { monitorPaths, type MonitorPaths } from '../src/paths.js';
import { addRegion, regionHistory } from '../src/regions.js';
import { createExecutor } from '../src/executor.js';
import { runDaemon, runRegionNow } from '../src/daemon.js';
import { verifyWebhookSignature } from '../src/webhook.js';
import { GDAL_PYTHON, requireGdal } from '../../../test/support/tools.js';
import { validateStac } from '../../../test/support/stac-validator.js';
import { close, fileServer, makeScenes, webhookReceiver, type SceneSpec } from './support/helpers.js';

const ORACLE = fileURLToPath(new URL('./support/change_oracle.py', import.meta.url));
const STATS_ORACLE = fileURLToPath(new URL('../../../test/support/gdal-oracle.py', import.meta.url));

let root: string;
let home: string;
let paths: MonitorPaths;
let store: MonitorStore;
let clock: ManualClock;
let hook: Awaited<ReturnType<typeof webhookReceiver>>;
const env = (): NodeJS.ProcessEnv => ({ ...process.env, GEO_DINO_HOME: home });

const S2024: SceneSpec = { id: 's2024', datetime: '2024-06-01T08:00:00Z' };
// A year later a 130 m × 100 m block was cleared.
const S2025: SceneSpec = { id: 's2025', datetime: '2025-06-01T08:00:00Z', clear: [[120, 120, 250, 220]] };
// Another year, nothing changed.
const S2026: SceneSpec = { id: 's2026', datetime: '2026-05-20T08:00:00Z', clear: [[120, 120, 250, 220]] };

beforeAll(async () => {
  requireGdal();
  root = mkdtempSync(join(tmpdir(), 'geo-dino-monitor-run-'));
  home = join(root, 'home');
  paths = monitorPaths(home);
  store = MonitorStore.open(paths.store);
  clock = new ManualClock('2025-01-01T00:00:00Z');
  hook = await webhookReceiver();
});

afterAll(async () => {
  store?.close();
  if (hook) await close(hook.server);
  if (root) rmSync(root, { recursive: true, force: true });
});

function executor(): ReturnType<typeof createExecutor> {
  return createExecutor({ store, paths, clock, env: env(), webTiles: false, threads: 1, alerts: { http: { retries: 3, backoffMs: 10, maxBackoffMs: 20 } } });
}

function py(script: string, ...args: string[]): unknown {
  return JSON.parse(execFileSync(GDAL_PYTHON, [script, ...args], { encoding: 'utf8', timeout: 120_000 }).trim().split('\n').pop()!) as unknown;
}

describe('monitoring runs (chm pipeline, demo model)', () => {
  let scenes: string;
  let catalog: string;
  let aoi: string;

  it('add: bad inputs are refused with the field named, and nothing is written', async () => {
    scenes = join(root, 'imagery');
    ({ catalog, aoi } = makeScenes(scenes, [S2024]));
    const base = { name: 'forest', aoi, schedule: '0 3 * * 1', imagery: catalog, model: 'demo' };
    const o = { env: env(), clock };
    await expect(addRegion(store, paths, { ...base, schedule: '0 3 * *' }, o)).rejects.toMatchObject({ code: 'E_BAD_SCHEDULE' });
    await expect(addRegion(store, paths, { ...base, name: 'a/b' }, o)).rejects.toMatchObject({ code: 'E_BAD_SCHEDULE', message: expect.stringContaining('"a/b"') });
    await expect(addRegion(store, paths, { ...base, aoi: join(root, 'missing.geojson') }, o)).rejects.toMatchObject({ code: 'E_FILE_NOT_FOUND' });
    await expect(addRegion(store, paths, { ...base, imagery: join(scenes, 's2024.tif') }, o)).rejects.toMatchObject({ message: expect.stringMatching(/single raster; monitoring needs a STAC/) });
    await expect(addRegion(store, paths, { ...base, webhook: 'ftp://x' }, o)).rejects.toMatchObject({ code: 'E_ARGUMENT' });
    expect(store.regions()).toEqual([]);
    expect(existsSync(paths.region('forest'))).toBe(false);
    const { region } = await addRegion(store, paths, { ...base, webhook: hook.url, allowPrivateWebhook: true, lossThresholdM: 2, minAreaM2: 500 }, o);
    expect(region).toMatchObject({ name: 'forest', aoiPath: paths.aoi('forest'), imagery: catalog, model: 'demo', webhookUrl: hook.url });
    expect(region.webhookSecret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
  });

  it('the first run is the baseline: chm, statistics equal to GDAL/numpy, STAC item in the region collection', async () => {
    clock.set('2025-01-06T03:00:00Z');
    const run = await runRegionNow('forest', { store, paths, execute: executor(), clock });
    expect(run).toMatchObject({ status: 'succeeded', trigger: 'manual', previousRun: null, acquiredEnd: '2024-06-01T08:00:00.000Z', sceneCount: 1 });
    expect(run.tilesTotal).toBeGreaterThan(0);
    expect(run.tilesDone).toBe(run.tilesTotal);
    expect(store.tiles(run.seq).every((t) => t.state === 'done')).toBe(true);
    const files = readdirSync(run.dir).sort();
    expect(files).toEqual(['chm.tif', 'item.json', 'provenance.geojson', 'run.json', 'stats.json']);
    // The work directory is gone; nothing half-written is left.
    expect(existsSync(paths.work('forest', run.id))).toBe(false);
    // Zonal statistics against GDAL: AOI rasterised by GDAL (pixel centres), numpy over chm.tif.
    const geomPath = join(root, 'aoi-geometry.json');
    writeFileSync(geomPath, JSON.stringify((JSON.parse(readFileSync(paths.aoi('forest'), 'utf8')) as { features: { geometry: unknown }[] }).features[0]!.geometry));
    const oracle = py(STATS_ORACLE, 'stats', join(run.dir, 'chm.tif'), geomPath) as { inside: number; valid: number; mean: number; max: number; gt2m: number; gt5m: number };
    const s = store.stats(run.seq)!;
    expect(Math.abs(s.pixelsInside - oracle.inside)).toBeLessThanOrEqual(Math.ceil(oracle.inside * 1e-4));
    expect(Math.abs(s.pixelsValid - oracle.valid)).toBeLessThanOrEqual(Math.ceil(oracle.valid * 1e-4));
    expect(s.meanHeightM!).toBeCloseTo(oracle.mean, 2);
    expect(s.maxHeightM!).toBeCloseTo(oracle.max, 4);
    expect(s.cover2mPercent!).toBeCloseTo(100 * oracle.gt2m, 1);
    expect(s.cover5mPercent!).toBeCloseTo(100 * oracle.gt5m, 1);
    expect(s.validAreaM2).toBeCloseTo(s.pixelsValid * 0.36, 3);
    const runJson = JSON.parse(readFileSync(join(run.dir, 'run.json'), 'utf8')) as Record<string, unknown>;
    expect(runJson['region']).toBe('forest');
    expect(runJson['demo']).toBe(true);
    const item = JSON.parse(readFileSync(join(run.dir, 'item.json'), 'utf8')) as { id: string; collection: string; assets: Record<string, unknown>; properties: Record<string, unknown> };
    expect(item.id).toBe(`forest-${run.id}`);
    expect(item.collection).toBe('forest');
    expect(Object.keys(item.assets)).toEqual(expect.arrayContaining(['chm', 'provenance', 'stats']));
    expect(item.properties['geo-dino:mean_height_m']).toBeCloseTo(s.meanHeightM!, 6);
  });

  it('no imagery newer than the last run: the run is skipped, not failed', async () => {
    clock.set('2025-01-13T03:00:00Z');
    const run = await runRegionNow('forest', { store, paths, execute: executor(), clock });
    expect(run).toMatchObject({ status: 'skipped', newerThan: '2024-06-01T08:00:00.000Z' });
    expect(run.errorMessage).toMatch(/no imagery newer than 2024-06-01/);
    expect(existsSync(run.dir)).toBe(false);
  });

  it('new imagery with a clearing: change polygons equal GDAL’s on the two runs’ rasters; one signed alert', async () => {
    ({ catalog } = makeScenes(scenes, [S2024, S2025]));
    clock.set('2025-06-09T03:00:00Z');
    const run = await runRegionNow('forest', { store, paths, execute: executor(), clock });
    expect(run).toMatchObject({ status: 'succeeded', acquiredEnd: '2025-06-01T08:00:00.000Z', newerThan: '2024-06-01T08:00:00.000Z' });
    const baseline = store.runs('forest', { status: ['succeeded'] }).find((r) => r.id !== run.id)!;
    expect(run.previousRun).toBe(baseline.id);
    expect(readdirSync(run.dir).sort()).toEqual(['change.geojson', 'chm.tif', 'item.json', 'loss.tif', 'provenance.geojson', 'run.json', 'stats.json']);
    const oracle = py(ORACLE, 'oracle', join(baseline.dir, 'chm.tif'), join(run.dir, 'chm.tif'), '2', '500') as { polygons: { area: number; pixels: number }[] };
    const changes = store.changes(run.seq);
    // GDAL sees the whole grid; the AOI here is the grid's interior, so compare what lies inside.
    expect(changes.length).toBeGreaterThan(0);
    expect(changes.map((c) => c.pixels).sort((a, b) => b - a)).toEqual(oracle.polygons.map((p) => p.pixels).sort((a, b) => b - a));
    for (const c of changes) expect(c.areaM2).toBeCloseTo(c.pixels * 0.36, 4);
    const fc = JSON.parse(readFileSync(join(run.dir, 'change.geojson'), 'utf8')) as { features: { id: string; properties: Record<string, unknown> }[] };
    expect(fc.features.map((f) => f.id).sort()).toEqual(changes.map((c) => c.changeId).sort());
    expect(fc.features[0]!.properties).toMatchObject({ region: 'forest', run: run.id, previous_run: baseline.id });
    // Exactly one delivery, signed with the region's secret.
    const region = store.region('forest');
    const ok = hook.received.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    const sig = String(ok[0]!.headers['x-geodino-signature']);
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig)!;
    expect(createHmac('sha256', region.webhookSecret!).update(`${t}.${ok[0]!.body}`).digest('hex')).toBe(v1);
    expect(verifyWebhookSignature(region.webhookSecret!, ok[0]!.body, sig, { now: Number(t) })).toBe(true);
    const payload = JSON.parse(ok[0]!.body) as { region: string; changes: { id: string }[]; run: { id: string; previous: string } };
    expect(payload).toMatchObject({ region: 'forest', run: { id: run.id, previous: baseline.id } });
    expect(payload.changes.map((c) => c.id).sort()).toEqual(changes.map((c) => c.changeId).sort());
    expect(store.alerts({ runSeq: run.seq })).toEqual([expect.objectContaining({ status: 'delivered' })]);
    // The item lists the change files; every asset's checksum is the file's (recomputed here).
    const item = JSON.parse(readFileSync(join(run.dir, 'item.json'), 'utf8')) as { assets: Record<string, { href: string; 'file:checksum'?: string }> };
    expect(item.assets['change']!.href).toBe('./change.geojson');
    expect(item.assets['loss']!.href).toBe('./loss.tif');
    for (const [key, a] of Object.entries(item.assets)) {
      if (!a['file:checksum']) continue;
      const sha = createHash('sha256').update(readFileSync(join(run.dir, a.href))).digest('hex');
      expect(a['file:checksum'], key).toBe(`1220${sha}`);
    }
    const runJson = JSON.parse(readFileSync(join(run.dir, 'run.json'), 'utf8')) as { outputs: string[] };
    expect(runJson.outputs).toEqual(expect.arrayContaining(['chm.tif', 'stats.json', 'change.geojson', 'loss.tif']));
  });

  it('the region collection lists the succeeded runs and validates', () => {
    const col = JSON.parse(readFileSync(paths.collection('forest'), 'utf8')) as { id: string; links: { rel: string; href: string }[]; extent: { temporal: { interval: string[][] } } };
    expect(col.id).toBe('forest');
    const items = col.links.filter((l) => l.rel === 'item').map((l) => l.href);
    const ok = store.runs('forest', { status: ['succeeded'] });
    expect(items.sort()).toEqual(ok.map((r) => `./runs/${r.id}/item.json`).sort());
    expect(col.extent.temporal.interval[0]).toEqual(['2024-06-01T08:00:00.000Z', '2025-06-01T08:00:00.000Z']);
    const v = validateStac([paths.collection('forest'), ...ok.map((r) => join(r.dir, 'item.json'))]);
    expect(v.output).toMatch(new RegExp(`Valid: ${ok.length + 1}\\s+Invalid: 0`));
    expect(v.ok).toBe(true);
  });

  it('new imagery without change: no change, no alert', async () => {
    makeScenes(scenes, [S2024, S2025, S2026]);
    const before = hook.received.length;
    clock.set('2026-06-01T03:00:00Z');
    const run = await runRegionNow('forest', { store, paths, execute: executor(), clock });
    expect(run.status).toBe('succeeded');
    expect(run.previousRun).not.toBeNull();
    expect(store.changes(run.seq)).toEqual([]);
    expect(store.alerts({ runSeq: run.seq })).toEqual([]);
    expect(hook.received.length).toBe(before);
    const fc = JSON.parse(readFileSync(join(run.dir, 'change.geojson'), 'utf8')) as { features: unknown[] };
    expect(fc.features).toEqual([]);
    const h = regionHistory(store, 'forest');
    expect(h.runs.map((x) => x.run.status)).toEqual(['succeeded', 'succeeded', 'skipped', 'succeeded']);
    expect(JSON.stringify(h)).not.toContain(store.region('forest').webhookSecret!);
  });

  it('a STAC source that fails: the run is failed with the reason, retried at the next slot; other regions run', async () => {
    const served = await fileServer(scenes);
    try {
      await addRegion(store, paths, { name: 'flaky', aoi, schedule: '0 4 * * *', imagery: `${served.base}/catalog.json`, model: 'demo', minAreaM2: 500 }, { env: env(), clock });
      served.state.fail = true;
      // Both regions are due at the next daemon pass: forest (Monday 03:00) and flaky (04:00).
      clock.set('2026-06-08T04:00:00Z');
      const exec = createExecutor({ store, paths, clock, env: env(), webTiles: false, threads: 1 });
      const first = await runDaemon({ store, paths, execute: exec, clock, once: true });
      expect(first.fired.map((f) => f.region).sort()).toEqual(['flaky', 'forest']);
      const failed = store.runs('flaky')[0]!;
      expect(failed.status).toBe('failed');
      expect(failed.errorCode).toBe('E_NETWORK');
      expect(failed.errorMessage).toMatch(/catalog\.json: failed after \d+ attempts: HTTP 500/);
      expect(existsSync(paths.work('flaky', failed.id))).toBe(false);
      // forest was not disturbed (no new imagery since 2026-05-20: skipped).
      expect(store.runs('forest')[0]!.status).toBe('skipped');
      // The source comes back; the next slot retries it.
      served.state.fail = false;
      clock.set('2026-06-09T04:00:00Z');
      const second = await runDaemon({ store, paths, execute: exec, clock, once: true });
      expect(second.fired.map((f) => f.region)).toEqual(['flaky']);
      expect(store.runs('flaky')[0]!).toMatchObject({ status: 'succeeded', trigger: 'schedule', slot: '2026-06-09T04:00:00.000Z' });
    } finally {
      await close(served.server);
    }
  });
});
