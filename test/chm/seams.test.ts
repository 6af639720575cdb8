/**
 * Seams: on a 512×512 image (real imagery, warped by GDAL onto a 0.6 m UTM grid) that the model
 * can take in one pass, `geo-dino chm` with 256-pixel tiles and 64 pixels of overlap is compared
 * with oracles computed here, outside the tiler and the stitcher:
 *
 * 1. The blend oracle: each of the 9 tiles is cut from the image and run through the model
 *    directly (mean colour where a tile passes the image edge, as the pipeline pads), and blended
 *    here with the raised-cosine weights written from their formula, in float64. chm.tif must
 *    equal it within 1e-3 m (float32 accumulation in the stitcher; heights are ≤ 96 m).
 * 2. The one-pass result (the whole image in one model call). Tiles see less context than the
 *    whole image, so they differ from it; blending is a convex combination of tiles, hence the
 *    tolerance, pointwise: |blended − one-pass| ≤ max over the covering tiles of |tile − one-pass|
 *    (+1e-3 m). That is the tightest bound that holds for any model: blending may not add error
 *    of its own; it can only choose among the tiles' answers.
 * 3. Seams: the jump of the error (result − one-pass) across the lines where a tile's
 *    contribution starts or ends, against the same measure on the other columns/rows. With
 *    uniform weights (plain averaging) the error steps at those lines; with raised-cosine
 *    weights it does not: the test requires the uniform seam excess to be at least 3× the
 *    raised-cosine one and the raised-cosine one to stay within 1.5× the background.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { normalizeRgb, openModel } from '@geo-dino/model';
import { rectangleAoi } from '@geo-dino/chm';
import { sharedData } from '../support/shared-data.js';
import { gdalJson } from '../support/fixture-run.js';
import { requireGdal } from '../support/tools.js';
import { chm, gdalBand, tempDir, writeJson } from './helpers.js';

const N = 512;
const T = 256;
const OVERLAP = 64;
const STRIDE = T - OVERLAP;
const STARTS = [0, STRIDE, 2 * STRIDE]; // ceil((512 - 64) / 192) = 3 tiles per axis

const MAKE_FIXTURE = String.raw`
import sys, json
from osgeo import gdal
gdal.UseExceptions()
src, tmp, out, raw = sys.argv[1:5]
gdal.Warp(tmp, src, dstSRS='EPSG:32652', xRes=0.6, yRes=0.6, targetAlignedPixels=True, resampleAlg='bilinear')
gdal.Translate(out, tmp, srcWin=[100, 100, 512, 512], bandList=[1, 2, 3], maskBand=None, creationOptions=['TILED=YES', 'COMPRESS=DEFLATE'])
ds = gdal.Open(out)
open(raw, 'wb').write(ds.ReadRaster(0, 0, 512, 512, band_list=[1, 2, 3]))
print(json.dumps({'transform': ds.GetGeoTransform(), 'width': ds.RasterXSize, 'height': ds.RasterYSize}))
`;

/** Raised-cosine axis weights from their formula (sin² over the overlap, 1 inside). */
function axis(size: number, overlap: number): Float64Array {
  const w = new Float64Array(size).fill(1);
  for (let i = 0; i < overlap; i++) {
    const v = Math.sin((Math.PI / 2) * ((i + 0.5) / overlap)) ** 2;
    w[i] = v;
    w[size - 1 - i] = v;
  }
  return w;
}

/** Mean |Δ(error)| across vertical and horizontal lines: at tile-edge lines, and at the other patch-edge lines. */
function seamExcess(result: ArrayLike<number>, onePass: Float32Array): { edges: number; background: number } {
  const lines = new Set<number>();
  for (const s of STARTS) {
    if (s > 0) lines.add(s);
    if (s + T < N) lines.add(s + T);
  }
  let eSum = 0;
  let eN = 0;
  let bSum = 0;
  let bN = 0;
  for (let k = 1; k < N; k++) {
    let s = 0;
    for (let j = 0; j < N; j++) {
      const ex = result[j * N + k]! - onePass[j * N + k]! - (result[j * N + k - 1]! - onePass[j * N + k - 1]!);
      const ey = result[k * N + j]! - onePass[k * N + j]! - (result[(k - 1) * N + j]! - onePass[(k - 1) * N + j]!);
      s += Math.abs(ex) + Math.abs(ey);
    }
    if (lines.has(k)) {
      eSum += s;
      eN += 2 * N;
    } else if (k % 16 === 0) {
      // Background: the other lines between two 16-pixel ViT patches (tile edges are patch
      // edges too, and patch edges carry the model's own small discontinuities).
      bSum += s;
      bN += 2 * N;
    }
  }
  return { edges: eSum / eN, background: bSum / bN };
}

