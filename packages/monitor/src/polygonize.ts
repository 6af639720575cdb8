/**
 * Streaming polygonisation of a binary mask: connected components (4-connectivity, as GDAL's
 * `gdal_polygonize` does by default) found row by row, each turned into polygons with holes as
 * soon as it is complete.
 *
 * Rows arrive top to bottom as sorted runs of set pixels (each with the sum, maximum and area of
 * the values under it). Runs of consecutive rows that overlap in x belong to one component
 * (union-find over run labels). Every component keeps its boundary as directed unit edges with
 * the foreground on the right: top edges where a pixel's upper neighbour is unset, bottom edges,
 * and the left/right ends of its runs. When a row has no run of a component any more, the
 * component is complete: its edges are chained into rings (at a vertex where two diagonal pixels
 * meet, the walk turns towards the pixel it is going round, which keeps diagonal neighbours
 * apart, as 4-connectivity says), collinear vertices dropped, rings sorted into outer rings and
 * holes. Memory holds the previous row's runs and the open components' boundaries: it grows
 * with the amount of change, not with the raster.
 */

/** A horizontal run of set pixels [x0, x1) in one row, with what was measured under it. */
export interface MaskRun {
  x0: number;
  x1: number;
  /** Sum of the values of its pixels. */
  sum: number;
  /** Largest value. */
  max: number;
  /** Area of its pixels (m²). */
  area: number;
}

/** A finished connected component. Coordinates are pixel corners (x right, y down). */
export interface MaskComponent {
  pixels: number;
  area: number;
  sum: number;
  max: number;
  /** Pixel bbox: [minX, minY, maxX, maxY] (max exclusive). */
  bbox: [number, number, number, number];
  /** Mean position of its pixel centres (pixel coordinates). */
  centroid: [number, number];
  /** Polygons: an outer ring then its holes, rings closed (first = last vertex). */
  polygons: [number, number][][][];
}

interface Comp {
  pixels: number;
  area: number;
  sum: number;
  max: number;
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  /** Sums of pixel-centre coordinates, for the centroid. */
  sx: number;
  sy: number;
  /** Directed edges, 4 numbers each: x0, y0, x1, y1. */
  edges: number[];
}

interface LabelledRun extends MaskRun {
  label: number;
}

export class StreamingPolygonizer {
  private parent = new Map<number, number>();
  private comps = new Map<number, Comp>();
  private prev: LabelledRun[] = [];
  private nextLabel = 1;
  private y = 0;
  private finished = false;

  /** Rows are numbered from `startY` (default 0). */
  constructor(startY = 0) {
    this.y = startY;
  }

  private find(l: number): number {
    let r = l;
    for (let p = this.parent.get(r)!; p !== r; p = this.parent.get(r)!) r = p;
    // Path compression.
    let c = l;
    while (c !== r) {
      const p = this.parent.get(c)!;
      this.parent.set(c, r);
      c = p;
    }
    return r;
  }

  private union(a: number, b: number): number {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return ra;
    const ca = this.comps.get(ra)!;
    const cb = this.comps.get(rb)!;
    // Keep the component with more edges as the root (cheaper concatenation).
    const [keep, drop, ck, cd] = ca.edges.length >= cb.edges.length ? [ra, rb, ca, cb] : [rb, ra, cb, ca];
    ck.pixels += cd.pixels;
    ck.area += cd.area;
    ck.sum += cd.sum;
    ck.max = Math.max(ck.max, cd.max);
    ck.sx += cd.sx;
    ck.sy += cd.sy;
    ck.minX = Math.min(ck.minX, cd.minX);
    ck.minY = Math.min(ck.minY, cd.minY);
    ck.maxX = Math.max(ck.maxX, cd.maxX);
    ck.maxY = Math.max(ck.maxY, cd.maxY);
    for (let i = 0; i < cd.edges.length; i++) ck.edges.push(cd.edges[i]!);
    this.comps.delete(drop);
    this.parent.set(drop, keep);
    return keep;
  }

