/**
 * Chosen scenes as a STAC ItemCollection (`geo-dino stac search --format itemcollection`): the
 * items as the source served them, with relative asset and link hrefs made absolute so the
 * collection still works once piped elsewhere (stac tools, geopandas, STAC Browser).
 */
import type { Scene } from './select.js';
import { resolveHref } from './href.js';
import type { StacItem, StacLink } from './types.js';

export interface StacItemCollectionDocument {
  type: 'FeatureCollection';
  features: StacItem[];
  links: StacLink[];
  numberReturned: number;
  [key: string]: unknown;
}

/** One item, its relative hrefs resolved against where it was read (`base`). */
export function absoluteItem(item: StacItem, base: string): StacItem {
  const assets: StacItem['assets'] = {};
  for (const [k, a] of Object.entries(item.assets ?? {})) assets[k] = { ...a, href: resolveHref(base, a.href) };
  const links = (item.links ?? []).map((l) => ({ ...l, href: resolveHref(base, l.href) }));
  return { ...item, assets, links };
}

/** The scenes' items, in the order chosen (most recent first), as an ItemCollection. */
export function sceneItemCollection(scenes: readonly Scene[], foreign: Record<string, unknown> = {}): StacItemCollectionDocument {
  const features = scenes.map((s) => absoluteItem(s.item, s.itemHref));
  return { type: 'FeatureCollection', features, links: [], numberReturned: features.length, ...foreign };
}
