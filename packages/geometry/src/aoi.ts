/**
 * Areas of interest: a GeoJSON file (Feature, FeatureCollection, Polygon, MultiPolygon) turned
 * into one validated lon/lat MultiPolygon.
 *
 * - Every problem is reported with the file and the JSON path of the offending value.
 * - Rings must be closed, have ≥ 4 positions, finite coordinates, latitudes in [-90, 90], and no
 *   self-intersections; holes must lie inside their outer ring.
 * - Antimeridian: polygons already split at ±180 (Natural Earth, RFC 7946 §3.1.9) are kept; a
 *   polygon drawn across it (longitudes beyond ±180, or an edge jumping by more than 180°) is
 *   split at ±180. `crossesAntimeridian` and an RFC 7946 bbox (minX > maxX) describe the result.
 * - Overlapping features are merged (union).
 */
import { GeoDinoError } from '@geo-dino/core/errors';
import type { Bbox, MultiPolygonCoords, PolygonCoords, Position, Ring } from './types.js';
import { bboxOf, centroid, geodesicArea, planarRingAreaSigned, pointInMultiPolygon } from './measure.js';
import { bboxPolygon, intersection, union } from './ops.js';

export interface Aoi {
  /** Where it came from (a file path, or a description such as `--bbox`). */
  source: string;
  /** Lon/lat (EPSG:4326), every part within [-180, 180]. */
  geometry: MultiPolygonCoords;
  /** RFC 7946 bbox: when the AOI crosses the antimeridian, minX > maxX. */
  bbox: Bbox;
  crossesAntimeridian: boolean;
  /** Geodesic area, m². */
  areaM2: number;
  /** Antimeridian-safe area-weighted centroid (lon, lat). */
  centroid: Position;
  /** Properties of the first feature, if any. */
  properties: Record<string, unknown>;
}

const EPS = 1e-9;

/**
 * How much work parsing one AOI may do, checked before the work starts and again while it runs,
 * so that no input (a zigzag of 20,000 vertices, polygons nested in collections) can hold a
 * process for long. Exceeding it is an `E_LIMIT` error naming the figures.
 */
export interface GeometryBudget {
  /** Most positions in the whole document, counted at every nesting depth (default 5,000,000). */
  maxVertices?: number;
  /**
   * Most pairs of edges the validity check may compare (default 200,000,000): the edges whose
   * extents overlap along the sweep axis (x or y, whichever gives fewer). Realistic boundaries
   * need a few per edge; a polygon whose every edge overlaps every other is refused.
   */
  maxEdgePairs?: number;
  /** Deepest nesting of Features, collections and GeometryCollections (default 32). */
  maxDepth?: number;
}

export const DEFAULT_GEOMETRY_BUDGET: Required<GeometryBudget> = { maxVertices: 5_000_000, maxEdgePairs: 200_000_000, maxDepth: 32 };

function limit(source: string, what: string, details: Record<string, unknown>): GeoDinoError {
  return new GeoDinoError('E_LIMIT', `${source}: ${what}`, { details: { source, ...details } });
}

/**
 * Positions ([number, number, ...] arrays) anywhere in a parsed JSON document, at every depth,
 * counted without recursion; stops once past `stopAt`.
 */
export function countVertices(json: unknown, stopAt = Infinity): number {
  let n = 0;
  const stack: unknown[] = [json];
  while (stack.length) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      if (v.length >= 2 && typeof v[0] === 'number' && typeof v[1] === 'number') {
        if (++n > stopAt) return n;
        continue;
      }
      for (const x of v) if (typeof x === 'object' && x !== null) stack.push(x);
    } else if (typeof v === 'object' && v !== null) {
      for (const x of Object.values(v as Record<string, unknown>)) if (typeof x === 'object' && x !== null) stack.push(x);
    }
  }
  return n;
}

