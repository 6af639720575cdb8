/**
 * Warping and mosaicking against gdalwarp on the same target grid (gdalwarp run with `-et 0`,
 * exact transforms, so that GDAL's own 0.125-pixel approximation does not blur the comparison).
 *
 * Tolerances (also in tiling/README.md): validity agrees on ≥ 99.5 % of the grid; nearest gives
 * identical values on ≥ 99.5 % of the pixels both call valid; bilinear is within 1 DN on ≥ 99 %
 * (the rest sit next to nodata, where the two differ on which neighbours count). Downsampling is
 * compared on a grid in the source's own CRS: when the grid is rotated against the source, GDAL
 * sizes its widened kernel from the axis-aligned extent of the source window (a few % wider than
 * the true scale geo-dino uses), which moves values by a few DN.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aoiFromBbox } from '@geo-dino/geometry';
import { gridForAoi, layoutForGrid, openRaster, NO_SOURCE, type Grid } from '@geo-dino/tiling';
import { sharedData } from '../../test/support/shared-data.js';
import { requireGdal } from '../../test/support/tools.js';
import { gdal, gdalRead } from './support/gdal.js';
import { assemble, compare, gdalwarpInto, gridOf, withRaster } from './support/warp-compare.js';

let dir: string;
let gdalwarp: (src: string[], grid: Grid, epsg: string, resampling: string, name: string) => string;
beforeAll(() => {
  requireGdal();
  dir = mkdtempSync(join(tmpdir(), 'gd-warp-'));
  gdalwarp = gdalwarpInto(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('warp vs gdalwarp', () => {
  it('RGB.byte.tif (UTM 18N, nodata 0) → UTM 17N at 200 m, nearest: same values', async () => {
    const grid = gridOf('EPSG:32617', 720000, 2840000, 200, 1300, 1150);
    const layout = layoutForGrid(grid, { tileSize: 256, overlap: 0 });
    const ours = await withRaster(sharedData('rasterio', 'RGB.byte.tif'), (r) => assemble(layout, [{ id: 'rgb', raster: r }], 'nearest'));
    const ref = gdalwarp([sharedData('rasterio', 'RGB.byte.tif')], grid, 'EPSG:32617', 'near', 'near.tif');
    const a = compare(ours, ref, grid);
    expect(a.bothValid).toBeGreaterThan(300_000);
    expect(a.validityAgree).toBeGreaterThan(0.995);
    expect(a.exact).toBeGreaterThan(0.995);
  });

  it('RGB.byte.tif → UTM 17N at 150 m (upsampling), bilinear: within 1 DN', async () => {
    const grid = gridOf('EPSG:32617', 720000, 2840000, 150, 1700, 1500);
    const layout = layoutForGrid(grid, { tileSize: 512, overlap: 0 });
    const ours = await withRaster(sharedData('rasterio', 'RGB.byte.tif'), (r) => assemble(layout, [{ id: 'rgb', raster: r }], 'bilinear'));
    const ref = gdalwarp([sharedData('rasterio', 'RGB.byte.tif')], grid, 'EPSG:32617', 'bilinear', 'bil-up.tif');
    const a = compare(ours, ref, grid);
    expect(a.bothValid).toBeGreaterThan(500_000);
    expect(a.validityAgree).toBeGreaterThan(0.995);
    expect(a.within1).toBeGreaterThan(0.99);
  });

  it('RGB.byte.tif at 450 m in its own CRS (downsampling 1.5×, widened kernel), bilinear: within 1 DN', async () => {
    const grid = gridOf('EPSG:32618', 102000, 2826900, 450, 525, 478);
    const layout = layoutForGrid(grid, { tileSize: 256, overlap: 0 });
    const ours = await withRaster(sharedData('rasterio', 'RGB.byte.tif'), (r) => assemble(layout, [{ id: 'rgb', raster: r }], 'bilinear'));
    const ref = gdalwarp([sharedData('rasterio', 'RGB.byte.tif')], grid, 'EPSG:32618', 'bilinear', 'bil-down.tif');
    const a = compare(ours, ref, grid);
    expect(a.bothValid).toBeGreaterThan(150_000);
    expect(a.validityAgree).toBeGreaterThan(0.995);
    expect(a.within1).toBeGreaterThan(0.995);
  });

  it('cogeo.tif (Web Mercator 0.6 m, JPEG + mask) → its UTM zone at 0.6 m through a lon/lat AOI, bilinear', async () => {
    const path = sharedData('rasterio', 'cogeo.tif');
    // The scene's centre is near 128.658°E, 37.669°N (UTM 52N).
    const aoi = aoiFromBbox([128.6555, 37.6664, 128.6600, 37.6700]);
    const layout = gridForAoi(aoi, { tileSize: 256, overlap: 32 });
    expect(layout.grid.crs.epsg).toBe(32652);
    expect(layout.grid.gsd).toBe(0.6);
    const ours = await withRaster(path, (r) => assemble(layout, [{ id: 'cogeo', raster: r }], 'bilinear'));
    // AOI mask: compare only validity of imagery, so ask gdalwarp for the whole grid.
    const ref = gdalwarp([path], layout.grid, 'EPSG:32652', 'bilinear', 'cogeo-utm.tif');
    const refData = gdalRead(ref, [0, 0, layout.grid.width, layout.grid.height], { bands: [0, 1, 2, 3] });
    let both = 0;
    let within = 0;
    let aoiPixels = 0;
    for (let i = 0; i < ours.valid.length; i++) {
      if (!ours.valid[i]) continue;
      aoiPixels++;
      if (!refData.bands[3]![i]) continue;
      both++;
      let d = 0;
      for (let c = 0; c < 3; c++) d = Math.max(d, Math.abs(refData.bands[c]![i]! - ours.rgb[c]![i]!));
      if (d <= 1) within++;
    }
    expect(aoiPixels).toBeGreaterThan(0.9 * layout.grid.width * layout.grid.height * 0.8);
    expect(both / aoiPixels).toBeGreaterThan(0.995);
    expect(within / both).toBeGreaterThan(0.99);
  });

  it('mosaic in priority order with per-pixel provenance equals gdalwarp of the same scenes in the same order', async () => {
    // Two overlapping scenes cut from RGB.byte.tif with different brightness, so a pixel's value says where it came from.
    const a = join(dir, 'scene-a.tif');
    const b = join(dir, 'scene-b.tif');
    gdal('gdal_translate', ['-q', '-srcwin', '0', '0', '500', '450', sharedData('rasterio', 'RGB.byte.tif'), a]);
    gdal('gdal_translate', ['-q', '-srcwin', '300', '250', '491', '468', '-scale', '0', '255', '0', '127', sharedData('rasterio', 'RGB.byte.tif'), b]);
    const grid = gridOf('EPSG:32618', 101985, 2826915, 300.037926675094809, 791, 718);
    const layout = layoutForGrid(grid, { tileSize: 256, overlap: 32 });
    const ra = await openRaster(a);
    const rb = await openRaster(b);
    try {
      const ours = await assemble(
        layout,
        [
          { id: 'b', raster: rb },
          { id: 'a', raster: ra },
        ],
        'nearest',
      );
      // gdalwarp paints later sources over earlier ones: give it the reverse of our priority.
      const ref = gdalwarp([a, b], grid, 'EPSG:32618', 'near', 'mosaic.tif');
      const cmp = compare(ours, ref, grid);
      expect(cmp.validityAgree).toBeGreaterThan(0.999);
      expect(cmp.exact).toBeGreaterThan(0.999);
      // Provenance: inside scene b's window (and valid) the source is 0 (b), elsewhere in a's it is 1.
      let checked = 0;
      for (let y = 0; y < 718; y += 7) {
        for (let x = 0; x < 791; x += 7) {
          const i = y * 791 + x;
          if (!ours.valid[i]) {
            expect(ours.source[i] === NO_SOURCE || !ours.valid[i]).toBe(true);
            continue;
          }
          const inB = x >= 300 && y >= 250;
          const inA = x < 500 && y < 450;
          if (inB && !inA) expect(ours.source[i]).toBe(0);
          if (inA && !inB) expect(ours.source[i]).toBe(1);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(4000);
    } finally {
      await ra.close();
      await rb.close();
    }
  });
});

describe('layout', () => {
  it('tiles of size T with overlap O cover the grid; only tiles touching the AOI are listed', () => {
    const aoi = aoiFromBbox([36.8, -1.3, 36.81, -1.29]);
    const layout = gridForAoi(aoi, { tileSize: 512, overlap: 64 });
    const { width, height } = layout.grid;
    expect(width).toBeGreaterThan(1800);
    expect(layout.cols).toBe(Math.ceil((width - 64) / 448));
    const all = [...layout.tiles({ all: true })];
    expect(all.length).toBe(layout.rows * layout.cols);
    // Coverage: every grid pixel lies in some tile.
    expect(Math.max(...all.map((t) => t.x + t.width))).toBeGreaterThanOrEqual(width);
    expect(Math.max(...all.map((t) => t.y + t.height))).toBeGreaterThanOrEqual(height);
    // A rectangle AOI (in lon/lat, slightly curved in UTM) touches every tile of its own grid.
    expect(layout.countTouching()).toBe(all.length);
  });

  it('an AOI with a hole: tiles inside the hole do not touch it and their mask is empty', () => {
    const outer = [
      [10, 0],
      [10.1, 0],
      [10.1, 0.1],
      [10, 0.1],
      [10, 0],
    ];
    const hole = [
      [10.02, 0.02],
      [10.02, 0.08],
      [10.08, 0.08],
      [10.08, 0.02],
      [10.02, 0.02],
    ];
    const layout = gridForAoi(
      { source: 'test', geometry: [[outer as [number, number][], hole as [number, number][]]], bbox: [10, 0, 10.1, 0.1], crossesAntimeridian: false, areaM2: 1, centroid: [10.05, 0.05], properties: {} },
      { gsd: 10, tileSize: 64, overlap: 0 },
    );
    const all = [...layout.tiles({ all: true })];
    const inHole = all.filter((t) => !t.touchesAoi);
    expect(inHole.length).toBeGreaterThan(4);
    for (const t of inHole) expect(layout.aoiMask(t).some((v) => v === 1)).toBe(false);
    const touching = all.filter((t) => t.touchesAoi);
    expect(touching.every((t) => t.row === 0 || t.col === 0 || t.row >= layout.rows - 3 || t.col >= layout.cols - 3 || layout.aoiMask(t).some((v) => v === 1))).toBe(true);
  });

  it('the antimeridian: a Fiji AOI gets one continuous UTM grid', async () => {
    const { loadAoi } = await import('@geo-dino/geometry');
    const aoi = await loadAoi(sharedData('aoi', 'fiji-110m-antimeridian.geojson'));
    expect(aoi.crossesAntimeridian).toBe(true);
    const layout = gridForAoi(aoi, { gsd: 500, tileSize: 256, overlap: 0 });
    expect(layout.grid.crs.epsg === 32760 || layout.grid.crs.epsg === 32701).toBe(true);
    // Fiji spans about 5° of longitude: the grid is a few hundred km wide, not the whole world.
    expect(layout.grid.width * 500).toBeLessThan(1_200_000);
    expect(layout.countTouching()).toBeGreaterThan(0);
    await expect(async () => gridForAoi(aoi, { crs: 'EPSG:4326', gsd: 0.01 })).rejects.toMatchObject({ code: 'E_BAD_AOI' });
  });
});
