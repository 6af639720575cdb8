/**
 * Monitoring with land cover (`geo-dino monitor add --landcover <head-dir>`), end to end through
 * the CLI.
 *
 * A head is trained here with `@geo-dino/landcover`'s API on the tiny random-weight CHMv2 (the demo
 * architecture, built split) and a synthetic forest scene with a cleared block: two classes,
 * `forest` and `bare`, labelled from where the scene generator cleared. Two regions use it on the
 * same imagery: one run locally (`monitor run`), one distributed (`monitor run --queue` with a
 * `geo-dino worker` on a real redis-server). Checked against what the pipeline did not compute:
 *
 * - landcover.tif of the two runs is the same raster (GDAL reads both: 0 differing pixels, same
 *   geotransform), and so is chm.tif; the worker opened its model with the land-cover head;
 * - the map agrees with the labels on ≥ 90 % of its pixels (GDAL reads both; 97.3 % measured),
 *   so both classes are really mapped;
 * - the per-class pixels inside the AOI (store, `monitor history --json`, stats.json) equal GDAL's
 *   count on landcover.tif over the AOI rasterised by GDAL (pixel centres; the same ±1e-4
 *   tolerance as the canopy statistics, for centres on the polygon's edge); areas are pixels ×
 *   the pixel area GDAL reports; shares sum to 100 %;
 * - each run directory holds landcover.tif and landcover.pmtiles, its item the classification
 *   asset; the region's collection carries the class table and validates (stac-node-validator);
 * - bad `--landcover` input: exit 2, a message naming the problem, nothing stored; a head graph
 *   that changed after planning (or is missing where a worker looks) is refused before any tile.
 */
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPlanModel, type RunPlan } from '@geo-dino/chm';
import { loadLandcoverHead, trainLandcover } from '@geo-dino/landcover';
import { MonitorStore, monitorPaths, type LandcoverStats, type RunRecord } from '@geo-dino/monitor';
import { runCli } from '../support/cli.js';
import { gdalJson } from '../support/fixture-run.js';
import { GDAL_PYTHON, requireGdal } from '../support/tools.js';
import { validateStac } from '../support/stac-validator.js';
import { cli, makeModels, readJson } from '../landcover/helpers.js';
import { makeScenes } from '../../packages/monitor/test/support/helpers.js';
import { startRedis, type RedisServer } from '../../packages/monitor/test/support/redis.js';
import { killChildren, onlyRun, rasterDiff, startCli } from './support.js';

const ORACLE = fileURLToPath(new URL('../support/gdal-oracle.py', import.meta.url));
const CLASSES = [
  { value: 10, name: 'forest', color: '#006400' },
  { value: 60, name: 'bare', color: '#b4b4b4' },
];
/** The cleared block, in scene pixels [x0, y0, x1, y1] (metres / 0.6). */
const CLEARED = [100, 100, 367, 334];

let root: string;
let home: string;
let redis: RedisServer;
let catalog: string;
let aoi: string;
let models: { split: string; fused: string | null };
let headDir: string;
const QUEUE = `lc-${process.pid}`;

