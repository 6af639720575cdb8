/**
 * Polygon boolean operations (planar, in whatever coordinates they are given) and coordinate
 * transforms. Wraps the `polygon-clipping` library (Martinez-Rueda sweep line).
 */
import polygonClipping from 'polygon-clipping';
import type { Bbox, MultiPolygonCoords, Position } from './types.js';

type PcGeom = Parameters<typeof polygonClipping.union>[0];

function asPc(mp: MultiPolygonCoords): PcGeom {
  return mp as unknown as PcGeom;
}

function fromPc(r: ReturnType<typeof polygonClipping.union>): MultiPolygonCoords {
  return r as unknown as MultiPolygonCoords;
}

export function union(...parts: MultiPolygonCoords[]): MultiPolygonCoords {
  const nonEmpty = parts.filter((p) => p.length > 0);
  if (nonEmpty.length === 0) return [];
  if (nonEmpty.length === 1) return fromPc(polygonClipping.union(asPc(nonEmpty[0]!)));
  return fromPc(polygonClipping.union(asPc(nonEmpty[0]!), ...nonEmpty.slice(1).map(asPc)));
}

export function intersection(a: MultiPolygonCoords, b: MultiPolygonCoords): MultiPolygonCoords {
  if (a.length === 0 || b.length === 0) return [];
  return fromPc(polygonClipping.intersection(asPc(a), asPc(b)));
}

export function difference(a: MultiPolygonCoords, ...subtract: MultiPolygonCoords[]): MultiPolygonCoords {
  if (a.length === 0) return [];
  const s = subtract.filter((p) => p.length > 0);
  if (s.length === 0) return a;
  return fromPc(polygonClipping.difference(asPc(a), ...s.map(asPc)));
}

/** A rectangle as a MultiPolygon (counter-clockwise). */
export function bboxPolygon(b: Bbox): MultiPolygonCoords {
  const [x0, y0, x1, y1] = b;
  return [
    [
      [
        [x0, y0],
        [x1, y0],
        [x1, y1],
        [x0, y1],
        [x0, y0],
      ],
    ],
  ];
}

export function bboxIntersects(a: Bbox, b: Bbox): boolean {
  return a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];
}

/** Apply `fn` to every position (e.g. a proj4 forward transform). */
export function mapPositions(mp: MultiPolygonCoords, fn: (p: Position) => Position): MultiPolygonCoords {
  return mp.map((poly) => poly.map((ring) => ring.map((p) => fn(p))));
}

/**
 * Insert points along every edge so that no edge is longer than `maxStep` (in input units).
 * Needed before projecting: straight lon/lat edges are curves in UTM and vice versa.
 */
export function densify(mp: MultiPolygonCoords, maxStep: number): MultiPolygonCoords {
  return mp.map((poly) =>
    poly.map((ring) => {
      const out: Position[] = [];
      for (let i = 0; i < ring.length - 1; i++) {
        const a = ring[i]!;
        const b = ring[i + 1]!;
        const n = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / maxStep));
        for (let k = 0; k < n; k++) out.push([a[0] + ((b[0] - a[0]) * k) / n, a[1] + ((b[1] - a[1]) * k) / n]);
      }
      const last = ring[ring.length - 1];
      if (last) out.push([last[0], last[1]]);
      return out;
    }),
  );
}

/**
 * Remove vertices in the middle of straight runs (exactly collinear with their neighbours), as a
 * union of pixel rectangles or a staircase outline has many. Rings that would fall below three
 * vertices are kept as they are.
 */
export function removeCollinearVertices(mp: MultiPolygonCoords): MultiPolygonCoords {
  return mp.map((poly) =>
    poly.map((ring) => {
      const pts = ring.slice(0, -1);
      const out: Position[] = [];
      for (let i = 0; i < pts.length; i++) {
        const a = pts[(i - 1 + pts.length) % pts.length]!;
        const b = pts[i]!;
        const c = pts[(i + 1) % pts.length]!;
        const cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
        if (cross !== 0) out.push(b);
      }
      if (out.length < 3) return ring;
      out.push(out[0]!);
      return out;
    }),
  );
}
