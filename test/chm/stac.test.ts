/**
 * Imagery from STAC, two scenes: an ItemCollection (written here) with a newer item whose COG is
 * the east half of cogeo.tif (cut by GDAL) and an older item with the whole of it. Scene selection
 * (the stac package) must choose both; the mosaic takes the newer scene where it has imagery; the
 * provenance must say so. Oracles: GDAL gives the east half's extent; the provenance polygons of
 * each scene are compared with the AOI parts on each side of that edge (areas by OGR): exactly for
 * the pixel counts (up to the outline's pixels), within one 9.6 m cell along each part's outline for
 * the polygons; the item's `derived_from` links and the
 * acquisition interval come from the two items.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sharedData } from '../support/shared-data.js';
import { gdalJson } from '../support/fixture-run.js';
import { requireGdal } from '../support/tools.js';
import { validateStac } from '../support/stac-validator.js';
import { COGEO_AOI, chm, readJson, tempDir, writeJson } from './helpers.js';

const HALF = String.raw`
import sys, json
from osgeo import gdal
gdal.UseExceptions()
src, out = sys.argv[1:3]
gdal.Translate(out, src, srcWin=[512, 0, 512, 1024], creationOptions=['TILED=YES', 'COMPRESS=JPEG', 'PHOTOMETRIC=YCBCR'])
info = gdal.Info(out, format='json')
print(json.dumps({'half': info['wgs84Extent']['coordinates'], 'full': gdal.Info(src, format='json')['wgs84Extent']['coordinates']}))
`;

/** AOI area (m², OGR in the UTM zone) east and west of a meridian. */
const SPLIT = String.raw`
import sys, json
from osgeo import ogr, osr
aoi_path, lon = sys.argv[1], float(sys.argv[2])
ds = ogr.Open(aoi_path)
lyr = ds.GetLayer(0)
feat = lyr.GetNextFeature()  # keep the data source, layer and feature alive
g = feat.GetGeometryRef().Clone()
wgs = osr.SpatialReference(); wgs.ImportFromEPSG(4326); wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
utm = osr.SpatialReference(); utm.ImportFromEPSG(32652)
east = ogr.CreateGeometryFromWkt(f'POLYGON(({lon} -89,180 -89,180 89,{lon} 89,{lon} -89))')
e = g.Intersection(east); w = g.Difference(east)
t = osr.CoordinateTransformation(wgs, utm)
for x in (g, e, w): x.Transform(t)
env = g.GetEnvelope()
print(json.dumps({'aoi': g.GetArea(), 'east': e.GetArea(), 'west': w.GetArea(), 'height_m': env[3] - env[2]}))
`;

