/**
 * Checks on STAC documents read from outside. Lenient where real catalogs deviate harmlessly
 * (missing `links`, `stac_version` of a beta, extra fields), strict where geo-dino would
 * otherwise misbehave (an item without an id, an asset without an href, a page whose features
 * are not an array). Errors are `E_BAD_STAC` and name the document and the field.
 */
import { GeoDinoError, parseWith, z } from '@geo-dino/core';
import { displayLocation } from './href.js';
import type { StacCatalog, StacCollection, StacItem, StacItemCollection, StacLink } from './types.js';

const linkSchema = z.looseObject({
  rel: z.string({ error: 'a link needs a string "rel"' }),
  href: z.string({ error: 'a link needs a string "href"' }).min(1, 'a link href must not be empty'),
  type: z.string().optional(),
  method: z.string().optional(),
  body: z.record(z.string(), z.unknown()).optional(),
  merge: z.boolean().optional(),
  headers: z.record(z.string(), z.string()).optional(),
});

const linksSchema = z.array(linkSchema).optional().default([]);

const assetSchema = z.looseObject({
  href: z.string({ error: 'an asset needs a string "href"' }).min(1, 'an asset href must not be empty'),
  type: z.string().optional(),
  roles: z.array(z.string()).optional(),
});

const geometrySchema = z.looseObject({ type: z.string() }).nullable();

const itemSchema = z.looseObject({
  type: z.literal('Feature', { error: 'an Item must have "type": "Feature"' }),
  stac_version: z.string().optional().default('1.0.0'),
  stac_extensions: z.array(z.string()).optional(),
  id: z.string({ error: 'an Item needs a string "id"' }).min(1, 'an Item id must not be empty'),
  // The fields extension may drop geometry and assets; such items are reported, not refused.
  geometry: geometrySchema.optional().default(null),
  bbox: z.array(z.number()).optional(),
  properties: z.looseObject({
    datetime: z.string().nullable().optional(),
  }),
  links: linksSchema,
  assets: z.record(z.string(), assetSchema).optional().default({}),
  collection: z.string().optional(),
});

const extentSchema = z.looseObject({
  spatial: z.looseObject({ bbox: z.array(z.array(z.number())) }),
  temporal: z.looseObject({ interval: z.array(z.array(z.string().nullable())) }),
});

const collectionSchema = z.looseObject({
  type: z.literal('Collection'),
  stac_version: z.string().optional().default('1.0.0'),
  id: z.string().min(1),
  description: z.string().optional().default(''),
  license: z.string().optional().default('other'),
  extent: extentSchema.optional(),
  links: linksSchema,
});

const catalogSchema = z.looseObject({
  type: z.literal('Catalog').optional().default('Catalog'),
  stac_version: z.string().optional().default('1.0.0'),
  id: z.string().optional().default(''),
  description: z.string().optional().default(''),
  links: linksSchema,
  conformsTo: z.array(z.string()).optional(),
});

const itemCollectionSchema = z.looseObject({
  type: z.literal('FeatureCollection', { error: 'expected "type": "FeatureCollection"' }),
  features: z.array(z.unknown(), { error: '"features" must be an array' }),
  links: linksSchema,
  numberMatched: z.number().optional(),
  numberReturned: z.number().optional(),
});

function ctx(source: string): { source: string; code: 'E_BAD_STAC' } {
  return { source: displayLocation(source), code: 'E_BAD_STAC' };
}

function requireObject(doc: unknown, source: string, what: string): void {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new GeoDinoError('E_BAD_STAC', `${displayLocation(source)}: expected a STAC ${what} (a JSON object), got ${Array.isArray(doc) ? 'an array' : typeof doc}`, {
      details: { source },
    });
  }
}

export function parseItem(doc: unknown, source: string): StacItem {
  requireObject(doc, source, 'Item');
  return parseWith(itemSchema, doc, ctx(source)) as unknown as StacItem;
}

export function parseCollection(doc: unknown, source: string): StacCollection {
  requireObject(doc, source, 'Collection');
  const c = parseWith(collectionSchema, doc, ctx(source));
  return {
    ...c,
    extent: c.extent ?? { spatial: { bbox: [[-180, -90, 180, 90]] }, temporal: { interval: [[null, null]] } },
  } as unknown as StacCollection;
}

export function parseCatalog(doc: unknown, source: string): StacCatalog {
  requireObject(doc, source, 'Catalog');
  return parseWith(catalogSchema, doc, ctx(source)) as unknown as StacCatalog;
}

/** A search page or ItemCollection file; each feature is checked, errors name its index and id. */
export function parseItemCollection(doc: unknown, source: string): StacItemCollection {
  requireObject(doc, source, 'ItemCollection');
  const page = parseWith(itemCollectionSchema, doc, ctx(source));
  const features = page.features.map((f, i) => {
    try {
      return parseItem(f, source);
    } catch (err) {
      const id = typeof f === 'object' && f !== null && typeof (f as { id?: unknown }).id === 'string' ? ` (id ${(f as { id: string }).id})` : '';
      const msg = err instanceof GeoDinoError ? err.message.replace(`${displayLocation(source)}: `, '') : String(err);
      throw new GeoDinoError('E_BAD_STAC', `${displayLocation(source)}: features[${i}]${id}: ${msg}`, { cause: err, details: { source, index: i } });
    }
  });
  return { ...page, features } as unknown as StacItemCollection;
}

export function parseLinks(links: unknown, source: string): StacLink[] {
  return parseWith(linksSchema, links, ctx(source)) as StacLink[];
}

/** What kind of STAC object a JSON document is, from its `type` and shape. */
export type StacDocumentKind = 'item' | 'collection' | 'catalog' | 'item-collection' | 'unknown';

export function stacKindOf(doc: unknown): StacDocumentKind {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'unknown';
  const o = doc as Record<string, unknown>;
  if (o['type'] === 'Feature' && ('assets' in o || 'stac_version' in o)) return 'item';
  if (o['type'] === 'FeatureCollection' && Array.isArray(o['features'])) return 'item-collection';
  if (o['type'] === 'Collection' || ('extent' in o && 'license' in o && Array.isArray(o['links']))) return 'collection';
  if (o['type'] === 'Catalog') return 'catalog';
  // Legacy (STAC < 1.0) catalogs and landing pages have no `type`.
  if (typeof o['stac_version'] === 'string' && Array.isArray(o['links'])) return 'catalog';
  return 'unknown';
}

/** The first link with one of the given rels (optionally also matching `method`). */
export function findLink(links: readonly StacLink[] | undefined, rel: string, method?: string): StacLink | undefined {
  return (links ?? []).find((l) => l.rel === rel && (method === undefined || (l.method ?? 'GET').toUpperCase() === method));
}
