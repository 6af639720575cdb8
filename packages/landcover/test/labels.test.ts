/**
 * Labels aligned to the imagery grid, against GDAL and numpy:
 * - a categorical raster in another CRS (EPSG:4326, ~11 m) onto a 0.6 m UTM grid, nearest:
 *   `gdalwarp -r near` (exact transformer) on the same grid;
 * - a finer raster (0.15 m) onto the grid: the mode of each pixel's 4×4 label pixels computed by
 *   numpy with GDAL's tie rule (the class that reached the top count first, row by row), and
 *   `gdalwarp -r mode` on the same grid for reference (GDAL 3.6 adds a fifth row or column to
 *   some pixels: its transform puts a footprint edge ~1e-9 px short of the pixel border, beyond
 *   its 1e-10 tolerance; measured 98.5 % agreement here);
 * - GeoJSON polygons (a hole, an overlap drawn later, a MultiPolygon, class names): GDAL's
 *   RasterizeLayer (pixel-centre rule, later features overwrite) on the same grid; the same
 *   polygons given in UTM with a legacy `crs` member give the same labels;
 * - clear errors for labels that cannot be used, and for class tables.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GeoDinoError } from '@geo-dino/core';
import { WGS84, crsFromEpsg, transformBetween, type Grid } from '@geo-dino/tiling';
import { NO_LABEL, PolygonLabels, RasterLabels, loadClassTable, openLabels } from '../src/index.js';
import { gdalJson } from '../../../test/support/fixture-run.js';
import { requireGdal } from '../../../test/support/tools.js';

const X0 = 698_400;
const Y0 = 32_400;
const W = 256;
const H = 192;
const GRID: Grid = { crs: crsFromEpsg(32636), transform: [X0, 0.6, 0, Y0, 0, -0.6], width: W, height: H, gsd: 0.6 };

let dir: string;
beforeAll(() => {
  requireGdal();
  dir = mkdtempSync(join(tmpdir(), 'lc-labels-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readI32(path: string): Int32Array {
  const b = readFileSync(path);
  return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

async function caught(p: Promise<unknown>): Promise<GeoDinoError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GeoDinoError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

const COARSE = String.raw`
import sys, json
import numpy as np
from osgeo import gdal, osr
gdal.UseExceptions()
d, x0, y0, W, H = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
utm = osr.SpatialReference(); utm.ImportFromEPSG(32636)
wgs = osr.SpatialReference(); wgs.ImportFromEPSG(4326); wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
t = osr.CoordinateTransformation(utm, wgs)
pts = [t.TransformPoint(x, y) for x in (x0, x0 + W * 0.6) for y in (y0, y0 - H * 0.6)]
lon0 = min(p[0] for p in pts) - 0.0005; lat1 = max(p[1] for p in pts) + 0.0005
res = 1e-4
nx, ny = 40, 30
rng = np.random.default_rng(3)
a = rng.choice(np.array([10, 20, 30, 80], dtype=np.uint8), size=(ny, nx))
a[rng.random((ny, nx)) < 0.05] = 0
src = d + '/coarse-4326.tif'
ds = gdal.GetDriverByName('GTiff').Create(src, nx, ny, 1, gdal.GDT_Byte)
ds.SetGeoTransform((lon0, res, 0, lat1, 0, -res)); ds.SetProjection(wgs.ExportToWkt())
ds.GetRasterBand(1).SetNoDataValue(0); ds.GetRasterBand(1).WriteArray(a); ds = None
w = gdal.Warp('', src, format='MEM', dstSRS='EPSG:32636', outputBounds=(x0, y0 - H * 0.6, x0 + W * 0.6, y0), width=W, height=H,
              resampleAlg='near', srcNodata=0, dstNodata=0, errorThreshold=0)
w.GetRasterBand(1).ReadAsArray().astype('<i4').tofile(d + '/coarse-oracle.i32')
print(json.dumps({'src': src}))
`;

const FINE = String.raw`
import sys, json
import numpy as np
from osgeo import gdal, osr
gdal.UseExceptions()
d, x0, y0, W, H = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(4)
vals = np.array([1, 2, 3, 4])
blocks = rng.choice(vals, size=((4 * H) // 3 + 1, (4 * W) // 3 + 1)).astype(np.uint8)
blocks[rng.random(blocks.shape) < 0.05] = 0
fine = np.repeat(np.repeat(blocks, 3, 0), 3, 1)[:4 * H, :4 * W]
src = d + '/fine-utm.tif'
ds = gdal.GetDriverByName('GTiff').Create(src, 4 * W, 4 * H, 1, gdal.GDT_Byte)
srs = osr.SpatialReference(); srs.ImportFromEPSG(32636)
ds.SetGeoTransform((x0, 0.15, 0, y0, 0, -0.15)); ds.SetProjection(srs.ExportToWkt())
ds.GetRasterBand(1).SetNoDataValue(0); ds.GetRasterBand(1).WriteArray(fine); ds = None
cells = fine.reshape(H, 4, W, 4).transpose(0, 2, 1, 3).reshape(H, W, 16)
counts = (cells[..., None] == vals).sum(axis=2)
top = counts.max(axis=-1)
# GDAL's tie rule: of the classes with the top count, the one that reached it first (row-major samples).
cum = np.cumsum(cells[..., None] == vals, axis=2)
reached = np.where((cum == top[..., None, None]).any(axis=2), (cum == top[..., None, None]).argmax(axis=2), 99)
mode = vals[reached.argmin(axis=-1)]
mode[top == 0] = 0
ties = ((counts == top[..., None]).sum(-1) > 1) & (top > 0)
mode.astype('<i4').tofile(d + '/fine-mode.i32')
ties.astype('<i4').tofile(d + '/fine-ties.i32')
w = gdal.Warp('', src, format='MEM', outputBounds=(x0, y0 - H * 0.6, x0 + W * 0.6, y0), width=W, height=H,
              resampleAlg='mode', srcNodata=0, dstNodata=0, errorThreshold=0)
w.GetRasterBand(1).ReadAsArray().astype('<i4').tofile(d + '/fine-gdal-mode.i32')
print(json.dumps({'src': src, 'ties': int(ties.sum())}))
`;

const RASTERIZE = String.raw`
import sys, json
import numpy as np
from osgeo import gdal, ogr, osr
gdal.UseExceptions()
vec, out, x0, y0, W, H = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
srs = osr.SpatialReference(); srs.ImportFromEPSG(32636)
mem = gdal.GetDriverByName('MEM').Create('', W, H, 1, gdal.GDT_Int32)
mem.SetGeoTransform((x0, 0.6, 0, y0, 0, -0.6)); mem.SetProjection(srs.ExportToWkt())
mem.GetRasterBand(1).Fill(-1)
v = ogr.Open(vec)
gdal.RasterizeLayer(mem, [1], v.GetLayer(0), options=['ATTRIBUTE=value'])
mem.GetRasterBand(1).ReadAsArray().astype('<i4').tofile(out)
print(json.dumps({'ok': True}))
`;

describe('raster labels', () => {
  it('reprojects a coarser raster in another CRS like gdalwarp -r near', async () => {
    const { src } = gdalJson(COARSE, [dir, String(X0), String(Y0), String(W), String(H)]) as { src: string };
    const oracle = readI32(join(dir, 'coarse-oracle.i32'));
    const labels = await openLabels(src);
    try {
      expect(labels).toBeInstanceOf(RasterLabels);
      labels.bind(GRID);
      expect(labels.method).toContain('nearest');
      const got = await labels.render({ x: 0, y: 0, width: W, height: H });
      // A window inside the grid gives the same labels as the whole grid there.
      const part = await labels.render({ x: 100, y: 50, width: 64, height: 32 });
      let same = 0;
      for (let j = 0; j < 32; j++) for (let i = 0; i < 64; i++) same += part[j * 64 + i] === got[(50 + j) * W + 100 + i] ? 1 : 0;
      expect(same).toBe(64 * 32);
      let agree = 0;
      let labelled = 0;
      for (let i = 0; i < got.length; i++) {
        const o = oracle[i] === 0 ? NO_LABEL : oracle[i];
        if (got[i] === o) agree++;
        if (o !== NO_LABEL) labelled++;
      }
      expect(labelled).toBeGreaterThan(0.8 * W * H);
      // Measured: identical. A few pixels are allowed for proj4 vs PROJ rounding at a label edge.
      expect(agree / got.length).toBeGreaterThan(0.999);
    } finally {
      await labels.close();
    }
  });

  it('takes the mode of finer labels (numpy oracle with GDAL\'s tie rule; gdalwarp -r mode for reference)', async () => {
    const r = gdalJson(FINE, [dir, String(X0), String(Y0), String(W), String(H)]) as { src: string; ties: number };
    const mode = readI32(join(dir, 'fine-mode.i32'));
    const ties = readI32(join(dir, 'fine-ties.i32'));
    const gdalMode = readI32(join(dir, 'fine-gdal-mode.i32'));
    const labels = await openLabels(r.src);
    try {
      labels.bind(GRID);
      expect(labels.method).toContain('mode of the label pixels under each pixel (labels 4.00× finer');
      const got = await labels.render({ x: 0, y: 0, width: W, height: H });
      let mismatches = 0;
      let tieMismatches = 0;
      let gdalAgree = 0;
      for (let i = 0; i < got.length; i++) {
        if (got[i] === (gdalMode[i] === 0 ? NO_LABEL : gdalMode[i])) gdalAgree++;
        if (got[i] !== (mode[i] === 0 ? NO_LABEL : mode[i])) {
          mismatches++;
          if (ties[i]) tieMismatches++;
        }
      }
      console.log(`finer labels: ${r.ties} tied pixels; equal to gdalwarp -r mode on ${((100 * gdalAgree) / got.length).toFixed(2)} % of the pixels`);
      expect(r.ties).toBeGreaterThan(0);
      expect(tieMismatches).toBe(0);
      expect(mismatches).toBe(0);
      expect(gdalAgree / got.length).toBeGreaterThan(0.97);
    } finally {
      await labels.close();
    }
  });

  it('refuses a raster without a CRS and non-integer class values', async () => {
    const made = gdalJson(
      String.raw`
import sys, json
import numpy as np
from osgeo import gdal, osr
gdal.UseExceptions()
d = sys.argv[1]
ds = gdal.GetDriverByName('GTiff').Create(d + '/nocrs.tif', 8, 8, 1, gdal.GDT_Byte)
ds.SetGeoTransform((0, 1, 0, 0, 0, -1)); ds.GetRasterBand(1).Fill(1); ds = None
ds = gdal.GetDriverByName('GTiff').Create(d + '/float.tif', 64, 64, 1, gdal.GDT_Float32)
srs = osr.SpatialReference(); srs.ImportFromEPSG(32636)
ds.SetGeoTransform((${X0}, 3, 0, ${Y0}, 0, -3)); ds.SetProjection(srs.ExportToWkt())
ds.GetRasterBand(1).WriteArray(np.full((64, 64), 1.5, dtype=np.float32)); ds = None
print(json.dumps({'ok': True}))
`,
      [dir],
    ) as { ok: boolean };
    expect(made.ok).toBe(true);
    const noCrs = await caught(openLabels(join(dir, 'nocrs.tif')));
    expect(noCrs.code).toBe('E_BAD_LABELS');
    expect(noCrs.message).toContain('nocrs.tif');
    expect(noCrs.message).toContain('no CRS');
    const f = await openLabels(join(dir, 'float.tif'));
    try {
      f.bind(GRID);
      const e = await caught(f.render({ x: 0, y: 0, width: 32, height: 32 }));
      expect(e.code).toBe('E_BAD_LABELS');
      expect(e.message).toContain('label value 1.5 is not an integer');
    } finally {
      await f.close();
    }
  });
});

/** Polygons in grid metres (relative to the origin), as lon/lat rings. */
function ring(pts: [number, number][], toLonLat: (x: number, y: number) => [number, number]): [number, number][] {
  const r = pts.map(([x, y]) => toLonLat(X0 + x, Y0 - y));
  return [...r, r[0]!];
}

