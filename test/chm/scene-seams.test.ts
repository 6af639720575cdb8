/**
 * Seams between source scenes (issue 20): two scenes cut by GDAL from the same real imagery
 * (../shared/data/rasterio/cogeo.tif warped to a 0.6 m UTM grid), the second as a different
 * acquisition would be — gamma 0.6, a warmer colour balance, shifted 1.2 m east and 0.6 m south —
 * overlapping over ~126 columns. `geo-dino chm` runs on both (the first has priority) with the
 * default scene feathering and with `--scene-feather 0`, and on each scene alone (padded with
 * nodata to the same grid, so its tiles are exactly that scene's pixels alone).
 *
 * 1. Oracle: inside the transition zone chm.tif must equal w·(scene A alone) + (1 − w)·(scene B
 *    alone), w the raised-cosine weight written here from its formula at the seamline run.json
 *    reports (every tile there is predicted once per scene; the tile windows cancel). Without
 *    feathering this fails: the zone holds the mosaic's prediction instead.
 * 2. The step statistic (heights read by GDAL): per 32-row segment, |mean(3 columns right of the
 *    line) − mean(3 columns left)|, averaged; the background is the same statistic on every column
 *    inside one scene only. Without feathering (`--scene-feather 0`, the plain priority mosaic) the
 *    step at scene A's edge is clearly above the background (≥ 1.5×); with the default feathering
 *    the step across the seamline is at the background (≤ 1.2×). A hard switch at the seamline
 *    between the two scenes' own predictions steps clearly above it too.
 * 3. A scene inside another's extent (a gdal.Translate srcWin of the same imagery with scene B's
 *    radiometry, listed first): the oracle w·(inner alone) + (1 − w)·(outer alone) over the F-px
 *    band inside its footprint edge, w = sin²(π/2 · e/F) with e the distance inward from the edge;
 *    the plain mosaic steps at its west/east edges, the feathered map there is at the outer scene's
 *    own level; with the lower priority it is hidden (the outer scene's map exactly).
 *
 * The model is a FIXTURE, not `--model demo`: the demo's random weights mix the whole tile through
 * attention, so its heights hardly step at a radiometric edge (its plain mosaic showed 1.0 m there
 * against a 2.7 m background) and the test could not fail if feathering were removed. A trained
 * model reads local radiometry; the fixture does too: the same toy DINOv3 + CHMv2 from
 * `createDemoModel(dir, { local: true })` (random checkpoint written in the real Hugging Face format
 * and built by `buildModel`, run through onnxruntime via `--model <dir>`), with attention switched
 * off (LayerScale 0: each patch token sees its own 16×16 pixels only), a patch embedding that also
 * responds to the patch's mean red − blue, nearest-neighbour reassemble upsampling and the two
 * coarse DPT paths off (see `localise` in packages/model/src/random.ts). It is written into the
 * test's temporary directory in beforeAll; nothing binary is committed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { backgroundStep, rectangleAoi, seamStep } from '@geo-dino/chm';
import { createDemoModel } from '@geo-dino/model';
import { blendAt } from '@geo-dino/server';
import { sharedData } from '../support/shared-data.js';
import { gdalJson } from '../support/fixture-run.js';
import { requireGdal } from '../support/tools.js';
import { chm, gdalBand, readJson, tempDir, writeJson } from './helpers.js';

const N = 512;
const T = 256;
const OVERLAP = 64;
/** Scene A: columns [0, A_END) of the region; scene B: [B_START, N), shifted by SHIFT_X px east. */
const A_END = 320;
const B_START = 192;
const SHIFT_X = 2;
const SHIFT_Y = 1;

