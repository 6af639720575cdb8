/**
 * Scene selection. Expected choices follow from how the synthetic scenes are laid out; areas are
 * checked against GDAL/OGR (union, intersection and area in the WGS84 equal-area projection
 * EPSG:6933), an implementation independent of geo-dino's polygon code.
 */
import { describe, expect, it } from 'vitest';
import { aoiFromBbox, loadAoi, type Aoi, type MultiPolygonCoords } from '@geo-dino/geometry';
import { GeoDinoError } from '@geo-dino/core';
import { selectScenes, type LocatedItem, type StacItem } from '../src/index.js';
import { sharedData } from '../../test/support/shared-data.js';
import { ogrCoverage, type Geom } from './helpers.js';

function ogrArea(aoi: MultiPolygonCoords, footprints: Geom[]): { aoiKm2: number; coveredKm2: number } {
  return ogrCoverage({ type: 'MultiPolygon', coordinates: aoi }, footprints);
}

function box(w: number, s: number, e: number, n: number): Geom {
  return { type: 'Polygon', coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] };
}

const RGB_ASSET = {
  href: 'https://example.com/x.tif',
  type: 'image/tiff; application=geotiff; profile=cloud-optimized',
  roles: ['visual'],
  'eo:bands': [{ name: 'r', common_name: 'red' }, { name: 'g', common_name: 'green' }, { name: 'b', common_name: 'blue' }],
};

function item(id: string, geometry: Geom, datetime: string, props: Record<string, unknown> = {}, assets: Record<string, unknown> = { visual: { ...RGB_ASSET, href: `https://example.com/${id}.tif` } }): LocatedItem {
  const doc = { type: 'Feature', stac_version: '1.0.0', id, collection: 'test', geometry, properties: { datetime, gsd: 0.5, ...props }, links: [], assets } as unknown as StacItem;
  return { item: doc, source: `/catalog/${id}.json` };
}

