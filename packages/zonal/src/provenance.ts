/**
 * provenance.geojson: which scene (and date) every part of the map came from, looked up by point.
 * Parsing and lookup only; the caller loads the file (size-capped) and caches the index.
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

export interface ProvenanceIndex {
  readonly parts: readonly Part[];
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v.slice(0, 1000) : null;
}

/** The parts of a parsed provenance.geojson (features that are not polygons are ignored). */
export function provenanceIndex(json: unknown): ProvenanceIndex {
  const parts: Part[] = [];
  const features = json && typeof json === 'object' ? (json as { features?: unknown }).features : undefined;
  if (!Array.isArray(features)) return { parts };
  for (const f of features as { geometry?: { type?: string }; properties?: Record<string, unknown> }[]) {
    const g = f?.geometry;
    if (!g || (g.type !== 'Polygon' && g.type !== 'MultiPolygon')) continue;
    try {
      const geometry = toMultiPolygon(g as ArealGeometry);
      const p = f.properties ?? {};
      parts.push({
        geometry,
        bbox: bboxOf(geometry),
        scene: { scene_id: str(p['scene_id']), datetime: str(p['datetime']), href: str(p['href']), collection: str(p['collection']) },
      });
    } catch {
      continue;
    }
  }
  return { parts };
}

/** The scene covering (lon, lat), or null. */
export function sceneIn(index: ProvenanceIndex, lon: number, lat: number): SceneRef | null {
  for (const part of index.parts) {
    const [w, s, e, n] = part.bbox;
    if (lon < w || lon > e || lat < s || lat > n) continue;
    if (pointInMultiPolygon([lon, lat], part.geometry)) return part.scene;
  }
  return null;
}