const MAKE_SCENES = String.raw`
import sys, json
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
src, tmp, out = sys.argv[1:4]
a_end, b_start, sx, sy = (int(v) for v in sys.argv[4:8])
gdal.Warp(tmp, src, dstSRS='EPSG:32652', xRes=0.6, yRes=0.6, targetAlignedPixels=True, resampleAlg='bilinear')
full = gdal.Translate('/vsimem/full.tif', tmp, srcWin=[100, 100, 512, 512], bandList=[1, 2, 3], maskBand=None)
gt = full.GetGeoTransform()
# 0 is the padded scenes' nodata: real pixels are 1-255 in every scene.
rgb = np.clip(full.ReadAsArray().astype('float64'), 1, 255)
drv = gdal.GetDriverByName('GTiff')
def write(path, data, x0, y0, nodata=None):
    ds = drv.Create(path, data.shape[2], data.shape[1], 3, gdal.GDT_Byte, ['TILED=YES', 'COMPRESS=DEFLATE'])
    ds.SetProjection(full.GetProjection())
    ds.SetGeoTransform((gt[0] + x0 * gt[1], gt[1], 0, gt[3] + y0 * gt[5], 0, gt[5]))
    for b in range(3):
        if nodata is not None: ds.GetRasterBand(b + 1).SetNoDataValue(nodata)
    ds.WriteRaster(0, 0, data.shape[2], data.shape[1], data.astype('uint8').tobytes())
    ds = None
# Scene A: the imagery as it is, columns [0, a_end).
a = rgb[:, :, :a_end]
write(out + '/scene-a.tif', a, 0, 0)
# Scene B: another acquisition: gamma 0.6, a warmer colour balance, shifted (sx, sy) pixels east/south.
x = (rgb[:, :, b_start:] / 255.0) ** 0.6 * np.array([1.15, 1.0, 0.8])[:, None, None]
b = np.clip(np.round(x * 255.0), 1, 255)
write(out + '/scene-b.tif', b, b_start + sx, sy)
# The same scenes padded with nodata to the whole region (on their own lattices), for the
# single-scene runs: their tiles are exactly the scenes' pixels alone on the two-scene run's grid.
pa = np.zeros((3, 512, 512)); pa[:, :, :a_end] = a
write(out + '/alone-a.tif', pa, 0, 0, 0)
pb = np.zeros((3, 512, 512)); pb[:, :, b_start:] = b
write(out + '/alone-b.tif', pb, sx, sy, 0)
print(json.dumps({'transform': gt}))
`;

/** A scene inside another's extent: the outer scene is the whole region as it is; the inner one
 * (gdal.Translate srcWin of the same warped imagery, columns [ix0, ix0 + w), rows [iy0, iy0 + h) of
 * the region) another acquisition as scene B above (gamma 0.6, warmer), on the same lattice. */
const MAKE_INNER = String.raw`
import sys, json
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
tmp, out = sys.argv[1:3]
ix0, iy0, w, h = (int(v) for v in sys.argv[3:7])
full = gdal.Translate('/vsimem/full-inner.tif', tmp, srcWin=[100, 100, 512, 512], bandList=[1, 2, 3], maskBand=None)
gt = full.GetGeoTransform()
rgb = np.clip(full.ReadAsArray().astype('float64'), 1, 255)
inner = gdal.Translate('/vsimem/inner-src.tif', tmp, srcWin=[100 + ix0, 100 + iy0, w, h], bandList=[1, 2, 3], maskBand=None)
x = (np.clip(inner.ReadAsArray().astype('float64'), 1, 255) / 255.0) ** 0.6 * np.array([1.15, 1.0, 0.8])[:, None, None]
b = np.clip(np.round(x * 255.0), 1, 255)
drv = gdal.GetDriverByName('GTiff')
def write(path, data, x0, y0, nodata=None):
    ds = drv.Create(path, data.shape[2], data.shape[1], 3, gdal.GDT_Byte, ['TILED=YES', 'COMPRESS=DEFLATE'])
    ds.SetProjection(full.GetProjection())
    ds.SetGeoTransform((gt[0] + x0 * gt[1], gt[1], 0, gt[3] + y0 * gt[5], 0, gt[5]))
    for k in range(3):
        if nodata is not None: ds.GetRasterBand(k + 1).SetNoDataValue(nodata)
    ds.WriteRaster(0, 0, data.shape[2], data.shape[1], data.astype('uint8').tobytes())
    ds = None
write(out + '/outer.tif', rgb, 0, 0)
write(out + '/inner.tif', b, ix0, iy0)
p = np.zeros((3, 512, 512)); p[:, iy0:iy0 + h, ix0:ix0 + w] = b
write(out + '/alone-inner.tif', p, 0, 0, 0)
print(json.dumps({'transform': gt}))
`;

interface SceneFeatherInfo {
  metres: number;
  px: number;
  seams: number;
  featheredTiles: number;
  extraTileInferences: number;
  lines: { scenes: string[]; featherPx: number; footprint?: boolean; points: [number, number][] }[];
}

interface Run {
  h: Float64Array;
  width: number;
  height: number;
  transform: number[];
  info: SceneFeatherInfo;
}

const NODATA = -9999;

