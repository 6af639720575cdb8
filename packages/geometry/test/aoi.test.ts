import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { GeoDinoError } from '@geo-dino/core';
import { aoiFromBbox, geodesicArea, loadAoi, parseAoi, pointInMultiPolygon } from '../src/index.js';
import { sharedData, SHARED_DATA } from '../../../test/support/shared-data.js';
import { GDAL_PYTHON, requireGdal } from '../../../test/support/tools.js';

/** Oracle: GDAL/OGR area in the WGS84 equal-area cylindrical projection (EPSG:6933), edges densified in lon/lat, m². */
function ogrEqualArea(file: string): number {
  requireGdal();
  const script = `
import json, sys
from osgeo import ogr, osr
d = json.load(open(sys.argv[1]))
g = ogr.CreateGeometryFromJson(json.dumps(d['geometry']))
g.Segmentize(0.01)  # GeoJSON edges are straight in lon/lat: follow them before projecting
src = osr.SpatialReference(); src.ImportFromEPSG(4326); src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
dst = osr.SpatialReference(); dst.ImportFromEPSG(6933)
g.Transform(osr.CoordinateTransformation(src, dst))
print(g.GetArea())
`;
  return Number(execFileSync(GDAL_PYTHON, ['-c', script, file]).toString().trim());
}

const aoiFiles = readdirSync(`${SHARED_DATA}/aoi`).filter((f) => f.endsWith('.geojson'));

function expectAoiError(json: unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    parseAoi(json, 'test.geojson');
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(GeoDinoError);
  expect((caught as GeoDinoError).code).toBe('E_BAD_AOI');
  expect((caught as GeoDinoError).message).toMatch(/^test\.geojson: /);
  expect((caught as GeoDinoError).message).toMatch(pattern);
}

describe('real AOIs', () => {
  it('finds the shared AOI files', () => {
    expect(aoiFiles.length).toBeGreaterThanOrEqual(6);
  });

  for (const f of aoiFiles) {
    it(`${f}: area matches GDAL's equal-area measurement within 0.01 %`, async () => {
      const aoi = await loadAoi(sharedData('aoi', f));
      const oracle = ogrEqualArea(sharedData('aoi', f));
      expect(Math.abs(aoi.areaM2 - oracle) / oracle).toBeLessThan(1e-4);
    });
  }

  it('Fiji crosses the antimeridian: RFC 7946 bbox and a centroid near 180°', async () => {
    const aoi = await loadAoi(sharedData('aoi', 'fiji-110m-antimeridian.geojson'));
    expect(aoi.crossesAntimeridian).toBe(true);
    expect(aoi.bbox[0]).toBeGreaterThan(aoi.bbox[2]);
    expect(Math.abs(Math.abs(aoi.centroid[0]) - 179)).toBeLessThan(2);
    expect(aoi.centroid[1]).toBeGreaterThan(-19);
    expect(aoi.centroid[1]).toBeLessThan(-16);
  });

  it('Kenya does not cross the antimeridian and its centroid is inside Kenya', async () => {
    const aoi = await loadAoi(sharedData('aoi', 'kenya.geojson'));
    expect(aoi.crossesAntimeridian).toBe(false);
    expect(pointInMultiPolygon(aoi.centroid, aoi.geometry)).toBe(true);
    expect(aoi.bbox[0]).toBeLessThan(aoi.bbox[2]);
  });

  it('South Africa excludes its Lesotho hole', async () => {
    const aoi = await loadAoi(sharedData('aoi', 'south-africa-110m-with-lesotho-hole.geojson'));
    const lesothoCapital: [number, number] = [27.48, -29.31]; // Maseru area
    expect(pointInMultiPolygon(lesothoCapital, aoi.geometry)).toBe(false);
    const outerOnly = geodesicArea([[aoi.geometry[0]![0]!]]);
    expect(outerOnly).toBeGreaterThan(aoi.areaM2);
  });
});