let dir: string;
let home: string;
beforeAll(() => {
  requireGdal();
  dir = tempDir('stac');
  home = join(dir, 'home');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function item(id: string, datetime: string, ring: number[][], href: string): Record<string, unknown> {
  const xs = ring.map((p) => p[0]!);
  const ys = ring.map((p) => p[1]!);
  return {
    type: 'Feature',
    stac_version: '1.1.0',
    id,
    collection: 'test-ortho',
    geometry: { type: 'Polygon', coordinates: [ring] },
    bbox: [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)],
    properties: { datetime, gsd: 0.6 },
    links: [],
    assets: { visual: { href, type: 'image/tiff; application=geotiff; profile=cloud-optimized', roles: ['visual'], 'eo:bands': [{ common_name: 'red' }, { common_name: 'green' }, { common_name: 'blue' }] } },
  };
}

describe('geo-dino chm with STAC imagery', () => {
  it('chooses both scenes, mosaics the newer one first, and records each in provenance and the STAC Item', async () => {
    const full = sharedData('rasterio', 'cogeo.tif');
    const half = join(dir, 'east-half.tif');
    const ext = gdalJson(HALF, [full, half]) as { half: number[][][]; full: number[][][] };
    const items = {
      type: 'FeatureCollection',
      features: [item('east-2024', '2024-05-01T10:00:00Z', ext.half[0]!, half), item('full-2021', '2021-08-15T10:00:00Z', ext.full[0]!, full)],
    };
    const itemsPath = writeJson(join(dir, 'items.json'), items);
    const aoi = writeJson(join(dir, 'aoi.geojson'), COGEO_AOI);
    const out = join(dir, 'run');
    // The GDAL oracle below splits the AOI at the newer scene's footprint edge: the plain priority
    // mosaic (--scene-feather 0). With feathering the newer scene, which lies inside the older
    // one, hands a band along its edge to a transition zone (test/chm/scene-seams.test.ts).
    const r = await chm(['--model', 'demo', '--aoi', aoi, '--imagery', itemsPath, '--out', out, '--tile-size', '256', '--overlap', '32', '--no-web-tiles', '--scene-feather', '0'], home);
    expect(r.code, r.stderr).toBe(0);

    const prov = readJson<{ features: { properties: Record<string, unknown> }[] }>(join(out, 'provenance.geojson'));
    expect(prov.features.map((f) => [f.properties['scene_id'], f.properties['datetime'], f.properties['collection']])).toEqual([
      ['east-2024', '2024-05-01T10:00:00.000Z', 'test-ortho'],
      ['full-2021', '2021-08-15T10:00:00.000Z', 'test-ortho'],
    ]);
    const westEdge = Math.min(...ext.half[0]!.map((p) => p[0]!));
    const split = gdalJson(SPLIT, [aoi, String(westEdge)]) as { aoi: number; east: number; west: number; height_m: number };
    // Polygons are made of 9.6 m cells: each side may be off by one cell along its outline (the
    // boundary between the scenes, about the AOI's height, plus its half of the AOI's perimeter).
    const slack = 9.6 * (split.height_m + 2 * Math.sqrt(split.aoi));
    const east = prov.features[0]!.properties['area_m2'] as number;
    const west = prov.features[1]!.properties['area_m2'] as number;
    expect(Math.abs(east - split.east)).toBeLessThan(slack);
    expect(Math.abs(west - split.west)).toBeLessThan(slack);
    // The mosaic itself, pixel-exact: each scene's pixel count × 0.36 m² is its side of the AOI,
    // up to the pixels along the AOI outline (pixel centres decide) — half a pixel of its perimeter.
    const pxEast = (prov.features[0]!.properties['pixels'] as number) * 0.36;
    const pxWest = (prov.features[1]!.properties['pixels'] as number) * 0.36;
    const outline = 0.6 * 4 * Math.sqrt(split.aoi);
    expect(Math.abs(pxEast - split.east)).toBeLessThan(outline);
    expect(Math.abs(pxWest - split.west)).toBeLessThan(outline);
    // Exact pixel counts add up to the valid pixels of chm.tif.
    const run = readJson<{ pixels: { valid: number } }>(join(out, 'run.json'));
    expect((prov.features[0]!.properties['pixels'] as number) + (prov.features[1]!.properties['pixels'] as number)).toBe(run.pixels.valid);

    const stacItem = readJson<{ properties: Record<string, unknown>; links: { rel: string; href: string }[] }>(join(out, 'item.json'));
    // Local source items are linked relative to the run directory (it can move with its sources).
    expect(stacItem.links.filter((l) => l.rel === 'derived_from').map((l) => resolve(out, l.href)).sort()).toEqual([itemsPath, itemsPath]);
    expect(stacItem.links.filter((l) => l.rel === 'derived_from').every((l) => !l.href.startsWith('/'))).toBe(true);
    expect(stacItem.properties['start_datetime']).toBe('2021-08-15T10:00:00.000Z');
    expect(stacItem.properties['end_datetime']).toBe('2024-05-01T10:00:00.000Z');
    expect(stacItem.properties['datetime']).toBeNull();
    const v = validateStac([join(out, 'item.json')]);
    expect(v.ok, v.output).toBe(true);
  });
});
