/**
 * StreamingPolygonizer against two independent oracles:
 * - a breadth-first flood fill (4-connectivity, per label) written here: every region covers
 *   exactly the pixel centres of one flood-fill component, ring areas equal pixel counts;
 * - GDAL's `gdal.Polygonize` (4-connected, as `gdal_polygonize` does by default) with OGR/GEOS:
 *   per label the same number of polygons and holes, the same area, a symmetric difference of
 *   zero area, and polygons GEOS calls valid.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { orientRfc7946, planarRingAreaSigned, polygonizeLabels, StreamingPolygonizer, type LabelRun, type MultiPolygonCoords, type PolygonizedRegion } from '../src/index.js';
import { rng } from '../../../test/support/rng.js';
import { GDAL_PYTHON, requireGdal } from '../../../test/support/tools.js';

const ORACLE = fileURLToPath(new URL('./support/polygonize_oracle.py', import.meta.url));

function regionsOf(labels: ArrayLike<number>, w: number, h: number, background: number | null = 0): PolygonizedRegion[] {
  const p = new StreamingPolygonizer({ background });
  const out: PolygonizedRegion[] = [];
  const row: number[] = [];
  for (let y = 0; y < h; y++) {
    row.length = 0;
    for (let x = 0; x < w; x++) row.push(labels[y * w + x]!);
    out.push(...p.addRow(row));
  }
  out.push(...p.finish());
  return out;
}

/** Independent labelling: breadth-first flood fill, 4-connectivity, same label. */
function floodLabels(labels: ArrayLike<number>, w: number, h: number, background: number | null): { comp: Int32Array; count: number } {
  const comp = new Int32Array(w * h).fill(-1);
  let count = 0;
  for (let s = 0; s < w * h; s++) {
    if (labels[s] === background || comp[s]! >= 0) continue;
    const queue = [s];
    comp[s] = count;
    while (queue.length) {
      const k = queue.pop()!;
      const x = k % w;
      const y = (k - x) / w;
      for (const [nx, ny] of [
        [x - 1, y],
        [x + 1, y],
        [x, y - 1],
        [x, y + 1],
      ] as const) {
        if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
        const n = ny * w + nx;
        if (labels[n] === labels[k] && comp[n]! < 0) {
          comp[n] = count;
          queue.push(n);
        }
      }
    }
    count++;
  }
  return { comp, count };
}

/** Even-odd test of a point against all rings of a polygon set. */
function covers(polygons: MultiPolygonCoords, px: number, py: number): boolean {
  let inside = false;
  for (const poly of polygons)
    for (const ring of poly)
      for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        const [xi, yi] = ring[i]!;
        const [xj, yj] = ring[j]!;
        if (yi > py !== yj > py && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) inside = !inside;
      }
  return inside;
}

function checkFlood(labels: ArrayLike<number>, w: number, h: number, background: number | null = 0): void {
  const regions = regionsOf(labels, w, h, background);
  const { comp, count } = floodLabels(labels, w, h, background);
  expect(regions.length).toBe(count);
  const seen = new Set<number>();
  for (const r of regions) {
    let c = -1;
    let n = 0;
    for (let y = r.bbox[1]; y < r.bbox[3]; y++)
      for (let x = r.bbox[0]; x < r.bbox[2]; x++) {
        if (!covers(r.polygons, x + 0.5, y + 0.5)) continue;
        n++;
        const k = y * w + x;
        expect(labels[k]).toBe(r.label);
        if (c < 0) c = comp[k]!;
        expect(comp[k]).toBe(c);
      }
    expect(n).toBe(r.pixels);
    expect(seen.has(c)).toBe(false);
    seen.add(c);
    let expected = 0;
    for (let k = 0; k < w * h; k++) if (comp[k] === c) expected++;
    expect(r.pixels).toBe(expected);
    expect(r.area).toBe(expected);
    // Outer rings positive (clockwise on screen), holes negative; closed; areas sum to the pixels.
    let area = 0;
    for (const poly of r.polygons)
      for (const [i, ring] of poly.entries()) {
        expect(ring[0]).toEqual(ring[ring.length - 1]);
        const a = planarRingAreaSigned(ring);
        expect(i === 0 ? a > 0 : a < 0).toBe(true);
        area += a;
      }
    expect(area).toBe(r.pixels);
  }
}

interface OracleLabel {
  gdal_count: number;
  gdal_area: number;
  gdal_holes: number;
  gdal_valid: boolean;
  ours_valid: boolean;
  ours_area: number;
  ours_count: number;
  ours_holes: number;
  symdiff: number;
}

