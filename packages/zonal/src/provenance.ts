/**
 * provenance.geojson: which scene (and date) every part of the map came from, and the transition
 * zones where two scenes' predictions are blended across a seamline (`transition_zones`, written
 * by chm's scene feathering), looked up by point. Parsing and lookup only; the caller loads the
 * file (size-capped) and caches the index.
 */
import { bboxOf, pointInMultiPolygon, toMultiPolygon, type ArealGeometry, type Bbox, type MultiPolygonCoords } from '@geo-dino/geometry/browser';

export interface SceneRef {
  scene_id: string | null;
  datetime: string | null;
  href: string | null;
  collection: string | null;
}

interface Part {
  bbox: Bbox;
  geometry: MultiPolygonCoords;
  scene: SceneRef;
}

/** The two scenes blended in a transition zone, and the zone's width. */
export interface SceneBlend {
  scene_ids: [string, string];
  width_m: number | null;
}

interface Zone {
  bbox: Bbox;
  geometry: MultiPolygonCoords;
  blend: SceneBlend;
}

export interface ProvenanceIndex {
  readonly parts: readonly Part[];
  readonly zones: readonly Zone[];
}

type FeatureLike = { geometry?: { type?: string }; properties?: Record<string, unknown> };

function areal(g: { type?: string } | undefined): MultiPolygonCoords | null {
  if (!g || (g.type !== 'Polygon' && g.type !== 'MultiPolygon')) return null;
  try {
    return toMultiPolygon(g as ArealGeometry);
  } catch {
    return null;
  }
}

function lookup<T extends { bbox: Bbox; geometry: MultiPolygonCoords }>(list: readonly T[], lon: number, lat: number): T | null {
  for (const x of list) {
    const [w, s, e, n] = x.bbox;
    if (lon < w || lon > e || lat < s || lat > n) continue;
    if (pointInMultiPolygon([lon, lat], x.geometry)) return x;
  }
  return null;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v.slice(0, 1000) : null;
}

/** The parts and transition zones of a parsed provenance.geojson (features that are not polygons are ignored). */
export function provenanceIndex(json: unknown): ProvenanceIndex {
  const parts: Part[] = [];
  const zones: Zone[] = [];
  const doc = json && typeof json === 'object' ? (json as { features?: unknown; transition_zones?: unknown }) : {};
  if (Array.isArray(doc.transition_zones)) {
    for (const f of doc.transition_zones as FeatureLike[]) {
      const geometry = areal(f?.geometry);
      const ids = f?.properties?.['scene_ids'];
      if (!geometry || !Array.isArray(ids) || ids.length !== 2) continue;
      const w = f.properties?.['width_m'];
      zones.push({ geometry, bbox: bboxOf(geometry), blend: { scene_ids: [String(str(ids[0])), String(str(ids[1]))], width_m: typeof w === 'number' ? w : null } });
    }
  }
  if (Array.isArray(doc.features)) {
    for (const f of doc.features as FeatureLike[]) {
      const geometry = areal(f?.geometry);
      if (!geometry) continue;
      const p = f.properties ?? {};
      parts.push({
        geometry,
        bbox: bboxOf(geometry),
        scene: { scene_id: str(p['scene_id']), datetime: str(p['datetime']), href: str(p['href']), collection: str(p['collection']) },
      });
    }
  }
  return { parts, zones };
}

/** The scene covering (lon, lat), or null. */
export function sceneIn(index: ProvenanceIndex, lon: number, lat: number): SceneRef | null {
  return lookup(index.parts, lon, lat)?.scene ?? null;
}

/** The transition zone's blend at (lon, lat) — the two scenes whose predictions are mixed there — or null. */
export function blendIn(index: ProvenanceIndex, lon: number, lat: number): SceneBlend | null {
  return lookup(index.zones, lon, lat)?.blend ?? null;
}
