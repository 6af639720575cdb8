/**
 * Change detection against GDAL: synthetic before/after canopy-height rasters written by GDAL with
 * a known cleared patch; the loss mask polygonised by `gdal.Polygonize` and measured by OGR is
 * the oracle.
 *
 * Tolerances: the areas of the polygons found equal GDAL's (same pixels: relative 1e-9); the
 * cleared circle's area is within 2 % of π r² (pixelation of a 25-pixel radius); the geodesic
 * area of the lon/lat polygon is within 0.2 % of the grid area (UTM scale error at 1.5° from the
 * central meridian is below 0.04 %, the rest is the lon/lat straight-edge approximation).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { geodesicArea, parseAoi, pointInMultiPolygon, toMultiPolygon, type ArealGeometry } from '@geo-dino/geometry';
import { crsFromEpsg, transformBetween, WGS84 } from '@geo-dino/tiling';
import { detectChange } from '../src/change.js';
import { GDAL_PYTHON, requireGdal } from '../../../test/support/tools.js';

const ORACLE = fileURLToPath(new URL('./support/change_oracle.py', import.meta.url));

function py(...args: string[]): unknown {
  return JSON.parse(execFileSync(GDAL_PYTHON, [ORACLE, ...args], { encoding: 'utf8', timeout: 120_000 }).trim().split('\n').pop()!) as unknown;
}

interface OraclePolys {
  polygons: { area: number; pixels: number; mean_loss: number; max_loss: number }[];
  loss_pixels: number;
  compared_pixels: number;
}

const ORIGIN: [number, number] = [698_400, 32_400];
const SPEC = {
  epsg: 32636,
  origin: ORIGIN,
  gsd: 0.6,
  width: 700,
  height: 600,
  base: 20,
  noise: 0.5,
  seed: 7,
  clear: [
    // The known cleared patch: a disc of radius 15 m (706.9 m²), crossing a 512-px block edge.
    { circle: [ORIGIN[0] + 300, ORIGIN[1] - 290, 15], to: 0.5 },
    // An L-shaped clearing (two rectangles, 18 m × 6 m + 6 m × 18 m, overlapping 36 m²): 180 m².
    { rect: [ORIGIN[0] + 60, ORIGIN[1] - 60, ORIGIN[0] + 78, ORIGIN[1] - 66], to: 2 },
    { rect: [ORIGIN[0] + 60, ORIGIN[1] - 60, ORIGIN[0] + 66, ORIGIN[1] - 78], to: 2 },
    // A small clearing below the minimum area (9 m²).
    { rect: [ORIGIN[0] + 350, ORIGIN[1] - 50, ORIGIN[0] + 353, ORIGIN[1] - 53], to: 1 },
    // A 60 m × 60 m clearing with an island of standing trees (12 m × 12 m) inside: a polygon with a hole.
    ...ring(ORIGIN[0] + 30, ORIGIN[1] - 250, ORIGIN[0] + 90, ORIGIN[1] - 310, 12),
  ],
  // Trees that grew: a gain, not a loss.
  grow: [{ rect: [ORIGIN[0] + 150, ORIGIN[1] - 270, ORIGIN[0] + 180, ORIGIN[1] - 300], by: 8 }],
  nodata_before: [{ rect: [ORIGIN[0] + 200, ORIGIN[1] - 100, ORIGIN[0] + 260, ORIGIN[1] - 160] }],
  nodata_after: [{ rect: [ORIGIN[0] + 380, ORIGIN[1] - 300, ORIGIN[0] + 400, ORIGIN[1] - 330] }],
};

let dir: string;
let before: string;
let after: string;

beforeAll(() => {
  requireGdal();
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-change-'));
  const r = py('make', dir, JSON.stringify(SPEC)) as { before: string; after: string };
  before = r.before;
  after = r.after;
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A square clearing [x0,x1]×[y1,y0] with an uncleared island of `island` metres in its centre. */
function ring(x0: number, y0: number, x1: number, y1: number, island: number): { rect: number[]; to: number }[] {
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const h = island / 2;
  return [
    { rect: [x0, y0, x1, cy + h], to: 0 },
    { rect: [x0, cy - h, x1, y1], to: 0 },
    { rect: [x0, cy + h, cx - h, cy - h], to: 0 },
    { rect: [cx + h, cy + h, x1, cy - h], to: 0 },
  ];
}

