/**
 * A run's layers on a map: imagery through the PMTiles protocol, value and class layers through
 * the `gdv` protocol (coloured in the browser).
 */
import type { Map as MlMap, RasterTileSource } from 'maplibre-gl';
import type { LayerInfo, RunInfo } from '@geo-dino/server/api-types';
import { registerValueLayer, type ValueStyle } from './values.js';
import { isValueEncoding } from '@geo-dino/pmtiles/encoding';

export type LayerId = 'imagery' | 'landcover' | 'uncertainty' | 'height';
export const LAYER_ORDER: readonly LayerId[] = ['imagery', 'landcover', 'uncertainty', 'height'];
export const LAYER_LABEL: Record<LayerId, string> = {
  imagery: 'Imagery',
  landcover: 'Land cover',
  uncertainty: 'Uncertainty',
  height: 'Canopy height',
};

export interface LayerSettings {
  visible: boolean;
  opacity: number;
}

export function layerOf(run: RunInfo, id: LayerId): LayerInfo | undefined {
  return run.layers.find((l) => (l.layer ?? l.id) === id);
}

let revision = 0;

function valueUrl(key: string): string {
  return `gdv://${encodeURIComponent(key)}/{z}/{x}/{y}?r=${revision}`;
}

/** Add (or replace) the run's layers on `map`, with ids prefixed by `prefix`. */
export function showRun(
  map: MlMap,
  prefix: string,
  run: RunInfo,
  settings: Record<LayerId, LayerSettings>,
  styles: { height: () => ValueStyle; uncertainty: () => ValueStyle },
): void {
  removeRun(map, prefix);
  for (const id of LAYER_ORDER) {
    const info = layerOf(run, id);
    if (!info) continue;
    const sourceId = `${prefix}-${id}`;
    // Absolute (/data/… from the server) or relative to the page (data/… in a published site).
    const url = new URL(info.url, document.baseURI).href;
    const s = settings[id];
    const common = { minzoom: info.minzoom, maxzoom: info.maxzoom, bounds: info.bounds, tileSize: 256, attribution: info.attribution ?? '' };
    if (id === 'imagery' || !info.geoDino || info.geoDino.encoding.type === 'rgb') {
      map.addSource(sourceId, { type: 'raster', url: `pmtiles://${url}`, tileSize: 256 });
    } else {
      const key = `${prefix}:${run.id}:${id}`;
      registerValueLayer(key, {
        archive: url,
        minzoom: info.minzoom,
        maxzoom: info.maxzoom,
        encoding: info.geoDino.encoding,
        ...(info.geoDino.classes ? { classes: info.geoDino.classes } : {}),
        ...(id === 'height' ? { style: styles.height } : id === 'uncertainty' ? { style: styles.uncertainty } : {}),
      });
      map.addSource(sourceId, { type: 'raster', tiles: [valueUrl(key)], ...common });
    }
    map.addLayer({
      id: sourceId,
      type: 'raster',
      source: sourceId,
      layout: { visibility: s.visible ? 'visible' : 'none' },
      paint: {
        'raster-opacity': s.opacity,
        // Value layers: show pixels as they are when zoomed past the finest level.
        'raster-resampling': id === 'imagery' ? 'linear' : 'nearest',
        'raster-fade-duration': 0,
      },
    });
  }
}

export function removeRun(map: MlMap, prefix: string): void {
  for (const id of LAYER_ORDER) {
    const sid = `${prefix}-${id}`;
    if (map.getLayer(sid)) map.removeLayer(sid);
    if (map.getSource(sid)) map.removeSource(sid);
  }
}

export function applySettings(map: MlMap, prefix: string, settings: Record<LayerId, LayerSettings>): void {
  for (const id of LAYER_ORDER) {
    const sid = `${prefix}-${id}`;
    if (!map.getLayer(sid)) continue;
    map.setLayoutProperty(sid, 'visibility', settings[id].visible ? 'visible' : 'none');
    map.setPaintProperty(sid, 'raster-opacity', settings[id].opacity);
  }
}

/** Re-colour value layers (after a ramp change): new tile URLs, decoded values come from cache. */
export function recolour(map: MlMap, prefix: string, run: RunInfo, ids: LayerId[]): void {
  revision++;
  for (const id of ids) {
    const src = map.getSource(`${prefix}-${id}`) as RasterTileSource | undefined;
    if (src && isValueEncoding(layerOf(run, id)?.geoDino?.encoding)) src.setTiles([valueUrl(`${prefix}:${run.id}:${id}`)]);
  }
}