/** GDAL: largest |Δ| between two rasters' band 1 where both are valid (aligned by their geotransforms), and how many pixels. */
const COMPARE = String.raw`
import sys, json
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
a = gdal.Open(sys.argv[1]); b = gdal.Open(sys.argv[2])
ga = a.GetGeoTransform(); gb = b.GetGeoTransform()
dx = int(round((ga[0] - gb[0]) / ga[1])); dy = int(round((ga[3] - gb[3]) / ga[5]))
A = a.GetRasterBand(1).ReadAsArray().astype('f8')
B = b.GetRasterBand(1).ReadAsArray(dx, dy, a.RasterXSize, a.RasterYSize).astype('f8')
m = (A != -9999) & (B != -9999)
print(json.dumps({'max': float(np.abs(A[m] - B[m]).max()), 'n': int(m.sum()), 'onlyOne': int(((A != -9999) ^ (B != -9999)).sum())}))
`;

/** GDAL/OSR: grid pixel positions → lon/lat (EPSG:32652 → EPSG:4326). */
const TO_LONLAT = String.raw`
import sys, json
from osgeo import osr
t = json.loads(sys.argv[1]); pts = json.loads(sys.argv[2])
a = osr.SpatialReference(); a.ImportFromEPSG(32652)
b = osr.SpatialReference(); b.ImportFromEPSG(4326); b.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
ct = osr.CoordinateTransformation(a, b)
print(json.dumps([list(ct.TransformPoint(t[0] + x * t[1], t[3] + y * t[5])[:2]) for x, y in pts]))
`;
/** Weight of scene A at signed distance d (px, positive on A's side) across a zone of F px: raised cosine, from its formula. */
function weightA(d: number, F: number): number {
  if (d >= F / 2) return 1;
  if (d <= -F / 2) return 0;
  return Math.sin((Math.PI / 2) * ((d + F / 2) / F)) ** 2;
}

