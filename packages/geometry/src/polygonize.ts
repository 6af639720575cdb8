/**
 * Raster → polygons, streaming: the one routine geo-dino uses to turn a labelled raster into
 * polygons (tiling's scene footprints, chm's provenance, monitor's change polygons).
 *
 * Rows arrive top to bottom, either as a row of labels (`addRow`) or as sorted runs of equal
 * labels (`addRuns`, which may also carry values: sum, maximum, area). A *region* is a
 * 4-connected set of pixels with the same label (as GDAL's `gdal_polygonize` does by default);
 * regions of different labels are separate even where they touch. Runs of consecutive rows with
 * the same label that overlap in x belong to one region (union-find over run labels). Every
 * region keeps its boundary as directed edges with the region on the right: top edges where the
 * pixel above is not in the region, bottom edges, and the left/right ends of its runs (a vertical
 * end is extended while the run keeps its end from row to row, so a straight side is one edge,
 * not one per row). When a row has no run of a region any more, the region is complete and
 * returned at once: its edges are chained into rings (at a vertex where two diagonal pixels of
 * the region meet, the walk turns towards the pixel it goes round, which keeps diagonal
 * neighbours apart, as 4-connectivity says), collinear vertices dropped, rings sorted into outer
 * rings and holes.
 *
 * Memory: the previous row's runs and the boundaries of the regions still open (proportional to
 * their number of corners), never the raster; a completed region is forgotten once returned.
 *
 * Coordinates are pixel corners, x right and y down (pixel (x, y) is the square [x, x+1] ×
 * [y, y+1]); outer rings are clockwise on screen (positive `planarRingAreaSigned` in these
 * coordinates), holes the other way. Map them with `mapPositions` and fix the orientation of
 * lon/lat results with `orientRfc7946`.
 */
import { planarRingAreaSigned, pointInMultiPolygon } from './measure.js';
import { removeCollinearVertices } from './ops.js';
import type { MultiPolygonCoords, PolygonCoords, Position, Ring } from './types.js';

/** A horizontal run of pixels [x0, x1) of one row with the same label. */
export interface LabelRun {
  x0: number;
  x1: number;
  /** The region label (default 1). */
  label?: number;
  /** Sum of values under the run (default 0). */
  sum?: number;
  /** Largest value under the run (default -Infinity). */
  max?: number;
  /** Area of its pixels in any unit, e.g. m² (default: its pixel count). */
  area?: number;
}

/** A completed region: one 4-connected set of pixels of one label. */
export interface PolygonizedRegion {
  label: number;
  pixels: number;
  /** Sum of the runs' `area` (pixel count when the runs carried none). */
  area: number;
  /** Sum and maximum of the values the runs carried (0 and -Infinity when none). */
  sum: number;
  max: number;
  /** Pixel bbox: [minX, minY, maxX, maxY] (max exclusive). */
  bbox: [number, number, number, number];
  /** Mean position of its pixel centres (pixel coordinates). */
  centroid: [number, number];
  /** Polygons: an outer ring then its holes, rings closed (first = last vertex). Usually one. */
  polygons: MultiPolygonCoords;
}

export interface PolygonizerOptions {
  /** Rows are numbered from `startY` (default 0). */
  startY?: number;
  /** The label that is no region (default 0) in `addRow`; `null`: every label is a region. */
  background?: number | null;
}

/** A directed boundary edge: x0, y0, x1, y1 (mutable: vertical ends are extended). */
type Edge = [number, number, number, number];

interface Region {
  label: number;
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
  edges: Edge[];
}

interface OpenRun {
  x0: number;
  x1: number;
  label: number;
  /** Union-find id of the run's region. */
  id: number;
  left: Edge;
  right: Edge;
}

/** Streaming raster → polygons (see the module comment). */
export class StreamingPolygonizer {
  private readonly parent = new Map<number, number>();
  private readonly regions = new Map<number, Region>();
  private prev: OpenRun[] = [];
  private nextId = 1;
  private y: number;
  private readonly background: number | null;
  private finished = false;

  constructor(options: PolygonizerOptions = {}) {
    this.y = options.startY ?? 0;
    this.background = options.background === undefined ? 0 : options.background;
  }

  /** The row the next call adds. */
  get row(): number {
    return this.y;
  }

  /** Regions not complete yet (for memory checks). */
  get openRegions(): number {
    return this.regions.size;
  }