describe('choosing scenes for an AOI', () => {
  const aoi = aoiFromBbox([36.0, 0.0, 36.4, 0.2]);
  const scenes = [
    item('A', box(36.0, 0.0, 36.2, 0.2), '2024-03-01T10:00:00Z', { 'eo:cloud_cover': 5 }),
    item('B', box(36.15, 0.0, 36.4, 0.1), '2024-02-01T10:00:00Z', { 'eo:cloud_cover': 10 }),
    item('C', box(36.0, 0.0, 36.4, 0.2), '2023-01-01T10:00:00Z', { 'eo:cloud_cover': 0 }),
    item('D-cloudy', box(36.0, 0.0, 36.4, 0.2), '2024-06-01T10:00:00Z', { 'eo:cloud_cover': 80 }),
    item('E-no-rgb', box(36.0, 0.0, 36.4, 0.2), '2024-05-01T10:00:00Z', { 'eo:cloud_cover': 1 }, { nir: { href: 'n.tif', type: 'image/tiff', roles: ['data'], 'eo:bands': [{ common_name: 'nir' }] } }),
    item('F-elsewhere', box(10, 10, 11, 11), '2024-04-01T10:00:00Z', { 'eo:cloud_cover': 1 }),
    item('G-inside-A', box(36.05, 0.05, 36.1, 0.1), '2024-01-01T10:00:00Z', { 'eo:cloud_cover': 1 }),
    item('H-coarse', box(36.0, 0.0, 36.4, 0.2), '2024-04-15T10:00:00Z', { 'eo:cloud_cover': 1, gsd: 10 }),
    item('I-too-old', box(36.0, 0.0, 36.4, 0.2), '2019-04-15T10:00:00Z', { 'eo:cloud_cover': 1 }),
    item('J-no-cloud-info', box(36.0, 0.0, 36.4, 0.2), '2024-07-01T10:00:00Z'),
  ];
  const criteria = { datetime: '2020/..', maxCloudCover: 30, maxGsd: 1 };

  it('most recent first, each scene only for the part newer scenes leave', async () => {
    const sel = await selectScenes(scenes, aoi, criteria);
    expect(sel.scenes.map((s) => s.itemId)).toEqual(['A', 'B', 'C']);
    const reasons = Object.fromEntries(sel.rejected.map((r) => [r.itemId, r.reason]));
    expect(reasons['D-cloudy']).toMatch(/cloud cover 80% above the maximum 30%/);
    expect(reasons['E-no-rgb']).toMatch(/no usable RGB/);
    expect(reasons['F-elsewhere']).toMatch(/does not intersect the AOI/);
    expect(reasons['H-coarse']).toMatch(/GSD 10 m coarser than the maximum 1 m/);
    expect(reasons['I-too-old']).toMatch(/outside the datetime window/);
    expect(reasons['J-no-cloud-info']).toMatch(/no eo:cloud_cover/);
    expect(sel.redundant).toBe(1); // G lies inside A
    expect(sel.eligible).toBe(4);
    expect(sel.considered).toBe(scenes.length);

    // Contributions: A the west half, B the south-east quarter, C the north-east quarter.
    const expected = [box(36.0, 0.0, 36.2, 0.2), box(36.2, 0.0, 36.4, 0.1), box(36.2, 0.1, 36.4, 0.2)];
    sel.scenes.forEach((s, i) => {
      const oracle = ogrArea(aoi.geometry, [expected[i]!]).coveredKm2;
      expect(s.contributionKm2 / oracle).toBeCloseTo(1, 4);
      const own = ogrArea(s.contribution.coordinates, [expected[i]!]);
      expect(own.coveredKm2 / own.aoiKm2).toBeCloseTo(1, 6);
    });
    const whole = ogrArea(aoi.geometry, []);
    expect(sel.coverage.aoiKm2 / whole.aoiKm2).toBeCloseTo(1, 4);
    expect(sel.coverage.coveredPercent).toBeCloseTo(100, 6);
    expect(sel.coverage.uncovered).toBeNull();
    expect(sel.scenes[0]!.href).toBe('https://example.com/A.tif');
    expect(sel.scenes[0]!.datetime).toBe('2024-03-01T10:00:00.000Z');
    expect(sel.scenes[0]!.cloudCover).toBe(5);
  });

  it('reports the part of the AOI no scene covers, in km² and %', async () => {
    const sel = await selectScenes(scenes.filter((s) => s.item.id !== 'C'), aoi, criteria);
    expect(sel.scenes.map((s) => s.itemId)).toEqual(['A', 'B']);
    const oracle = ogrArea(aoi.geometry, [box(36.0, 0.0, 36.2, 0.2), box(36.15, 0.0, 36.4, 0.1)]);
    expect(sel.coverage.coveredKm2 / oracle.coveredKm2).toBeCloseTo(1, 4);
    const uncoveredKm2 = oracle.aoiKm2 - oracle.coveredKm2;
    expect(sel.coverage.uncoveredKm2 / uncoveredKm2).toBeCloseTo(1, 3);
    expect(sel.coverage.uncoveredPercent).toBeCloseTo((100 * uncoveredKm2) / oracle.aoiKm2, 2);
    const hole = ogrArea(sel.coverage.uncovered!.coordinates, [box(36.2, 0.1, 36.4, 0.2)]);
    expect(hole.coveredKm2 / hole.aoiKm2).toBeCloseTo(1, 6);
  });

  it('newerThan keeps only scenes acquired strictly after it (monitoring)', async () => {
    const sel = await selectScenes(scenes, aoi, { ...criteria, newerThan: '2024-02-01T10:00:00Z' });
    expect(sel.scenes.map((s) => s.itemId)).toEqual(['A']);
    expect(sel.rejected.find((r) => r.itemId === 'B')?.reason).toMatch(/not newer than 2024-02-01T10:00:00.000Z/);
  });

  it('an AOI with no scene gives an empty selection and 0 % coverage, not an error', async () => {
    const far = aoiFromBbox([-60, -10, -59, -9]);
    const sel = await selectScenes(scenes, far, criteria);
    expect(sel.scenes).toEqual([]);
    expect(sel.coverage.coveredPercent).toBe(0);
    expect(sel.coverage.uncoveredPercent).toBe(100);
  });

  it('invalid criteria are refused clearly', async () => {
    await expect(selectScenes(scenes, aoi, { maxCloudCover: 150 })).rejects.toThrow(GeoDinoError);
    await expect(selectScenes(scenes, aoi, { datetime: '2024-13' })).rejects.toThrow(/datetime: month 13 is not 01\.\.12/);
    await expect(selectScenes(scenes, aoi, { datetime: '2024/2020' })).rejects.toThrow(/the start is after the end/);
  });

  it('footprints that are points or missing are refused with a reason; a bbox is used when geometry is invalid', async () => {
    const bowtie = { type: 'Polygon', coordinates: [[[36.0, 0.0], [36.4, 0.2], [36.4, 0.0], [36.0, 0.2], [36.0, 0.0]]] };
    const odd = [
      item('point', { type: 'Point', coordinates: [36.1, 0.1] }, '2024-01-01T00:00:00Z'),
      { ...item('bowtie', bowtie, '2024-01-01T00:00:00Z'), item: { ...item('bowtie', bowtie, '2024-01-01T00:00:00Z').item, bbox: [36.0, 0.0, 36.4, 0.2] } },
    ];
    const sel = await selectScenes(odd, aoi, {});
    expect(sel.rejected.find((r) => r.itemId === 'point')?.reason).toMatch(/footprint is a Point, not a polygon/);
    expect(sel.scenes.map((s) => s.itemId)).toEqual(['bowtie']);
    expect(sel.coverage.coveredPercent).toBeCloseTo(100, 6);
  });
});

