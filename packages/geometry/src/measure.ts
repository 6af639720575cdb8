/**
 * Measurements on lon/lat geometry: geodesic areas on the WGS84 authalic sphere, bounding boxes,
 * point-in-polygon, and an antimeridian-safe centroid.
 */
import type { Bbox, MultiPolygonCoords, PolygonCoords, Position, Ring } from './types.js';

/** Radius of the sphere with the WGS84 ellipsoid's surface area (authalic radius), metres. */
export const AUTHALIC_RADIUS_M = 6371007.180918475;

const RAD = Math.PI / 180;

// WGS84 ellipsoid.
const WGS84_A = 6378137;
const WGS84_F = 1 / 298.257223563;
const E2 = WGS84_F * (2 - WGS84_F);
const E = Math.sqrt(E2);

function q(sinPhi: number): number {
  return (1 - E2) * (sinPhi / (1 - E2 * sinPhi * sinPhi) - (1 / (2 * E)) * Math.log((1 - E * sinPhi) / (1 + E * sinPhi)));
}
const QP = q(1);

/** sin of the authalic latitude β of geodetic latitude φ (degrees) on WGS84. */
export function sinAuthalic(latDeg: number): number {
  return q(Math.sin(latDeg * RAD)) / QP;
}

/**
 * ∫ sin β dλ along one edge that is straight in lon/lat (RFC 7946 §3.1.1), from λ₁ to λ₁ + dλ with
 * φ going linearly from φ₁ to φ₂. Simpson's rule with steps of at most 0.25° of latitude: exact to
 * ~1e-12 relative, so adding vertices along an edge (as clipping does) does not change the area.
 */
function edgeIntegral(dl: number, p1: number, p2: number): number {
  const dp = p2 - p1;
  if (Math.abs(dp) < 1e-9) return dl * sinAuthalic(p1);
  const n = 2 * Math.max(1, Math.ceil(Math.abs(dp) / 0.5));
  let sum = sinAuthalic(p1) + sinAuthalic(p2);
  for (let k = 1; k < n; k++) sum += (k % 2 === 1 ? 4 : 2) * sinAuthalic(p1 + (dp * k) / n);
  return (dl * sum) / (3 * n);
}

/**
 * Signed area on the WGS84 ellipsoid of a lon/lat ring in m² (positive when counter-clockwise),
 * with edges straight in lon/lat as GeoJSON defines them. Integrates in the cylindrical
 * equal-area frame (x = λ, y = sin β, β the authalic latitude): A = R_q² · ∮ sin β dλ. Handles
 * rings touching ±180.
 */
export function ringAreaSigned(ring: Ring, radius = AUTHALIC_RADIUS_M): number {
  let sum = 0;
  const n = ring.length;
  if (n < 4) return 0;
  for (let i = 0; i < n - 1; i++) {
    const [l1, p1] = ring[i]!;
    const [l2, p2] = ring[i + 1]!;
    let dl = (l2 - l1) * RAD;
    // Edges never span more than 180° of longitude in a valid (split) ring, except an edge from
    // -180 to +180 (the whole way round, as in the world box).
    if (Math.abs(l2 - l1) === 360) {
      /* keep: the full circle */
    } else if (dl > Math.PI) dl -= 2 * Math.PI;
    else if (dl < -Math.PI) dl += 2 * Math.PI;
    sum += edgeIntegral(dl, p1, p2);
  }
  return sum * radius * radius;
}

/** Area of a lon/lat polygon (outer minus holes), m². */
export function polygonArea(poly: PolygonCoords, radius = AUTHALIC_RADIUS_M): number {
  let a = 0;
  poly.forEach((ring, i) => {
    const r = Math.abs(ringAreaSigned(ring, radius));
    a += i === 0 ? r : -r;
  });
  return Math.max(0, a);
}

/** Area of a lon/lat MultiPolygon on the WGS84 ellipsoid, m². */
export function geodesicArea(mp: MultiPolygonCoords, radius = AUTHALIC_RADIUS_M): number {
  return mp.reduce((s, p) => s + polygonArea(p, radius), 0);
}

