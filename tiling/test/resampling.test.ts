/**
 * GDAL's `cubic` and `mode` in geo-dino's warper against gdalwarp -et 0 on the same grids:
 * upsampling, downsampling (cubic's stretched kernel; mode over the footprint) and a reprojection.
 * Each case also scores a naive substitute (bilinear for cubic, nearest for mode) against the same
 * gdalwarp output, to show the threshold tells the methods apart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layoutForGrid, type Grid, type Resampling } from '@geo-dino/tiling';
import { sharedData } from '../../test/support/shared-data.js';
import { requireGdal } from '../../test/support/tools.js';
import { gdalPython } from './support/gdal.js';
import { assemble, compare, gdalwarpInto, gridOf, withRaster, type Agreement } from './support/warp-compare.js';

let dir: string;
let gdalwarp: ReturnType<typeof gdalwarpInto>;
let classes: string;
const RGB = sharedData('rasterio', 'RGB.byte.tif');

beforeAll(() => {
  requireGdal();
  dir = mkdtempSync(join(tmpdir(), 'gd-resampling-'));
  gdalwarp = gdalwarpInto(dir);
  // A categorical raster: band 1 of RGB.byte.tif cut into 8 classes (1-8; bands: class × 1, 2, 3), nodata 0 outside the scene.
  classes = join(dir, 'classes.tif');
  gdalPython(
    String.raw`
import sys
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
src = gdal.Open(sys.argv[1])
a = src.GetRasterBand(1).ReadAsArray().astype(np.int32)
c = np.where(a > 0, np.minimum(a // 24, 7) + 1, 0).astype(np.uint8)
ds = gdal.GetDriverByName('GTiff').Create(sys.argv[2], src.RasterXSize, src.RasterYSize, 3, gdal.GDT_Byte)
ds.SetGeoTransform(src.GetGeoTransform())
ds.SetProjection(src.GetProjection())
for k, f in enumerate((1, 2, 3)):
    b = ds.GetRasterBand(k + 1)
    b.WriteArray(np.where(c > 0, c * f, 0).astype(np.uint8))
    b.SetNoDataValue(0)
ds = None
`,
    [RGB, classes],
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function score(path: string, grid: Grid, epsg: string, gdalName: string, ours: Resampling, naive: Resampling, name: string): Promise<{ ours: Agreement; naive: Agreement }> {
  const layout = layoutForGrid(grid, { tileSize: 256, overlap: 0 });
  const ref = gdalwarp([path], grid, epsg, gdalName, name, ['-ovr', 'NONE']);
  const a = await withRaster(path, (r) => assemble(layout, [{ id: 'src', raster: r }], ours));
  const b = await withRaster(path, (r) => assemble(layout, [{ id: 'src', raster: r }], naive));
  const res = { ours: compare(a, ref, grid), naive: compare(b, ref, grid) };
  const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;
  console.log(
    `${name}: ${ours} within 1 DN of gdalwarp -r ${gdalName}: ${pct(res.ours.within1)} (exact ${pct(res.ours.exact)}, max ${res.ours.maxDiff}, validity ${pct(res.ours.validityAgree)}, ${res.ours.bothValid} px); ${naive} instead: ${pct(res.naive.within1)}`,
  );
  return res;
}

describe('cubic vs gdalwarp -r cubic', () => {
  it('upsampling 2× in the source CRS (4×4 taps, bilinear at edges and nodata)', async () => {
    const grid = gridOf('EPSG:32618', 101985, 2826915, 150.018963337547405, 1582, 1436);
    const r = await score(RGB, grid, 'EPSG:32618', 'cubic', 'cubic', 'bilinear', 'cubic-up.tif');
    expect(r.ours.bothValid).toBeGreaterThan(1_000_000);
    expect(r.ours.validityAgree).toBeGreaterThan(0.995);
    expect(r.ours.within1).toBeGreaterThan(0.995);
    expect(r.naive.within1).toBeLessThan(0.95);
  });

  it('downsampling 3× in the source CRS (kernel stretched by the ratio)', async () => {
    const grid = gridOf('EPSG:32618', 101985, 2826915, 900.113780025284427, 263, 239);
    const r = await score(RGB, grid, 'EPSG:32618', 'cubic', 'cubic', 'bilinear', 'cubic-down.tif');
    expect(r.ours.bothValid).toBeGreaterThan(30_000);
    expect(r.ours.validityAgree).toBeGreaterThan(0.995);
    expect(r.ours.within1).toBeGreaterThan(0.99);
    expect(r.naive.within1).toBeLessThan(0.9);
  });

  it('downsampling 1.5× in the source CRS (a ratio that is not snapped to an integer)', async () => {
    const grid = gridOf('EPSG:32618', 101985, 2826915, 450.056890012642214, 527, 478);
    const r = await score(RGB, grid, 'EPSG:32618', 'cubic', 'cubic', 'bilinear', 'cubic-down15.tif');
    expect(r.ours.bothValid).toBeGreaterThan(150_000);
    expect(r.ours.validityAgree).toBeGreaterThan(0.995);
    expect(r.ours.within1).toBeGreaterThan(0.99);
    expect(r.naive.within1).toBeLessThan(0.9);
  });

  it('reprojection UTM 18N → 17N at 250 m', async () => {
    const grid = gridOf('EPSG:32617', 720000, 2840000, 250, 1040, 920);
    const r = await score(RGB, grid, 'EPSG:32617', 'cubic', 'cubic', 'bilinear', 'cubic-reproj.tif');
    expect(r.ours.bothValid).toBeGreaterThan(300_000);
    expect(r.ours.validityAgree).toBeGreaterThan(0.995);
    expect(r.ours.within1).toBeGreaterThan(0.99);
    expect(r.naive.within1).toBeLessThan(0.95);
  });
});

describe('mode vs gdalwarp -r mode', () => {
  it('downsampling 3× in the source CRS', async () => {
    const grid = gridOf('EPSG:32618', 101985, 2826915, 900.113780025284427, 263, 239);
    const r = await score(classes, grid, 'EPSG:32618', 'mode', 'mode', 'nearest', 'mode-down.tif');
    expect(r.ours.bothValid).toBeGreaterThan(30_000);
    expect(r.ours.exact).toBeGreaterThan(0.99);
    expect(r.naive.exact).toBeLessThan(0.9);
  });

  it('upsampling 2× in the source CRS', async () => {
    const grid = gridOf('EPSG:32618', 101985, 2826915, 150.018963337547405, 1582, 1436);
    const r = await score(classes, grid, 'EPSG:32618', 'mode', 'mode', 'nearest', 'mode-up.tif');
    expect(r.ours.bothValid).toBeGreaterThan(1_000_000);
    expect(r.ours.exact).toBeGreaterThan(0.99);
  });

  it('reprojection UTM 18N → 17N at 700 m', async () => {
    const grid = gridOf('EPSG:32617', 720000, 2840000, 700, 372, 330);
    const r = await score(classes, grid, 'EPSG:32617', 'mode', 'mode', 'nearest', 'mode-reproj.tif');
    expect(r.ours.bothValid).toBeGreaterThan(30_000);
    expect(r.ours.exact).toBeGreaterThan(0.98);
    expect(r.naive.exact).toBeLessThan(0.9);
  });
});
