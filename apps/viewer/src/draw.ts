/**
 * Drawing an AOI polygon on the map: click to add corners, double-click or Finish to close,
 * Escape to cancel. The polygon is shown as a GeoJSON layer.
 */
import type { GeoJSONSource, Map as MlMap, MapMouseEvent } from 'maplibre-gl';

export interface PolygonGeoJSON {
  type: 'Feature';
  properties: Record<string, unknown>;
  geometry: { type: 'Polygon'; coordinates: [number, number][][] } | { type: 'MultiPolygon'; coordinates: [number, number][][][] };
}

const SOURCE = 'aoi';
type Fc = { type: 'FeatureCollection'; features: unknown[] };

export class PolygonDrawer {
  private points: [number, number][] = [];
  drawing = false;

  constructor(
    private readonly map: MlMap,
    private readonly onFinish: (polygon: PolygonGeoJSON) => void,
    private readonly onChange: (state: { drawing: boolean; points: number }) => void,
  ) {
    map.on('click', (e: MapMouseEvent) => {
      if (!this.drawing) return;
      this.points.push([e.lngLat.lng, e.lngLat.lat]);
      this.render();
    });
    map.on('dblclick', (e: MapMouseEvent) => {
      if (!this.drawing) return;
      e.preventDefault();
      this.finish();
    });
    window.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.drawing) this.cancel();
    });
  }

  private ensureLayers(): void {
    if (this.map.getSource(SOURCE)) return;
    this.map.addSource(SOURCE, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    this.map.addLayer({ id: 'aoi-fill', type: 'fill', source: SOURCE, paint: { 'fill-color': '#ffd54a', 'fill-opacity': 0.15 }, filter: ['==', '$type', 'Polygon'] });
    this.map.addLayer({ id: 'aoi-line', type: 'line', source: SOURCE, paint: { 'line-color': '#ffd54a', 'line-width': 2 } });
    this.map.addLayer({ id: 'aoi-points', type: 'circle', source: SOURCE, paint: { 'circle-radius': 4, 'circle-color': '#ffd54a' }, filter: ['==', '$type', 'Point'] });
  }

  private setData(fc: Fc): void {
    this.ensureLayers();
    (this.map.getSource(SOURCE) as GeoJSONSource).setData(fc as never);
  }

  private render(): void {
    const pts = this.points;
    const features: unknown[] = pts.map((p) => ({ type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: p } }));
    if (pts.length >= 2) features.push({ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: pts } });
    this.setData({ type: 'FeatureCollection', features });
    this.onChange({ drawing: this.drawing, points: pts.length });
  }

  start(): void {
    this.drawing = true;
    this.points = [];
    this.map.doubleClickZoom.disable();
    this.map.getCanvas().style.cursor = 'crosshair';
    this.render();
  }

  finish(): void {
    if (!this.drawing) return;
    // A double-click also fired two clicks on the same spot: drop repeated corners.
    const pts = this.points.filter((p, i, a) => i === 0 || p[0] !== a[i - 1]![0] || p[1] !== a[i - 1]![1]);
    this.stop();
    if (pts.length < 3) {
      this.clear();
      return;
    }
    const polygon: PolygonGeoJSON = { type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [[...pts, pts[0]!]] } };
    this.show(polygon);
    this.onFinish(polygon);
  }

  cancel(): void {
    this.stop();
    this.clear();
  }

  private stop(): void {
    this.drawing = false;
    this.map.getCanvas().style.cursor = '';
    setTimeout(() => this.map.doubleClickZoom.enable(), 0);
    this.onChange({ drawing: false, points: this.points.length });
  }

  /** Show an (uploaded or drawn) polygon. */
  show(polygon: unknown): void {
    const features = (polygon as { type?: string }).type === 'FeatureCollection' ? (polygon as Fc).features : [polygon];
    this.setData({ type: 'FeatureCollection', features });
  }

  clear(): void {
    this.points = [];
    if (this.map.getSource(SOURCE)) this.setData({ type: 'FeatureCollection', features: [] });
  }
}
