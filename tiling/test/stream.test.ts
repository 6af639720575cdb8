/**
 * The tile stream's contract: CHW layout, band choice by colour interpretation, the 16-bit
 * stretch (checked against percentiles computed from GDAL's read with numpy), overview use,
 * rotated sources, empty scenes, abort and bounded look-ahead; and scene footprints against
 * GDAL's mask.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aoiFromBbox, pointInMultiPolygon } from '@geo-dino/geometry';
import {
  gridForAoi,
  layoutForGrid,
  openRaster,
  parseCrs,
  rgbPlanFor,
  sceneFootprint,
  tileStream,
  prepareTileSources,
  NO_SOURCE,
  type Grid,
  type RasterSource,
  type PixelWindow,
  type ReadOptions,
} from '@geo-dino/tiling';
import { sharedData } from '../../test/support/shared-data.js';
import { requireGdal } from '../../test/support/tools.js';
import { gdal, gdalLonLat, gdalPython, gdalRead } from './support/gdal.js';

const R = (f: string): string => sharedData('rasterio', f);
let dir: string;
beforeAll(() => {
  requireGdal();
  dir = mkdtempSync(join(tmpdir(), 'gd-stream-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function opened<T>(path: string, fn: (r: RasterSource) => Promise<T>, crs?: string): Promise<T> {
  const r = await openRaster(path, crs ? { crs } : {});
  try {
    return await fn(r);
  } finally {
    await r.close();
  }
}

/** The grid of a raster itself (same CRS, same pixels). */
function nativeGrid(r: RasterSource): Grid {
  const gt = r.info.geoTransform!;
  return { crs: r.info.crs!, transform: [gt[0], gt[1], 0, gt[3], 0, gt[5]], width: r.info.width, height: r.info.height, gsd: gt[1] };
}

describe('band choice', () => {
  it('RGB by colour interpretation: BGR files are reordered, NIR and alpha left out', async () => {
    expect(await opened(R('RGBA.uint16.tif'), async (r) => rgbPlanFor(r.info).bands)).toEqual([2, 1, 0]);
    expect(await opened(R('all-nodata.tif'), async (r) => rgbPlanFor(r.info).bands)).toEqual([2, 1, 0]);
    expect(await opened(R('RGBA.byte.tif'), async (r) => rgbPlanFor(r.info).bands)).toEqual([0, 1, 2]);
    const gray = await opened(R('shade.tif'), async (r) => rgbPlanFor(r.info));
    expect(gray.kind).toBe('gray');
    expect(gray.warning).toMatch(/single-band/);
  });
});