/** Planar (shoelace) signed area of a ring in its own units². */
export function planarRingAreaSigned(ring: Ring): number {
  let s = 0;
  for (let i = 0; i < ring.length - 1; i++) {
    const a = ring[i]!;
    const b = ring[i + 1]!;
    s += a[0] * b[1] - b[0] * a[1];
  }
  return s / 2;
}

/** Planar area of a MultiPolygon (for projected coordinates, e.g. UTM metres). */
export function planarArea(mp: MultiPolygonCoords): number {
  let a = 0;
  for (const poly of mp) {
    poly.forEach((ring, i) => {
      const r = Math.abs(planarRingAreaSigned(ring));
      a += i === 0 ? r : -r;
    });
  }
  return Math.max(0, a);
}

export function bboxOf(mp: MultiPolygonCoords): Bbox {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const poly of mp)
    for (const ring of poly)
      for (const [x, y] of ring) {
        if (x < minX) minX = x;
        if (y < minY) minY = y;
        if (x > maxX) maxX = x;
        if (y > maxY) maxY = y;
      }
  return [minX, minY, maxX, maxY];
}

function inRing(x: number, y: number, ring: Ring): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i]!;
    const [xj, yj] = ring[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Even-odd point-in-polygon test (holes excluded). Points on an edge may go either way. */
export function pointInMultiPolygon(p: Position, mp: MultiPolygonCoords): boolean {
  for (const poly of mp) {
    const outer = poly[0];
    if (!outer || !inRing(p[0], p[1], outer)) continue;
    let inHole = false;
    for (let h = 1; h < poly.length; h++) if (inRing(p[0], p[1], poly[h]!)) inHole = true;
    if (!inHole) return true;
  }
  return false;
}

/**
 * Area-weighted centroid of a lon/lat MultiPolygon, computed as the mean of 3-D unit vectors of
 * part centroids, so an AOI split at ±180 (Fiji) gets a centroid near 180°, not near 0°.
 */
export function centroid(mp: MultiPolygonCoords): Position {
  let X = 0;
  let Y = 0;
  let Z = 0;
  let wsum = 0;
  for (const poly of mp) {
    const outer = poly[0];
    if (!outer || outer.length < 4) continue;
    // Planar centroid of the part in a longitude frame unwrapped around its first vertex.
    const lon0 = outer[0]![0];
    const unwrap = (l: number): number => {
      let d = l - lon0;
      if (d > 180) d -= 360;
      else if (d < -180) d += 360;
      return lon0 + d;
    };
    let a = 0;
    let cx = 0;
    let cy = 0;
    poly.forEach((ring, ri) => {
      let ra = 0;
      let rx = 0;
      let ry = 0;
      for (let i = 0; i < ring.length - 1; i++) {
        const x1 = unwrap(ring[i]![0]);
        const y1 = ring[i]![1];
        const x2 = unwrap(ring[i + 1]![0]);
        const y2 = ring[i + 1]![1];
        const f = x1 * y2 - x2 * y1;
        ra += f;
        rx += (x1 + x2) * f;
        ry += (y1 + y2) * f;
      }
      // Holes subtract, whatever the winding of each ring.
      const s = ri === 0 ? 1 : -1;
      const absA = Math.abs(ra / 2);
      if (ra !== 0) {
        cx += s * (rx / (3 * ra)) * absA;
        cy += s * (ry / (3 * ra)) * absA;
      }
      a += s * absA;
    });
    if (a <= 0) continue;
    const lon = (cx / a) * RAD;
    const lat = (cy / a) * RAD;
    const w = polygonArea(poly);
    X += w * Math.cos(lat) * Math.cos(lon);
    Y += w * Math.cos(lat) * Math.sin(lon);
    Z += w * Math.sin(lat);
    wsum += w;
  }
  if (wsum === 0) {
    const b = bboxOf(mp);
    return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
  }
  const lon = Math.atan2(Y, X) / RAD;
  const lat = Math.atan2(Z, Math.hypot(X, Y)) / RAD;
  return [lon, lat];
}
