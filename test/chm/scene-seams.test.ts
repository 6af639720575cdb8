/**
 * Seams between source scenes (issue 20): two scenes cut by GDAL from the same real imagery
 * (../shared/data/rasterio/cogeo.tif warped to a 0.6 m UTM grid), the second one as a different
 * acquisition would be — another gamma and colour balance, and shifted by 1.2 m east, 0.6 m
 * south — overlapping over 128 columns. `geo-dino chm` runs on both (the first has priority)
 * with the default scene feathering and with `--scene-feather 0` (the plain priority mosaic).
 *
 * The step statistic, read from chm.tif by GDAL: per row, |mean height of the 3 columns right of
 * the seamline − mean of the 3 columns left of it|, averaged over rows; the background is the
 * same statistic at every column away from any seam (inside one scene only). Without feathering
 * the seamline is the first scene's footprint edge and the step is clearly above the background;
 * with feathering (seamline as run.json reports it) it is at the background's level.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { rectangleAoi } from '@geo-dino/chm';
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
const BAND = 3;

const MAKE_SCENES = String.raw`
import sys, json
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
src, tmp, a_path, b_path = sys.argv[1:5]
a_end, b_start, sx, sy = (int(v) for v in sys.argv[5:9])
gdal.Warp(tmp, src, dstSRS='EPSG:32652', xRes=0.6, yRes=0.6, targetAlignedPixels=True, resampleAlg='bilinear')
full = gdal.Translate('/vsimem/full.tif', tmp, srcWin=[100, 100, 512, 512], bandList=[1, 2, 3], maskBand=None)
gt = full.GetGeoTransform()
rgb = full.ReadAsArray().astype('float64')
drv = gdal.GetDriverByName('GTiff')
# Scene A: the imagery as it is, columns [0, a_end).
a = drv.Create(a_path, a_end, 512, 3, gdal.GDT_Byte, ['TILED=YES', 'COMPRESS=DEFLATE'])
a.SetProjection(full.GetProjection())
a.SetGeoTransform(gt)
a.WriteRaster(0, 0, a_end, 512, rgb[:, :, :a_end].astype('uint8').tobytes())
a = None
# Scene B: another acquisition: gamma 0.6, warmer colour balance, shifted (sx, sy) pixels east/south.
x = rgb[:, :, b_start:] / 255.0
x = x ** 0.6
x = x * np.array([1.15, 1.0, 0.8])[:, None, None]
b_rgb = np.clip(np.round(x * 255.0), 0, 255).astype('uint8')
b = drv.Create(b_path, 512 - b_start, 512, 3, gdal.GDT_Byte, ['TILED=YES', 'COMPRESS=DEFLATE'])
b.SetProjection(full.GetProjection())
b.SetGeoTransform((gt[0] + (b_start + sx) * gt[1], gt[1], 0, gt[3] + sy * gt[5], 0, gt[5]))
b.WriteRaster(0, 0, 512 - b_start, 512, b_rgb.tobytes())
b = None
print(json.dumps({'transform': gt}))
`;

interface SceneFeatherInfo {
  metres: number;
  px: number;
  seams: number;
  featheredTiles: number;
  extraTileInferences: number;
  lines: { scenes: string[]; featherPx: number; points: [number, number][] }[];
}

/** Step statistic at a seam (column per row) and away from it (every column of the given ranges). */
function stepAt(h: Float64Array, width: number, height: number, seamCol: (row: number) => number | null): number {
  let s = 0;
  let n = 0;
  for (let y = 0; y < height; y++) {
    const c = seamCol(y);
    if (c === null || c - BAND < 0 || c + BAND > width) continue;
    let l = 0;
    let r = 0;
    let ok = true;
    for (let k = 0; k < BAND; k++) {
      const vl = h[y * width + c - 1 - k]!;
      const vr = h[y * width + c + k]!;
      if (vl === -9999 || vr === -9999) ok = false;
      l += vl;
      r += vr;
    }
    if (!ok) continue;
    s += Math.abs(r - l) / BAND;
    n++;
  }
  return n ? s / n : NaN;
}

function background(h: Float64Array, width: number, height: number, ranges: [number, number][]): number {
  let s = 0;
  let n = 0;
  for (const [c0, c1] of ranges) {
    for (let c = c0; c < c1; c++) {
      const v = stepAt(h, width, height, () => c);
      if (Number.isFinite(v)) {
        s += v;
        n++;
      }
    }
  }
  return s / n;
}