let dir: string;
let home: string;
let fx: { transform: number[] };
let aoiPath: string;
let model: string;
beforeAll(async () => {
  requireGdal();
  dir = tempDir('scene-seams');
  home = join(dir, 'home');
  model = join(dir, 'local-model');
  await createDemoModel(model, { local: true });
  fx = gdalJson(MAKE_SCENES, [sharedData('rasterio', 'cogeo.tif'), join(dir, 'utm.tif'), dir, String(A_END), String(B_START), String(SHIFT_X), String(SHIFT_Y)]) as { transform: number[] };
  const aoi = rectangleAoi(32652, fx.transform, N, N, 8, 'two scenes');
  aoiPath = writeJson(join(dir, 'aoi.geojson'), { type: 'MultiPolygon', coordinates: aoi.geometry });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('seams between source scenes', () => {
  it('blends the two scenes’ own predictions across the seamline with raised-cosine weights, and the step falls to the background', async () => {
    const runs: Record<string, Run> = {};
    for (const [name, imagery, extra] of [
      ['feathered', ['scene-a.tif', 'scene-b.tif'], []],
      ['off', ['scene-a.tif', 'scene-b.tif'], ['--scene-feather', '0']],
      ['alone-a', ['alone-a.tif'], []],
      ['alone-b', ['alone-b.tif'], []],
    ] as const) {
      const out = join(dir, `run-${name}`);
      const r = await chm(['--model', model, '--aoi', aoiPath, ...imagery.flatMap((i) => ['--imagery', join(dir, i)]), '--out', out, '--tile-size', String(T), '--overlap', String(OVERLAP), '--no-web-tiles', ...extra], home);
      expect(r.code, r.stderr).toBe(0);
      const run = readJson<{ grid: { transform: number[] }; sceneFeather: SceneFeatherInfo }>(join(out, 'run.json'));
      const band = gdalBand(join(out, 'chm.tif'), 1);
      runs[name] = { h: band.values, width: band.width, height: band.height, transform: run.grid.transform, info: run.sceneFeather };
      // The progress events count the extra tiles of feathering (and only when there are any).
      const feathering = r.events.filter((e) => e['type'] === 'progress' && e['task'] === 'scene feathering');
      if (name === 'feathered') expect(feathering.at(-1)?.['done'], r.stderr).toBe(run.sceneFeather.extraTileInferences);
      else expect(feathering).toEqual([]);
    }
    const f = runs['feathered']!;
    const o = runs['off']!;
    const ra = runs['alone-a']!;
    const rb = runs['alone-b']!;
    // One grid for all four runs.
    for (const r of [o, ra, rb]) {
      expect(r.transform).toEqual(f.transform);
      expect([r.width, r.height]).toEqual([f.width, f.height]);
    }
    const { width: W, height: H } = f;
    expect(f.info.seams).toBe(1);
    expect(f.info.lines[0]!.scenes).toEqual(['scene-a', 'scene-b']);
    expect(f.info.px).toBe(40); // the default 24 m at 0.6 m
    expect(f.info.featheredTiles).toBeGreaterThan(0);
    // Two scenes: one extra model input per feathered tile.
    expect(f.info.extraTileInferences).toBe(f.info.featheredTiles);
    expect(o.info.seams).toBe(0);
    expect(o.info.extraTileInferences).toBe(0);

    // The seamline (run.json, grid px) per row, and the fixture's columns in the grid.
    const line = f.info.lines[0]!;
    const F = line.featherPx;
    const pts = line.points;
    const seamX = (y: number): number => {
      const yc = y + 0.5;
      if (yc <= pts[0]![1]) return pts[0]![0];
      for (let k = 1; k < pts.length; k++) {
        if (yc <= pts[k]![1]) {
          const t = (yc - pts[k - 1]![1]) / (pts[k]![1] - pts[k - 1]![1]);
          return pts[k - 1]![0] * (1 - t) + pts[k]![0] * t;
        }
      }
      return pts[pts.length - 1]![0];
    };
    const x0 = Math.round((fx.transform[0]! - f.transform[0]!) / 0.6);
    // The seamline runs inside the overlap, half a zone away from its sides.
    const overlapLo = x0 + B_START + SHIFT_X;
    const overlapHi = x0 + A_END;
    for (const [x] of pts) {
      expect(x).toBeGreaterThanOrEqual(overlapLo + F / 2 - 1);
      expect(x).toBeLessThanOrEqual(overlapHi - F / 2 + 1);
    }

    // Oracle: inside the zone every tile is predicted from each scene alone, exactly as the
    // single-scene runs predict it, so chm.tif = w·(scene A's run) + (1 − w)·(scene B's run).
    let zone = 0;
    let worst = 0;
    let outside = 0;
    for (let y = 0; y < H; y++) {
      const sx = seamX(y);
      for (let x = 0; x < W; x++) {
        const i = y * W + x;
        const a = ra.h[i]!;
        const b = rb.h[i]!;
        if (a === NODATA || b === NODATA || f.h[i] === NODATA) continue;
        const d = sx - (x + 0.5); // scene A keeps the west side
        const w = weightA(d, F);
        if (w <= 1e-6 || w >= 1 - 1e-6) {
          if (Math.abs(d) > F / 2 + 2) outside++;
          continue;
        }
        zone++;
        worst = Math.max(worst, Math.abs(f.h[i]! - (w * a + (1 - w) * b)));
      }
    }
    expect(zone).toBeGreaterThan(0.8 * F * H);
    expect(worst).toBeLessThan(0.01);
    expect(outside).toBeGreaterThan(0);

    // The step statistic: the feathered map across its seamline, and — for contrast — a hard
    // switch at the same line between the two scenes' own predictions, and the plain mosaic at
    // scene A's footprint edge; the background on columns inside one scene only.
    const hard = new Float64Array(W * H);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) hard[y * W + x] = x + 0.5 < seamX(y) ? ra.h[y * W + x]! : rb.h[y * W + x]!;
    const seamCol = (y: number): number => Math.round(seamX(y));
    const away: [number, number][] = [
      [x0 + 24, overlapLo - 24],
      [overlapHi + 24, x0 + N - 24],
    ];
    const report = {
      feathered: { step: seamStep(f.h, W, H, seamCol), background: backgroundStep(f.h, W, H, away) },
      hardSwitch: { step: seamStep(hard, W, H, seamCol), background: backgroundStep(hard, W, H, away) },
      plainMosaic: { step: seamStep(o.h, W, H, () => overlapHi), background: backgroundStep(o.h, W, H, away) },
      featheredTiles: f.info.featheredTiles,
      extraTileInferences: f.info.extraTileInferences,
      zonePixels: zone,
      worstOracleError: worst,
    };
    console.log(JSON.stringify(report));

    // Provenance: the transition zone (both scenes, the weights' extent), and the point lookup
    // the viewer's popup uses ("blend of scenes A and B") inside it and not outside.
    const prov = readJson<{ transition_zones?: { properties: { scene_ids: string[]; width_m: number; pixels: number } }[] }>(join(dir, 'run-feathered', 'provenance.geojson'));
    expect(prov.transition_zones?.length).toBe(1);
    const tz = prov.transition_zones![0]!.properties;
    expect(tz.scene_ids).toEqual(['scene-a', 'scene-b']);
    expect(tz.width_m).toBeCloseTo(24, 6);
    expect(Math.abs(tz.pixels - zone) / zone).toBeLessThan(0.02);
    const yMid = H / 2;
    const [inZone, inA, inB] = gdalJson(TO_LONLAT, [JSON.stringify(f.transform), JSON.stringify([[seamX(yMid), yMid + 0.5], [x0 + 60, yMid], [x0 + N - 60, yMid]])]) as [number, number][];
    const provPath = join(dir, 'run-feathered', 'provenance.geojson');
    expect(await blendAt(provPath, inZone![0], inZone![1])).toEqual({ scene_ids: ['scene-a', 'scene-b'], width_m: 24 });
    expect(await blendAt(provPath, inA![0], inA![1])).toBeNull();
    expect(await blendAt(provPath, inB![0], inB![1])).toBeNull();
    expect(readJson<{ transition_zones?: unknown }>(join(dir, 'run-off', 'provenance.geojson')).transition_zones).toBeUndefined();

    // A sharded run (512-px shards) gives the same map, and its provenance the same zone.
    const sharded = join(dir, 'run-sharded');
    const rs = await chm(['--model', model, '--aoi', aoiPath, '--imagery', join(dir, 'scene-a.tif'), '--imagery', join(dir, 'scene-b.tif'), '--out', sharded, '--tile-size', String(T), '--overlap', String(OVERLAP), '--no-web-tiles', '--shard-size', '512'], home);
    expect(rs.code, rs.stderr).toBe(0);
    expect(readJson<{ layout: string }>(join(sharded, 'run.json')).layout).toBe('sharded');
    const vrt = readdirSync(sharded).find((n) => /^chm-.*\.vrt$/.test(n))!;
    const cmp = gdalJson(COMPARE, [join(dir, 'run-feathered', 'chm.tif'), join(sharded, vrt)]) as { max: number; n: number; onlyOne: number };
    expect(cmp.n).toBe(W * H - f.h.filter((v) => v === NODATA).length);
    expect(cmp.onlyOne).toBe(0);
    expect(cmp.max).toBeLessThan(1e-4);
    const sp = readJson<{ transition_zones?: { properties: { scene_ids: string[] } }[] }>(join(sharded, 'provenance.geojson'));
    expect(sp.transition_zones?.length).toBeGreaterThan(0);
    for (const z of sp.transition_zones!) expect(z.properties.scene_ids).toEqual(['scene-a', 'scene-b']);
    // Without feathering the plain mosaic steps clearly above the background at scene A's edge
    // (the model reads the scenes' radiometry there); so does a hard switch at the seamline between
    // the scenes' own predictions. Feathered, the step across the seamline is at the background.
    expect(report.plainMosaic.step).toBeGreaterThan(1.5 * report.plainMosaic.background);
    expect(report.hardSwitch.step).toBeGreaterThan(1.5 * report.hardSwitch.background);
    expect(report.feathered.step).toBeLessThan(1.2 * report.feathered.background);
  });

  it('--harmonise matches scene B to scene A by per-band moments fitted on their overlap, recorded in provenance', async () => {
    const out = join(dir, 'run-harmonised');
    const r = await chm(['--model', model, '--aoi', aoiPath, '--imagery', join(dir, 'scene-a.tif'), '--imagery', join(dir, 'scene-b.tif'), '--out', out, '--tile-size', String(T), '--overlap', String(OVERLAP), '--no-web-tiles', '--harmonise'], home);
    expect(r.code, r.stderr).toBe(0);
    // Oracle: numpy's moments of the two scenes on their overlap, at full resolution (GDAL reads).
    const oracle = gdalJson(
      String.raw`
import sys, json
import numpy as np
from osgeo import gdal
a = gdal.Open(sys.argv[1]); b = gdal.Open(sys.argv[2])
ga = a.GetGeoTransform(); gb = b.GetGeoTransform()
dx = int(round((gb[0] - ga[0]) / ga[1])); dy = int(round((gb[3] - ga[3]) / ga[5]))
w = a.RasterXSize - dx; h = a.RasterYSize - dy
A = a.ReadAsArray(dx, dy, w, h).astype('f8'); B = b.ReadAsArray(0, 0, w, h).astype('f8')
gain = [float(A[c].std() / B[c].std()) for c in range(3)]
print(json.dumps({'gain': gain, 'offset': [float(A[c].mean() - gain[c] * B[c].mean()) for c in range(3)]}))
`,
      [join(dir, 'scene-a.tif'), join(dir, 'scene-b.tif')],
    ) as { gain: number[]; offset: number[] };
    const prov = readJson<{ features: { properties: { scene_id: string; radiometry?: { to: string; gain: number[]; offset: number[] } } }[] }>(join(out, 'provenance.geojson'));
    const a = prov.features.find((f) => f.properties.scene_id === 'scene-a')!;
    const b = prov.features.find((f) => f.properties.scene_id === 'scene-b')!;
    expect(a.properties.radiometry).toBeUndefined();
    expect(b.properties.radiometry?.to).toBe('scene-a');
    for (let c = 0; c < 3; c++) {
      expect(Math.abs(b.properties.radiometry!.gain[c]! / oracle.gain[c]! - 1)).toBeLessThan(0.02);
      expect(Math.abs(b.properties.radiometry!.offset[c]! - oracle.offset[c]!)).toBeLessThan(3);
    }
    const run = readJson<{ sceneFeather: { harmonised?: { scene: string; to: string }[] } }>(join(out, 'run.json'));
    expect(run.sceneFeather.harmonised?.map((h) => [h.scene, h.to])).toEqual([['scene-b', 'scene-a']]);
    // Applied to scene B's pixels only: west of the overlap (scene A alone) the heights are those
    // of the run without --harmonise; east of it (scene B alone) they change.
    const h = gdalBand(join(out, 'chm.tif'), 1);
    const plain = gdalBand(join(dir, 'run-feathered', 'chm.tif'), 1);
    const gridX0 = readJson<{ grid: { transform: number[] } }>(join(out, 'run.json')).grid.transform[0]!;
    const x0 = Math.round((fx.transform[0]! - gridX0) / 0.6);
    let west = 0;
    let east = 0;
    let ne = 0;
    for (let y = 0; y < h.height; y++) {
      for (let x = x0 + 8; x < x0 + 150; x++) west = Math.max(west, Math.abs(h.values[y * h.width + x]! - plain.values[y * h.width + x]!));
      for (let x = x0 + A_END + 40; x < x0 + N - 8; x++) {
        east += Math.abs(h.values[y * h.width + x]! - plain.values[y * h.width + x]!);
        ne++;
      }
    }
    expect(west).toBeLessThan(1e-6);
    expect(east / ne).toBeGreaterThan(0.1);
    console.log(JSON.stringify({ harmonise: { fitted: b.properties.radiometry, oracle, meanAbsChangeEast: east / ne } }));
  });

  it('a scene inside another’s extent: its weight rises over F px inward from its footprint edge, and the step at its edges falls to the outer scene’s own level', async () => {
    // Inner scene: columns [160, 352), rows [144, 368) of the region, inside the outer scene (the
    // whole region); listed first, i.e. the higher priority (as a newer acquisition would be).
    const [IX0, IY0, IW, IH] = [160, 144, 192, 224];
    gdalJson(MAKE_INNER, [join(dir, 'utm.tif'), dir, String(IX0), String(IY0), String(IW), String(IH)]);
    const runs: Record<string, Run> = {};
    for (const [name, imagery, extra] of [
      ['feathered', ['inner.tif', 'outer.tif'], []],
      ['off', ['inner.tif', 'outer.tif'], ['--scene-feather', '0']],
      ['alone-inner', ['alone-inner.tif'], []],
      ['alone-outer', ['outer.tif'], []],
      // The inner scene with the lower priority: hidden by the outer one, as in the plain mosaic.
      ['hidden', ['outer.tif', 'inner.tif'], []],
    ] as const) {
      const out = join(dir, `run-inner-${name}`);
      const r = await chm(['--model', model, '--aoi', aoiPath, ...imagery.flatMap((i) => ['--imagery', join(dir, i)]), '--out', out, '--tile-size', String(T), '--overlap', String(OVERLAP), '--no-web-tiles', ...extra], home);
      expect(r.code, r.stderr).toBe(0);
      const run = readJson<{ grid: { transform: number[] }; sceneFeather: SceneFeatherInfo }>(join(out, 'run.json'));
      const band = gdalBand(join(out, 'chm.tif'), 1);
      runs[name] = { h: band.values, width: band.width, height: band.height, transform: run.grid.transform, info: run.sceneFeather };
    }
    const f = runs['feathered']!;
    const o = runs['off']!;
    const ri = runs['alone-inner']!;
    const ro = runs['alone-outer']!;
    const hid = runs['hidden']!;
    for (const r of [o, ri, ro, hid]) {
      expect(r.transform).toEqual(f.transform);
      expect([r.width, r.height]).toEqual([f.width, f.height]);
    }
    const { width: W, height: H } = f;
    expect(f.info.seams).toBe(1);
    expect(f.info.lines[0]!.scenes).toEqual(['inner', 'outer']);
    expect(f.info.lines[0]!.footprint).toBe(true);
    const F = f.info.lines[0]!.featherPx;
    expect(F).toBe(40);
    expect(f.info.featheredTiles).toBeGreaterThan(0);
    expect(f.info.extraTileInferences).toBe(f.info.featheredTiles);
    expect(o.info.seams).toBe(0);
    expect(hid.info.seams).toBe(0);
    expect(hid.info.extraTileInferences).toBe(0);

    // The inner footprint in grid px.
    const x0 = Math.round((fx.transform[0]! - f.transform[0]!) / 0.6);
    const y0 = Math.round((f.transform[3]! - fx.transform[3]!) / 0.6);
    const [fx0, fy0, fx1, fy1] = [x0 + IX0, y0 + IY0, x0 + IX0 + IW, y0 + IY0 + IH];
    // Lower priority: the outer scene's map wherever it has data.
    let hiddenMax = 0;
    for (let i = 0; i < W * H; i++) if (ro.h[i] !== NODATA) hiddenMax = Math.max(hiddenMax, Math.abs(hid.h[i]! - ro.h[i]!));
    expect(hiddenMax).toBeLessThan(1e-4);

    // Oracle: inside the zone chm.tif = w·(inner alone) + (1 − w)·(outer alone), w = sin²(π/2 · e/F)
    // with e the distance (px) from the pixel centre inward to the rectangle's nearest side.
    let zone = 0;
    let worst = 0;
    let interior = 0;
    let interiorWorst = 0;
    for (let y = fy0; y < fy1; y++) {
      for (let x = fx0; x < fx1; x++) {
        const i = y * W + x;
        if (ri.h[i] === NODATA || ro.h[i] === NODATA || f.h[i] === NODATA) continue;
        const e = Math.min(x - fx0, fx1 - 1 - x, y - fy0, fy1 - 1 - y) + 0.5;
        if (e >= F) {
          interior++;
          interiorWorst = Math.max(interiorWorst, Math.abs(f.h[i]! - o.h[i]!));
          continue;
        }
        const w = Math.sin((Math.PI / 2) * (e / F)) ** 2;
        zone++;
        worst = Math.max(worst, Math.abs(f.h[i]! - (w * ri.h[i]! + (1 - w) * ro.h[i]!)));
      }
    }
    // The step statistic at the inner scene's west and east edges (rows inside it; and, reported, at
    // the zone's middle line). Two backgrounds: the statistic on columns of the outer scene only
    // (as above), and — at the same lines — on the outer scene's own map (its run alone): a fixed
    // line over 224 rows carries its own texture (0.39 and 0.57 m there against a column average
    // of 0.26 m when this was written), which no blending can remove.
    const col = (c: number) => (y: number): number | null => (y >= fy0 && y < fy1 ? c : null);
    const away: [number, number][] = [
      [x0 + 24, fx0 - 24],
      [fx1 + 24, x0 + N - 24],
    ];
    const report = {
      plainMosaic: { west: seamStep(o.h, W, H, col(fx0)), east: seamStep(o.h, W, H, col(fx1)), background: backgroundStep(o.h, W, H, away) },
      feathered: {
        west: seamStep(f.h, W, H, col(fx0)),
        east: seamStep(f.h, W, H, col(fx1)),
        westMid: seamStep(f.h, W, H, col(fx0 + F / 2)),
        eastMid: seamStep(f.h, W, H, col(fx1 - F / 2)),
        background: backgroundStep(f.h, W, H, away),
      },
      outerAlone: { west: seamStep(ro.h, W, H, col(fx0)), east: seamStep(ro.h, W, H, col(fx1)) },
      featheredTiles: f.info.featheredTiles,
      extraTileInferences: f.info.extraTileInferences,
      zonePixels: zone,
      worstOracleError: worst,
      interiorPixels: interior,
      interiorWorstVsPlain: interiorWorst,
      hiddenMax,
    };
    console.log(JSON.stringify({ innerScene: report }));
    expect(zone).toBeGreaterThan(0.9 * (IW * IH - (IW - 2 * F) * (IH - 2 * F)));
    expect(worst).toBeLessThan(0.01);
    expect(interior).toBeGreaterThan(0);

    // Provenance: one transition zone naming both scenes.
    const prov = readJson<{ transition_zones?: { properties: { scene_ids: string[]; width_m: number; pixels: number } }[] }>(join(dir, 'run-inner-feathered', 'provenance.geojson'));
    expect(prov.transition_zones?.length).toBe(1);
    const tz = prov.transition_zones![0]!.properties;
    expect(tz.scene_ids).toEqual(['inner', 'outer']);
    expect(tz.width_m).toBeCloseTo(24, 6);
    expect(Math.abs(tz.pixels - zone) / zone).toBeLessThan(0.02);
    expect(prov.transition_zones![0]!.properties).toMatchObject({ weights: expect.stringMatching(/footprint edge/) });

    // Sharded (512-px shards on the global shard grid): the same map (the distance is found per tile
    // on the zone's grid, whichever shard asks).
    const sharded = join(dir, 'run-inner-sharded');
    const rs = await chm(['--model', model, '--aoi', aoiPath, '--imagery', join(dir, 'inner.tif'), '--imagery', join(dir, 'outer.tif'), '--out', sharded, '--tile-size', String(T), '--overlap', String(OVERLAP), '--no-web-tiles', '--shard-size', '512'], home);
    expect(rs.code, rs.stderr).toBe(0);
    const vrt = readdirSync(sharded).find((n) => /^chm-.*\.vrt$/.test(n))!;
    const cmp = gdalJson(COMPARE, [join(dir, 'run-inner-feathered', 'chm.tif'), join(sharded, vrt)]) as { max: number; n: number; onlyOne: number };
    expect(cmp.onlyOne).toBe(0);
    expect(cmp.max).toBeLessThan(1e-4);
    console.log(JSON.stringify({ innerSharded: { ...cmp, shards: readdirSync(join(sharded, 'shards')).length } }));

    // Plain mosaic: a hard step at the inner footprint edge, clearly above the background (both
    // kinds); feathered: at the outer scene's own level on the same lines (the weight is ~0 at the
    // edge and rises smoothly inward).
    const mean = (r: { west: number; east: number }): number => (r.west + r.east) / 2;
    for (const side of ['west', 'east'] as const) expect(report.plainMosaic[side]).toBeGreaterThan(1.5 * report.plainMosaic.background);
    expect(mean(report.plainMosaic)).toBeGreaterThan(1.3 * mean(report.outerAlone));
    expect(mean(report.feathered)).toBeLessThan(1.1 * mean(report.outerAlone));
  });

  it('refuses a negative --scene-feather or one wider than the tile stride: one line, exit 2', async () => {
    const aoiPath = writeJson(join(dir, 'aoi-bad.geojson'), { type: 'Polygon', coordinates: [[[128.6562, 37.6672], [128.66, 37.667], [128.6602, 37.6695], [128.6562, 37.6672]]] });
    const cogeo = sharedData('rasterio', 'cogeo.tif');
    for (const [value, pattern] of [
      ['-5', /--scene-feather: must be ≥ 0/],
      // Tile 256 − overlap 64 = 192 px = 115.2 m at 0.6 m.
      ['200', /--scene-feather: 200 m is wider than the tile stride allows .*115\.2/],
    ] as const) {
      const out = join(dir, `bad-${value}`);
      const r = await chm(['--model', 'demo', '--aoi', aoiPath, '--imagery', cogeo, '--out', out, '--tile-size', String(T), '--overlap', String(OVERLAP), `--scene-feather=${value}`], home);
      expect(r.code, r.stderr).toBe(2);
      const errors = r.events.filter((e) => e['type'] === 'error' && e['code'] === 'E_ARGUMENT');
      expect(errors.length, r.stderr).toBeGreaterThan(0);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr.trim().split('\n').filter((l) => l.includes('--scene-feather')).length).toBe(1);
      // Nothing written: no run directory, no state beside it.
      expect(existsSync(out)).toBe(false);
      expect(existsSync(join(dir, `.bad-${value}.geo-dino-state`))).toBe(false);
    }
  });
});
