/**
 * A newer scene inside an older one's extent that shares three of its edges (the east half of
 * cogeo.tif, cut by GDAL, over the whole of it): only its west edge, where the older scene shows
 * through, is a seam. Feathering must not hand the newer scene's pixels along the shared edges to
 * the older scene (there is nothing to hide there: beyond them neither scene has data).
 *
 * Oracles: GDAL cuts the scene and reads both maps. With default feathering, (1) the transition
 * zone is one band of F px along the west edge: its pixel count is the west edge's rows × F (the
 * rows the GDAL-read map has valid pixels in, at the edge column), not the ~3× that a zone along
 * all four edges gives; (2) far from the west edge the map equals the plain priority mosaic
 * (`--scene-feather 0`) exactly, including along the shared east edge.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { requireGdal } from '../support/tools.js';
import { sharedData } from '../support/shared-data.js';
import { gdalJson } from '../support/fixture-run.js';
import { chm, readJson, tempDir } from './helpers.js';

const HALF = String.raw`
import sys, json
from osgeo import gdal
gdal.UseExceptions()
src, out = sys.argv[1:3]
gdal.Translate(out, src, srcWin=[512, 0, 512, 1024], creationOptions=['TILED=YES', 'COMPRESS=DEFLATE'])
def ext(p):
    c = gdal.Info(p, format='json')['wgs84Extent']['coordinates'][0]
    return c
print(json.dumps({'half': ext(out), 'full': ext(src)}))
`;

/** Both maps' band 1: rows with valid pixels, and the largest |Δ| east of a column (grid px of the feathered map). */
const COMPARE = String.raw`
import sys, json
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
a = gdal.Open(sys.argv[1]); b = gdal.Open(sys.argv[2]); east_of = int(sys.argv[3])
A = a.GetRasterBand(1).ReadAsArray().astype('f8'); B = b.GetRasterBand(1).ReadAsArray().astype('f8')
assert A.shape == B.shape and a.GetGeoTransform() == b.GetGeoTransform()
m = (A != -9999) & (B != -9999)
d = np.where(m, np.abs(A - B), 0)
print(json.dumps({'width': A.shape[1], 'height': A.shape[0], 'maxEast': float(d[:, east_of:].max()), 'validEast': int(m[:, east_of:].sum()), 'onlyOne': int(((A != -9999) ^ (B != -9999)).sum())}))
`;

/** Grid column of a longitude along the map's middle row (GDAL/OSR: EPSG:4326 → the map's CRS). */
const COLUMN = String.raw`
import sys, json
from osgeo import gdal, osr
gdal.UseExceptions()
ds = gdal.Open(sys.argv[1]); lons = json.loads(sys.argv[2]); lat = float(sys.argv[3])
gt = ds.GetGeoTransform()
s = osr.SpatialReference(); s.ImportFromEPSG(4326); s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
t = osr.SpatialReference(wkt=ds.GetProjection()); t.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
ct = osr.CoordinateTransformation(s, t)
print(json.dumps([(ct.TransformPoint(lon, lat)[0] - gt[0]) / gt[1] for lon in lons]))
`;

let dir: string;
let home: string;
beforeAll(() => {
  requireGdal();
  dir = tempDir('seam-edge');
  home = join(dir, 'home');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('scene feathering with an inner scene that shares edges with the outer one', () => {
  it('feathers only the edge the outer scene shows through; the shared edges keep the newer scene', async () => {
    const full = sharedData('rasterio', 'cogeo.tif');
    const half = join(dir, 'east-half.tif');
    const ext = gdalJson(HALF, [full, half]) as { half: number[][]; full: number[][] };
    const xs = ext.full.map((p) => p[0]!);
    const ys = ext.full.map((p) => p[1]!);
    // The whole scene and a margin: the grid is AOI ∩ imagery, so the shared edges are inside it.
    const bbox = [Math.min(...xs) - 0.001, Math.min(...ys) - 0.001, Math.max(...xs) + 0.001, Math.max(...ys) + 0.001].join(',');
    const common = ['--model', 'demo', '--bbox', bbox, '--imagery', half, '--imagery', full, '--tile-size', '256', '--overlap', '32', '--no-web-tiles'];
    const feathered = join(dir, 'feathered');
    const plain = join(dir, 'plain');
    const r1 = await chm([...common, '--out', feathered], home);
    expect(r1.code, r1.stderr).toBe(0);
    const r0 = await chm([...common, '--out', plain, '--scene-feather', '0'], home);
    expect(r0.code, r0.stderr).toBe(0);

    const run = readJson<{ sceneFeather: { px: number; seams: number; featheredTiles: number } }>(join(feathered, 'run.json'));
    expect(run.sceneFeather.seams).toBe(1);
    const F = run.sceneFeather.px;
    const prov = readJson<{ transition_zones: { properties: { scene_ids: string[]; pixels: number } }[] }>(join(feathered, 'provenance.geojson'));
    expect(prov.transition_zones).toHaveLength(1);
    const zonePixels = prov.transition_zones[0]!.properties.pixels;

    // The west edge of the half (its westmost corner longitude) and the full scene's east edge, as grid columns.
    const midLat = (Math.min(...ys) + Math.max(...ys)) / 2;
    const [westCol, eastCol] = gdalJson(COLUMN, [join(plain, 'chm.tif'), JSON.stringify([Math.min(...ext.half.map((p) => p[0]!)), Math.max(...xs)]), String(midLat)]) as number[];
    const cmp = gdalJson(COMPARE, [join(feathered, 'chm.tif'), join(plain, 'chm.tif'), String(Math.ceil(westCol! + F + 256))]) as { width: number; height: number; maxEast: number; validEast: number; onlyOne: number };
    expect(cmp.onlyOne).toBe(0);
    // (1) One band along the west edge: about rows × F (the edge is nearly north-south), far from
    // the ~(rows × 3 + columns) × F a zone along every edge of the half would hold.
    expect(zonePixels).toBeGreaterThan(0.85 * cmp.height * F);
    expect(zonePixels).toBeLessThan(1.15 * cmp.height * F);
    // (2) Beyond the reach of the tiles that hold zone pixels (the zone's F px plus one tile) the
    // map is the plain mosaic exactly, up to the shared east edge.
    expect(eastCol! - (westCol! + F + 256)).toBeGreaterThan(64);
    expect(cmp.validEast).toBeGreaterThan(0);
    expect(cmp.maxEast).toBe(0);
  }, 300_000);
});
