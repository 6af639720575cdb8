/**
 * Polygons in pixel space: which horizontal spans of a band of rows they touch, and which pixel
 * centres they cover (even-odd rule, so holes are excluded). Used for the tile layout (does a
 * tile touch the AOI?) and for AOI masks per tile. Work is per band of rows, so memory does not
 * grow with the AOI's extent, only with its number of vertices.
 */
import type { MultiPolygonCoords } from './types.js';

export interface Edge {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  minY: number;
  maxY: number;
}

export class PolygonRaster {
  /** Edges sorted by minY. */
  private readonly edges: Edge[] = [];
  private readonly maxLen: number;
  readonly minX: number;
  readonly minY: number;
  readonly maxX: number;
  readonly maxY: number;

  constructor(polygons: MultiPolygonCoords) {
    let minX = Infinity;
    let minY = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    let maxLen = 0;
    for (const poly of polygons) {
      for (const ring of poly) {
        for (let i = 0; i + 1 < ring.length; i++) {
          const [x0, y0] = ring[i]!;
          const [x1, y1] = ring[i + 1]!;
          if (y0 === y1 && x0 === x1) continue;
          this.edges.push({ x0, y0, x1, y1, minY: Math.min(y0, y1), maxY: Math.max(y0, y1) });
          maxLen = Math.max(maxLen, Math.abs(y1 - y0));
          minX = Math.min(minX, x0, x1);
          maxX = Math.max(maxX, x0, x1);
          minY = Math.min(minY, y0, y1);
          maxY = Math.max(maxY, y0, y1);
        }
      }
    }
    this.edges.sort((a, b) => a.minY - b.minY);
    this.maxLen = maxLen;
    this.minX = minX;
    this.minY = minY;
    this.maxX = maxX;
    this.maxY = maxY;
  }

  get edgeCount(): number {
    return this.edges.length;
  }

  /** Edges whose y-range meets [y0, y1]. */
  edgesInBand(y0: number, y1: number): Edge[] {
    // Binary search: first edge with minY > y1 ends the scan; edges with minY < y0 - maxLen cannot reach y0.
    const out: Edge[] = [];
    let lo = 0;
    let hi = this.edges.length;
    const start = y0 - this.maxLen;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.edges[mid]!.minY < start) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.edges.length; i++) {
      const e = this.edges[i]!;
      if (e.minY > y1) break;
      if (e.maxY >= y0) out.push(e);
    }
    return out;
  }

  /**
   * The x-intervals (sorted, merged) where the polygons meet the band y0 ≤ y ≤ y1: where an edge
   * passes through the band, or where the band lies inside a polygon.
   */
  spansInBand(y0: number, y1: number, edges = this.edgesInBand(y0, y1)): [number, number][] {
    const iv: [number, number][] = [];
    for (const e of edges) {
      // Clip the edge to the band and take its x-range.
      const dy = e.y1 - e.y0;
      const ta = dy === 0 ? 0 : Math.max(0, Math.min(1, (y0 - e.y0) / dy));
      const tb = dy === 0 ? 1 : Math.max(0, Math.min(1, (y1 - e.y0) / dy));
      const xa = e.x0 + (e.x1 - e.x0) * ta;
      const xb = e.x0 + (e.x1 - e.x0) * tb;
      iv.push([Math.min(xa, xb), Math.max(xa, xb)]);
    }
    // Interior: even-odd crossings along a line inside the band.
    const ym = (y0 + y1) / 2;
    const xs = crossings(edges, ym);
    for (let i = 0; i + 1 < xs.length; i += 2) iv.push([xs[i]!, xs[i + 1]!]);
    iv.sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [];
    for (const s of iv) {
      const last = merged[merged.length - 1];
      if (last && s[0] <= last[1]) last[1] = Math.max(last[1], s[1]);
      else merged.push([s[0], s[1]]);
    }
    return merged;
  }

  /**
   * Rasterise into `out` (width × height, row-major, 1 inside) for the window whose top-left
   * pixel is (x, y): a pixel is inside when its centre is (even-odd rule).
   */
  fill(out: Uint8Array, x: number, y: number, width: number, height: number, edges = this.edgesInBand(y, y + height)): void {
    for (let j = 0; j < height; j++) {
      const yc = y + j + 0.5;
      const xs = crossings(edges, yc);
      const rowOff = j * width;
      for (let i = 0; i + 1 < xs.length; i += 2) {
        // Pixels whose centre x + 0.5 lies in [xs[i], xs[i+1]).
        const a = Math.max(0, Math.ceil(xs[i]! - 0.5 - x));
        const b = Math.min(width, Math.ceil(xs[i + 1]! - 0.5 - x));
        if (b > a) out.fill(1, rowOff + a, rowOff + b);
      }
    }
  }
}

/** Sorted x of the edges crossing the horizontal line y (half-open rule on vertices). */
function crossings(edges: readonly Edge[], y: number): number[] {
  const xs: number[] = [];
  for (const e of edges) {
    if (e.y0 <= y !== e.y1 <= y) xs.push(e.x0 + ((y - e.y0) * (e.x1 - e.x0)) / (e.y1 - e.y0));
  }
  return xs.sort((a, b) => a - b);
}