  /**
   * Add the next row's runs (sorted by x0, not overlapping, not touching). Returns the
   * components that this row completed.
   */
  addRow(runs: readonly MaskRun[]): MaskComponent[] {
    if (this.finished) throw new Error('StreamingPolygonizer: addRow after finish');
    const y = this.y++;
    const cur: LabelledRun[] = runs.map((r) => ({ ...r, label: 0 }));
    // Link each run to the overlapping runs of the previous row (two-pointer sweep).
    let j = 0;
    for (const r of cur) {
      while (j < this.prev.length && this.prev[j]!.x1 <= r.x0) j++;
      for (let k = j; k < this.prev.length && this.prev[k]!.x0 < r.x1; k++) {
        const p = this.prev[k]!;
        r.label = r.label === 0 ? this.find(p.label) : this.union(r.label, p.label);
      }
      if (r.label === 0) {
        const l = this.nextLabel++;
        this.parent.set(l, l);
        this.comps.set(l, { pixels: 0, area: 0, sum: 0, max: -Infinity, minX: r.x0, minY: y, maxX: r.x1, maxY: y + 1, sx: 0, sy: 0, edges: [] });
        r.label = l;
      }
      const c = this.comps.get(this.find(r.label))!;
      const n = r.x1 - r.x0;
      c.pixels += n;
      c.sx += ((r.x0 + r.x1) / 2) * n;
      c.sy += (y + 0.5) * n;
      c.area += r.area;
      c.sum += r.sum;
      c.max = Math.max(c.max, r.max);
      c.minX = Math.min(c.minX, r.x0);
      c.maxX = Math.max(c.maxX, r.x1);
      c.maxY = Math.max(c.maxY, y + 1);
    }
    // Edges on the line between the rows: top edges of `cur` where `prev` is unset, bottom
    // edges of `prev` where `cur` is unset.
    this.boundaryEdges(cur, this.prev, y, +1);
    this.boundaryEdges(this.prev, cur, y, -1);
    // Left (upwards) and right (downwards) ends of each run.
    for (const r of cur) {
      const e = this.comps.get(this.find(r.label))!.edges;
      e.push(r.x0, y + 1, r.x0, y, r.x1, y, r.x1, y + 1);
    }
    // Components of the previous row with no run in this one are complete.
    const open = new Set<number>();
    for (const r of cur) {
      r.label = this.find(r.label);
      open.add(r.label);
    }
    const done: MaskComponent[] = [];
    const closing = new Set<number>();
    for (const p of this.prev) {
      const root = this.find(p.label);
      if (!open.has(root)) closing.add(root);
    }
    for (const root of closing) {
      const c = this.comps.get(root)!;
      this.comps.delete(root);
      done.push(finishComponent(c));
    }
    // Forget labels no run refers to any more.
    for (const [l] of this.parent) if (!open.has(l)) this.parent.delete(l);
    this.prev = cur;
    return done;
  }

  /** No more rows: completes every open component. */
  finish(): MaskComponent[] {
    const done = this.addRow([]);
    this.finished = true;
    return done;
  }

  /**
   * Horizontal edges on line y for the parts of `runs` not covered by `other`. `dir` +1: `runs`
   * is the row below the line (top edges, left to right); -1: the row above (bottom edges,
   * right to left).
   */
  private boundaryEdges(runs: readonly LabelledRun[], other: readonly LabelledRun[], y: number, dir: 1 | -1): void {
    let k = 0;
    for (const r of runs) {
      const e = this.comps.get(this.find(r.label))!.edges;
      let x = r.x0;
      while (k < other.length && other[k]!.x1 <= x) k++;
      let m = k;
      while (x < r.x1) {
        const o = other[m];
        if (!o || o.x0 >= r.x1) {
          pushH(e, x, r.x1, y, dir);
          break;
        }
        if (o.x0 > x) pushH(e, x, o.x0, y, dir);
        x = Math.max(x, o.x1);
        m++;
      }
    }
  }
}

function pushH(e: number[], a: number, b: number, y: number, dir: 1 | -1): void {
  if (dir === 1) e.push(a, y, b, y);
  else e.push(b, y, a, y);
}

