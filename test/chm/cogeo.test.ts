/**
 * `geo-dino chm` end to end on real imagery (../shared/data/rasterio/cogeo.tif, 0.6 m RGB,
 * EPSG:3857, JPEG with an internal mask) with an AOI inside it, checked against tools geo-dino
 * did not write:
 * - chm.tif: GDAL's COG validator, gdalinfo (size, bands, type, nodata, CRS);
 * - validity: GDAL warps the source and its mask onto chm.tif's grid (nearest, alpha band) and
 *   rasterises the AOI; chm.tif must have values exactly there and -9999 elsewhere (up to pixels
 *   on a mask/AOI edge, where sub-pixel transform differences between proj4 and PROJ decide);
 * - a copy of cogeo.tif given a real mask (a disc and a band masked out) by GDAL, same check;
 * - item.json: stac-node-validator with the offline schemas;
 * - provenance.geojson: covers the valid pixels, polygonised by GDAL/OGR (uncovered area ≈ 0);
 * - chm.pmtiles: go-pmtiles verify, DEMO flag in its metadata.
 * The demo model (random weights) runs the real architecture; values are not canopy heights.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { sharedData } from '../support/shared-data.js';
import { gdalJson } from '../support/fixture-run.js';
import { requireGdal } from '../support/tools.js';
import { validateStac } from '../support/stac-validator.js';
import { runPmtilesCli } from '../support/pmtiles-cli.js';
import { validateCog, gdalinfoJson } from '../../tiling/test/support/gdal.js';
import { COGEO_AOI, chm, readJson, tempDir, writeJson } from './helpers.js';

const VALIDITY_ORACLE = String.raw`
import sys, json
import numpy as np
from osgeo import gdal, ogr
gdal.UseExceptions()
chm_path, src_path, aoi_path = sys.argv[1:4]
ds = gdal.Open(chm_path)
gt = ds.GetGeoTransform(); W, H = ds.RasterXSize, ds.RasterYSize
srs = ds.GetProjection()
h = ds.GetRasterBand(1).ReadAsArray().astype(np.float64)
u = ds.GetRasterBand(2).ReadAsArray().astype(np.float64)
got = h != -9999
warped = gdal.Warp('', src_path, format='MEM', dstSRS=srs, outputBounds=(gt[0], gt[3] + H * gt[5], gt[0] + W * gt[1], gt[3]),
                   width=W, height=H, resampleAlg='near', dstAlpha=True)
alpha = warped.GetRasterBand(warped.RasterCount).ReadAsArray() > 0
mem = gdal.GetDriverByName('MEM').Create('', W, H, 1, gdal.GDT_Byte)
mem.SetGeoTransform(gt); mem.SetProjection(srs)
aoi_ds = ogr.Open(aoi_path)  # keep the data source alive while its layer is used
gdal.RasterizeLayer(mem, [1], aoi_ds.GetLayer(0), burn_values=[1])
inside = mem.GetRasterBand(1).ReadAsArray() > 0
expected = alpha & inside
diff = got != expected
edge = np.zeros_like(expected)
for dy in (-1, 0, 1):
    for dx in (-1, 0, 1):
        edge |= np.roll(np.roll(expected, dy, 0), dx, 1) != expected
vals = h[got]; unc = u[got]
print(json.dumps({
  'pixels': W * H, 'expected': int(expected.sum()), 'got': int(got.sum()), 'masked_in_aoi': int((inside & ~alpha).sum()),
  'diff': int(diff.sum()), 'diff_off_edge': int((diff & ~edge).sum()),
  'h_min': float(vals.min()), 'h_max': float(vals.max()), 'h_finite': bool(np.isfinite(vals).all()),
  'u_min': float(unc.min()), 'u_finite': bool(np.isfinite(unc).all()), 'u_nodata_where_h_nodata': bool((u[~got] == -9999).all()),
}))
`;

const COVERAGE_ORACLE = String.raw`
import sys, json
from osgeo import gdal, ogr, osr
gdal.UseExceptions()
chm_path, prov_path = sys.argv[1:3]
ds = gdal.Open(chm_path)
srs = osr.SpatialReference(wkt=ds.GetProjection())
mask = gdal.GetDriverByName('MEM').Create('', ds.RasterXSize, ds.RasterYSize, 1, gdal.GDT_Byte)
mask.SetGeoTransform(ds.GetGeoTransform()); mask.SetProjection(ds.GetProjection())
mask.GetRasterBand(1).WriteArray((ds.GetRasterBand(1).ReadAsArray() != -9999).astype('uint8'))
vds = ogr.GetDriverByName('Memory').CreateDataSource('v')
lyr = vds.CreateLayer('valid', srs=srs)
lyr.CreateField(ogr.FieldDefn('v', ogr.OFTInteger))
gdal.Polygonize(mask.GetRasterBand(1), mask.GetRasterBand(1), lyr, 0)
valid = ogr.Geometry(ogr.wkbMultiPolygon)
for f in lyr:
    valid = valid.Union(f.GetGeometryRef())
wgs = osr.SpatialReference(); wgs.ImportFromEPSG(4326); wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
to_grid = osr.CoordinateTransformation(wgs, srs)
prov = ogr.Geometry(ogr.wkbMultiPolygon)
p = ogr.Open(prov_path)
ids = []
for f in p.GetLayer(0):
    g = f.GetGeometryRef().Clone(); g.Transform(to_grid)
    prov = prov.Union(g)
    ids.append(f.GetField('scene_id'))
print(json.dumps({'valid_m2': valid.GetArea(), 'uncovered_m2': valid.Difference(prov).GetArea(), 'prov_m2': prov.GetArea(), 'scenes': ids}))
`;

const MASK_MAKER = String.raw`
import sys
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
gdal.SetConfigOption('GDAL_TIFF_INTERNAL_MASK', 'YES')
src = gdal.Open(sys.argv[1])
dst = gdal.GetDriverByName('GTiff').CreateCopy(sys.argv[2], src, options=['TILED=YES', 'COMPRESS=DEFLATE'])
if dst.GetRasterBand(1).GetMaskFlags() != gdal.GMF_PER_DATASET:
    dst.CreateMaskBand(gdal.GMF_PER_DATASET)
H, W = src.RasterYSize, src.RasterXSize
yy, xx = np.mgrid[0:H, 0:W]
m = np.full((H, W), 255, np.uint8)
m[(xx - 500) ** 2 + (yy - 450) ** 2 < 140 ** 2] = 0
m[640:700, 150:800] = 0
dst.GetRasterBand(1).GetMaskBand().WriteArray(m)
dst = None
print('{}')
`;

interface Validity {
  pixels: number;
  expected: number;
  got: number;
  masked_in_aoi: number;
  diff: number;
  diff_off_edge: number;
  h_min: number;
  h_max: number;
  h_finite: boolean;
  u_min: number;
  u_finite: boolean;
  u_nodata_where_h_nodata: boolean;
}

let dir: string;
let home: string;
let aoi: string;
beforeAll(() => {
  requireGdal();
  dir = tempDir('cogeo');
  home = join(dir, 'home');
  aoi = writeJson(join(dir, 'aoi.geojson'), COGEO_AOI);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('geo-dino chm on cogeo.tif', () => {
  it('writes a valid COG with values exactly where GDAL says imagery is valid inside the AOI, a valid STAC Item, covering provenance and web tiles', async () => {
    const src = sharedData('rasterio', 'cogeo.tif');
    const out = join(dir, 'run');
    const r = await chm(['--model', 'demo', '--aoi', aoi, '--imagery', src, '--out', out, '--tile-size', '256', '--overlap', '32'], home);
    expect(r.code, r.stderr).toBe(0);
    const res = r.json!;
    expect(res['demo']).toBe(true);
    expect(res['upToDate']).toBe(false);
    const names = (res['files'] as { name: string }[]).map((f) => f.name).sort();
    expect(names).toEqual(['chm-uncertainty.pmtiles', 'chm.pmtiles', 'chm.tif', 'imagery.pmtiles', 'item.json', 'provenance.geojson', 'run.json']);
    // Progress went out as JSON events with tiles done/total and a rate.
    const prog = r.events.filter((e) => e['type'] === 'progress' && e['task'] === 'predicting');
    expect(prog.length).toBeGreaterThan(0);
    expect(prog[prog.length - 1]).toMatchObject({ done: 9, total: 9, unit: 'tiles', finished: true });
    expect(r.events.some((e) => String(e['msg']).startsWith('execution provider'))).toBe(true);

    const chmTif = join(out, 'chm.tif');
    const cog = validateCog(chmTif);
    expect(cog.ok, cog.output).toBe(true);
    const info = gdalinfoJson(chmTif) as { size: number[]; bands: { type: string; noDataValue: number; description: string }[]; coordinateSystem: { wkt: string }; metadata: Record<string, Record<string, string>> };
    expect(info.bands.map((b) => [b.type, b.noDataValue, b.description])).toEqual([
      ['Float32', -9999, 'canopy_height'],
      ['Float32', -9999, 'uncertainty'],
    ]);
    expect(info.coordinateSystem.wkt).toMatch(/UTM zone 52N/);
    expect(info.metadata['']?.['GEO_DINO_DEMO']).toBe('YES');
    // What GIS tools read: the band unit, and statistics equal to GDAL's own exact computation.
    const gis = gdalJson(
      `
import json, sys
from osgeo import gdal
gdal.UseExceptions()
ds = gdal.Open(sys.argv[1])
memds = gdal.GetDriverByName('MEM').CreateCopy('', ds)
out = []
for i in (1, 2):
    b = ds.GetRasterBand(i)
    stored = [float(b.GetMetadataItem('STATISTICS_' + k)) for k in ('MINIMUM', 'MAXIMUM', 'MEAN', 'STDDEV')]
    mem = memds.GetRasterBand(i)
    for k in list(mem.GetMetadata().keys()):
        if k.startswith('STATISTICS_'): mem.SetMetadataItem(k, None)
    out.append({'unit': b.GetUnitType(), 'stored': stored, 'gdal': list(mem.ComputeStatistics(False))})
print(json.dumps(out))
`,
      [chmTif],
    ) as { unit: string; stored: number[]; gdal: number[] }[];
    for (const b of gis) {
      expect(b.unit).toBe('m');
      b.stored.forEach((v, k) => expect(v).toBeCloseTo(b.gdal[k]!, 3));
    }

    const v = gdalJson(VALIDITY_ORACLE, [chmTif, src, aoi]) as Validity;
    expect(v.expected).toBeGreaterThan(150_000);
    expect(v.diff_off_edge).toBe(0);
    expect(v.diff / v.expected).toBeLessThan(0.002);
    expect(v.h_finite && v.u_finite && v.u_nodata_where_h_nodata).toBe(true);
    // CHMv2's output range is [0.008, 96] m (bins × 8); blending convex combinations stays inside.
    expect(v.h_min).toBeGreaterThanOrEqual(0.008 - 1e-6);
    expect(v.h_max).toBeLessThanOrEqual(96 + 1e-4);
    expect(v.u_min).toBeGreaterThanOrEqual(0);

    const stac = validateStac([join(out, 'item.json')]);
    expect(stac.ok, stac.output).toBe(true);
    const item = readJson<{ properties: Record<string, unknown>; assets: Record<string, { href: string; 'file:checksum'?: string }> }>(join(out, 'item.json'));
    expect(item.properties['geo-dino:demo']).toBe(true);
    expect(item.properties['proj:code']).toBe('EPSG:32652');
    expect(Object.keys(item.assets).sort()).toEqual(['chm', 'height-pmtiles', 'imagery-pmtiles', 'provenance', 'run', 'uncertainty-pmtiles']);
    expect(item.assets['chm']!.href).toBe('./chm.tif');

    const cov = gdalJson(COVERAGE_ORACLE, [chmTif, join(out, 'provenance.geojson')]) as { valid_m2: number; uncovered_m2: number; prov_m2: number; scenes: string[] };
    expect(cov.scenes).toEqual(['cogeo']);
    // Portable provenance: the local scene is named relative to the run directory.
    const prov = readJson<{ features: { properties: { href: string } }[] }>(join(out, 'provenance.geojson'));
    expect(prov.features.map((f) => f.properties.href)).toEqual([relative(out, src).split(sep).join('/')]);
    expect(cov.uncovered_m2 / cov.valid_m2).toBeLessThan(1e-6);
    // Cells (9.6 m) overhang the valid area by at most one cell along the edge.
    expect(cov.prov_m2).toBeGreaterThanOrEqual(cov.valid_m2 * 0.999999);
    expect(cov.prov_m2).toBeLessThan(cov.valid_m2 * 1.15);

    const run = readJson<Record<string, any>>(join(out, 'run.json'));
    expect(run['status']).toBe('complete');
    expect(run['demo']).toBe(true);
    expect(run['model']).toMatchObject({ demo: true });
    expect(run['execution']).toMatchObject({ provider: 'cpu', device: 'auto' });
    expect(run['tiles']).toMatchObject({ total: 9, predicted: 9, resumed: 0 });
    expect(run['pixels']['valid']).toBe(v.got);
    expect(run['memory']['maxRssBytes']).toBeGreaterThan(0);

    for (const layer of ['chm.pmtiles', 'imagery.pmtiles']) {
      const verify = runPmtilesCli(['verify', join(out, layer)]);
      expect(verify.code, verify.output).toBe(0);
    }
    const meta = runPmtilesCli(['show', '--metadata', join(out, 'chm.pmtiles')]);
    expect((JSON.parse(meta.output) as { geo_dino: { demo: boolean } }).geo_dino.demo).toBe(true);

    // The state directory is gone after success; nothing but the run is left beside it.
    expect(readdirSync(dir).sort()).toEqual(['aoi.geojson', 'home', 'run']);

    // The same command again is a no-op.
    const again = await chm(['--model', 'demo', '--aoi', aoi, '--imagery', src, '--out', out, '--tile-size', '256', '--overlap', '32'], home);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json!['upToDate']).toBe(true);
  });

  it('puts nodata where a real internal mask (made by GDAL) says the imagery is invalid', async () => {
    const masked = join(dir, 'cogeo-masked.tif');
    gdalJson(MASK_MAKER, [sharedData('rasterio', 'cogeo.tif'), masked]);
    const out = join(dir, 'run-masked');
    const r = await chm(['--model', 'demo', '--aoi', aoi, '--imagery', masked, '--out', out, '--tile-size', '256', '--overlap', '32', '--no-web-tiles'], home);
    expect(r.code, r.stderr).toBe(0);
    const v = gdalJson(VALIDITY_ORACLE, [join(out, 'chm.tif'), masked, aoi]) as Validity;
    // The mask removes a good part of the AOI, and chm.tif follows it.
    expect(v.masked_in_aoi).toBeGreaterThan(40_000);
    expect(v.diff_off_edge).toBe(0);
    expect(v.diff / v.expected).toBeLessThan(0.005);
    expect(existsSync(join(out, 'chm.pmtiles'))).toBe(false);
  });

  it('--bbox instead of an AOI file: values exactly where GDAL says imagery is valid inside the box', async () => {
    const box = [128.6565, 37.6675, 128.6595, 37.669] as const;
    const [w, s, e, n] = box;
    const boxFile = writeJson(join(dir, 'box.geojson'), { type: 'Polygon', coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] });
    const out = join(dir, 'run-bbox');
    const r = await chm(['--model', 'demo', '--bbox', box.join(','), '--imagery', sharedData('rasterio', 'cogeo.tif'), '--out', out, '--tile-size', '256', '--overlap', '32', '--no-web-tiles'], home);
    expect(r.code, r.stderr).toBe(0);
    const v = gdalJson(VALIDITY_ORACLE, [join(out, 'chm.tif'), sharedData('rasterio', 'cogeo.tif'), boxFile]) as Validity;
    expect(v.expected).toBeGreaterThan(50_000);
    expect(v.diff_off_edge).toBe(0);
    expect(v.diff / v.expected).toBeLessThan(0.002);
    expect(readJson<{ aoi: { source: string } }>(join(out, 'run.json')).aoi.source).toMatch(/^--bbox/);
  });
});