let dir: string;
let home: string;
beforeAll(() => {
  requireGdal();
  dir = tempDir('scene-seams');
  home = join(dir, 'home');
});
afterAll(() => (process.env['KEEP'] ? console.log('kept', dir) : rmSync(dir, { recursive: true, force: true })));

describe('seams between source scenes', () => {
  it('feathering across the seamline brings the height step down to the background; the priority mosaic steps', async () => {
    const aPath = join(dir, 'scene-a.tif');
    const bPath = join(dir, 'scene-b.tif');
    const fx = gdalJson(MAKE_SCENES, [sharedData('rasterio', 'cogeo.tif'), join(dir, 'utm.tif'), aPath, bPath, String(A_END), String(B_START), String(SHIFT_X), String(SHIFT_Y)]) as { transform: number[] };
    const aoi = rectangleAoi(32652, fx.transform, N, N, 8, 'two scenes');
    const aoiPath = writeJson(join(dir, 'aoi.geojson'), { type: 'MultiPolygon', coordinates: aoi.geometry });

    const runs: Record<string, { h: Float64Array; width: number; height: number; x0: number; info: SceneFeatherInfo }> = {};
    for (const [name, extra] of [
      ['feathered', []],
      ['off', ['--scene-feather', '0']],
    ] as const) {
      const out = join(dir, `run-${name}`);
      const r = await chm(['--model', 'demo', '--aoi', aoiPath, '--imagery', aPath, '--imagery', bPath, '--out', out, '--tile-size', String(T), '--overlap', String(OVERLAP), '--no-web-tiles', ...extra], home);
      expect(r.code, r.stderr).toBe(0);
      const run = readJson<{ grid: { transform: number[] }; sceneFeather: SceneFeatherInfo }>(join(out, 'run.json'));
      const band = gdalBand(join(out, 'chm.tif'), 1);
      // Column of the fixture's column 0 in the run's grid (both on the 0.6 m lattice).
      const x0 = Math.round((fx.transform[0]! - run.grid.transform[0]!) / 0.6);
      runs[name] = { h: band.values, width: band.width, height: band.height, x0, info: run.sceneFeather };
    }

    const f = runs['feathered']!;
    const o = runs['off']!;
    expect(f.info.seams).toBe(1);
    expect(f.info.lines[0]!.scenes).toEqual(['scene-a', 'scene-b']);
    expect(f.info.featheredTiles).toBeGreaterThan(0);
    expect(f.info.extraTileInferences).toBe(f.info.featheredTiles);
    expect(o.info.seams).toBe(0);
    expect(o.info.extraTileInferences).toBe(0);

    // The seamline of the feathered run (run.json, grid px), per row; the plain mosaic's: A's footprint edge.
    const pts = f.info.lines[0]!.points;
    const seamF = (y: number): number | null => {
      let best: [number, number] | null = null;
      for (const p of pts) if (!best || Math.abs(p[1] - (y + 0.5)) < Math.abs(best[1] - (y + 0.5))) best = p;
      return best && Math.abs(best[1] - (y + 0.5)) <= 2 ? Math.round(best[0]) : null;
    };
    const seamO = (): number => o.x0 + A_END;
    // Background: columns inside one scene only, away from the overlap and the AOI's edges.
    const bgF = background(f.h, f.width, f.height, [[f.x0 + 24, f.x0 + B_START - 24], [f.x0 + A_END + 24, f.x0 + N - 24]]);
    const bgO = background(o.h, o.width, o.height, [[o.x0 + 24, o.x0 + B_START - 24], [o.x0 + A_END + 24, o.x0 + N - 24]]);
    const stepF = stepAt(f.h, f.width, f.height, seamF);
    const stepO = stepAt(o.h, o.width, o.height, seamO);
    console.log(JSON.stringify({ feathered: { step: stepF, background: bgF, info: { ...f.info, lines: undefined } }, off: { step: stepO, background: bgO } }));
    // Without feathering the scenes' radiometric edge is a height step well above the background.
    expect(stepO).toBeGreaterThan(3 * bgO);
    // With feathering the step is at the background's level.
    expect(stepF).toBeLessThan(1.5 * bgF);
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
    }
  });
});