describe('tile stream', () => {
  it('planar CHW: plane 0 is red, 1 green, 2 blue (a BGRN uint16 scene, stretched with percentiles that match numpy on GDAL’s read)', async () => {
    // An 11-bit scene stored as uint16, bands in blue, green, red, NIR order, nodata 0.
    const path = join(dir, 'bgrn-u16.tif');
    gdal('gdal_translate', ['-q', '-ot', 'UInt16', '-scale', '0', '255', '0', '2047', '-b', '3', '-b', '2', '-b', '1', '-b', '1', '-colorinterp', 'blue,green,red,undefined', '-a_nodata', '0', '-co', 'TILED=YES', '-co', 'COMPRESS=DEFLATE', R('RGB.byte.tif'), path]);
    // Independent percentiles: numpy over GDAL's read of the valid pixels of R, G, B pooled.
    const out = gdalPython(
      String.raw`
import sys, numpy as np
from osgeo import gdal
ds = gdal.Open(sys.argv[1])
a = ds.ReadAsArray().astype(np.float64)
valid = (a[0] != 0) | (a[1] != 0) | (a[2] != 0) | (a[3] != 0)
v = np.concatenate([a[b][valid] for b in (2, 1, 0)])
print(np.percentile(v, 2), np.percentile(v, 98))
`,
      [path],
    );
    const [p2, p98] = out.trim().split(/\s+/).map(Number) as [number, number];
    expect(p98).toBeGreaterThan(p2 + 100);
    await opened(path, async (r) => {
      expect(rgbPlanFor(r.info).bands).toEqual([2, 1, 0]);
      const grid = nativeGrid(r);
      const layout = layoutForGrid(grid, { tileSize: 256, overlap: 0 });
      const [prep] = await prepareTileSources(layout, [{ id: 's', raster: r }]);
      expect(prep!.to8!.offset).toBeCloseTo(p2, 6);
      expect(prep!.to8!.scale).toBeCloseTo(255 / (p98 - p2), 9);
      const ref = gdalRead(path, [0, 0, r.info.width, r.info.height]);
      const T = 256;
      const to8 = (v: number): number => Math.min(255, Math.max(0, Math.floor((v - p2) * (255 / (p98 - p2)) + 0.5)));
      let checked = 0;
      for await (const tile of tileStream(layout, [{ id: 's', raster: r }], { resampling: 'nearest' })) {
        for (let y = 0; y < T; y += 3) {
          for (let x = 0; x < T; x += 3) {
            const gx = tile.spec.x + x;
            const gy = tile.spec.y + y;
            if (gx >= grid.width || gy >= grid.height) continue;
            const i = y * T + x;
            const j = gy * grid.width + gx;
            expect(tile.valid[i]).toBe(ref.valid[j]);
            if (!tile.valid[i]) continue;
            // Red is the file's band 3 (index 2), blue its band 1.
            expect(tile.rgb[i]).toBe(to8(ref.bands[2]![j]!));
            expect(tile.rgb[T * T + i]).toBe(to8(ref.bands[1]![j]!));
            expect(tile.rgb[2 * T * T + i]).toBe(to8(ref.bands[0]![j]!));
            expect(tile.source[i]).toBe(0);
            checked++;
          }
        }
      }
      expect(checked).toBeGreaterThan(30_000);
    });
  });

  it('a scene 2.5× finer than the grid is read from its overview and matches gdalwarp (overviews AUTO)', async () => {
    const path = R('cogeo.tif');
    const aoi = aoiFromBbox([128.6556, 37.6665, 128.6607, 37.6706]);
    const layout = gridForAoi(aoi, { gsd: 1.2, tileSize: 256, overlap: 0 });
    await opened(path, async (r) => {
      const [prep] = await prepareTileSources(layout, [{ id: 'c', raster: r }]);
      expect(prep!.warp.level).toBe(1);
      const grid = layout.grid;
      const out = join(dir, 'ovr.tif');
      gdal('gdalwarp', [
        '-q',
        '-t_srs',
        'EPSG:32652',
        '-te',
        String(grid.transform[0]),
        String(grid.transform[3] - grid.height * 1.2),
        String(grid.transform[0] + grid.width * 1.2),
        String(grid.transform[3]),
        '-ts',
        String(grid.width),
        String(grid.height),
        '-r',
        'bilinear',
        '-et',
        '0',
        '-dstalpha',
        path,
        out,
      ]);
      const ref = gdalRead(out, [0, 0, grid.width, grid.height], { bands: [0, 1, 2, 3] });
      let both = 0;
      let within = 0;
      for await (const tile of tileStream(layout, [{ id: 'c', raster: r }])) {
        for (let y = 0; y < 256; y++)
          for (let x = 0; x < 256; x++) {
            const gx = tile.spec.x + x;
            const gy = tile.spec.y + y;
            const i = y * 256 + x;
            if (gx >= grid.width || gy >= grid.height || !tile.valid[i]) continue;
            const j = gy * grid.width + gx;
            if (!ref.bands[3]![j]) continue;
            both++;
            let d = 0;
            for (let c = 0; c < 3; c++) d = Math.max(d, Math.abs(tile.rgb[c * 65536 + i]! - ref.bands[c]![j]!));
            if (d <= 1) within++;
          }
      }
      expect(both).toBeGreaterThan(50_000);
      expect(within / both).toBeGreaterThan(0.99);
    });
  });

  it('a rotated scene without a CRS is refused by name; with a CRS given it is warped like gdalwarp does', async () => {
    const path = R('rotated.tif');
    await opened(path, async (r) => {
      const layout = layoutForGrid({ crs: parseCrs('EPSG:32633'), transform: [90, 2, 0, 310, 0, -2], width: 140, height: 130, gsd: 2 }, { tileSize: 256, overlap: 0 });
      await expect(prepareTileSources(layout, [{ id: 'rot', raster: r }])).rejects.toMatchObject({ code: 'E_UNSUPPORTED_RASTER', message: expect.stringContaining('rotated.tif: has no CRS') });
    });
    await opened(
      path,
      async (r) => {
        expect(r.info.rotated).toBe(true);
        const grid: Grid = { crs: parseCrs('EPSG:32633'), transform: [90, 2, 0, 310, 0, -2], width: 140, height: 130, gsd: 2 };
        const layout = layoutForGrid(grid, { tileSize: 256, overlap: 0 });
        const out = join(dir, 'rot.tif');
        gdal('gdalwarp', ['-q', '-s_srs', 'EPSG:32633', '-t_srs', 'EPSG:32633', '-te', '90', '50', '370', '310', '-ts', '140', '130', '-r', 'near', '-et', '0', '-dstalpha', path, out]);
        const ref = gdalRead(out, [0, 0, 140, 130], { bands: [0, 1] });
        let both = 0;
        let same = 0;
        let validAgree = 0;
        for await (const tile of tileStream(layout, [{ id: 'rot', raster: r }], { resampling: 'nearest' })) {
          for (let y = 0; y < 130; y++)
            for (let x = 0; x < 140; x++) {
              const i = y * 256 + x;
              const j = y * 140 + x;
              const rv = ref.bands[1]![j]! > 0 ? 1 : 0;
              if (rv === tile.valid[i]) validAgree++;
              if (!rv || !tile.valid[i]) continue;
              both++;
              if (tile.rgb[i] === ref.bands[0]![j]) same++;
            }
        }
        expect(both).toBeGreaterThan(1000);
        expect(validAgree / (140 * 130)).toBeGreaterThan(0.99);
        expect(same / both).toBeGreaterThan(0.99);
      },
      'EPSG:32633',
    );
  });

  it('an all-nodata scene yields no tiles', async () => {
    await opened(R('all-nodata.tif'), async (r) => {
      const layout = layoutForGrid(nativeGrid(r), { tileSize: 256, overlap: 32 });
      const tiles = [];
      for await (const t of tileStream(layout, [{ id: 'empty', raster: r }])) tiles.push(t);
      expect(tiles).toEqual([]);
    });
  });

  it('abort stops the stream with E_CANCELLED, and look-ahead bounds the reads in flight', async () => {
    await opened(R('cogeo.tif'), async (r) => {
      let inFlight = 0;
      let peak = 0;
      const counting: RasterSource = {
        info: r.info,
        name: r.name,
        stats: r.stats,
        close: () => r.close(),
        async read(w: PixelWindow, o?: ReadOptions) {
          inFlight++;
          peak = Math.max(peak, inFlight);
          try {
            await new Promise((res) => setTimeout(res, 5));
            return await r.read(w, o);
          } finally {
            inFlight--;
          }
        },
      };
      const layout = layoutForGrid(nativeGrid(r), { tileSize: 64, overlap: 0 });
      const ac = new AbortController();
      let n = 0;
      await expect(
        (async () => {
          for await (const t of tileStream(layout, [{ id: 'c', raster: counting }], { lookahead: 3, signal: ac.signal, resampling: 'nearest' })) {
            expect(t.source.some((s) => s !== NO_SOURCE)).toBe(true);
            if (++n === 20) ac.abort();
          }
        })(),
      ).rejects.toMatchObject({ code: 'E_CANCELLED' });
      expect(n).toBe(20);
      expect(peak).toBeLessThanOrEqual(3);
    });
  });
});