describe('detectChange', () => {
  it('finds the cleared patches GDAL finds, with the same areas; writes change.geojson and loss.tif', async () => {
    const geojsonPath = join(dir, 'change.geojson');
    const lossPath = join(dir, 'loss.tif');
    const res = await detectChange(before, after, { thresholdM: 5, minAreaM2: 100, geojsonPath, lossPath });
    const oracle = py('oracle', before, after, '5', '100') as OraclePolys;
    expect(res.aligned).toBe(true);
    expect(oracle.polygons.length).toBe(3); // clearing with island, disc, L (the 9 m² one is filtered)
    expect(res.changes.length).toBe(oracle.polygons.length);
    for (const [i, o] of oracle.polygons.entries()) {
      const c = res.changes[i]!;
      expect(c.pixels).toBe(o.pixels);
      expect(Math.abs(c.areaM2 - o.area) / o.area).toBeLessThan(1e-9);
      expect(c.meanLossM).toBeCloseTo(o.mean_loss, 4);
      expect(c.maxLossM).toBeCloseTo(o.max_loss, 4);
    }
    expect(res.lossAreaM2).toBeCloseTo(oracle.loss_pixels * 0.36, 6);
    expect(res.comparedAreaM2).toBeCloseTo(oracle.compared_pixels * 0.36, 3);

    // The disc: area within 2 % of π r².
    const disc = res.changes.find((c) => Math.abs(c.areaM2 - Math.PI * 225) < 0.02 * Math.PI * 225);
    expect(disc).toBeDefined();

    // change.geojson: lon/lat polygons whose geodesic area matches the grid area; exterior rings
    // counter-clockwise; the clearing with an island has a hole; the disc's centre is inside it.
    const fc = JSON.parse(readFileSync(geojsonPath, 'utf8')) as { type: string; features: { id: string; properties: Record<string, number | string>; geometry: ArealGeometry }[] };
    expect(fc.type).toBe('FeatureCollection');
    expect(fc.features.length).toBe(res.changes.length);
    const toLonLat = transformBetween(crsFromEpsg(32636), WGS84);
    for (const f of fc.features) {
      const rec = res.changes.find((c) => c.changeId === f.id)!;
      expect(f.properties['area_m2']).toBeCloseTo(rec.areaM2, 1);
      const mp = toMultiPolygon(f.geometry);
      const geo = geodesicArea(mp);
      expect(Math.abs(geo - rec.areaM2) / rec.areaM2).toBeLessThan(0.002);
      // RFC 7946 orientation and validity (parseAoi checks closure and self-intersections).
      expect(() => parseAoi(f.geometry, f.id)).not.toThrow();
    }
    const withHole = fc.features.filter((f) => toMultiPolygon(f.geometry).some((p) => p.length > 1));
    expect(withHole.length).toBe(1);
    const island = toLonLat.forward(ORIGIN[0] + 60, ORIGIN[1] - 280);
    expect(pointInMultiPolygon(island, toMultiPolygon(withHole[0]!.geometry))).toBe(false);
    const discCentre = toLonLat.forward(ORIGIN[0] + 300, ORIGIN[1] - 290);
    expect(fc.features.some((f) => pointInMultiPolygon(discCentre, toMultiPolygon(f.geometry)))).toBe(true);

    // loss.tif: before − after wherever both are valid, nodata elsewhere; a COG GDAL reads.
    const lv = py('loss', lossPath, before, after) as { max_diff: number; nodata_ok: boolean; nodata_value: number; size: number[]; geotransform: number[]; overviews: number };
    expect(lv.max_diff).toBeLessThan(1e-5);
    expect(lv.nodata_ok).toBe(true);
    expect(lv.nodata_value).toBe(-9999);
    expect(lv.size).toEqual([700, 600]);
    expect(lv.geotransform).toEqual([ORIGIN[0], 0.6, 0, ORIGIN[1], 0, -0.6]);
    expect(lv.overviews).toBeGreaterThan(0);
  });

  it('the minimum area filters small changes (500 m² keeps only the disc)', async () => {
    const res = await detectChange(before, after, { thresholdM: 5, minAreaM2: 500 });
    const oracle = py('oracle', before, after, '5', '500') as OraclePolys;
    expect(res.changes.map((c) => c.pixels)).toEqual(oracle.polygons.map((p) => p.pixels));
    expect(res.changes.length).toBeGreaterThanOrEqual(1);
    expect(res.smallComponents).toBeGreaterThan(0);
  });

  it('no change → no polygons (identical rasters, and noise below the threshold)', async () => {
    const geojsonPath = join(dir, 'none.geojson');
    const same = await detectChange(before, before, { thresholdM: 5, minAreaM2: 0, geojsonPath });
    expect(same.changes).toEqual([]);
    expect(same.lossAreaM2).toBe(0);
    expect(JSON.parse(readFileSync(geojsonPath, 'utf8'))).toEqual({ type: 'FeatureCollection', features: [] });
    const d = mkdtempSync(join(tmpdir(), 'geo-dino-nochange-'));
    try {
      const r = py('make', d, JSON.stringify({ ...SPEC, clear: [], nodata_before: [], nodata_after: [], width: 300, height: 200 })) as { before: string; after: string };
      const res = await detectChange(r.before, r.after, { thresholdM: 5, minAreaM2: 0 });
      expect(res.changes).toEqual([]);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('only pixels inside the AOI are compared', async () => {
    // An AOI covering the western half of the grid excludes the disc (x = +300 m, east of +210 m).
    const toLonLat = transformBetween(crsFromEpsg(32636), WGS84);
    const corners = [
      [ORIGIN[0], ORIGIN[1]],
      [ORIGIN[0] + 210, ORIGIN[1]],
      [ORIGIN[0] + 210, ORIGIN[1] - 360],
      [ORIGIN[0], ORIGIN[1] - 360],
      [ORIGIN[0], ORIGIN[1]],
    ].map(([x, y]) => toLonLat.forward(x!, y!));
    const aoi = parseAoi({ type: 'Polygon', coordinates: [corners.reverse()] }, 'west.geojson');
    const res = await detectChange(before, after, { thresholdM: 5, minAreaM2: 100, aoi });
    const all = await detectChange(before, after, { thresholdM: 5, minAreaM2: 100 });
    expect(res.changes.length).toBe(all.changes.length - 1);
    expect(res.comparedAreaM2).toBeLessThan(all.comparedAreaM2 * 0.6);
  });

  it('an older raster on a shifted grid (whole pixels) is read onto the newer grid', async () => {
    const d = mkdtempSync(join(tmpdir(), 'geo-dino-shift-'));
    try {
      const r = py('make', d, JSON.stringify({ ...SPEC, before_offset: [3, 5], nodata_before: [], nodata_after: [] })) as { before: string; after: string };
      const res = await detectChange(r.before, r.after, { thresholdM: 5, minAreaM2: 100 });
      const oracle = py('oracle', r.before, r.after, '5', '100') as OraclePolys;
      expect(res.aligned).toBe(true);
      expect(res.changes.map((c) => c.pixels)).toEqual(oracle.polygons.map((p) => p.pixels));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('an older raster on a grid that does not share pixel boundaries is resampled (bilinear) onto the newer grid', async () => {
    const d = mkdtempSync(join(tmpdir(), 'geo-dino-warp-'));
    try {
      // Half a pixel east and a third of a pixel north; the older canopy is uniform around the disc.
      const spec = { ...SPEC, before_shift_m: [0.3, 0.2], clear: [SPEC.clear[0]], nodata_before: [], nodata_after: [], grow: [] };
      const r = py('make', d, JSON.stringify(spec)) as { before: string; after: string };
      const res = await detectChange(r.before, r.after, { thresholdM: 5, minAreaM2: 500 });
      expect(res.aligned).toBe(false);
      expect(res.changes).toHaveLength(1);
      expect(Math.abs(res.changes[0]!.areaM2 - Math.PI * 225) / (Math.PI * 225)).toBeLessThan(0.02);
      // Everything but the last column and row (outside the shifted raster) is compared.
      expect(res.comparedAreaM2).toBeGreaterThan(0.99 * 700 * 600 * 0.36);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('bad input names the file', async () => {
    await expect(detectChange(join(dir, 'missing.tif'), after)).rejects.toMatchObject({ code: 'E_FILE_NOT_FOUND', message: expect.stringContaining('missing.tif') });
    await expect(detectChange(before, after, { thresholdM: -1 })).rejects.toMatchObject({ code: 'E_ARGUMENT' });
  });
});
