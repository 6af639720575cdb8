import { describe, expect, it } from 'vitest';
import { StreamingPolygonizer, signedArea, type MaskComponent, type MaskRun } from '../src/polygonize.js';
import { rng } from '../../../test/support/rng.js';

function runsOf(mask: Uint8Array, w: number, y: number, values?: Float64Array): MaskRun[] {
  const runs: MaskRun[] = [];
  let cur: MaskRun | null = null;
  for (let x = 0; x < w; x++) {
    const k = y * w + x;
    if (mask[k]) {
      const v = values ? values[k]! : 1;
      if (cur) {
        cur.x1++;
        cur.sum += v;
        cur.max = Math.max(cur.max, v);
        cur.area += 1;
      } else {
        cur = { x0: x, x1: x + 1, sum: v, max: v, area: 1 };
        runs.push(cur);
      }
    } else cur = null;
  }
  return runs;
}

function polygonize(mask: Uint8Array, w: number, h: number, values?: Float64Array): MaskComponent[] {
  const p = new StreamingPolygonizer();
  const out: MaskComponent[] = [];
  for (let y = 0; y < h; y++) out.push(...p.addRow(runsOf(mask, w, y, values)));
  out.push(...p.finish());
  return out;
}

/** Independent labelling: breadth-first flood fill, 4-connectivity. */
function floodLabels(mask: Uint8Array, w: number, h: number): { labels: Int32Array; count: number } {
  const labels = new Int32Array(w * h).fill(-1);
  let count = 0;
  for (let s = 0; s < w * h; s++) {
    if (!mask[s] || labels[s]! >= 0) continue;
    const queue = [s];
    labels[s] = count;
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
        if (mask[n] && labels[n]! < 0) {
          labels[n] = count;
          queue.push(n);
        }
      }
    }
    count++;
  }
  return { labels, count };
}

/** Even-odd test of a point against all rings of a polygon set. */
function covers(polygons: [number, number][][][], px: number, py: number): boolean {
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

function check(mask: Uint8Array, w: number, h: number): void {
  const comps = polygonize(mask, w, h);
  const { labels, count } = floodLabels(mask, w, h);
  expect(comps.length).toBe(count);
  // Each component's polygons cover exactly the pixel centres of one flood-fill component.
  const seen = new Set<number>();
  for (const c of comps) {
    let label = -1;
    let n = 0;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        if (!covers(c.polygons, x + 0.5, y + 0.5)) continue;
        n++;
        const l = labels[y * w + x]!;
        expect(l).toBeGreaterThanOrEqual(0);
        if (label < 0) label = l;
        expect(l).toBe(label);
      }
    expect(n).toBe(c.pixels);
    expect(seen.has(label)).toBe(false);
    seen.add(label);
    let expected = 0;
    for (let k = 0; k < w * h; k++) if (labels[k] === label) expected++;
    expect(c.pixels).toBe(expected);
    // Ring areas: outer (positive) minus holes equals the pixel count; rings are closed.
    let area = 0;
    for (const poly of c.polygons) {
      for (const [i, ring] of poly.entries()) {
        expect(ring[0]).toEqual(ring[ring.length - 1]);
        const a = signedArea(ring.slice(0, -1));
        expect(i === 0 ? a > 0 : a < 0).toBe(true);
        area += a;
      }
    }
    expect(area).toBe(c.pixels);
  }
}

describe('StreamingPolygonizer', () => {
  it('a single pixel is a unit square', () => {
    const comps = polygonize(Uint8Array.from([0, 0, 0, 0, 1, 0, 0, 0, 0]), 3, 3);
    expect(comps).toHaveLength(1);
    expect(comps[0]!.polygons).toHaveLength(1);
    expect(comps[0]!.polygons[0]).toHaveLength(1);
    const ring = comps[0]!.polygons[0]![0]!;
    expect(new Set(ring.slice(0, -1).map((p) => p.join(',')))).toEqual(new Set(['1,1', '2,1', '2,2', '1,2']));
    expect(comps[0]!.bbox).toEqual([1, 1, 2, 2]);
    expect(comps[0]!.centroid).toEqual([1.5, 1.5]);
  });

  it('diagonal neighbours are separate components (4-connectivity), a ring with a hole is one', () => {
    // Checkerboard 2×2: two components.
    expect(polygonize(Uint8Array.from([1, 0, 0, 1]), 2, 2)).toHaveLength(2);
    // A 5×5 frame around one empty pixel, plus a pixel touching it diagonally inside the hole.
    const w = 5;
    const m = new Uint8Array(25).fill(1);
    m[2 * w + 2] = 0;
    const [c] = polygonize(m, 5, 5);
    expect(c!.polygons).toHaveLength(1);
    expect(c!.polygons[0]).toHaveLength(2);
    expect(c!.pixels).toBe(24);
    check(m, 5, 5);
  });

  it('saddle vertices of one component (a diagonal pinch) keep rings consistent', () => {
    // A U-shape closed by two pixels that touch only diagonally: the hole's ring pinches.
    const rows = ['11111', '10001', '10101', '11011', '00000'];
    const m = Uint8Array.from(rows.join('').split('').map(Number));
    check(m, 5, 5);
  });

  it('random masks: components and polygons match an independent flood fill', () => {
    const r = rng(42);
    for (let t = 0; t < 60; t++) {
      const w = 5 + Math.floor(r() * 30);
      const h = 5 + Math.floor(r() * 30);
      const density = 0.3 + r() * 0.4;
      const m = new Uint8Array(w * h);
      for (let k = 0; k < m.length; k++) m[k] = r() < density ? 1 : 0;
      check(m, w, h);
    }
  });

  it('sums, maxima and areas of the values under each component', () => {
    const w = 6;
    const m = Uint8Array.from([1, 1, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0]);
    const v = Float64Array.from(m, (b, k) => (b ? k + 1 : 0));
    const comps = polygonize(m, w, 3, v).sort((a, b) => a.bbox[0] - b.bbox[0]);
    expect(comps.map((c) => [c.pixels, c.sum, c.max])).toEqual([
      [3, 1 + 2 + 8, 8],
      [3, 10 + 11 + 17, 17],
    ]);
  });

  it('memory: completed components are released as rows go by', () => {
    // 2000 rows of isolated 1-pixel components every other row: each completes one row later.
    const p = new StreamingPolygonizer();
    let done = 0;
    for (let y = 0; y < 2000; y++) {
      const runs: MaskRun[] = y % 2 === 0 ? [{ x0: 3, x1: 4, sum: 1, max: 1, area: 1 }] : [];
      const out = p.addRow(runs);
      done += out.length;
      if (y % 2 === 1) expect(out).toHaveLength(1);
    }
    done += p.finish().length;
    expect(done).toBe(1000);
    expect((p as unknown as { parent: Map<number, number> }).parent.size).toBe(0);
  });
});