const dir = mkdtempSync(join(tmpdir(), 'geo-dino-polygonize-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function checkGdal(labels: number[], w: number, h: number, background: number | null): void {
  requireGdal();
  const ours: Record<string, MultiPolygonCoords> = {};
  for (const [l, mp] of polygonizeLabels(labels, w, { background })) ours[String(l)] = mp;
  const file = join(dir, 'case.json');
  writeFileSync(file, JSON.stringify({ width: w, height: h, labels, background, ours }));
  const res = JSON.parse(execFileSync(GDAL_PYTHON, [ORACLE, file], { encoding: 'utf8', timeout: 120_000 }).trim()) as Record<string, OracleLabel>;
  expect(Object.keys(res).sort()).toEqual(Object.keys(ours).sort());
  for (const [l, r] of Object.entries(res)) {
    expect(r.ours_count, `label ${l}: polygons`).toBe(r.gdal_count);
    expect(r.ours_holes, `label ${l}: holes`).toBe(r.gdal_holes);
    expect(r.ours_area, `label ${l}: area`).toBe(r.gdal_area);
    expect(r.symdiff, `label ${l}: symmetric difference`).toBe(0);
    if (r.gdal_valid) expect(r.ours_valid, `label ${l}: GEOS validity`).toBe(true);
  }
}

function randomLabels(seed: number, w: number, h: number, classes: number, blobs: boolean): number[] {
  const r = rng(seed);
  const out: number[] = [];
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      // Blobs: a few classes in coarse patches with noise; otherwise salt and pepper.
      if (blobs && r() < 0.85) out.push((Math.floor(x / 5) * 7 + Math.floor(y / 4) * 3) % classes);
      else out.push(Math.floor(r() * classes));
    }
  return out;
}

const mask = (rows: string[]): number[] => rows.join('').split('').map(Number);