describe('scene footprint', () => {
  it('RGB.byte.tif: points inside the mask footprint are valid in GDAL’s mask, points outside are not', async () => {
    const path = R('RGB.byte.tif');
    await opened(path, async (r) => {
      const fp = await sceneFootprint(r);
      expect(fp.method).toBe('mask');
      // 400 pixel centres on a lattice, away from the valid/nodata boundary.
      const ref = gdalRead(path, [0, 0, 791, 718]);
      const pts: [number, number][] = [];
      for (let y = 5; y < 718; y += 37) for (let x = 5; x < 791; x += 41) pts.push([x + 0.5, y + 0.5]);
      const lonlat = gdalLonLat(path, pts, { pixels: true });
      let checked = 0;
      pts.forEach(([px, py], k) => {
        const x = Math.floor(px);
        const y = Math.floor(py);
        // Skip points within 2 pixels of a valid/invalid change.
        let mixed = false;
        for (let dy = -2; dy <= 2; dy++)
          for (let dx = -2; dx <= 2; dx++) {
            const xx = Math.min(790, Math.max(0, x + dx));
            const yy = Math.min(717, Math.max(0, y + dy));
            if (ref.valid[yy * 791 + xx] !== ref.valid[y * 791 + x]) mixed = true;
          }
        if (mixed) return;
        expect(pointInMultiPolygon(lonlat[k]!, fp.geometry), `pixel ${x},${y}`).toBe(ref.valid[y * 791 + x] === 1);
        checked++;
      });
      expect(checked).toBeGreaterThan(300);
    });
  });

  it('RGB.byte.tif: the mask footprint is GDAL’s polygonised mask (symmetric difference ≈ 0 in EPSG:6933)', async () => {
    const path = R('RGB.byte.tif');
    const fp = await opened(path, (r) => sceneFootprint(r));
    // Oracle: the OR of GDAL's per-band masks polygonised by gdal.Polygonize (4-connected) in the
    // raster's CRS; both geometries measured in EPSG:6933 (equal area), ours densified in lon/lat.
    const out = gdalPython(
      String.raw`
import json, sys
import numpy as np
from osgeo import gdal, ogr, osr
gdal.UseExceptions()
ds = gdal.Open(sys.argv[1])
valid = np.zeros((ds.RasterYSize, ds.RasterXSize), dtype=np.uint8)
for b in range(1, ds.RasterCount + 1):
    valid |= (ds.GetRasterBand(b).GetMaskBand().ReadAsArray() > 0).astype(np.uint8)
m = gdal.GetDriverByName('MEM').Create('', ds.RasterXSize, ds.RasterYSize, 1, gdal.GDT_Byte)
m.SetGeoTransform(ds.GetGeoTransform()); m.SetProjection(ds.GetProjection())
m.GetRasterBand(1).WriteArray(valid)
srs = osr.SpatialReference(wkt=ds.GetProjection())
vds = ogr.GetDriverByName('Memory').CreateDataSource('')  # kept: the layer dies with it
lyr = vds.CreateLayer('v', srs=srs)
lyr.CreateField(ogr.FieldDefn('v', ogr.OFTInteger))
gdal.Polygonize(m.GetRasterBand(1), m.GetRasterBand(1), lyr, 0)
ea = osr.SpatialReference(); ea.ImportFromEPSG(6933)
wgs = osr.SpatialReference(); wgs.ImportFromEPSG(4326); wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
ref = ogr.Geometry(ogr.wkbMultiPolygon)
for f in lyr:
    g = f.GetGeometryRef().Clone(); g.Segmentize(30); ref.AddGeometry(g)
ref = ref.UnionCascaded(); ref.Transform(osr.CoordinateTransformation(srs, ea))
ours = ogr.CreateGeometryFromJson(sys.argv[2]); ours.Segmentize(0.0003)
ours.Transform(osr.CoordinateTransformation(wgs, ea))
print(json.dumps({'ref': ref.GetArea(), 'ours': ours.GetArea(), 'sym': ours.SymDifference(ref).GetArea(), 'valid': ours.IsValid()}))
`,
      [path, JSON.stringify({ type: 'MultiPolygon', coordinates: fp.geometry })],
    );
    const r = JSON.parse(out.trim().split('\n').pop()!) as { ref: number; ours: number; sym: number; valid: boolean };
    expect(r.valid).toBe(true);
    expect(Math.abs(r.ours - r.ref) / r.ref).toBeLessThan(1e-4);
    expect(r.sym / r.ref).toBeLessThan(1e-4);
  });

  it('an all-nodata scene has an empty footprint; a scene without a mask gets its bounds', async () => {
    expect((await opened(R('all-nodata.tif'), (r) => sceneFootprint(r))).geometry).toEqual([]);
    const fp = await opened(R('world.rgb.tif'), (r) => sceneFootprint(r));
    expect(fp.method).toBe('bounds');
    expect(fp.bbox[0]).toBeCloseTo(-180, 5);
    expect(fp.bbox[3]).toBeCloseTo(90, 5);
  });
});
