/**
 * @geo-dino/zonal against an independent computation: a brute-force pass over every pixel centre
 * (point in polygon with the geometry package's even-odd test, sorted values for the median)
 * on a synthetic raster held in memory; a mosaic of parts equals the whole; provenance lookup.
 */
import { describe, expect, it } from 'vitest';
import { parseAoi, pointInMultiPolygon } from '@geo-dino/geometry';
import { MosaicRaster, polygonPixelCount, polygonStats, provenanceIndex, sceneIn, valueAt, type Window, type WindowRaster } from '@geo-dino/zonal';

const W = 300;
const H = 200;
const NODATA = -9999;
// Vertices are off the pixel grid, so no pixel centre lies on an edge.
// A geographic raster (identity projection) of 1e-5° pixels near the equator.
const GT = [30, 1e-5, 0, 0.01, 0, -1e-5];
const heights = new Float32Array(W * H);
const unc = new Float32Array(W * H);
for (let r = 0; r < H; r++) {
  for (let c = 0; c < W; c++) {
    const i = r * W + c;
    heights[i] = (c * 7 + r * 13) % 97 === 0 ? NODATA : Math.fround(((c * 31 + r * 17) % 2500) / 100);
    unc[i] = Math.fround((c % 10) / 10);
  }
}
let reads = 0;
function memRaster(x0 = 0, y0 = 0, w = W, h = H): WindowRaster {
  return {
    name: 'mem.tif',
    width: w,
    height: h,
    bandCount: 2,
    geoTransform: [GT[0]! + x0 * GT[1]!, GT[1]!, 0, GT[3]! + y0 * GT[5]!, 0, GT[5]!],
    geographic: true,
    metresPerUnit: 111319.49079327357,
    projection: { forward: (x, y) => [x, y], inverse: (x, y) => [x, y] },
    async read(win: Window, o) {
      reads++;
      const bands = o.bands.map(() => new Float32Array(win.width * win.height));
      const valid = new Uint8Array(win.width * win.height);
      for (let r = 0; r < win.height; r++) {
        for (let c = 0; c < win.width; c++) {
          const src = (y0 + win.y + r) * W + (x0 + win.x + c);
          const v = heights[src]!;
          const i = r * win.width + c;
          valid[i] = v === NODATA ? 0 : 1;
          o.bands.forEach((b, k) => (bands[k]![i] = b === 0 ? v : unc[src]!));
        }
      }
      return { bands, valid };
    },
  };
}

const poly = parseAoi(
  { type: 'Polygon', coordinates: [[[30.00030317, 0.00950271], [30.00210173, 0.00930419], [30.00270291, 0.00850137], [30.00120443, 0.00820311], [30.00040229, 0.00880173], [30.00030317, 0.00950271]]] },
  'poly',
);

function bruteForce(): { valid: number; inside: number; mean: number; median: number; gt2: number; gt5: number; uMean: number; min: number; max: number } {
  const vals: number[] = [];
  let inside = 0;
  let uSum = 0;
  for (let r = 0; r < H; r++) {
    for (let c = 0; c < W; c++) {
      const lon = GT[0]! + (c + 0.5) * GT[1]!;
      const lat = GT[3]! + (r + 0.5) * GT[5]!;
      if (!pointInMultiPolygon([lon, lat], poly.geometry)) continue;
      inside++;
      const v = heights[r * W + c]!;
      if (v === NODATA) continue;
      vals.push(v);
      uSum += unc[r * W + c]!;
    }
  }
  vals.sort((a, b) => a - b);
  const n = vals.length;
  return {
    valid: n,
    inside,
    mean: vals.reduce((a, b) => a + b, 0) / n,
    median: n % 2 ? vals[(n - 1) / 2]! : (vals[n / 2 - 1]! + vals[n / 2]!) / 2,
    gt2: vals.filter((v) => v > 2).length / n,
    gt5: vals.filter((v) => v > 5).length / n,
    uMean: uSum / n,
    min: vals[0]!,
    max: vals[n - 1]!,
  };
}