  /** Add the next row as labels (one per pixel; the background label is no region). */
  addRow(labels: ArrayLike<number>): PolygonizedRegion[] {
    const runs: LabelRun[] = [];
    const bg = this.background;
    const n = labels.length;
    let x = 0;
    while (x < n) {
      const l = labels[x]!;
      const x0 = x;
      while (x < n && labels[x] === l) x++;
      if (l !== bg) runs.push({ x0, x1: x, label: l });
    }
    return this.addRuns(runs);
  }

  /**
   * Add the next row as runs, sorted by x0 and not overlapping (touching runs of one label are
   * merged). Returns the regions this row completed.
   */
  addRuns(input: readonly LabelRun[]): PolygonizedRegion[] {
    if (this.finished) throw new Error('StreamingPolygonizer: row added after finish');
    const y = this.y++;
    const runs = normalise(input, y);
    const cur: OpenRun[] = [];
    let j = 0;
    for (const r of runs) {
      const label = r.label ?? 1;
      let id = 0;
      let left: Edge | null = null;
      let right: Edge | null = null;
      // Link to the overlapping runs of the previous row with the same label (two-pointer sweep).
      while (j < this.prev.length && this.prev[j]!.x1 <= r.x0) j++;
      for (let k = j; k < this.prev.length && this.prev[k]!.x0 < r.x1; k++) {
        const p = this.prev[k]!;
        if (p.label !== label) continue;
        id = id === 0 ? this.find(p.id) : this.union(id, p.id);
        // A side that stays at the same x continues the edge above.
        if (p.x0 === r.x0) left = p.left;
        if (p.x1 === r.x1) right = p.right;
      }
      if (id === 0) {
        id = this.nextId++;
        this.parent.set(id, id);
        this.regions.set(id, { label, pixels: 0, area: 0, sum: 0, max: -Infinity, minX: r.x0, minY: y, maxX: r.x1, maxY: y + 1, sx: 0, sy: 0, edges: [] });
      }
      const g = this.regions.get(this.find(id))!;
      const n = r.x1 - r.x0;
      g.pixels += n;
      g.sx += ((r.x0 + r.x1) / 2) * n;
      g.sy += (y + 0.5) * n;
      g.area += r.area ?? n;
      g.sum += r.sum ?? 0;
      g.max = Math.max(g.max, r.max ?? -Infinity);
      g.minX = Math.min(g.minX, r.x0);
      g.maxX = Math.max(g.maxX, r.x1);
      g.maxY = Math.max(g.maxY, y + 1);
      // Left ends go up, right ends go down (the region is on the right of every edge).
      if (left) left[1] = y + 1;
      else g.edges.push((left = [r.x0, y + 1, r.x0, y]));
      if (right) right[3] = y + 1;
      else g.edges.push((right = [r.x1, y, r.x1, y + 1]));
      cur.push({ x0: r.x0, x1: r.x1, label, id, left, right });
    }
    // Edges on the line between the rows: top edges of `cur` where the pixel above is not in the
    // region, bottom edges of `prev` where the pixel below is not.
    this.horizontalEdges(cur, this.prev, y, 1);
    this.horizontalEdges(this.prev, cur, y, -1);
    // Regions of the previous row with no run in this one are complete.
    const open = new Set<number>();
    for (const r of cur) open.add((r.id = this.find(r.id)));
    const done: PolygonizedRegion[] = [];
    const closing = new Set<number>();
    for (const p of this.prev) {
      const root = this.find(p.id);
      if (!open.has(root)) closing.add(root);
    }
    for (const root of closing) {
      done.push(finishRegion(this.regions.get(root)!));
      this.regions.delete(root);
    }
    // Forget ids no run refers to any more.
    for (const [id] of this.parent) if (!open.has(id)) this.parent.delete(id);
    this.prev = cur;
    return done;
  }

  /** No more rows: completes every open region. */
  finish(): PolygonizedRegion[] {
    const done = this.addRuns([]);
    this.finished = true;
    return done;
  }

