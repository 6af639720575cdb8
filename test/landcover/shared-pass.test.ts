/**
 * `geo-dino chm --landcover`: canopy height and land cover from one backbone pass.
 *
 * A head is trained on one synthetic scene and applied to another (same class styles, other
 * regions). Two runs of the same imagery and tiling: the fused model alone (A), and the split
 * model built from the same checkpoint with the head (B). Checked against things the pipeline
 * did not compute:
 *
 * - chm.tif of B equals A's within fp32 tolerance (1e-3 m; heights are tens of metres and the
 *   split graph is the fused one cut at the backbone outputs, so only kernel-order rounding
 *   differs), same nodata;
 * - the backbone ran once per tile: run.json's runner counts (backbone = chm head = land-cover
 *   head = tiles predicted);
 * - landcover.tif: GDAL's COG validator, uint8, nodata, the head's colours in its colour table,
 *   mode overviews (checked against the 2×2 majority); nodata exactly where chm.tif has none; in the interior of the first tile (covered by
 *   no other tile) the class is the argmax of the head run directly by onnxruntime on that tile
 *   (cut from the scene's arrays), except where the two best probabilities tie within the
 *   store's quantisation; and the map scores mIoU ≥ 0.8 against the new scene's true labels
 *   (GDAL-read arrays, counted here);
 * - landcover.pmtiles: go-pmtiles verify, the class table in its metadata;
 * - item.json: stac-node-validator, the classification extension with the class table;
 * - errors: a fused model with --landcover, a head trained on another backbone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { normalizeRgb, openModel } from '@geo-dino/model';
import { gdalJson } from '../support/fixture-run.js';
import { requireGdal } from '../support/tools.js';
import { validateStac } from '../support/stac-validator.js';
import { runPmtilesCli } from '../support/pmtiles-cli.js';
import { validateCog, gdalinfoJson, gdalRead } from '../../tiling/test/support/gdal.js';
import { gdalBand } from '../chm/helpers.js';
import { SCENE_CLASSES, SCENE_ORIGIN, drawScene, writeLabelRaster, writeSceneImage, type Scene } from './scene.js';
import { cli, makeModels, meanIou, readJson, tempDir } from './helpers.js';

let dir: string;
let home: string;
let models: { split: string; fused: string | null };
let scene: Scene;
let img: string;
let headDir: string;
const TILING = ['--tile-size', '256', '--overlap', '32'];

beforeAll(async () => {
  requireGdal();
  dir = tempDir('shared');
  home = join(dir, 'home');
  models = await makeModels(dir, { fused: true });
  // Train on scene 1.
  const s1 = drawScene({ size: 512, seed: 1, regions: 10 });
  await writeSceneImage(join(dir, 'train.tif'), s1);
  await writeLabelRaster(join(dir, 'train-labels.tif'), s1);
  writeFileSync(join(dir, 'classes.json'), JSON.stringify(SCENE_CLASSES));
  headDir = join(dir, 'head');
  const t = await cli(['landcover', 'train', '--imagery', join(dir, 'train.tif'), '--labels', join(dir, 'train-labels.tif'), '--model', models.split, '--out', headDir, '--tile-size', '128', '--epochs', '10', '--classes', join(dir, 'classes.json')], home);
  expect(t.code, t.stderr).toBe(0);
  // Apply to scene 2.
  scene = drawScene({ size: 512, seed: 2, regions: 9 });
  img = join(dir, 'scene.tif');
  await writeSceneImage(img, scene);
  await writeLabelRaster(join(dir, 'labels.tif'), scene);
}, 180_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  tiles: { predicted: number; total: number };
  execution: { modelRuns: { backbone: number; heads: Record<string, number> } };
  landcover: { validPixels: number; classes: { value: number; count: number }[] };
  outputs: string[];
}

describe('geo-dino chm --landcover', () => {
  it('one backbone pass: the same heights as the fused model, and a correct land-cover map with its web layer and STAC', async () => {
    const runA = join(dir, 'run-fused');
    const runB = join(dir, 'run-shared');
    const a = await cli(['chm', '--model', models.fused!, '--imagery', img, '--out', runA, ...TILING, '--no-web-tiles'], home);
    expect(a.code, a.stderr).toBe(0);
    const b = await cli(['chm', '--model', models.split, '--landcover', headDir, '--imagery', img, '--out', runB, ...TILING], home);
    expect(b.code, b.stderr).toBe(0);

    // Heights: equal within fp32 tolerance, same nodata.
    for (const band of [1, 2]) {
      const ha = gdalBand(join(runA, 'chm.tif'), band);
      const hb = gdalBand(join(runB, 'chm.tif'), band);
      expect(hb.width).toBe(ha.width);
      let max = 0;
      let valid = 0;
      let nodataDiffers = 0;
      for (let i = 0; i < ha.values.length; i++) {
        if ((ha.values[i] === -9999) !== (hb.values[i] === -9999)) nodataDiffers++;
        if (ha.values[i] === -9999) continue;
        valid++;
        max = Math.max(max, Math.abs(ha.values[i]! - hb.values[i]!));
      }
      if (process.env['GEO_DINO_TEST_FIGURES']) console.log(`chm band ${band}: max |fused − shared| = ${max} m over ${valid} px`);
      expect(nodataDiffers).toBe(0);
      expect(valid).toBeGreaterThan(0.9 * ha.values.length);
      expect(max, `band ${band}`).toBeLessThan(1e-3);
    }

    // One backbone run per tile, feeding both heads.
    const runJsonA = readJson<Run>(join(runA, 'run.json'));
    const run = readJson<Run>(join(runB, 'run.json'));
    const n = run.tiles.predicted;
    expect(n).toBe(9);
    expect(run.execution.modelRuns).toEqual({ backbone: n, heads: { chm: n, landcover: n } });
    expect(runJsonA.execution.modelRuns.backbone).toBe(n);
    expect(run.outputs).toEqual(expect.arrayContaining(['landcover.tif', 'landcover.pmtiles']));

    // landcover.tif as GDAL sees it.
    const lcPath = join(runB, 'landcover.tif');
    const cog = validateCog(lcPath);
    expect(cog.ok, cog.output).toBe(true);
    const info = gdalinfoJson(lcPath) as { size: number[]; geoTransform: number[]; bands: { type: string; noDataValue: number; colorTable?: { entries: number[][] }; overviews?: unknown[] }[] };
    const band = info.bands[0]!;
    expect(band.type).toBe('Byte');
    expect(band.noDataValue).toBe(0);
    expect(band.overviews?.length).toBeGreaterThanOrEqual(1);
    for (const c of SCENE_CLASSES) {
      const hex = c.color.slice(1);
      expect(band.colorTable!.entries[c.value]!.slice(0, 3)).toEqual([0, 2, 4].map((k) => parseInt(hex.slice(k, k + 2), 16)));
    }
    const lc = gdalBand(lcPath, 1).values;
    const h = gdalBand(join(runB, 'chm.tif'), 1).values;
    let counted = 0;
    let maskDiffers = 0;
    for (let i = 0; i < lc.length; i++) {
      if ((lc[i] === 0) !== (h[i] === -9999)) maskDiffers++;
      if (lc[i] !== 0) counted++;
    }
    expect(maskDiffers).toBe(0);
    expect(run.landcover.validPixels).toBe(counted);
    // Mode overviews: each overview pixel is the majority class of its 2×2 cell when there is one
    // (an average of class values would be no class at all).
    const Hh = info.size[1]!;
    const ow = Math.ceil(info.size[0]! / 2);
    const oh = Math.ceil(Hh / 2);
    const ov = gdalRead(lcPath, [0, 0, ow, oh], { level: 1 }).bands[0]!;
    let majorities = 0;
    let notMode = 0;
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const cell: number[] = [];
        for (const [u, v] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
          const X = 2 * x + u;
          const Y = 2 * y + v;
          if (X < info.size[0]! && Y < Hh && lc[Y * info.size[0]! + X] !== 0) cell.push(lc[Y * info.size[0]! + X]!);
        }
        const top = [...new Set(cell)].map((c) => [c, cell.filter((k) => k === c).length] as const).sort((p, q) => q[1] - p[1]);
        if (top.length && (top.length === 1 || top[0]![1] > top[1]![1])) {
          majorities++;
          if (ov[y * ow + x] !== top[0]![0]) notMode++;
        }
      }
    }
    expect(majorities).toBeGreaterThan(0.9 * ow * oh);
    expect(notMode).toBe(0);
    expect(run.landcover.classes.reduce((s, c) => s + c.count, 0)).toBe(counted);

    // The first tile's interior (no other tile reaches it) is the argmax of the head itself.
    const W = info.size[0]!;
    const gt = info.geoTransform;
    const dx = Math.round((gt[0]! - SCENE_ORIGIN[0]) / 0.6);
    const dy = Math.round((SCENE_ORIGIN[1] - gt[3]!) / 0.6);
    const T = 256;
    const N = scene.size;
    const rgb = new Uint8Array(3 * T * T);
    const mask = new Uint8Array(T * T);
    for (let y = 0; y < T; y++) {
      for (let x = 0; x < T; x++) {
        const ix = x + dx;
        const iy = y + dy;
        if (ix < 0 || iy < 0 || ix >= N || iy >= N) continue;
        for (let c = 0; c < 3; c++) rgb[c * T * T + y * T + x] = scene.rgb[c * N * N + iy * N + ix]!;
        mask[y * T + x] = 1;
      }
    }
    const runner = await openModel(models.split, { device: 'cpu', threads: 1, heads: { landcover: join(headDir, 'head.onnx') } });
    let probs: Float32Array;
    try {
      const out = await runner.runHeads(normalizeRgb(rgb, { height: T, width: T, layout: 'chw', mask }), 1, T, T, ['landcover']);
      probs = out['landcover']!['landcover_probabilities']!.data as Float32Array;
    } finally {
      await runner.close();
    }
    const values = readJson<{ classes: { value: number }[] }>(join(headDir, 'landcover-head.json')).classes.map((c) => c.value);
    let checked = 0;
    let ties = 0;
    let wrong = 0;
    for (let y = 0; y < 224; y++) {
      for (let x = 0; x < 224; x++) {
        const i = y * T + x;
        if (!mask[i]) continue;
        const p = values.map((_, k) => probs[k * T * T + i]!);
        const order = p.map((v, k) => [v, k] as const).sort((u, v) => v[0] - u[0]);
        if (order[0]![0] - order[1]![0] < 1e-4) {
          ties++;
          continue;
        }
        if (lc[y * W + x] !== values[order[0]![1]]) wrong++;
        checked++;
      }
    }
    if (process.env['GEO_DINO_TEST_FIGURES']) console.log(`first tile interior: ${checked} px checked, ${wrong} differ, ${ties} near-ties skipped`);
    expect(wrong).toBe(0);
    expect(checked).toBeGreaterThan(0.95 * 224 * 224);
    expect(ties).toBeLessThan(0.01 * 224 * 224);

    // Against the new scene's true labels, warped by GDAL onto landcover.tif's grid.
    const truth = gdalJson(
      String.raw`
import sys, json
from osgeo import gdal
gdal.UseExceptions()
lc, lab, out = sys.argv[1:4]
ds = gdal.Open(lc); gt = ds.GetGeoTransform(); W, H = ds.RasterXSize, ds.RasterYSize
w = gdal.Warp('', lab, format='MEM', outputBounds=(gt[0], gt[3] + H * gt[5], gt[0] + W * gt[1], gt[3]), width=W, height=H, resampleAlg='near', dstNodata=0)
w.GetRasterBand(1).ReadAsArray().astype('<f8').tofile(out)
print(json.dumps({'w': W, 'h': H}))
`,
      [lcPath, join(dir, 'labels.tif'), join(dir, 'truth.f64')],
    ) as { w: number };
    expect(truth.w).toBe(W);
    const { readFileSync } = await import('node:fs');
    const tb = readFileSync(join(dir, 'truth.f64'));
    const ref = new Float64Array(tb.buffer.slice(tb.byteOffset, tb.byteOffset + tb.byteLength));
    const score = meanIou(ref, lc, SCENE_CLASSES.map((c) => c.value), (i) => ref[i] === 0 || lc[i] === 0);
    expect(score.pixels).toBeGreaterThan(0.9 * N * N);
    if (process.env['GEO_DINO_TEST_FIGURES']) console.log(`landcover.tif vs true labels: mIoU ${score.miou}, OA ${score.oa}, ${score.pixels} px`);
    expect(score.miou).toBeGreaterThanOrEqual(0.8);

    // Web layer and STAC Item.
    const verify = runPmtilesCli(['verify', join(runB, 'landcover.pmtiles')]);
    expect(verify.code, verify.output).toBe(0);
    const meta = JSON.parse(runPmtilesCli(['show', '--metadata', join(runB, 'landcover.pmtiles')]).output) as { geo_dino: { layer: string; classes: { value: number; name: string; color: string }[] } };
    expect(meta.geo_dino.layer).toBe('landcover');
    expect(meta.geo_dino.classes).toEqual(SCENE_CLASSES.map((c) => ({ value: c.value, name: c.name, color: c.color })));
    const stac = validateStac([join(runB, 'item.json')]);
    expect(stac.ok, stac.output).toBe(true);
    const item = readJson<{ stac_extensions: string[]; assets: Record<string, { bands: { 'classification:classes': { value: number; name: string; nodata?: boolean; count?: number }[] }[] }> }>(join(runB, 'item.json'));
    expect(item.stac_extensions.some((e) => e.includes('classification'))).toBe(true);
    const cls = item.assets['landcover']!.bands[0]!['classification:classes'];
    expect(cls.map((c) => c.value)).toEqual([...SCENE_CLASSES.map((c) => c.value), 0]);
    expect(cls.at(-1)!.nodata).toBe(true);
    expect(item.assets['landcover-pmtiles']).toBeDefined();
  });

  it('refuses a fused model and a head of another backbone, before any work', async () => {
    const r1 = await cli(['chm', '--model', models.fused!, '--landcover', headDir, '--imagery', img, '--out', join(dir, 'bad1'), ...TILING], home);
    expect(r1.code).toBe(2);
    expect(r1.error!.code).toBe('E_ARGUMENT');
    expect(r1.error!.message).toMatch(/--landcover: .* is a fused model.*--split/);
    expect(existsSync(join(dir, 'bad1'))).toBe(false);

    const other = await makeModels(join(dir, 'other'), { seed: 1 });
    const r2 = await cli(['chm', '--model', other.split, '--landcover', headDir, '--imagery', img, '--out', join(dir, 'bad2'), ...TILING], home);
    expect(r2.code).toBe(2);
    expect(r2.error!.code).toBe('E_BAD_MODEL');
    expect(r2.error!.message).toContain('was trained on the features of another backbone');
    expect(existsSync(join(dir, 'bad2'))).toBe(false);

    const r3 = await cli(['chm', '--model', models.split, '--landcover', join(dir, 'no-head'), '--imagery', img, '--out', join(dir, 'bad3'), ...TILING], home);
    expect(r3.code).toBe(2);
    expect(r3.error!.message).toContain('no such head directory');
  });
});
