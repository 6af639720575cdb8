/**
 * imagery.pmtiles of a run that mosaics two scenes: it must show the mosaic the model saw.
 *
 * GDAL makes two scenes with distinct colours that overlap: A (first --imagery, so first in
 * priority; UTM, 0.6 m, reddish, an internal mask with a hole inside the overlap) and B (Web
 * Mercator, warped by GDAL from a 0.5 m UTM raster with an alpha band; bluish). Each carries a
 * sinusoid of 24 m period in one channel, so a misplaced pixel shows. The AOI cuts A's west part
 * and B's south part off and reaches east past both scenes.
 *
 * Oracles (GDAL, nothing geo-dino wrote): `gdalwarp` of [B, A] (the later source wins, i.e. A
 * first) onto chm.tif's grid, bilinear, cut by the AOI — the mosaic in the run's priority order —
 * then onto the finest zoom's Web Mercator tiles (test/support/gdal-tiles.py); OGR says which
 * provenance polygon holds each sample point. Checks: `pmtiles verify`; every finest-zoom tile
 * close to GDAL's (WebP tolerance); at sample points the colour is the one of the scene the
 * provenance assigns there (A where both are valid, B in A's hole and east of A), and
 * transparent where the AOI has no imagery and where imagery lies outside the AOI.
 *
 * A second run on one 16-bit scene (which the PMTiles writer cannot tile itself) must get the
 * layer too: it passes `pmtiles verify` and is opaque inside the AOI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { gdalJson, gdalTiles } from '../support/fixture-run.js';
import { requireGdal } from '../support/tools.js';
import { runPmtilesCli } from '../support/pmtiles-cli.js';
import { decodeRgba, openArchive, tilesOf } from '../../packages/pmtiles/test/support.js';
import { sharedData } from '../support/shared-data.js';
import { chm, readJson, tempDir, writeJson } from './helpers.js';

/** Scenes A and B, the AOI, the sample points (lon/lat) and the mosaic oracle on chm.tif's grid. */
const SCENES = String.raw`
import sys, json, math
import numpy as np
from osgeo import gdal, osr
gdal.UseExceptions()
d = sys.argv[1]
X0, Y0 = 346000.0, 4170000.0
utm = osr.SpatialReference(); utm.ImportFromEPSG(32652)
wgs = osr.SpatialReference(); wgs.ImportFromEPSG(4326); wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
to_ll = osr.CoordinateTransformation(utm, wgs)
def ll(x, y):
    p = to_ll.TransformPoint(X0 + x, Y0 + y)
    return [p[0], p[1]]

# A: 500 x 300 px at 0.6 m from (X0, Y0); red, green waves along x, a masked hole in the overlap.
W, H = 500, 300
yy, xx = np.mgrid[0:H, 0:W]
gdal.SetConfigOption('GDAL_TIFF_INTERNAL_MASK', 'YES')
a = gdal.GetDriverByName('GTiff').Create(d + '/scene-a.tif', W, H, 3, gdal.GDT_Byte, ['TILED=YES', 'COMPRESS=DEFLATE', 'PHOTOMETRIC=RGB'])
a.SetGeoTransform([X0, 0.6, 0, Y0, 0, -0.6]); a.SetProjection(utm.ExportToWkt())
a.GetRasterBand(1).WriteArray(np.full((H, W), 200, np.uint8))
a.GetRasterBand(2).WriteArray(np.round(100 + 50 * np.sin(2 * np.pi * (xx + 0.5) / 40)).astype(np.uint8))
a.GetRasterBand(3).WriteArray(np.round(40 + yy / 10).astype(np.uint8))
a.CreateMaskBand(gdal.GMF_PER_DATASET)
m = np.full((H, W), 255, np.uint8)
m[120:220, 330:400] = 0          # x 198..240 m, y -72..-132 m: inside B's extent
a.GetRasterBand(1).GetMaskBand().WriteArray(m)
a = None

# B: 420 x 360 px at 0.5 m from (X0 + 150, Y0 - 20) in UTM, blue, green waves along y; then
# warped by GDAL to Web Mercator with an alpha band.
W, H = 420, 360
yy, xx = np.mgrid[0:H, 0:W]
mem = gdal.GetDriverByName('MEM').Create('', W, H, 3, gdal.GDT_Byte)
mem.SetGeoTransform([X0 + 150, 0.5, 0, Y0 - 20, 0, -0.5]); mem.SetProjection(utm.ExportToWkt())
mem.GetRasterBand(1).WriteArray(np.round(40 + 30 * xx / W).astype(np.uint8))
mem.GetRasterBand(2).WriteArray(np.round(100 + 50 * np.sin(2 * np.pi * (yy + 0.5) / 48)).astype(np.uint8))
mem.GetRasterBand(3).WriteArray(np.full((H, W), 210, np.uint8))
for b, ci in ((1, gdal.GCI_RedBand), (2, gdal.GCI_GreenBand), (3, gdal.GCI_BlueBand)):
    mem.GetRasterBand(b).SetColorInterpretation(ci)
gdal.Warp(d + '/scene-b.tif', mem, dstSRS='EPSG:3857', resampleAlg='bilinear', dstAlpha=True, creationOptions=['TILED=YES', 'COMPRESS=DEFLATE'])

aoi = [ll(30, -10), ll(400, -10), ll(400, -170), ll(60, -170), ll(30, -120), ll(30, -10)]
json.dump({'type': 'Feature', 'properties': {}, 'geometry': {'type': 'Polygon', 'coordinates': [aoi]}}, open(d + '/aoi.geojson', 'w'))
points = {
    'a-only': ll(80, -60), 'a-over-b': ll(270, -40), 'a-hole': ll(219, -102), 'b-only': ll(330, -100),
    'aoi-no-imagery': ll(385, -90), 'a-outside-aoi': ll(12, -60), 'b-outside-aoi': ll(250, -188),
}
print(json.dumps(points))
`;

