/**
 * STAC API conformance classes: what a server says it can do (`conformsTo`), matched by pattern
 * so that release candidates and minor versions count (v1.0.0-rc.3, v1.1.0, ...).
 */

export type ConformanceClass =
  | 'core'
  | 'item-search'
  | 'filter'
  | 'cql2-json'
  | 'cql2-text'
  | 'query'
  | 'sort'
  | 'fields'
  | 'collections'
  | 'features';

const V = String.raw`v1\.\d+\.\d+(?:-[\w.]+)?`;
const STAC_API = String.raw`https?://api\.stacspec\.org/${V}`;
const OGC = String.raw`https?://www\.opengis\.net/spec`;

const PATTERNS: Record<ConformanceClass, RegExp[]> = {
  core: [new RegExp(`^${STAC_API}/core$`)],
  'item-search': [new RegExp(`^${STAC_API}/item-search$`)],
  filter: [
    new RegExp(`^${STAC_API}/item-search#filter(?::filter)?$`),
    new RegExp(`^${OGC}/ogcapi-features-3/1\\.0/conf/(?:filter|features-filter|item-search-filter)$`),
  ],
  'cql2-json': [new RegExp(`^${OGC}/cql2/1\\.0/conf/cql2-json$`), new RegExp(`^${STAC_API}/item-search#filter:cql-json$`)],
  'cql2-text': [new RegExp(`^${OGC}/cql2/1\\.0/conf/cql2-text$`), new RegExp(`^${STAC_API}/item-search#filter:cql-text$`)],
  query: [new RegExp(`^${STAC_API}/item-search#query$`)],
  sort: [new RegExp(`^${STAC_API}/item-search#sort$`)],
  fields: [new RegExp(`^${STAC_API}/item-search#fields$`)],
  collections: [new RegExp(`^${STAC_API}/collections$`)],
  features: [new RegExp(`^${STAC_API}/ogcapi-features$`), new RegExp(`^${OGC}/ogcapi-features-1/1\\.0/conf/core$`)],
};

export const ALL_CONFORMANCE_CLASSES = Object.keys(PATTERNS) as ConformanceClass[];

/** The conformance classes found in a `conformsTo` list. */
export function conformanceClasses(conformsTo: readonly string[]): Set<ConformanceClass> {
  const found = new Set<ConformanceClass>();
  for (const uri of conformsTo) {
    for (const cls of ALL_CONFORMANCE_CLASSES) {
      if (PATTERNS[cls].some((re) => re.test(uri))) found.add(cls);
    }
  }
  return found;
}

/** True when `cls` is declared by one of the URIs. */
export function conformsTo(conformsToUris: readonly string[], cls: ConformanceClass): boolean {
  return PATTERNS[cls].some((re) => conformsToUris.some((u) => re.test(u)));
}