let dir: string;
let home: string;
beforeAll(() => {
  requireGdal();
  dir = tempDir('seams');
  home = join(dir, 'home');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('seams', () => {
  it('tiled + raised-cosine equals its blend oracle, stays within the tiles’ own error of the one-pass result, and leaves no seam where uniform averaging does', async () => {
    const fixture = join(dir, 'utm512.tif');
    const rawPath = join(dir, 'rgb.raw');
    const fx = gdalJson(MAKE_FIXTURE, [sharedData('rasterio', 'cogeo.tif'), join(dir, 'utm.tif'), fixture, rawPath]) as { transform: number[]; width: number; height: number };
    expect([fx.width, fx.height]).toEqual([N, N]);
    const aoi = rectangleAoi(32652, fx.transform, N, N, 0.25, 'fixture extent');
    const aoiPath = writeJson(join(dir, 'aoi.geojson'), { type: 'MultiPolygon', coordinates: aoi.geometry });

    const results: Record<string, Float64Array> = {};
    for (const blend of ['raised-cosine', 'uniform']) {
      const out = join(dir, `run-${blend}`);
      const r = await chm(['--model', 'demo', '--aoi', aoiPath, '--imagery', fixture, '--out', out, '--tile-size', String(T), '--overlap', String(OVERLAP), '--blend', blend, '--no-web-tiles'], home);
      expect(r.code, r.stderr).toBe(0);
      const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { grid: { transform: number[]; width: number } };
      expect(run.grid.transform).toEqual(fx.transform);
      const band = gdalBand(join(out, 'chm.tif'), 1);
      expect([band.width, band.height]).toEqual([N, N]);
      results[blend] = band.values;
    }

    // The model, run directly: the whole image, and each tile cut from it.
    const raw = readFileSync(rawPath); // band-sequential RGB, 3 × 512 × 512
    const rgb = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    const runner = await openModel('demo', { device: 'cpu', threads: 1, demoDir: join(home, 'models', 'demo') });
    let onePass: Float32Array;
    const tiles: { x: number; y: number; h: Float32Array }[] = [];
    try {
      onePass = (await runner.runChm(normalizeRgb(rgb, { height: N, width: N, layout: 'chw' }), 1, N, N)).height;
      const per = 3 * T * T;
      const px = new Float32Array(STARTS.length ** 2 * per);
      let k = 0;
      for (const y of STARTS) {
        for (const x of STARTS) {
          const crop = new Uint8Array(per);
          const mask = new Uint8Array(T * T);
          for (let j = 0; j < T; j++) {
            for (let i = 0; i < T; i++) {
              if (x + i >= N || y + j >= N) continue;
              mask[j * T + i] = 1;
              for (let c = 0; c < 3; c++) crop[c * T * T + j * T + i] = rgb[c * N * N + (y + j) * N + x + i]!;
            }
          }
          normalizeRgb(crop, { height: T, width: T, layout: 'chw', mask, out: px.subarray(k * per, (k + 1) * per) });
          tiles.push({ x, y, h: new Float32Array(0) });
          k++;
        }
      }
      const res = await runner.runChm(px, tiles.length, T, T);
      tiles.forEach((t, i) => (t.h = res.height.slice(i * T * T, (i + 1) * T * T)));
    } finally {
      await runner.close();
    }

    const w = axis(T, OVERLAP);
    const oracle = new Float64Array(N * N);
    const bound = new Float64Array(N * N);
    for (let y = 0; y < N; y++) {
      for (let x = 0; x < N; x++) {
        let s = 0;
        let ws = 0;
        let worst = 0;
        for (const t of tiles) {
          const i = x - t.x;
          const j = y - t.y;
          if (i < 0 || j < 0 || i >= T || j >= T) continue;
          const v = t.h[j * T + i]!;
          const wt = w[i]! * w[j]!;
          s += wt * v;
          ws += wt;
          worst = Math.max(worst, Math.abs(v - onePass![y * N + x]!));
        }
        oracle[y * N + x] = s / ws;
        bound[y * N + x] = worst;
      }
    }
    const blended = results['raised-cosine']!;
    const uniform = results['uniform']!;
    let maxOracle = 0;
    let over = 0;
    let errSum = 0;
    let boundSum = 0;
    for (let i = 0; i < N * N; i++) {
      maxOracle = Math.max(maxOracle, Math.abs(blended[i]! - oracle[i]!));
      const e = Math.abs(blended[i]! - onePass![i]!);
      if (e > bound[i]! + 1e-3) over++;
      errSum += e;
      boundSum += bound[i]!;
    }
    expect(maxOracle).toBeLessThan(1e-3);
    expect(over).toBe(0);

    const sb = seamExcess(blended, onePass!);
    const su = seamExcess(uniform, onePass!);
    const report = {
      meanAbsBlendedVsOnePass: errSum / (N * N),
      meanAbsTileBound: boundSum / (N * N),
      seamRaisedCosine: sb,
      seamUniform: su,
    };
    console.log(JSON.stringify(report));
    expect(sb.edges).toBeLessThan(1.5 * sb.background);
    expect(su.edges - su.background).toBeGreaterThan(3 * Math.max(sb.edges - sb.background, 0.01 * su.background));
  });
});