/**
 * GDAL's mosaic of the scenes in the run's priority order on chm.tif's grid, inside the AOI: each
 * scene warped alone (bilinear; its mask or alpha honoured), the first valid scene per pixel, then
 * the AOI rasterised by GDAL (pixel centres). Not one gdalwarp of all scenes with a cutline: GDAL
 * 3.6 then ignores scene A's per-dataset mask (both with several sources of different band counts
 * and with a cutline), which would hide the very priority fallback this test is about.
 */
const MOSAIC = String.raw`
import sys, json
import numpy as np
from osgeo import gdal, ogr
gdal.UseExceptions()
chm, out, aoi = sys.argv[1:4]
ds = gdal.Open(chm)
gt = ds.GetGeoTransform(); W, H = ds.RasterXSize, ds.RasterYSize
rgba = np.zeros((4, H, W), np.uint8)
for src in sys.argv[4:]:
    w = gdal.Warp('', src, format='MEM', dstSRS=ds.GetProjection(), outputBounds=(gt[0], gt[3] + H * gt[5], gt[0] + W * gt[1], gt[3]),
                  width=W, height=H, resampleAlg='bilinear', dstAlpha=True, errorThreshold=0, outputType=gdal.GDT_Byte)
    a = w.ReadAsArray()
    take = (rgba[3] == 0) & (a[-1] > 0)
    for b in range(3):
        rgba[b][take] = a[b][take]
    rgba[3][take] = 255
mem = gdal.GetDriverByName('MEM').Create('', W, H, 1, gdal.GDT_Byte)
mem.SetGeoTransform(gt); mem.SetProjection(ds.GetProjection())
aoi_ds = ogr.Open(aoi)  # keep the data source alive while its layer is used
gdal.RasterizeLayer(mem, [1], aoi_ds.GetLayer(0), burn_values=[1])
rgba[:, mem.GetRasterBand(1).ReadAsArray() == 0] = 0
o = gdal.GetDriverByName('GTiff').Create(out, W, H, 4, gdal.GDT_Byte, ['PHOTOMETRIC=RGB', 'ALPHA=YES'])
o.SetGeoTransform(gt); o.SetProjection(ds.GetProjection())
for b in range(4):
    o.GetRasterBand(b + 1).WriteArray(rgba[b])
o = None
print(json.dumps({'valid': int((rgba[3] > 0).sum())}))
`;