  private find(id: number): number {
    let r = id;
    for (let p = this.parent.get(r)!; p !== r; p = this.parent.get(r)!) r = p;
    let c = id;
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
    const ga = this.regions.get(ra)!;
    const gb = this.regions.get(rb)!;
    // Keep the region with more edges as the root (cheaper concatenation).
    const [keep, drop, gk, gd] = ga.edges.length >= gb.edges.length ? [ra, rb, ga, gb] : [rb, ra, gb, ga];
    gk.pixels += gd.pixels;
    gk.area += gd.area;
    gk.sum += gd.sum;
    gk.max = Math.max(gk.max, gd.max);
    gk.sx += gd.sx;
    gk.sy += gd.sy;
    gk.minX = Math.min(gk.minX, gd.minX);
    gk.minY = Math.min(gk.minY, gd.minY);
    gk.maxX = Math.max(gk.maxX, gd.maxX);
    gk.maxY = Math.max(gk.maxY, gd.maxY);
    for (const e of gd.edges) gk.edges.push(e);
    this.regions.delete(drop);
    this.parent.set(drop, keep);
    return keep;
  }

  /**
   * Horizontal edges on line y for the parts of `runs` not covered by a run of `other` with the
   * same label. `dir` +1: `runs` is the row below the line (top edges, left to right); -1: the
   * row above (bottom edges, right to left).
   */
  private horizontalEdges(runs: readonly OpenRun[], other: readonly OpenRun[], y: number, dir: 1 | -1): void {
    let k = 0;
    for (const r of runs) {
      const e = this.regions.get(this.find(r.id))!.edges;
      while (k < other.length && other[k]!.x1 <= r.x0) k++;
      let x = r.x0;
      for (let m = k; m < other.length && other[m]!.x0 < r.x1 && x < r.x1; m++) {
        const o = other[m]!;
        if (o.label !== r.label) continue;
        if (o.x0 > x) e.push(horizontal(x, o.x0, y, dir));
        x = Math.max(x, o.x1);
      }
      if (x < r.x1) e.push(horizontal(x, r.x1, y, dir));
    }
  }
}

function horizontal(a: number, b: number, y: number, dir: 1 | -1): Edge {
  return dir === 1 ? [a, y, b, y] : [b, y, a, y];
}

/** Check order, drop empty runs, merge touching runs of one label. */
function normalise(input: readonly LabelRun[], y: number): LabelRun[] {
  const out: LabelRun[] = [];
  let last: LabelRun | null = null;
  for (const r of input) {
    if (!(Number.isInteger(r.x0) && Number.isInteger(r.x1)) || r.x1 < r.x0 || (last && r.x0 < last.x1)) {
      throw new Error(`StreamingPolygonizer: row ${y}: runs must be integer, sorted and not overlapping (got [${r.x0}, ${r.x1}) after [${last?.x0}, ${last?.x1}))`);
    }
    if (r.x1 === r.x0) continue;
    if (last && last.x1 === r.x0 && (last.label ?? 1) === (r.label ?? 1)) {
      const n0 = last.x1 - last.x0;
      const n1 = r.x1 - r.x0;
      last.x1 = r.x1;
      last.sum = (last.sum ?? 0) + (r.sum ?? 0);
      last.max = Math.max(last.max ?? -Infinity, r.max ?? -Infinity);
      last.area = (last.area ?? n0) + (r.area ?? n1);
      continue;
    }
    last = { ...r };
    out.push(last);
  }
  return out;
}