beforeAll(async () => {
  requireGdal();
  root = mkdtempSync(join(tmpdir(), 'geo-dino-monitor-lc-'));
  home = join(root, 'home');
  redis = await startRedis();
  const imagery = join(root, 'imagery');
  ({ catalog, aoi } = makeScenes(imagery, [{ id: 's2025', datetime: '2025-06-01T08:00:00Z', clear: [CLEARED.map((v) => v * 0.6) as [number, number, number, number]] }], [760, 760], 7));
  // Labels on the scene's grid: forest, and bare where the block was cleared.
  const labels = join(root, 'labels.tif');
  gdalJson(
    String.raw`
import sys, json, numpy as np
from osgeo import gdal
gdal.UseExceptions()
src = gdal.Open(sys.argv[1]); x0, y0, x1, y1 = (int(v) for v in sys.argv[3:7])
a = np.full((src.RasterYSize, src.RasterXSize), 10, np.uint8); a[y0:y1, x0:x1] = 60
m = gdal.GetDriverByName('MEM').Create('', src.RasterXSize, src.RasterYSize, 1, gdal.GDT_Byte)
m.SetGeoTransform(src.GetGeoTransform()); m.SetProjection(src.GetProjection())
m.GetRasterBand(1).WriteArray(a); m.GetRasterBand(1).SetNoDataValue(0)
gdal.GetDriverByName('COG').CreateCopy(sys.argv[2], m, options=['OVERVIEWS=NONE'])
print(json.dumps({'bare': int((a == 60).sum())}))
`,
    [join(imagery, 's2025.tif'), labels, ...CLEARED.map(String)],
  );
  writeFileSync(join(root, 'classes.json'), JSON.stringify(CLASSES));
  models = await makeModels(join(root, 'models'), { fused: true });
  headDir = join(root, 'head');
  await trainLandcover({
    imagery: [join(imagery, 's2025.tif')],
    labels,
    model: models.split,
    out: headDir,
    classes: join(root, 'classes.json'),
    // The monitor's tile size: the head sees features computed with the context it gets at inference.
    tileSize: 512,
    epochs: 30,
    device: 'cpu',
    threads: 1,
    probeWorkers: 1,
  });
}, 300_000);