describe('polygon labels', () => {
  const utmToLonLat = transformBetween(crsFromEpsg(32636), WGS84, 'test');
  const ll = (x: number, y: number): [number, number] => utmToLonLat.forward(x, y);
  const utm = (x: number, y: number): [number, number] => [x, y];
  const features = (f: (x: number, y: number) => [number, number]): unknown[] => [
    { type: 'Feature', properties: { class: 'forest', value: 2 }, geometry: { type: 'Polygon', coordinates: [ring([[3.1, 2.2], [120.4, 5.3], [110.7, 90.9], [8.3, 80.1]], f)] } },
    {
      type: 'Feature',
      properties: { class: 'water', value: 4 },
      geometry: { type: 'Polygon', coordinates: [ring([[60.2, 40.1], [150.3, 42.7], [140.9, 110.2], [70.4, 100.6]], f), ring([[90.5, 60.3], [110.1, 62.2], [100.7, 80.4]], f).reverse()] },
    },
    { type: 'Feature', properties: { class: 'built', value: 1 }, geometry: { type: 'Polygon', coordinates: [ring([[20.2, 20.2], [50.3, 21.1], [49.6, 55.8], [22.9, 50.2]], f)] } },
    {
      type: 'Feature',
      properties: { class: 'fields', value: 3 },
      geometry: { type: 'MultiPolygon', coordinates: [[ring([[120.1, 10.4], [150.2, 10.9], [150.6, 30.3]], f)], [[...ring([[5.5, 95.2], [40.4, 95.9], [30.3, 112.8]], f)]]] },
    },
  ];

  it('rasterises like GDAL (pixel centres, later features on top); class names get values 1..n', async () => {
    const path = join(dir, 'polys.geojson');
    writeFileSync(path, JSON.stringify({ type: 'FeatureCollection', features: features(ll) }));
    gdalJson(RASTERIZE, [path, join(dir, 'polys.i32'), String(X0), String(Y0), String(W), String(H)]);
    const oracle = readI32(join(dir, 'polys.i32'));
    const labels = await openLabels(path);
    expect(labels).toBeInstanceOf(PolygonLabels);
    // Names sorted: built 1, fields 2, forest 3, water 4 — the oracle's "value" property says what GDAL burns.
    const derived = (labels as PolygonLabels).derivedClasses!;
    expect(derived.map((c) => [c.value, c.name])).toEqual([
      [1, 'built'],
      [2, 'fields'],
      [3, 'forest'],
      [4, 'water'],
    ]);
    labels.bind(GRID);
    const got = await labels.render({ x: 0, y: 0, width: W, height: H });
    const toOracle = new Map([
      [1, 1],
      [2, 3],
      [3, 2],
      [4, 4],
    ]); // geo-dino value → the "value" GDAL burnt for that name
    let agree = 0;
    let inside = 0;
    for (let i = 0; i < got.length; i++) {
      const g = got[i] === NO_LABEL ? -1 : toOracle.get(got[i]!)!;
      if (g === oracle[i]) agree++;
      if (oracle[i] !== -1) inside++;
    }
    expect(inside).toBeGreaterThan(5000);
    // Measured: identical; a pixel centre exactly on an edge may go either way.
    expect(W * H - agree).toBeLessThanOrEqual(10);

    // The same polygons in UTM with a legacy crs member: reprojected, the same labels.
    const legacy = join(dir, 'polys-utm.geojson');
    writeFileSync(legacy, JSON.stringify({ type: 'FeatureCollection', crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::32636' } }, features: features(utm) }));
    const l2 = await openLabels(legacy);
    l2.bind(GRID);
    const got2 = await l2.render({ x: 0, y: 0, width: W, height: H });
    let diff = 0;
    for (let i = 0; i < got.length; i++) if (got[i] !== got2[i]) diff++;
    expect(diff).toBeLessThanOrEqual(5);
  });

  it('looks class names up in a table, and says what is wrong with unusable polygons', async () => {
    const path = join(dir, 'named.geojson');
    writeFileSync(path, JSON.stringify({ type: 'FeatureCollection', features: features(ll) }));
    const table = [
      { value: 10, name: 'forest', color: '#006400' },
      { value: 80, name: 'water', color: '#0064c8' },
      { value: 50, name: 'built', color: '#fa0000' },
    ];
    const missing = await caught(openLabels(path, { classes: table }));
    expect(missing.code).toBe('E_BAD_LABELS');
    expect(missing.message).toContain('"fields" are not in the class table');
    const ok = await openLabels(path, { classes: [...table, { value: 40, name: 'Fields', color: '#f096ff' }] });
    ok.bind(GRID);
    const v = await ok.render({ x: 0, y: 0, width: W, height: H });
    expect(new Set(v)).toEqual(new Set([NO_LABEL, 10, 80, 50, 40]));

    const write = (name: string, value: unknown): string => {
      const p = join(dir, name);
      writeFileSync(p, JSON.stringify(value));
      return p;
    };
    const noProp = await caught(openLabels(write('noprop.geojson', { type: 'FeatureCollection', features: [features(ll)[0], { ...(features(ll)[1] as object), properties: { kind: 'x' } }] })));
    expect(noProp.code).toBe('E_BAD_LABELS');
    expect(noProp.message).toContain('features[1].properties: no "class" class');
    expect(noProp.message).toContain('--class-property');
    const point = await caught(openLabels(write('point.geojson', { type: 'FeatureCollection', features: [{ type: 'Feature', properties: { class: 1 }, geometry: { type: 'Point', coordinates: [34.7, 0.3] } }] })));
    expect(point.message).toContain('features[0].geometry: must be a Polygon or MultiPolygon (got Point)');
    const mixed = await caught(openLabels(write('mixed.geojson', { type: 'FeatureCollection', features: [features(ll)[0], { ...(features(ll)[1] as object), properties: { class: 7 } }] })));
    expect(mixed.message).toContain('mixes numbers and names');
    const big = await caught(openLabels(write('big.geojson', { type: 'FeatureCollection', features: [{ ...(features(ll)[0] as object), properties: { class: 300 } }] })));
    expect(big.message).toContain('must be an integer 0-255');
    const empty = await caught(openLabels(write('empty.geojson', { type: 'FeatureCollection', features: [] })));
    expect(empty.message).toContain('found no features');
  });
});

describe('class tables', () => {
  it('reads JSON, CSV and the WorldCover preset; refuses bad tables by name', async () => {
    const wc = await loadClassTable('worldcover');
    expect(wc.map((c) => c.value)).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100]);
    const csv = join(dir, 't.csv');
    writeFileSync(csv, 'value,name,color,title\n1,tree,#006400,Trees\n2,water,0064C8,Water\n');
    expect(await loadClassTable(csv)).toEqual([
      { value: 1, name: 'tree', color: '#006400', title: 'Trees' },
      { value: 2, name: 'water', color: '#0064c8', title: 'Water' },
    ]);
    const dup = join(dir, 'dup.json');
    writeFileSync(dup, JSON.stringify({ classes: [{ value: 1, name: 'a', color: '#000000' }, { value: 1, name: 'b', color: '#000000' }] }));
    const e1 = await caught(loadClassTable(dup));
    expect(e1.code).toBe('E_BAD_LABELS');
    expect(e1.message).toContain('[1].value: 1 is used twice');
    const badColor = join(dir, 'color.json');
    writeFileSync(badColor, JSON.stringify([{ value: 1, name: 'a', color: 'green' }]));
    const e2 = await caught(loadClassTable(badColor));
    expect(e2.message).toContain('0.color: must be #rrggbb');
    const e3 = await caught(loadClassTable(join(dir, 'none.json')));
    expect(e3.code).toBe('E_FILE_NOT_FOUND');
    expect(e3.message).toContain('--classes');
  });
});