function bad(source: string, path: string, what: string): GeoDinoError {
  return new GeoDinoError('E_BAD_AOI', `${source}: ${path ? path + ': ' : ''}${what}`, { details: { source, path } });
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fmt(p: Position): string {
  return `[${p[0]}, ${p[1]}]`;
}

function parsePosition(v: unknown, source: string, path: string): Position {
  if (!Array.isArray(v) || v.length < 2) throw bad(source, path, `a position must be an array [lon, lat] (got ${JSON.stringify(v)})`);
  const [x, y] = v as unknown[];
  if (typeof x !== 'number' || typeof y !== 'number' || !Number.isFinite(x) || !Number.isFinite(y)) {
    throw bad(source, path, `coordinates must be finite numbers (got ${JSON.stringify(v)})`);
  }
  if (y < -90 || y > 90) throw bad(source, path, `latitude ${y} is outside [-90, 90] (is the file in EPSG:4326 lon/lat order?)`);
  if (x < -540 || x > 540) throw bad(source, path, `longitude ${x} is outside [-540, 540] (is the file in EPSG:4326 lon/lat order?)`);
  return [x, y];
}

function parseRing(v: unknown, source: string, path: string): Ring {
  if (!Array.isArray(v)) throw bad(source, path, 'a linear ring must be an array of positions');
  const ring = v.map((p, i) => parsePosition(p, source, `${path}[${i}]`));
  if (ring.length < 4) throw bad(source, path, `a linear ring needs at least 4 positions (got ${ring.length})`);
  const a = ring[0]!;
  const b = ring[ring.length - 1]!;
  if (a[0] !== b[0] || a[1] !== b[1]) throw bad(source, path, `ring is not closed: first position ${fmt(a)} differs from last ${fmt(b)}`);
  return ring;
}

function parsePolygon(v: unknown, source: string, path: string): PolygonCoords {
  if (!Array.isArray(v) || v.length === 0) throw bad(source, path, 'a Polygon needs at least one linear ring');
  return v.map((r, i) => parseRing(r, source, `${path}[${i}]`));
}

interface Located {
  poly: PolygonCoords;
  path: string;
}

function collect(json: unknown, source: string, path: string, out: Located[], props: Record<string, unknown>[], depth: number, maxDepth: number): void {
  if (!isObj(json)) throw bad(source, path, 'expected a GeoJSON object');
  if (depth > maxDepth) throw limit(source, `${path || 'the document'}: nested more than ${maxDepth} levels deep`, { maxDepth });
  const type = json['type'];
  switch (type) {
    case 'FeatureCollection': {
      const features = json['features'];
      if (!Array.isArray(features)) throw bad(source, `${path}features`.replace(/^\./, ''), 'must be an array');
      if (features.length === 0) throw bad(source, 'features', 'the FeatureCollection is empty');
      features.forEach((f, i) => collect(f, source, `${path}features[${i}]`, out, props, depth + 1, maxDepth));
      return;
    }
    case 'Feature': {
      const g = json['geometry'];
      if (g === null || g === undefined) throw bad(source, `${path}.geometry`.replace(/^\./, ''), 'the feature has no geometry');
      props.push(isObj(json['properties']) ? json['properties'] : {});
      collect(g, source, `${path}.geometry`.replace(/^\./, ''), out, props, depth + 1, maxDepth);
      return;
    }
    case 'Polygon':
    {
      const p = `${path}.coordinates`.replace(/^\./, '');
      out.push({ poly: parsePolygon(json['coordinates'], source, p), path: p });
      return;
    }
    case 'MultiPolygon': {
      const c = json['coordinates'];
      const p = `${path}.coordinates`.replace(/^\./, '');
      if (!Array.isArray(c) || c.length === 0) throw bad(source, p, 'a MultiPolygon needs at least one polygon');
      c.forEach((poly, i) => out.push({ poly: parsePolygon(poly, source, `${p}[${i}]`), path: `${p}[${i}]` }));
      return;
    }
    case 'GeometryCollection': {
      const gs = json['geometries'];
      if (!Array.isArray(gs)) throw bad(source, `${path}.geometries`.replace(/^\./, ''), 'must be an array');
      gs.forEach((g, i) => collect(g, source, `${path}.geometries[${i}]`.replace(/^\./, ''), out, props, depth + 1, maxDepth));
      return;
    }
    case 'Point':
    case 'MultiPoint':
    case 'LineString':
    case 'MultiLineString':
      throw bad(source, path, `an AOI must be a polygon; got a ${type} (buffer it into a polygon first)`);
    default:
      throw bad(source, path, `not a GeoJSON object (type ${JSON.stringify(type)})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Validity: self-intersections and holes

interface Segment {
  a: Position;
  b: Position;
  ring: number;
  index: number;
  ringLen: number;
  /** Extent along the sweep axis. */
  lo: number;
  hi: number;
}

function orient(a: Position, b: Position, c: Position): number {
  const v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
  return Math.abs(v) < 1e-18 ? 0 : Math.sign(v);
}

/** True when segments ab and cd cross at a point interior to both. */
function properCross(a: Position, b: Position, c: Position, d: Position): boolean {
  const o1 = orient(a, b, c);
  const o2 = orient(a, b, d);
  const o3 = orient(c, d, a);
  const o4 = orient(c, d, b);
  return o1 * o2 < 0 && o3 * o4 < 0;
}

function crossingPoint(a: Position, b: Position, c: Position, d: Position): Position {
  const den = (a[0] - b[0]) * (c[1] - d[1]) - (a[1] - b[1]) * (c[0] - d[0]);
  const t = ((a[0] - c[0]) * (c[1] - d[1]) - (a[1] - c[1]) * (c[0] - d[0])) / den;
  return [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
}

/** Edges sorted along one axis, and how many pairs of them overlap along it. */
interface Sweep {
  segs: Segment[];
  pairs: number;
}

function sweepOn(polys: readonly PolygonCoords[], axis: 0 | 1): Sweep {
  const segs: Segment[] = [];
  for (const poly of polys) {
    poly.forEach((ring, r) => {
      for (let i = 0; i < ring.length - 1; i++) {
        const a = ring[i]!;
        const b = ring[i + 1]!;
        segs.push({ a, b, ring: r, index: i, ringLen: ring.length - 1, lo: Math.min(a[axis], b[axis]), hi: Math.max(a[axis], b[axis]) });
      }
    });
  }
  segs.sort((s, t) => s.lo - t.lo);
  // For each edge, the later edges starting before it ends (binary search): the pairs to compare.
  let pairs = 0;
  for (let i = 0; i < segs.length; i++) {
    const hi = segs[i]!.hi;
    let lo = i + 1;
    let up = segs.length;
    while (lo < up) {
      const mid = (lo + up) >> 1;
      if (segs[mid]!.lo <= hi) lo = mid + 1;
      else up = mid;
    }
    pairs += lo - i - 1;
  }
  return { segs, pairs };
}

/**
 * The sweep (on x or on y, whichever compares fewer pairs of edges) for `polys`; E_LIMIT, before
 * any pair is compared, when even that exceeds `budget.maxEdgePairs`.
 */
function plannedSweep(polys: readonly PolygonCoords[], source: string, path: string, maxEdgePairs: number): Sweep {
  const x = sweepOn(polys, 0);
  if (x.pairs <= maxEdgePairs && x.pairs <= x.segs.length * 4) return x;
  const y = sweepOn(polys, 1);
  const best = y.pairs < x.pairs ? y : x;
  if (best.pairs > maxEdgePairs) {
    throw limit(
      source,
      `${path ? path + ': ' : ''}too complex to check: its ${best.segs.length} edges overlap in ${best.pairs} pairs along both axes, above the limit of ${maxEdgePairs} (simplify the polygon)`,
      { edges: best.segs.length, pairs: best.pairs, maxEdgePairs },
    );
  }
  return best;
}

/** A count of remaining work, shared by every check of one AOI. */
interface Steps {
  left: number;
  max: number;
}

/** Throw E_BAD_AOI at the first crossing between edges of a polygon's rings (sweep on x or y, bounded by `budget`). */
export function assertNoSelfIntersections(poly: PolygonCoords, source: string, path: string, budget: GeometryBudget = {}): void {
  const maxEdgePairs = budget.maxEdgePairs ?? DEFAULT_GEOMETRY_BUDGET.maxEdgePairs;
  checkCrossings(poly, source, path, { left: maxEdgePairs, max: maxEdgePairs });
}

function checkCrossings(poly: PolygonCoords, source: string, path: string, steps: Steps): void {
  const { segs } = plannedSweep([poly], source, path, steps.left);
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    for (let j = i + 1; j < segs.length; j++) {
      const t = segs[j]!;
      if (t.lo > s.hi) break;
      if (--steps.left < 0) throw limit(source, `${path ? path + ': ' : ''}too complex to check: more than ${steps.max} pairs of edges to compare (simplify the polygon)`, { maxEdgePairs: steps.max });
      if (s.ring === t.ring) {
        const d = Math.abs(s.index - t.index);
        if (d <= 1 || d === s.ringLen - 1) continue; // neighbours share a vertex
      }
      if (properCross(s.a, s.b, t.a, t.b)) {
        const p = crossingPoint(s.a, s.b, t.a, t.b);
        const where =
          s.ring === t.ring
            ? `ring ${s.ring} crosses itself (edges ${Math.min(s.index, t.index)} and ${Math.max(s.index, t.index)})`
            : `ring ${Math.min(s.ring, t.ring)} and ring ${Math.max(s.ring, t.ring)} cross`;
        throw bad(source, path, `invalid polygon: ${where} near [${p[0].toFixed(6)}, ${p[1].toFixed(6)}]`);
      }
    }
  }
  const outer = poly[0]!;
  for (let h = 1; h < poly.length; h++) {
    const hole = poly[h]!;
    // A vertex of the hole strictly inside the outer ring (vertices may touch the boundary).
    const inside = hole.slice(0, -1).some((p) => {
      steps.left -= outer.length;
      if (steps.left < 0) throw limit(source, `${path}: too complex to check: more than ${steps.max} steps (simplify the polygon)`, { maxEdgePairs: steps.max });
      return pointInMultiPolygon(p, [[outer]]);
    });
    if (!inside) throw bad(source, `${path}[${h}]`, 'hole lies outside its outer ring');
  }
  if (Math.abs(planarRingAreaSigned(outer)) < EPS * EPS) throw bad(source, `${path}[0]`, 'outer ring has zero area');
}

// ---------------------------------------------------------------------------------------------
// Antimeridian

function wrapDelta(d: number): number {
  if (d > 180) return d - 360;
  if (d < -180) return d + 360;
  return d;
}

function needsUnwrap(poly: PolygonCoords): boolean {
  for (const ring of poly) {
    for (let i = 0; i < ring.length; i++) {
      const p = ring[i]!;
      if (p[0] < -180 || p[0] > 180) return true;
      // An edge longer than 180° is read as crossing ±180 the short way, except an edge from -180
      // to +180 (or back), which can only mean the whole way round (the world box).
      if (i > 0 && Math.abs(p[0] - ring[i - 1]![0]) > 180 && Math.abs(p[0] - ring[i - 1]![0]) !== 360) return true;
    }
  }
  return false;
}

/** Split a polygon drawn across ±180 into parts within [-180, 180]. */
function splitAtAntimeridian(poly: PolygonCoords, source: string, path: string): MultiPolygonCoords {
  const ref = poly[0]![0]![0];
  const unwrapped: PolygonCoords = poly.map((ring, r) => {
    const out: Ring = [];
    let lon = ring[0]![0];
    // Start every ring in the frame of the outer ring's first vertex.
    lon = ref + wrapDelta(lon - ref);
    out.push([lon, ring[0]![1]]);
    for (let i = 1; i < ring.length; i++) {
      lon += wrapDelta(ring[i]![0] - ring[i - 1]![0]);
      out.push([lon, ring[i]![1]]);
    }
    const first = out[0]!;
    const last = out[out.length - 1]!;
    if (Math.abs(last[0] - first[0]) > 1e-9) {
      throw bad(source, `${path}[${r}]`, 'ring encircles a pole (its longitudes wind through 360°); such AOIs are not supported');
    }
    out[out.length - 1] = [first[0], first[1]];
    return out;
  });
  const parts: MultiPolygonCoords = [];
  for (const shift of [-360, 0, 360]) {
    const window = bboxPolygon([-180 - shift, -90, 180 - shift, 90]);
    const clipped = intersection([unwrapped], window);
    for (const p of clipped) parts.push(p.map((ring) => ring.map(([x, y]) => [x + shift, y] as Position)));
  }
  return parts;
}

// ---------------------------------------------------------------------------------------------

/**
 * Build an {@link Aoi} from parsed GeoJSON. `source` names the file in errors. The work is bounded
 * by `budget` (see {@link GeometryBudget}): positions are counted at every depth before anything
 * else, the edge pairs the validity check and the merge will compare are counted before they are
 * compared, and the comparisons are counted while they run.
 */
export function parseAoi(json: unknown, source: string, budget: GeometryBudget = {}): Aoi {
  const b = { ...DEFAULT_GEOMETRY_BUDGET, ...budget };
  const vertices = countVertices(json, b.maxVertices);
  if (vertices > b.maxVertices) throw limit(source, `more than ${b.maxVertices} vertices (the limit)`, { maxVertices: b.maxVertices });
  const located: Located[] = [];
  const props: Record<string, unknown>[] = [];
  collect(json, source, '', located, props, 0, b.maxDepth);
  if (located.length === 0) throw bad(source, '', 'no polygon found');
  // Every edge against every other that overlaps it, across all polygons: bounds the validity
  // checks below and the crossings the merge (union) can meet.
  plannedSweep(
    located.map((l) => l.poly),
    source,
    '',
    b.maxEdgePairs,
  );
  const steps: Steps = { left: b.maxEdgePairs, max: b.maxEdgePairs };
  const parts: MultiPolygonCoords[] = [];
  for (const { poly, path } of located) {
    if (needsUnwrap(poly)) {
      const split = splitAtAntimeridian(poly, source, path);
      for (const p of split) checkCrossings(p, source, path, steps);
      parts.push(split);
    } else {
      checkCrossings(poly, source, path, steps);
      parts.push([poly]);
    }
  }
  let geometry: MultiPolygonCoords;
  try {
    geometry = union(...parts);
  } catch (err) {
    throw bad(source, '', `cannot merge the polygons: ${(err as Error).message}`);
  }
  if (geometry.length === 0) throw bad(source, '', 'the AOI has zero area');
  return finishAoi(geometry, source, props[0] ?? {});
}

function finishAoi(geometry: MultiPolygonCoords, source: string, properties: Record<string, unknown>): Aoi {
  const touchesEast = geometry.some((p) => p[0]!.some(([x]) => Math.abs(x - 180) < 1e-9));
  const touchesWest = geometry.some((p) => p[0]!.some(([x]) => Math.abs(x + 180) < 1e-9));
  const crossesAntimeridian = touchesEast && touchesWest;
  let bbox = bboxOf(geometry);
  if (crossesAntimeridian) {
    // RFC 7946 §5.2: west edge is the smallest longitude of the eastern parts.
    let west = Infinity;
    let east = -Infinity;
    for (const poly of geometry) {
      const b = bboxOf([poly]);
      if (b[0] >= 0) west = Math.min(west, b[0]);
      else east = Math.max(east, b[2]);
    }
    if (Number.isFinite(west) && Number.isFinite(east)) bbox = [west, bbox[1], east, bbox[3]];
  }
  const areaM2 = geodesicArea(geometry);
  if (!(areaM2 > 0)) throw bad(source, '', 'the AOI has zero area');
  return { source, geometry, bbox, crossesAntimeridian, areaM2, centroid: centroid(geometry), properties };
}

/**
 * An AOI from `minLon,minLat,maxLon,maxLat`. minLon > maxLon is read as crossing the antimeridian
 * (RFC 7946) only when the box so read spans less than 180° of longitude; otherwise it is an error
 * (swapped corners are the usual cause).
 */
export function aoiFromBbox(bbox: readonly number[], source = '--bbox'): Aoi {
  if (bbox.length !== 4 || bbox.some((v) => !Number.isFinite(v))) {
    throw bad(source, '', `expected minlon,minlat,maxlon,maxlat (got ${bbox.join(',')})`);
  }
  const [w, s, e, n] = bbox as [number, number, number, number];
  for (const [name, v] of [['minlat', s], ['maxlat', n]] as const) {
    if (v < -90 || v > 90) throw bad(source, '', `${name} ${v} is outside [-90, 90] (order: minlon,minlat,maxlon,maxlat)`);
  }
  for (const [name, v] of [['minlon', w], ['maxlon', e]] as const) {
    if (v < -180 || v > 180) throw bad(source, '', `${name} ${v} is outside [-180, 180] (order: minlon,minlat,maxlon,maxlat)`);
  }
  if (s >= n) throw bad(source, '', `minlat ${s} must be below maxlat ${n}`);
  if (w === e) throw bad(source, '', 'minlon equals maxlon: zero width');
  if (w > e && e + 360 - w >= 180) {
    throw bad(source, '', `minlon ${w} is greater than maxlon ${e} (a box crossing the antimeridian, e.g. 179,-17,-179,-16, spans less than 180°; did you swap the corners?)`);
  }
  const parts: MultiPolygonCoords = w < e ? bboxPolygon([w, s, e, n]) : [...bboxPolygon([w, s, 180, n]), ...bboxPolygon([-180, s, e, n])];
  return finishAoi(parts, source, {});
}