describe('antimeridian', () => {
  it('splits a polygon drawn across 180° into two parts with the area of the same box elsewhere', () => {
    const crossing = parseAoi(
      { type: 'Polygon', coordinates: [[[179, 0], [181, 0], [181, 1], [179, 1], [179, 0]]] },
      'x',
    );
    const reference = parseAoi({ type: 'Polygon', coordinates: [[[9, 0], [11, 0], [11, 1], [9, 1], [9, 0]]] }, 'y');
    expect(crossing.geometry.length).toBe(2);
    expect(crossing.crossesAntimeridian).toBe(true);
    expect(crossing.bbox).toEqual([179, 0, -179, 1]);
    expect(Math.abs(crossing.areaM2 - reference.areaM2) / reference.areaM2).toBeLessThan(1e-9);
  });

  it('handles a jump from 179 to -179 the same way', () => {
    const a = parseAoi({ type: 'Polygon', coordinates: [[[179, 0], [-179, 0], [-179, 1], [179, 1], [179, 0]]] }, 'x');
    expect(a.geometry.length).toBe(2);
    expect(a.crossesAntimeridian).toBe(true);
  });

  it('the exact world box is the whole Earth (an edge from -180 to 180 goes the whole way round)', () => {
    const a = parseAoi({ type: 'Polygon', coordinates: [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]] }, 'world');
    // Authalic sphere: 4πR².
    expect(Math.abs(a.areaM2 - 4 * Math.PI * 6371007.180918475 ** 2) / a.areaM2).toBeLessThan(1e-9);
  });

  it('aoiFromBbox across the antimeridian', () => {
    const a = aoiFromBbox([170, -10, -170, 10]);
    expect(a.crossesAntimeridian).toBe(true);
    const b = aoiFromBbox([0, -10, 20, 10]);
    expect(Math.abs(a.areaM2 - b.areaM2) / b.areaM2).toBeLessThan(1e-9);
  });
});

describe('invalid AOIs give one clear error naming the place', () => {
  it('self-intersecting ring (bow tie)', () => {
    expectAoiError({ type: 'Polygon', coordinates: [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]] }, /coordinates: invalid polygon: ring 0 crosses itself \(edges 0 and 2\) near \[0\.5/);
  });
  it('ring not closed', () => {
    expectAoiError({ type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1]]] }, /coordinates\[0\]: ring is not closed/);
  });
  it('too few positions', () => {
    expectAoiError({ type: 'Polygon', coordinates: [[[0, 0], [1, 0], [0, 0]]] }, /at least 4 positions/);
  });
  it('latitude out of range (swapped axes)', () => {
    expectAoiError({ type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 95], [0, 0]]] }, /coordinates\[0\]\[2\]: latitude 95/);
  });
  it('non-numeric coordinate', () => {
    expectAoiError({ type: 'Polygon', coordinates: [[[0, 0], ['1', 0], [1, 1], [0, 0]]] }, /finite numbers/);
  });
  it('a LineString is not an area', () => {
    expectAoiError({ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: [[0, 0], [1, 1]] } }, /must be a polygon; got a LineString/);
  });
  it('empty FeatureCollection', () => {
    expectAoiError({ type: 'FeatureCollection', features: [] }, /empty/);
  });
  it('feature without geometry', () => {
    expectAoiError({ type: 'FeatureCollection', features: [{ type: 'Feature', properties: {}, geometry: null }] }, /features\[0\]\.geometry: the feature has no geometry/);
  });
  it('hole outside its outer ring', () => {
    expectAoiError(
      {
        type: 'Polygon',
        coordinates: [
          [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]],
          [[5, 5], [6, 5], [6, 6], [5, 5]],
        ],
      },
      /coordinates\[1\]: hole lies outside/,
    );
  });
  it('not JSON at all (file)', async () => {
    const { writeFile, mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(`${tmpdir()}/aoi-`);
    await writeFile(`${dir}/broken.geojson`, '{"type": "Feature",');
    await expect(loadAoi(`${dir}/broken.geojson`)).rejects.toThrow(/broken\.geojson: not valid JSON/);
    await expect(loadAoi(`${dir}/missing.geojson`)).rejects.toThrow(/missing\.geojson: no such file/);
    const { rm } = await import('node:fs/promises');
    await rm(dir, { recursive: true, force: true });
  });
});

describe('area invariance', () => {
  it('adding vertices along straight lon/lat edges leaves the area unchanged', async () => {
    const aoi = await loadAoi(sharedData('aoi', 'kenya-110m.geojson'));
    const { densify } = await import('../src/index.js');
    const dense = densify(aoi.geometry, 0.05);
    expect(Math.abs(geodesicArea(dense) - aoi.areaM2) / aoi.areaM2).toBeLessThan(1e-9);
  });
});

describe('merging', () => {
  it('overlapping features are unioned, not double counted', () => {
    const box = (x: number): number[][][] => [[[x, 0], [x + 2, 0], [x + 2, 1], [x, 1], [x, 0]]];
    const merged = parseAoi(
      {
        type: 'FeatureCollection',
        features: [
          { type: 'Feature', properties: { name: 'a' }, geometry: { type: 'Polygon', coordinates: box(0) } },
          { type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: box(1) } },
        ],
      },
      'fc',
    );
    const whole = parseAoi({ type: 'Polygon', coordinates: [[[0, 0], [3, 0], [3, 1], [0, 1], [0, 0]]] }, 'w');
    expect(Math.abs(merged.areaM2 - whole.areaM2) / whole.areaM2).toBeLessThan(1e-9);
    expect(merged.properties).toEqual({ name: 'a' });
  });
});