afterAll(async () => {
  killChildren();
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const add = (name: string, extra: string[]): ReturnType<typeof cli> =>
  cli(['monitor', 'add', name, '--aoi', aoi, '--schedule', '0 0 29 2 *', '--imagery', catalog, ...extra], home);

describe('monitoring with a land-cover head', () => {
  it('bad --landcover: exit 2, the problem named, nothing stored', async () => {
    const other = await makeModels(join(root, 'other'), { seed: 1 });
    const damaged = join(root, 'head-damaged');
    cpSync(headDir, damaged, { recursive: true });
    appendFileSync(join(damaged, 'head.onnx'), Buffer.from([0]));
    const cases: [string[], string, RegExp][] = [
      [['--model', models.split, '--landcover', join(root, 'no-head')], 'E_MODEL_NOT_FOUND', /--landcover: .*no-head: no such head directory/],
      [['--model', models.split, '--landcover', join(root, 'imagery')], 'E_MODEL_NOT_FOUND', /no landcover-head\.json \(not a land-cover head directory/],
      [['--model', models.fused!, '--landcover', headDir], 'E_ARGUMENT', /--landcover: .* is a fused model, so its backbone cannot feed a second head; .*--split/],
      [['--model', other.split, '--landcover', headDir], 'E_BAD_MODEL', /--landcover: .* was trained on the features of another backbone/],
      [['--model', models.split, '--landcover', damaged], 'E_BAD_MODEL', /head\.onnx: sha256 .* differs from landcover-head\.json/],
    ];
    const results = await Promise.all(cases.map(([args], i) => add(`bad${i}`, args)));
    for (const [i, [args, code, re]] of cases.entries()) {
      const r = results[i]!;
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.error?.code).toBe(code);
      expect(r.error?.message).toMatch(re);
      expect(existsSync(join(home, 'regions', `bad${i}`))).toBe(false);
    }
    const list = await cli(['monitor', 'list'], home);
    expect(list.json).toEqual({ regions: [] });
  }, 120_000);

  it('a head graph changed or missing after planning: the runner is not opened', async () => {
    const spec = (await loadLandcoverHead(headDir)).spec;
    const planWith = (graph: string): RunPlan => ({ heads: [{ name: spec.name, kind: 'land-cover', planes: [], spec: { ...spec, graph } }] }) as unknown as RunPlan;
    const changed = join(root, 'head-changed.onnx');
    cpSync(spec.graph, changed);
    appendFileSync(changed, Buffer.from([0]));
    await expect(openPlanModel(models.split, planWith(changed), { device: 'cpu', threads: 1 })).rejects.toMatchObject({ code: 'E_BAD_MODEL', message: expect.stringContaining('has changed since the run was planned') });
    await expect(openPlanModel(models.split, planWith(join(root, 'gone.onnx')), { device: 'cpu', threads: 1 })).rejects.toMatchObject({ code: 'E_MODEL_NOT_FOUND', message: expect.stringContaining('gone.onnx') });
    const runner = await openPlanModel(models.split, planWith(spec.graph), { device: 'cpu', threads: 1 });
    try {
      expect(runner.meta.source.weightsSha256).toBe(spec.backboneWeightsSha256);
      // The head is attached: it runs on the backbone's features.
      const out = await runner.runHeads(new Float32Array(3 * 64 * 64), 1, 64, 64, ['landcover']);
      expect(out['landcover']![spec.output]!.dims).toEqual([1, CLASSES.length, 64, 64]);
    } finally {
      await runner.close();
    }
  });

  it('local and distributed runs map land cover identically; per-class areas inside the AOI match GDAL', async () => {
    for (const name of ['lc-local', 'lc-dist']) {
      const r = await add(name, ['--model', models.split, '--landcover', headDir]);
      expect(r.code, r.stderr).toBe(0);
      expect((r.json as { region: { landcover: string } }).region.landcover).toBe(headDir);
    }
    const list = await cli(['monitor', 'list'], home);
    expect((list.json as { regions: { name: string; landcover: string | null }[] }).regions.map((r) => [r.name, r.landcover])).toEqual([
      ['lc-dist', headDir],
      ['lc-local', headDir],
    ]);

    const local = await cli(['monitor', 'run', 'lc-local', '--threads', '1'], home);
    expect(local.code, local.stderr).toBe(0);
    const worker = startCli(['worker', '--queue', redis.url, '--queue-name', QUEUE, '--threads', '1', '--json', '-v'], { GEO_DINO_HOME: home });
    const dist = await cli(['monitor', 'run', 'lc-dist', '--queue', redis.url, '--queue-name', QUEUE, '--batch-tiles', '1', '--threads', '1'], home);
    worker.proc.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    expect(dist.code, dist.stderr).toBe(0);
    // The worker predicted the tiles with the head attached.
    expect(worker.lines.filter((l) => l['msg'] === 'model loaded' && 'heads' in l).map((l) => l['heads'])).toEqual([['landcover']]);
    const batches = worker.lines.filter((l) => l['msg'] === 'tile batch done');

    const paths = monitorPaths(home);
    const store = MonitorStore.open(paths.store);
    let lcLocal: LandcoverStats;
    let lcDist: LandcoverStats;
    let runLocal: RunRecord;
    let runDist: RunRecord;
    try {
      runLocal = onlyRun(store, 'lc-local');
      runDist = onlyRun(store, 'lc-dist');
      expect(runLocal.status).toBe('succeeded');
      expect(runDist.status).toBe('succeeded');
      expect(batches).toHaveLength(runDist.tilesTotal!);
      lcLocal = store.landcoverStats(runLocal.seq)!;
      lcDist = store.landcoverStats(runDist.seq)!;
    } finally {
      store.close();
    }
    for (const run of [runLocal, runDist]) {
      const files = readJson<{ outputs: string[] }>(join(run.dir, 'run.json')).outputs;
      expect(files).toEqual(expect.arrayContaining(['chm.tif', 'landcover.tif', 'landcover.pmtiles', 'stats.json', 'item.json']));
      for (const f of files) expect(existsSync(join(run.dir, f)), f).toBe(true);
    }
    expect(readJson<{ execution: { mode: string } }>(join(runLocal.dir, 'run.json')).execution.mode).toBe('local');
    expect(readJson<{ execution: { mode: string } }>(join(runDist.dir, 'run.json')).execution.mode).toBe('distributed');

    // The same rasters from both modes, as GDAL reads them.
    for (const f of ['landcover.tif', 'chm.tif']) {
      const d = rasterDiff(join(runLocal.dir, f), join(runDist.dir, f));
      expect(d.gt, f).toBe(true);
      expect(d.differing, f).toBe(0);
    }

    // Per-class pixels and areas inside the AOI against GDAL's count.
    const geomPath = join(root, 'aoi-geometry.json');
    writeFileSync(geomPath, JSON.stringify((JSON.parse(readFileSync(paths.aoi('lc-local'), 'utf8')) as { features: { geometry: unknown }[] }).features[0]!.geometry));
    const oracle = JSON.parse(execFileSync(GDAL_PYTHON, [ORACLE, 'classes', join(runLocal.dir, 'landcover.tif'), geomPath], { encoding: 'utf8' })) as {
      inside: number;
      pixel_area: number;
      counts: Record<string, number>;
    };
    if (process.env['GEO_DINO_TEST_FIGURES']) console.log(`land cover inside the AOI: ours ${JSON.stringify(lcLocal.classes.map((c) => [c.name, c.pixels]))}, GDAL ${JSON.stringify(oracle)}`);
    expect(Object.keys(oracle.counts).map(Number).every((v) => CLASSES.some((c) => c.value === v))).toBe(true);
    const tol = Math.ceil(oracle.inside * 1e-4);
    expect(lcLocal.classes.map((c) => c.value)).toEqual(CLASSES.map((c) => c.value));
    for (const c of lcLocal.classes) {
      const n = oracle.counts[String(c.value)] ?? 0;
      expect(Math.abs(c.pixels - n), c.name).toBeLessThanOrEqual(tol);
      expect(c.areaM2).toBeCloseTo(c.pixels * oracle.pixel_area, 3);
      expect(c.percent).toBeCloseTo((100 * c.areaM2) / lcLocal.classifiedAreaM2, 9);
    }
    // Both classes were mapped, and they cover the classified area.
    expect(lcLocal.classes.every((c) => c.pixels > 0)).toBe(true);
    expect(lcLocal.classes.reduce((s, c) => s + c.percent, 0)).toBeCloseTo(100, 9);
    expect(lcLocal.pixelsClassified).toBe(lcLocal.classes.reduce((s, c) => s + c.pixels, 0));
    expect(lcLocal.headSha256).toBe(readJson<{ graph: { sha256: string } }>(join(headDir, 'landcover-head.json')).graph.sha256);
    expect(lcDist).toEqual(lcLocal);
    // The map means something: it agrees with the labels (GDAL reads both; measured 0.973).
    const agreement = gdalJson(
      String.raw`
import sys, json
from osgeo import gdal
a = gdal.Open(sys.argv[1]); b = gdal.Open(sys.argv[2]); ga = a.GetGeoTransform(); gb = b.GetGeoTransform()
dx = (ga[0] - gb[0]) / gb[1]; dy = (ga[3] - gb[3]) / gb[5]
assert abs(dx - round(dx)) < 1e-6 and abs(dy - round(dy)) < 1e-6 and ga[1] == gb[1] and ga[5] == gb[5]
dx = int(round(dx)); dy = int(round(dy))
# The overlap of the two grids (the run's grid is snapped outwards to the global tile lattice).
ax0 = max(0, -dx); ay0 = max(0, -dy); ax1 = min(a.RasterXSize, b.RasterXSize - dx); ay1 = min(a.RasterYSize, b.RasterYSize - dy)
A = a.ReadAsArray(ax0, ay0, ax1 - ax0, ay1 - ay0); B = b.ReadAsArray(ax0 + dx, ay0 + dy, ax1 - ax0, ay1 - ay0); m = A != 0
print(json.dumps({'agree': float((A[m] == B[m]).mean()), 'pixels': int(m.sum())}))
`,
      [join(runLocal.dir, 'landcover.tif'), join(root, 'labels.tif')],
    ) as { agree: number; pixels: number };
    if (process.env['GEO_DINO_TEST_FIGURES']) console.log(`landcover.tif vs labels: ${agreement.agree} over ${agreement.pixels} px`);
    expect(agreement.agree).toBeGreaterThan(0.9);

    // What users see: history (JSON and table), stats.json.
    const hist = await cli(['monitor', 'history', 'lc-dist'], home);
    expect((hist.json as { runs: { landcover: LandcoverStats }[] }).runs[0]!.landcover).toEqual(lcDist);
    expect(readJson<{ landcover: LandcoverStats }>(join(runDist.dir, 'stats.json')).landcover).toEqual(lcDist);
    const table = await runCli(['monitor', 'history', 'lc-dist'], { env: { GEO_DINO_HOME: home } });
    expect(table.stdout).toMatch(/land cover/);
    expect(table.stdout).toMatch(/forest \d+\.\d %, bare \d+\.\d %|bare \d+\.\d %, forest \d+\.\d %/);

    // STAC: the item's classification asset; the collection's class table; both valid.
    for (const [region, run] of [['lc-local', runLocal], ['lc-dist', runDist]] as const) {
      const item = readJson<{ assets: Record<string, { bands?: { 'classification:classes': { value: number }[] }[] }> }>(join(run.dir, 'item.json'));
      expect(item.assets['landcover']!.bands![0]!['classification:classes'].map((c) => c.value)).toEqual([10, 60, 0]);
      expect(item.assets['landcover-pmtiles']).toBeDefined();
      const col = readJson<{ stac_extensions: string[]; summaries: { 'classification:classes': { value: number; name: string; nodata?: boolean }[] } }>(paths.collection(region));
      expect(col.stac_extensions).toEqual([expect.stringContaining('classification')]);
      expect(col.summaries['classification:classes'].map((c) => [c.value, c.name])).toEqual([
        [10, 'forest'],
        [60, 'bare'],
        [0, 'no_data'],
      ]);
      const v = validateStac([paths.collection(region), join(run.dir, 'item.json')]);
      expect(v.ok, v.output).toBe(true);
    }
  }, 400_000);

  it('a region on the shard grid with the head: each shard maps land cover, and the per-class pixels add up to the one-shard region\'s', async () => {
    const r = await add('lc-shards', ['--model', models.split, '--landcover', headDir, '--shard-size', '512']);
    expect(r.code, r.stderr).toBe(0);
    const run = await cli(['monitor', 'run', 'lc-shards', '--threads', '1', '--no-web-tiles'], home);
    expect(run.code, run.stderr).toBe(0);
    const store = MonitorStore.open(monitorPaths(home).store);
    try {
      const sharded = onlyRun(store, 'lc-shards');
      const shards = store.shardResults(sharded.seq);
      expect(shards.length).toBeGreaterThan(1);
      for (const sh of shards) expect(existsSync(join(sharded.dir, 'shards', sh.shardId, 'landcover.tif')), sh.shardId).toBe(true);
      // A sharded run equals the one-shard run pixel for pixel (issue 13), so the classes inside the
      // AOI, summed over the shards, equal those the local region counted (checked against GDAL above).
      const whole = store.landcoverStats(onlyRun(store, 'lc-local').seq)!;
      const lc = store.landcoverStats(sharded.seq)!;
      expect(lc.classes.map((c) => [c.value, c.pixels])).toEqual(whole.classes.map((c) => [c.value, c.pixels]));
      expect(lc.pixelsClassified).toBe(whole.pixelsClassified);
      for (const [i, c] of lc.classes.entries()) expect(c.percent).toBeCloseTo(whole.classes[i]!.percent, 9);
      expect(readJson<{ landcover: LandcoverStats }>(join(sharded.dir, 'stats.json')).landcover).toEqual(lc);
    } finally {
      store.close();
    }
  }, 400_000);
});