describe('StreamingPolygonizer', () => {
  it('a single pixel is a unit square, clockwise on screen', () => {
    const [r, ...rest] = regionsOf([0, 0, 0, 0, 1, 0, 0, 0, 0], 3, 3);
    expect(rest).toHaveLength(0);
    expect(r!.polygons).toEqual([
      [
        [
          [1, 2],
          [1, 1],
          [2, 1],
          [2, 2],
          [1, 2],
        ],
      ],
    ]);
    expect(r!.bbox).toEqual([1, 1, 2, 2]);
    expect(r!.centroid).toEqual([1.5, 1.5]);
    expect(r!.label).toBe(1);
  });

  it('diagonal neighbours are separate regions (4-connectivity); a frame is one region with a hole', () => {
    expect(regionsOf([1, 0, 0, 1], 2, 2)).toHaveLength(2);
    const m = new Array<number>(25).fill(1);
    m[12] = 0;
    const [c] = regionsOf(m, 5, 5);
    expect(c!.polygons).toHaveLength(1);
    expect(c!.polygons[0]).toHaveLength(2);
    expect(c!.pixels).toBe(24);
    checkFlood(m, 5, 5);
  });

  it('saddles of one region (a diagonal pinch) keep rings consistent', () => {
    checkFlood(mask(['11111', '10001', '10101', '11011', '00000']), 5, 5);
    checkFlood(mask(['0110', '1001', '1001', '0110']), 4, 4);
  });

  it('random binary masks: regions match an independent flood fill', () => {
    const r = rng(42);
    for (let t = 0; t < 60; t++) {
      const w = 5 + Math.floor(r() * 30);
      const h = 5 + Math.floor(r() * 30);
      const density = 0.3 + r() * 0.4;
      const m: number[] = [];
      for (let k = 0; k < w * h; k++) m.push(r() < density ? 1 : 0);
      checkFlood(m, w, h);
    }
  });

  it('random label rasters (regions of different labels touching): flood fill, with and without a background', () => {
    for (let t = 0; t < 30; t++) {
      const w = 6 + ((t * 7) % 29);
      const h = 5 + ((t * 11) % 23);
      const labels = randomLabels(100 + t, w, h, 2 + (t % 4), t % 2 === 0);
      checkFlood(labels, w, h, t % 3 === 0 ? null : 0);
    }
  });

  it('label rasters against GDAL Polygonize (same polygons, holes, areas; zero symmetric difference; GEOS-valid)', () => {
    checkGdal(mask(['11111', '10001', '10101', '11011', '00000']), 5, 5, 0);
    checkGdal([1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 2, 3, 2, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1], 5, 5, null);
    for (let t = 0; t < 8; t++) {
      const w = 20 + t * 9;
      const h = 15 + t * 7;
      checkGdal(randomLabels(7 + t, w, h, 3 + (t % 3), t % 2 === 1), w, h, t % 2 === 0 ? 0 : null);
    }
  });

  it('sums, maxima and areas carried by runs; touching runs of one label are merged', () => {
    const p = new StreamingPolygonizer();
    const rows: LabelRun[][] = [
      [
        { x0: 0, x1: 1, sum: 1, max: 1, area: 0.5 },
        { x0: 1, x1: 2, sum: 2, max: 2, area: 0.5 },
        { x0: 3, x1: 4, label: 2, sum: 9, max: 9 },
      ],
      [{ x0: 1, x1: 2, sum: 8, max: 8, area: 0.25 }],
    ];
    const out = [...p.addRuns(rows[0]!), ...p.addRuns(rows[1]!), ...p.finish()].sort((a, b) => a.label - b.label);
    expect(out.map((r) => [r.label, r.pixels, r.sum, r.max, r.area])).toEqual([
      [1, 3, 11, 8, 1.25],
      [2, 1, 9, 9, 1],
    ]);
    expect(out[0]!.polygons[0]![0]).toHaveLength(7); // an L: six corners
  });

  it('addRow and addRuns agree; runs out of order are refused', () => {
    const labels = randomLabels(3, 40, 30, 4, true);
    const a = regionsOf(labels, 40, 30, 0);
    const p = new StreamingPolygonizer();
    const b: PolygonizedRegion[] = [];
    for (let y = 0; y < 30; y++) {
      // Runs of one pixel each: the polygonizer must merge them.
      const runs: LabelRun[] = [];
      for (let x = 0; x < 40; x++) if (labels[y * 40 + x] !== 0) runs.push({ x0: x, x1: x + 1, label: labels[y * 40 + x]! });
      b.push(...p.addRuns(runs));
    }
    b.push(...p.finish());
    const key = (r: PolygonizedRegion): string => JSON.stringify([r.label, r.bbox, r.pixels, r.polygons]);
    expect(b.map(key).sort()).toEqual(a.map(key).sort());
    expect(() => new StreamingPolygonizer().addRuns([{ x0: 3, x1: 5 }, { x0: 4, x1: 6 }])).toThrow(/sorted and not overlapping/);
  });

  it('memory: completed regions are released as rows go by; a straight side is one edge, not one per row', () => {
    const p = new StreamingPolygonizer();
    let done = 0;
    for (let y = 0; y < 2000; y++) {
      const out = p.addRuns(y % 2 === 0 ? [{ x0: 3, x1: 4 }] : []);
      done += out.length;
      if (y % 2 === 1) expect(out).toHaveLength(1);
      expect(p.openRegions).toBeLessThanOrEqual(1);
    }
    done += p.finish().length;
    expect(done).toBe(1000);
    expect((p as unknown as { parent: Map<number, number> }).parent.size).toBe(0);

    // A 3-pixel-wide strip 5000 rows tall: its open boundary stays at a handful of edges.
    const q = new StreamingPolygonizer();
    const regions = (q as unknown as { regions: Map<number, { edges: unknown[] }> }).regions;
    for (let y = 0; y < 5000; y++) {
      q.addRuns([{ x0: 10, x1: 13 }]);
      expect([...regions.values()][0]!.edges.length).toBeLessThanOrEqual(3);
    }
    const [strip] = q.finish();
    expect(strip!.polygons[0]![0]).toHaveLength(5);
    expect(strip!.pixels).toBe(15000);
  });

  it('orientRfc7946: outer rings counter-clockwise, holes clockwise (y up)', () => {
    const m = new Array<number>(25).fill(1);
    m[12] = 0;
    const [c] = regionsOf(m, 5, 5);
    // Flip y (pixel rows down → northing up) and orient.
    const flipped = c!.polygons.map((p) => p.map((r) => r.map(([x, y]): [number, number] => [x, -y])));
    const o = orientRfc7946(flipped);
    expect(planarRingAreaSigned(o[0]![0]!)).toBeGreaterThan(0);
    expect(planarRingAreaSigned(o[0]![1]!)).toBeLessThan(0);
    const again = orientRfc7946(o);
    expect(again).toEqual(o);
  });
});