describe('polygonStats', () => {
  it('equals a brute-force pass over the pixel centres', async () => {
    const want = bruteForce();
    expect(want.valid).toBeGreaterThan(1000);
    const s = await polygonStats(memRaster(), poly, { maxPixels: 1e9 });
    expect(s.pixels.inside).toBe(want.inside);
    expect(s.pixels.valid).toBe(want.valid);
    expect(s.height!.mean).toBeCloseTo(want.mean, 9);
    // Heights are whole centimetres (in float32): the centimetre histogram gives the median to float32 precision.
    expect(s.height!.median).toBeCloseTo(want.median, 5);
    expect(s.height!.min).toBe(want.min);
    expect(s.height!.max).toBe(want.max);
    expect(s.canopyCover!.gt2m).toBeCloseTo(want.gt2, 12);
    expect(s.canopyCover!.gt5m).toBeCloseTo(want.gt5, 12);
    expect(s.uncertainty!.mean).toBeCloseTo(want.uMean, 6);
    expect(s.histogram.counts.reduce((a, b) => a + b, 0)).toBe(want.valid);
    const pixelArea = 1e-10 * 111319.49079327357 ** 2 * Math.cos((poly.centroid[1] * Math.PI) / 180);
    expect(s.pixelAreaM2).toBeCloseTo(pixelArea, 6);
    expect(s.validAreaM2).toBeCloseTo(want.valid * pixelArea, 3);
  });

  it('a mosaic of parts gives exactly the statistics of the whole', async () => {
    const whole = await polygonStats(memRaster(), poly, { maxPixels: 1e9 });
    const parts = [
      [0, 0, 128, 100],
      [128, 0, 172, 100],
      [0, 100, 128, 100],
      [128, 100, 172, 100],
    ].map(([x, y, width, height]) => ({ x: x!, y: y!, width: width!, height: height!, open: async () => memRaster(x, y, width, height) }));
    const m = new MosaicRaster({ name: 'zone.vrt', width: W, height: H, bandCount: 2, geoTransform: GT, geographic: true, metresPerUnit: 111319.49079327357, projection: memRaster().projection }, parts);
    expect(await polygonStats(m, poly, { maxPixels: 1e9 })).toEqual(whole);
    const v = await valueAt(m, 30.00205, 0.00865, [0, 1]);
    const c = 205;
    const r = 135;
    expect(v).toEqual({ inside: true, col: c, row: r, values: [heights[r * W + c], unc[r * W + c]] });
  });

  it('refuses a polygon over the pixel cap, counts nothing outside the raster', async () => {
    const n = polygonPixelCount(memRaster(), poly);
    await expect(polygonStats(memRaster(), poly, { maxPixels: n - 1 })).rejects.toMatchObject({ code: 'E_LIMIT' });
    const away = parseAoi({ type: 'Polygon', coordinates: [[[31, 1], [31.01, 1], [31.01, 1.01], [31, 1]]] }, 'away');
    reads = 0;
    const s = await polygonStats(memRaster(), away, { maxPixels: 10 });
    expect(s.pixels).toEqual({ inside: 0, valid: 0, nodata: 0 });
    expect(s.height).toBeNull();
    expect(reads).toBe(0);
  });
});

describe('valueAt and provenance', () => {
  it('reads the pixel under a point; null at nodata; outside is outside', async () => {
    const r = memRaster();
    expect(await valueAt(r, 30.0000151, 0.0099949, [0, 1])).toEqual({ inside: true, col: 1, row: 0, values: [heights[1], unc[1]] });
    expect((await valueAt(r, 29.9, 0, [0])).inside).toBe(false);
    // (97, 0) is nodata: 97*7 % 97 == 0.
    expect((await valueAt(r, 30 + 97.5e-5, 0.0099949, [0])).values).toEqual([null]);
  });

  it('finds the scene of a point', () => {
    const idx = provenanceIndex({
      type: 'FeatureCollection',
      features: [
        { type: 'Feature', properties: { scene_id: 'A', datetime: '2025-01-01T00:00:00Z' }, geometry: { type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]] } },
        { type: 'Feature', properties: { scene_id: 'B' }, geometry: { type: 'Point', coordinates: [2, 2] } },
      ],
    });
    expect(sceneIn(idx, 0.5, 0.5)).toEqual({ scene_id: 'A', datetime: '2025-01-01T00:00:00Z', href: null, collection: null });
    expect(sceneIn(idx, 2, 2)).toBeNull();
    expect(sceneIn(provenanceIndex('nonsense'), 0.5, 0.5)).toBeNull();
  });
});