/** Chain a region's edges into rings and group them into polygons. */
function finishRegion(g: Region): PolygonizedRegion {
  const { minX, minY, edges } = g;
  const w = g.maxX - minX + 1;
  const key = (x: number, y: number): number => (y - minY) * w + (x - minX);
  const n = edges.length;
  // Outgoing edges per start vertex (two at a saddle).
  const out = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const k = key(edges[i]![0], edges[i]![1]);
    const l = out.get(k);
    if (l) l.push(i);
    else out.set(k, [i]);
  }
  const used = new Uint8Array(n);
  const rings: Ring[] = [];
  for (let s = 0; s < n; s++) {
    if (used[s]) continue;
    const ring: Ring = [];
    let e = s;
    for (;;) {
      used[e] = 1;
      const [x0, y0, x1, y1] = edges[e]!;
      ring.push([x0, y0]);
      const cands = out.get(key(x1, y1)) ?? [];
      let next: number | undefined;
      if (cands.length === 1) next = cands[0];
      else {
        // Saddle: turn right (towards the pixel being walked round).
        const rx = -Math.sign(y1 - y0);
        const ry = Math.sign(x1 - x0);
        next = cands.find((i) => Math.sign(edges[i]![2] - edges[i]![0]) === rx && Math.sign(edges[i]![3] - edges[i]![1]) === ry) ?? cands.find((i) => !used[i]);
      }
      if (next === undefined) throw new Error('StreamingPolygonizer: open boundary (internal error)');
      if (next === s) break;
      if (used[next]) throw new Error('StreamingPolygonizer: boundary walk revisited an edge (internal error)');
      e = next;
    }
    // A ring through a pinch visits that vertex twice: split it there into simple rings (the
    // part that winds the other way is a hole touching the outer ring at one point, as OGC wants).
    for (const loop of simpleLoops(ring, key)) rings.push([...loop, [loop[0]![0], loop[0]![1]]]);
  }
  const outers: PolygonCoords[] = [];
  const holes: Ring[] = [];
  for (const r of removeCollinearVertices([rings])[0]!) (planarRingAreaSigned(r) > 0 ? outers.push([r]) : holes.push(r));
  for (const h of holes) {
    const owner = outers.length === 1 ? outers[0]! : (outers.find((o) => pointInMultiPolygon(interiorProbe(h), [[o[0]!]])) ?? outers[0]!);
    owner.push(h);
  }
  return {
    label: g.label,
    pixels: g.pixels,
    area: g.area,
    sum: g.sum,
    max: g.max,
    bbox: [g.minX, g.minY, g.maxX, g.maxY],
    centroid: [g.sx / g.pixels, g.sy / g.pixels],
    polygons: outers,
  };
}

/** Split a ring (open: first vertex not repeated) at the vertices it visits more than once. */
function simpleLoops(ring: Ring, key: (x: number, y: number) => number): Ring[] {
  const loops: Ring[] = [];
  const stack: Position[] = [];
  const at = new Map<number, number>();
  for (const p of ring) {
    const k = key(p[0], p[1]);
    const i = at.get(k);
    if (i === undefined) {
      at.set(k, stack.length);
      stack.push(p);
      continue;
    }
    // Close the loop from the earlier visit to here; the vertex stays on the stack.
    const loop = stack.splice(i);
    for (const q of loop.slice(1)) at.delete(key(q[0], q[1]));
    loops.push(loop);
    stack.push(p);
  }
  if (stack.length) loops.push(stack);
  return loops;
}

/** The centre of the region's pixel beside a hole's first edge (inside the hole's outer ring). */
function interiorProbe(hole: Ring): Position {
  const a = hole[0]!;
  const b = hole[1]!;
  const dx = Math.sign(b[0] - a[0]);
  const dy = Math.sign(b[1] - a[1]);
  // The region is on the right of the walk: normal (-dy, dx) in y-down coordinates.
  return [a[0] + dx * 0.5 - dy * 0.5, a[1] + dy * 0.5 + dx * 0.5];
}

/**
 * Polygonise a whole labelled raster held in memory (row-major, `width` per row), grouping the
 * regions by label: label → MultiPolygon in pixel coordinates. For small rasters (a coarse
 * overview, a test); stream larger ones through `StreamingPolygonizer`.
 */
export function polygonizeLabels(labels: ArrayLike<number>, width: number, options: PolygonizerOptions = {}): Map<number, MultiPolygonCoords> {
  const p = new StreamingPolygonizer(options);
  const byLabel = new Map<number, MultiPolygonCoords>();
  const add = (regions: PolygonizedRegion[]): void => {
    for (const r of regions) {
      const list = byLabel.get(r.label);
      if (list) list.push(...r.polygons);
      else byLabel.set(r.label, [...r.polygons]);
    }
  };
  const height = Math.floor(labels.length / width);
  const row = new Float64Array(width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) row[x] = labels[y * width + x]!;
    add(p.addRow(row));
  }
  add(p.finish());
  return byLabel;
}

/**
 * RFC 7946 ring orientation for lon/lat polygons (planar, x east, y north): outer rings
 * counter-clockwise, holes clockwise.
 */
export function orientRfc7946(mp: MultiPolygonCoords): MultiPolygonCoords {
  return mp.map((poly) =>
    poly.map((ring, i) => {
      const ccw = planarRingAreaSigned(ring) > 0;
      return (i === 0) === ccw ? ring : [...ring].reverse();
    }),
  );
}