/** Chain a component's edges into rings and group them into polygons. */
function finishComponent(c: Comp): MaskComponent {
  const { minX, minY } = c;
  const w = c.maxX - minX + 1;
  const key = (x: number, y: number): number => (y - minY) * w + (x - minX);
  const n = c.edges.length / 4;
  // Outgoing edges per start vertex (at most two: a saddle).
  const out = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const k = key(c.edges[4 * i]!, c.edges[4 * i + 1]!);
    const l = out.get(k);
    if (l) l.push(i);
    else out.set(k, [i]);
  }
  const used = new Uint8Array(n);
  const rings: [number, number][][] = [];
  for (let s = 0; s < n; s++) {
    if (used[s]) continue;
    const ring: [number, number][] = [];
    let e = s;
    for (;;) {
      used[e] = 1;
      const x0 = c.edges[4 * e]!;
      const y0 = c.edges[4 * e + 1]!;
      const x1 = c.edges[4 * e + 2]!;
      const y1 = c.edges[4 * e + 3]!;
      const dx = Math.sign(x1 - x0);
      const dy = Math.sign(y1 - y0);
      ring.push([x0, y0]);
      const cands = out.get(key(x1, y1)) ?? [];
      let next: number | undefined;
      if (cands.length === 1) next = cands[0];
      else {
        // Saddle: take the right turn (towards the pixel being walked round).
        const rx = -dy;
        const ry = dx;
        next = cands.find((i) => Math.sign(c.edges[4 * i + 2]! - c.edges[4 * i]!) === rx && Math.sign(c.edges[4 * i + 3]! - c.edges[4 * i + 1]!) === ry) ?? cands.find((i) => !used[i]);
      }
      if (next === undefined) throw new Error('StreamingPolygonizer: open boundary (internal error)');
      if (next === s) break;
      if (used[next]) throw new Error('StreamingPolygonizer: boundary walk revisited an edge (internal error)');
      e = next;
    }
    rings.push(dropCollinear(ring));
  }
  // Outer rings have positive signed area here (clockwise on screen, foreground on the right).
  const outers: { ring: [number, number][]; holes: [number, number][][] }[] = [];
  const holes: [number, number][][] = [];
  for (const r of rings) (signedArea(r) > 0 ? outers.push({ ring: r, holes: [] }) : holes.push(r));
  for (const h of holes) {
    const owner = outers.length === 1 ? outers[0]! : outers.find((o) => pointInRing(interiorProbe(h), o.ring)) ?? outers[0]!;
    owner.holes.push(h);
  }
  const close = (r: [number, number][]): [number, number][] => [...r, [r[0]![0], r[0]![1]]];
  return {
    pixels: c.pixels,
    area: c.area,
    sum: c.sum,
    max: c.max,
    bbox: [c.minX, c.minY, c.maxX, c.maxY],
    centroid: [c.sx / c.pixels, c.sy / c.pixels],
    polygons: outers.map((o) => [close(o.ring), ...o.holes.map(close)]),
  };
}

function dropCollinear(ring: [number, number][]): [number, number][] {
  const n = ring.length;
  const out: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const a = ring[(i + n - 1) % n]!;
    const b = ring[i]!;
    const c = ring[(i + 1) % n]!;
    const cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
    if (cross !== 0) out.push(b);
  }
  return out;
}

/** Shoelace signed area in pixel coordinates (positive: clockwise on screen, y down). */
export function signedArea(ring: readonly (readonly [number, number])[]): number {
  let s = 0;
  for (let i = 0, n = ring.length; i < n; i++) {
    const a = ring[i]!;
    const b = ring[(i + 1) % n]!;
    s += a[0] * b[1] - b[0] * a[1];
  }
  return s / 2;
}

/** The centre of the foreground pixel beside a hole's first edge (inside its outer ring). */
function interiorProbe(hole: [number, number][]): [number, number] {
  const a = hole[0]!;
  const b = hole[1]!;
  const dx = Math.sign(b[0] - a[0]);
  const dy = Math.sign(b[1] - a[1]);
  // Foreground is on the right of the walk: normal (-dy, dx) in y-down coordinates.
  return [a[0] + dx * 0.5 - dy * 0.5, a[1] + dy * 0.5 + dx * 0.5];
}

function pointInRing(p: [number, number], ring: [number, number][]): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i]!;
    const [xj, yj] = ring[j]!;
    if (yi > p[1] !== yj > p[1] && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