describe('real AOIs', () => {
  async function gridScenes(aoi: Aoi, step: number, skip: (i: number, j: number) => boolean): Promise<{ items: LocatedItem[]; footprints: Geom[] }> {
    const [w, s, e, n] = aoi.crossesAntimeridian ? [aoi.bbox[0], aoi.bbox[1], aoi.bbox[2] + 360, aoi.bbox[3]] : aoi.bbox;
    const items: LocatedItem[] = [];
    const footprints: Geom[] = [];
    let k = 0;
    for (let i = 0; w + i * step < e; i++) {
      for (let j = 0; s + j * step < n; j++) {
        if (skip(i, j)) continue;
        const x0 = w + i * step;
        const y0 = s + j * step;
        const x1 = x0 + step * 1.1; // overlapping tiles, as real scenes overlap
        const y1 = Math.min(90, y0 + step * 1.1);
        // Scenes crossing 180° are split there, as RFC 7946 asks.
        const parts: number[][][][] = [];
        const norm = (x: number): number => (x > 180 ? x - 360 : x);
        if (x0 < 180 && x1 > 180) {
          parts.push(box(x0, y0, 180, y1).coordinates as number[][][]);
          parts.push(box(-180, y0, norm(x1), y1).coordinates as number[][][]);
        } else {
          parts.push(box(norm(x0), y0, norm(x1), y1).coordinates as number[][][]);
        }
        const geometry = parts.length === 1 ? { type: 'Polygon', coordinates: parts[0] } : { type: 'MultiPolygon', coordinates: parts };
        footprints.push(geometry);
        items.push(item(`t${k}`, geometry, new Date(Date.UTC(2024, 0, 1) + k * 86_400_000).toISOString()));
        k++;
      }
    }
    return { items, footprints };
  }

  it('Kenya with a tile grid missing two tiles: covered area as OGR measures it', async () => {
    const aoi = await loadAoi(sharedData('aoi', 'kenya-110m.geojson'));
    const { items, footprints } = await gridScenes(aoi, 1, (i, j) => (i === 3 && j === 4) || (i === 5 && j === 2));
    const sel = await selectScenes(items, aoi, {});
    const oracle = ogrArea(aoi.geometry, footprints);
    expect(sel.coverage.aoiKm2 / oracle.aoiKm2).toBeCloseTo(1, 3);
    expect(sel.coverage.coveredKm2 / oracle.coveredKm2).toBeCloseTo(1, 3);
    expect(sel.coverage.uncoveredKm2).toBeGreaterThan(1000);
    // Sum of contributions equals the covered area (no double counting). Geodesic areas of
    // lon/lat polygons shift slightly when clipping adds vertices on long edges, hence 1e-4.
    const sum = sel.scenes.reduce((a, s) => a + s.contributionKm2, 0);
    expect(sum / sel.coverage.coveredKm2).toBeCloseTo(1, 4);
  });

  it('Fiji across the antimeridian, with scenes split at 180°', async () => {
    const aoi = await loadAoi(sharedData('aoi', 'fiji-110m-antimeridian.geojson'));
    expect(aoi.crossesAntimeridian).toBe(true);
    const { items, footprints } = await gridScenes(aoi, 0.5, (i, j) => i === 1 && j === 1);
    const sel = await selectScenes(items, aoi, {});
    const oracle = ogrArea(aoi.geometry, footprints);
    expect(sel.coverage.aoiKm2 / oracle.aoiKm2).toBeCloseTo(1, 3);
    expect(sel.coverage.coveredKm2 / oracle.coveredKm2).toBeCloseTo(1, 3);
    expect(sel.scenes.some((s) => s.footprint.coordinates.length === 2)).toBe(true);
  });
});
