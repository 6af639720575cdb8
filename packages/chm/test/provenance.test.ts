/**
 * Provenance polygons from a per-pixel source index, against a brute-force oracle computed here:
 * the majority scene of every cell (independent code), exact pixel counts, and cell areas.
 * The index is fed in two chunks per block row, as assembly does, so chunk borders are covered.
 */
import { describe, expect, it } from 'vitest';
import { planarRingAreaSigned, pointInMultiPolygon } from '@geo-dino/geometry';
import { crsFromEpsg, transformBetween, WGS84, NO_SOURCE } from '@geo-dino/tiling';
import { ProvenanceBuilder, type RunPlan } from '../src/index.js';

const W = 200;
const H = 150;
const CELL = 16;

function plan(): RunPlan {
  const src = (id: string, datetime: string) => ({
    id,
    kind: 'raster' as const,
    href: `/data/${id}.tif`,
    sign: null,
    collection: null,
    datetime,
    startDatetime: null,
    endDatetime: null,
    itemHref: null,
    assetKey: null,
    bands: null,
    gridBbox: [0, 0, W, H] as [number, number, number, number],
  });
  return {
    format: 'geo-dino-chm-plan',
    formatVersion: 2,
    requestHash: 'a'.repeat(64),
    configHash: 'b'.repeat(64),
    geoDino: 'test',
    demo: false,
    aoi: { source: 'test', geometry: [], areaM2: 0 },
    sources: [src('north', '2024-01-01T00:00:00.000Z'), src('south', '2023-06-01T00:00:00.000Z'), src('patch', '2022-02-02T00:00:00.000Z')],
    grid: { crs: crsFromEpsg(32636), transform: [698400, 0.6, 0, 32400, 0, -0.6], width: W, height: H, gsd: 0.6 },
    tiling: { tileSize: 64, overlap: 8, stride: 56, rows: 1, cols: 1, tiles: 1, blockSize: 64, window: 'raised-cosine', resampling: 'bilinear' },
    model: { name: 'm', weightsSha256: 'c'.repeat(64), demo: false, family: 'chmv2', layout: 'fused', dtype: 'fp32', gsd: 0.6 },
    heads: [{ name: 'chm', kind: 'canopy-height', planes: ['height'] }],
    provenanceCell: CELL,
    nodata: -9999,
    shards: { size: 8192, zone: '36N', count: 1, band: 16 },
  };
}

/** Scene 0 above a slanted line, scene 1 below, scene 2 in a small square, a masked hole, a masked right strip. */
function sourceAt(x: number, y: number): number {
  if (Math.hypot(x - 60, y - 90) < 18) return NO_SOURCE;
  if (x >= 190) return NO_SOURCE;
  if (x >= 120 && x < 150 && y >= 20 && y < 45) return 2;
  return y < 40 + 0.4 * x ? 0 : 1;
}

describe('ProvenanceBuilder', () => {
  it('attributes every cell to its majority scene, counts pixels exactly and covers every valid pixel', () => {
    const p = plan();
    const B = 64;
    const b = new ProvenanceBuilder(p, B);
    const chunks: [number, number][] = [
      [0, 128],
      [128, W - 128],
    ];
    for (let y0 = 0; y0 < H; y0 += B) {
      const rows = Math.min(B, H - y0);
      b.beginRow(y0, rows);
      for (const [x0, cw] of chunks) {
        const win = new Uint16Array(cw * rows);
        for (let y = 0; y < rows; y++) for (let x = 0; x < cw; x++) win[y * cw + x] = sourceAt(x0 + x, y0 + y);
        b.addWindow(x0, cw, rows, win);
      }
      b.endRow();
    }
    const fc = b.finish();
    expect(fc.type).toBe('FeatureCollection');
    expect(fc.geo_dino.cell_px).toBe(CELL);
    expect(fc.features.map((f) => f.properties.scene_id)).toEqual(['north', 'south', 'patch']);
    expect(fc.features[0]!.properties.datetime).toBe('2024-01-01T00:00:00.000Z');

    // Oracle: exact pixel counts and each cell's majority (ties to the lower index).
    const pixels = [0, 0, 0];
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const s = sourceAt(x, y);
      if (s !== NO_SOURCE) pixels[s]!++;
    }
    expect(fc.features.map((f) => f.properties.pixels)).toEqual(pixels);

    const t = transformBetween(crsFromEpsg(32636), WGS84, 'test');
    const toLonLat = (px: number, py: number): [number, number] => t.forward(698400 + px * 0.6, 32400 - py * 0.6);
    let labelled = 0;
    let expectedArea = 0;
    for (let cy = 0; cy * CELL < H; cy++) {
      for (let cx = 0; cx * CELL < W; cx++) {
        const counts = [0, 0, 0];
        for (let y = cy * CELL; y < Math.min(H, (cy + 1) * CELL); y++) for (let x = cx * CELL; x < Math.min(W, (cx + 1) * CELL); x++) {
          const s = sourceAt(x, y);
          if (s !== NO_SOURCE) counts[s]!++;
        }
        const max = Math.max(...counts);
        const label = max === 0 ? -1 : counts.indexOf(max);
        const centre = toLonLat(Math.min(W, cx * CELL + CELL / 2 - 0.25), Math.min(H, cy * CELL + CELL / 2 - 0.25));
        const inside = fc.features.map((f) => pointInMultiPolygon(centre, f.geometry.coordinates));
        if (label < 0) expect(inside, `cell ${cx},${cy} has no valid pixel`).toEqual([false, false, false]);
        else {
          labelled++;
          expectedArea += (Math.min(W, (cx + 1) * CELL) - cx * CELL) * (Math.min(H, (cy + 1) * CELL) - cy * CELL) * 0.36;
          expect(inside, `cell ${cx},${cy} should be scene ${label}`).toEqual([0, 1, 2].map((i) => i === label));
        }
      }
    }
    expect(labelled).toBeGreaterThan(80);
    // Every valid pixel's centre is inside some polygon (complete coverage).
    for (let y = 0; y < H; y += 3) for (let x = 0; x < W; x += 3) {
      if (sourceAt(x, y) === NO_SOURCE) continue;
      const c = toLonLat(x + 0.5, y + 0.5);
      expect(fc.features.some((f) => pointInMultiPolygon(c, f.geometry.coordinates)), `pixel ${x},${y}`).toBe(true);
    }
    // RFC 7946 ring orientation: outer rings counter-clockwise, holes clockwise; the hole cut
    // by the masked disc is kept as a hole of scene 1's polygon.
    let holes = 0;
    for (const f of fc.features)
      for (const poly of f.geometry.coordinates)
        poly.forEach((ring, i) => {
          expect(planarRingAreaSigned(ring) > 0, `${f.properties.scene_id} ring ${i}`).toBe(i === 0);
          if (i > 0) holes++;
        });
    expect(holes).toBeGreaterThan(0);
    // Areas: geodesic area of the polygons vs the labelled cells' planar area (UTM scale error < 0.1 %).
    const area = fc.features.reduce((s, f) => s + f.properties.area_m2, 0);
    expect(Math.abs(area - expectedArea) / expectedArea).toBeLessThan(0.002);
  });
});