/** The scene_id of the provenance polygon holding each point (null: none). */
const PROVENANCE_AT = String.raw`
import sys, json
from osgeo import ogr
prov = ogr.Open(sys.argv[1])
points = json.loads(sys.argv[2])
lyr = prov.GetLayer(0)
out = {}
for name, (lon, lat) in points.items():
    p = ogr.CreateGeometryFromWkt(f'POINT ({lon} {lat})')
    out[name] = None
    lyr.ResetReading()
    for f in lyr:
        if f.GetGeometryRef().Contains(p):
            out[name] = f.GetField('scene_id')
print(json.dumps(out))
`;

const SHIFT = Math.PI * 6378137;

/** Tile and pixel of a lon/lat at zoom z (XYZ scheme, 256-pixel tiles). */
function tilePixel(lon: number, lat: number, z: number): { x: number; y: number; px: number; py: number } {
  const size = 256 * 2 ** z;
  const mx = (lon * SHIFT) / 180;
  const my = Math.log(Math.tan(((90 + lat) * Math.PI) / 360)) * 6378137;
  const gx = ((mx + SHIFT) / (2 * SHIFT)) * size;
  const gy = ((SHIFT - my) / (2 * SHIFT)) * size;
  return { x: Math.floor(gx / 256), y: Math.floor(gy / 256), px: Math.floor(gx) % 256, py: Math.floor(gy) % 256 };
}

