/** GeoJSON coordinate types (RFC 7946), as plain arrays. */
export type Position = [number, number];
/** A closed ring: first position equals the last. */
export type Ring = Position[];
/** Outer ring first, then holes. */
export type PolygonCoords = Ring[];
export type MultiPolygonCoords = PolygonCoords[];
/** [minX, minY, maxX, maxY]. */
export type Bbox = [number, number, number, number];

export interface PolygonGeometry {
  type: 'Polygon';
  coordinates: PolygonCoords;
}
export interface MultiPolygonGeometry {
  type: 'MultiPolygon';
  coordinates: MultiPolygonCoords;
}
export type ArealGeometry = PolygonGeometry | MultiPolygonGeometry;

export interface Feature<G = ArealGeometry, P = Record<string, unknown>> {
  type: 'Feature';
  geometry: G;
  properties: P;
  id?: string | number;
  bbox?: number[];
}

export interface FeatureCollection<G = ArealGeometry, P = Record<string, unknown>> {
  type: 'FeatureCollection';
  features: Feature<G, P>[];
}

/** Coerce a Polygon or MultiPolygon geometry to MultiPolygon coordinates. */
export function toMultiPolygon(g: ArealGeometry): MultiPolygonCoords {
  return g.type === 'Polygon' ? [g.coordinates] : g.coordinates;
}