let dir: string;
let home: string;
beforeAll(() => {
  requireGdal();
  dir = tempDir('imagery');
  home = join(dir, 'home');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('imagery.pmtiles of a two-scene run', () => {
  it('shows the mosaic the model saw: the scene provenance assigns at each pixel, transparent outside the imagery and the AOI', async () => {
    const points = gdalJson(SCENES, [dir]) as Record<string, [number, number]>;
    const a = join(dir, 'scene-a.tif');
    const b = join(dir, 'scene-b.tif');
    const aoi = join(dir, 'aoi.geojson');
    const out = join(dir, 'run');
    // The plain priority mosaic (no scene seamlines: --scene-feather 0) is what GDAL's oracle makes.
    const r = await chm(['--model', 'demo', '--aoi', aoi, '--imagery', a, '--imagery', b, '--out', out, '--tile-size', '256', '--overlap', '32', '--chunk-width', '512', '--scene-feather', '0'], home);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['chm-uncertainty.pmtiles', 'chm.pmtiles', 'chm.tif', 'imagery.pmtiles', 'item.json', 'provenance.geojson', 'run.json']);
    const item = readJson<{ assets: Record<string, unknown> }>(join(out, 'item.json'));
    expect(Object.keys(item.assets)).toContain('imagery-pmtiles');

    const path = join(out, 'imagery.pmtiles');
    const verify = runPmtilesCli(['verify', path]);
    expect(verify.code, verify.output).toBe(0);
    expect(verify.output).not.toMatch(/invalid/i);

    const archive = openArchive(path);
    const header = await archive.getHeader();
    expect(header.tileType).toBe(4); // WebP
    const z = header.maxZoom;
    const tiles = tilesOf(path).filter(([tz]) => tz === z);
    expect(tiles.length).toBeGreaterThan(1);

    // The oracle: GDAL's mosaic in the same priority order, then GDAL's warp onto the same tiles.
    const mosaic = join(dir, 'gdal-mosaic.tif');
    gdalJson(MOSAIC, [join(out, 'chm.tif'), mosaic, aoi, a, b]);
    const oracle = gdalTiles(mosaic, join(dir, 'oracle'), 'bilinear', [1, 2, 3], tiles);

    // Whole finest-zoom tiles: colour within WebP error, alpha equal but along edges.
    let sum = 0;
    let n = 0;
    let alphaDiff = 0;
    let opaque = 0;
    const decoded = new Map<string, Uint8Array>();
    for (const [tz, x, y] of tiles) {
      const rgba = await decodeRgba((await archive.getZxy(tz, x, y))!.data);
      decoded.set(`${x}/${y}`, rgba);
      const want = oracle.get(`${tz}/${x}/${y}`)!;
      for (let i = 0; i < 65536; i++) {
        const got = rgba[i * 4 + 3]! > 0;
        const w = want.valid[i]! > 0;
        if (got) opaque++;
        if (got !== w) alphaDiff++;
        if (got && w) for (let c = 0; c < 3; c++) (sum += Math.abs(rgba[i * 4 + c]! - want.bands[c]![i]!)), n++;
      }
    }
    expect(n / 3).toBeGreaterThan(50_000);
    expect(sum / n).toBeLessThan(4);
    // Pixels along the AOI, scene and mask edges may differ (pixel-centre rules, two resamplings).
    expect(alphaDiff / opaque).toBeLessThan(0.02);

    // Sample points: the colour is the scene's that provenance assigns there.
    const prov = gdalJson(PROVENANCE_AT, [join(out, 'provenance.geojson'), JSON.stringify(points)]) as Record<string, string | null>;
    expect(prov).toEqual({
      'a-only': 'scene-a',
      'a-over-b': 'scene-a',
      'a-hole': 'scene-b',
      'b-only': 'scene-b',
      'aoi-no-imagery': null,
      'a-outside-aoi': null,
      'b-outside-aoi': null,
    });
    for (const [name, [lon, lat]] of Object.entries(points)) {
      const t = tilePixel(lon, lat, z);
      const rgba = decoded.get(`${t.x}/${t.y}`);
      const i = t.py * 256 + t.px;
      const scene = prov[name];
      if (scene === null) {
        expect(rgba ? rgba[i * 4 + 3] : 0, name).toBe(0);
        continue;
      }
      expect(rgba, `${name}: no tile at ${z}/${t.x}/${t.y}`).toBeDefined();
      const px = [rgba![i * 4]!, rgba![i * 4 + 1]!, rgba![i * 4 + 2]!, rgba![i * 4 + 3]!];
      expect(px[3], name).toBe(255);
      // A is red (R 200, B ≤ 70), B is blue (R ≤ 70, B 210).
      if (scene === 'scene-a') expect(px[0]! > 170 && px[2]! < 100, `${name}: ${px.join(',')} is not scene A's colour`).toBe(true);
      else expect(px[2]! > 180 && px[0]! < 100, `${name}: ${px.join(',')} is not scene B's colour`).toBe(true);
      const want = oracle.get(`${z}/${t.x}/${t.y}`)!;
      expect(want.valid[i], name).toBeGreaterThan(0);
      for (let c = 0; c < 3; c++) expect(Math.abs(px[c]! - want.bands[c]![i]!), `${name} band ${c + 1}`).toBeLessThanOrEqual(10);
    }
  });

  it('is written for a single 16-bit scene too, after the 8-bit stretch the model saw (the raw scene cannot be tiled)', async () => {
    // RGBA.uint16.tif: BGR + alpha, uint16. Tiling the scene itself fails ("imagery tiles need
    // 8-bit bands"), which used to fail the whole run after prediction.
    const aoi = writeJson(join(dir, 'uint16-aoi.geojson'), { type: 'Polygon', coordinates: [[[-108.382, 36.818], [-108.378, 36.818], [-108.378, 36.82], [-108.382, 36.82], [-108.382, 36.818]]] });
    const out = join(dir, 'run-uint16');
    const r = await chm(['--model', 'demo', '--aoi', aoi, '--imagery', sharedData('rasterio', 'RGBA.uint16.tif'), '--out', out, '--tile-size', '256', '--overlap', '32'], home);
    expect(r.code, r.stderr).toBe(0);
    const path = join(out, 'imagery.pmtiles');
    const verify = runPmtilesCli(['verify', path]);
    expect(verify.code, verify.output).toBe(0);
    const archive = openArchive(path);
    const z = (await archive.getHeader()).maxZoom;
    const t = tilePixel(-108.38, 36.819, z);
    const rgba = await decodeRgba((await archive.getZxy(z, t.x, t.y))!.data);
    expect(rgba[(t.py * 256 + t.px) * 4 + 3]).toBe(255);
  });
});
