/**
 * Real STAC documents (../shared/data/stac, recorded from Earth Search, Planetary Computer,
 * eoAPI, the STAC specs): parsing, RGB asset choice, conformance, paging links, link resolution,
 * and walking a real static catalog on disk and over HTTP. Expected values are read from the
 * documents themselves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GeoDinoError } from '@geo-dino/core';
import {
  conformanceClasses,
  nextRequest,
  parseItem,
  parseItemCollection,
  pickRgbAsset,
  resolveHref,
  walkCatalog,
  type LocatedItem,
  type StacLink,
  type WalkProblem,
} from '../src/index.js';
import { sharedData } from '../../test/support/shared-data.js';
import { readJson, serveDirectory, startServer, type TestServer } from './helpers.js';

type Raw = { id: string; assets: Record<string, { href: string; alternate?: Record<string, { href: string }> }>; properties: Record<string, unknown> };
const stac = (...p: string[]): string => sharedData('stac', ...p);

describe('items from real APIs', () => {
  it('Planetary Computer NAIP: the 4-band image asset, red/green/blue at bands 1-3', () => {
    const path = stac('planetary-computer-naip-item.json');
    const raw = readJson<Raw>(path);
    const item = parseItem(raw, path);
    const choice = pickRgbAsset(item, path);
    expect(choice.asset).not.toBeNull();
    const a = choice.asset!;
    expect(a.key).toBe('image');
    expect(a.href).toBe(raw.assets['image']!.href);
    expect(a.bands).toEqual({ red: 1, green: 2, blue: 3 });
    expect(a.bandCount).toBe(4);
    expect(a.mediaKind).toBe('cog');
    expect(a.gsd).toBe(raw.properties['gsd']);
    // proj:transform is 0.3 m in EPSG:26918 (UTM 18N).
    expect(a.pixelSize).toBeCloseTo(0.3, 9);
    // thumbnail / tilejson / rendered_preview are refused with a reason.
    expect(choice.rejected.map((r) => r.key).sort()).toEqual(['rendered_preview', 'thumbnail', 'tilejson']);
  });

  it('Earth Search Sentinel-2 L2A: the visual COG, never its JPEG2000 twin', () => {
    const path = stac('earth-search-sentinel-2-l2a-item.json');
    const raw = readJson<Raw>(path);
    const choice = pickRgbAsset(parseItem(raw, path), path);
    expect(choice.asset?.key).toBe('visual');
    expect(choice.asset?.href).toBe(raw.assets['visual']!.href);
    expect(choice.asset?.gsd).toBe(10);
    const jp2 = choice.rejected.find((r) => r.key === 'visual-jp2');
    expect(jp2?.reason).toMatch(/media type "image\/jp2" is not a GeoTIFF\/COG/);
    const blue = choice.rejected.find((r) => r.key === 'blue');
    expect(blue?.reason).toMatch(/bands are not red, green and blue \(common names: blue\)/);
  });

  it('Earth Search Sentinel-2 C1: visual chosen, the 320 m RGB preview refused by role', () => {
    const path = stac('earth-search-sentinel-2-c1-l2a-item.json');
    const raw = readJson<Raw>(path);
    const choice = pickRgbAsset(parseItem(raw, path), path);
    expect(choice.asset?.key).toBe('visual');
    expect(choice.rejected.find((r) => r.key === 'preview')?.reason).toMatch(/roles \["overview"\]/);
  });

  it('Planetary Computer Sentinel-2: the visual asset with role "data"', () => {
    const path = stac('planetary-computer-sentinel-2-l2a-item.json');
    const raw = readJson<Raw>(path);
    const choice = pickRgbAsset(parseItem(raw, path), path);
    expect(choice.asset?.key).toBe('visual');
    expect(choice.asset?.roles).toEqual(['data']);
    expect(choice.asset?.bands).toEqual({ red: 1, green: 2, blue: 3 });
  });

  it('Maxar Open Data (eoAPI): visual over ms_analytic; its s3:// href, or the public https alternate when asked for', () => {
    const path = stac('eoapi-maxar-opendata-item.json');
    const raw = readJson<Raw>(path);
    const visual = raw.assets['visual']!;
    expect(visual.href.startsWith('s3://')).toBe(true);
    const own = pickRgbAsset(parseItem(raw, path), path);
    expect(own.asset?.key).toBe('visual');
    expect(own.asset?.href).toBe(visual.href);
    const choice = pickRgbAsset(parseItem(raw, path), path, { preferHttps: true });
    expect(choice.asset?.key).toBe('visual');
    expect(choice.asset?.href).toBe(visual.alternate!['public']!.href);
    expect(choice.asset?.href.startsWith('https://')).toBe(true);
    // Sensor GSD from the item (0.61 m); the pansharpened COG's pixel is 0.305 m.
    expect(choice.asset?.gsd).toBe(0.61);
    expect(choice.asset?.pixelSize).toBeCloseTo(0.30517578125, 9);
  });

  it('a Landsat item with only single-band assets has no usable asset, and says why', () => {
    const path = stac('static-catalog-pystac-landsat-8', 'landsat-8-l1', '2018-06', 'LC80140332018166LGN00.json');
    const choice = pickRgbAsset(parseItem(readJson(path), path), path);
    expect(choice.asset).toBeNull();
    expect(choice.rejected.find((r) => r.key === 'B4')?.reason).toMatch(/common names: red/);
    expect(choice.rejected.find((r) => r.key === 'index')?.reason).toMatch(/text\/html/);
  });

  it('search pages parse, every feature kept; items lacking geometry/assets (fields extension) still parse', () => {
    for (const f of [
      'planetary-computer-naip-search-page-1.json',
      'planetary-computer-naip-search-page-2.json',
      'earth-search-v1-search-filter-page.json',
      'earth-search-v1-search-multi-collection-page-1.json',
      'earth-search-v1-search-multi-collection-page-2-empty.json',
      'eoapi-maxar-opendata-search-page.json',
      'planetary-computer-aster-l1t-items-get-page.json',
      'earth-search-v1-search-fields-no-geometry.json',
      'stac-api-spec-itemcollection-sample-full.json',
      'stac-api-spec-itemcollection-sample-minimal.json',
    ]) {
      const raw = readJson<{ features: { id: string }[] }>(stac(f));
      const fc = parseItemCollection(raw, f);
      expect(fc.features.map((x) => x.id)).toEqual(raw.features.map((x) => x.id));
    }
    const noGeom = parseItemCollection(readJson(stac('earth-search-v1-search-fields-no-geometry.json')), 'x');
    expect(noGeom.features[0]!.geometry).toBeNull();
    expect(noGeom.features[0]!.assets).toEqual({});
  });

  it('a malformed item is refused naming the document, feature index and field', () => {
    const raw = readJson<{ features: Record<string, unknown>[] }>(stac('planetary-computer-naip-search-page-1.json'));
    const broken = structuredClone(raw);
    (broken.features[3]!['assets'] as Record<string, Record<string, unknown>>)['image']!['href'] = 42;
    let err: unknown;
    try {
      parseItemCollection(broken, 'page.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GeoDinoError);
    expect((err as GeoDinoError).code).toBe('E_BAD_STAC');
    expect((err as GeoDinoError).message).toMatch(/^page\.json: features\[3\] \(id [^)]+\): assets\.image\.href: an asset needs a string "href"/);
  });
});

describe('landing pages and paging links', () => {
  it('conformance classes of Earth Search v1, Planetary Computer and the spec example', () => {
    const es = conformanceClasses(readJson<{ conformsTo: string[] }>(stac('earth-search-v1-landing-page.json')).conformsTo);
    expect([...es].sort()).toEqual(['collections', 'core', 'features', 'fields', 'item-search', 'query', 'sort']);
    const pc = conformanceClasses(readJson<{ conformsTo: string[] }>(stac('planetary-computer-landing-page.json')).conformsTo);
    expect([...pc].sort()).toEqual(['collections', 'core', 'cql2-json', 'cql2-text', 'features', 'fields', 'filter', 'item-search', 'query', 'sort']);
    const ex = conformanceClasses(readJson<{ conformsTo: string[] }>(stac('stac-api-spec-item-search-landing-page-example.json')).conformsTo);
    expect([...ex].sort()).toEqual(['core', 'item-search']);
  });

  it('POST next links: body as given (merge false/absent), merged when merge is true', () => {
    const page1 = readJson<{ links: StacLink[] }>(stac('planetary-computer-naip-search-page-1.json'));
    const link = page1.links.find((l) => l.rel === 'next')!;
    const first = { method: 'POST' as const, url: 'https://planetarycomputer.microsoft.com/api/stac/v1/search', body: { limit: 10, bbox: [-73.21, 43.99, -73.12, 44.05], collections: ['naip'] } };
    const next = nextRequest(link, first);
    expect(next.method).toBe('POST');
    expect(next.url).toBe(link.href);
    expect(next.body).toEqual(link.body);

    const es = readJson<{ links: StacLink[] }>(stac('earth-search-v1-search-filter-page.json'));
    const esLink = es.links.find((l) => l.rel === 'next')!;
    expect(esLink.merge).toBe(false);
    const esFirst = { method: 'POST' as const, url: esLink.href, body: { filter: { op: 'lte' }, 'filter-lang': 'cql2-json' } };
    expect(nextRequest(esLink, esFirst).body).toEqual(esLink.body);
    const merged = nextRequest({ ...esLink, merge: true }, esFirst);
    expect(merged.body).toEqual({ ...esFirst.body, ...esLink.body });

    const aster = readJson<{ links: StacLink[] }>(stac('planetary-computer-aster-l1t-items-get-page.json'));
    const getLink = aster.links.find((l) => l.rel === 'next')!;
    const g = nextRequest(getLink, { method: 'GET', url: 'https://planetarycomputer.microsoft.com/api/stac/v1/collections/aster-l1t/items' });
    expect(g).toEqual({ method: 'GET', url: getLink.href });

    const spec = readJson<{ links: StacLink[] }>(stac('stac-api-spec-item-search-pagination-example.json'));
    const specNext = nextRequest(spec.links.find((l) => l.rel === 'next')!, { method: 'GET', url: 'https://stac-api.example.com/search?page=2' });
    expect(specNext.url).toBe('https://stac-api.example.com/search?page=3');
  });
});

describe('link resolution', () => {
  it('resolves relative hrefs like a browser does, for URLs and for files', () => {
    expect(resolveHref('https://ex.com/a/b/catalog.json', './c/collection.json')).toBe('https://ex.com/a/b/c/collection.json');
    expect(resolveHref('https://ex.com/a/b/catalog.json', '../x.json')).toBe('https://ex.com/a/x.json');
    expect(resolveHref('https://ex.com/a/b/catalog.json', '/root.json')).toBe('https://ex.com/root.json');
    expect(resolveHref('https://ex.com/a/b/catalog.json', 'https://other.org/i.json')).toBe('https://other.org/i.json');
    expect(resolveHref('/data/cat/catalog.json', './col/collection.json')).toBe('/data/cat/col/collection.json');
    expect(resolveHref('/data/cat/col/collection.json', '../catalog.json')).toBe('/data/cat/catalog.json');
    expect(resolveHref('/data/cat/catalog.json', 'with%20space/item.json')).toBe('/data/cat/with space/item.json');
    expect(resolveHref('/data/cat/catalog.json', pathToFileURL('/elsewhere/i.json').toString())).toBe('/elsewhere/i.json');
    expect(resolveHref('s3://bucket/a/item.json', './x.tif')).toBe('s3://bucket/a/x.tif');
    expect(resolveHref('/data/item.json', 's3://bucket/k.tif')).toBe('s3://bucket/k.tif');
  });
});

describe('walking a real static catalog', () => {
  const root = stac('static-catalog-pystac-landsat-8');
  const collection = readJson<{ links: StacLink[] }>(join(root, 'landsat-8-l1', 'collection.json'));
  const expectedFiles = collection.links.filter((l) => l.rel === 'item').map((l) => join(root, 'landsat-8-l1', l.href));
  const expectedIds = expectedFiles.map((f) => readJson<{ id: string }>(f).id).sort();
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(serveDirectory(root));
  });
  afterAll(async () => server.close());

  it('on disk: every item once, each located at its own file', async () => {
    const found: LocatedItem[] = [];
    for await (const li of walkCatalog(join(root, 'catalog.json'))) found.push(li);
    expect(found.map((f) => f.item.id).sort()).toEqual(expectedIds);
    expect(found.map((f) => f.source).sort()).toEqual([...expectedFiles].sort());
  });

  it('over HTTP: the same items, located at their URLs', async () => {
    const found: LocatedItem[] = [];
    for await (const li of walkCatalog(`${server.url}/catalog.json`)) found.push(li);
    expect(found.map((f) => f.item.id).sort()).toEqual(expectedIds);
    expect(found.map((f) => f.source).sort()).toEqual(
      expectedFiles.map((f) => `${server.url}/${f.slice(root.length + 1)}`).sort(),
    );
  });

  it('the STAC spec examples catalog: children and items found, nothing broken', async () => {
    const problems: WalkProblem[] = [];
    const ids: string[] = [];
    for await (const li of walkCatalog(stac('stac-spec-examples', 'catalog.json'), { onProblem: (p) => problems.push(p) })) ids.push(li.item.id);
    const expected = [
      readJson<{ id: string }>(stac('stac-spec-examples', 'collectionless-item.json')).id,
      readJson<{ id: string }>(stac('stac-spec-examples', 'extensions-collection', 'proj-example', 'proj-example.json')).id,
    ];
    for (const id of expected) expect(ids).toContain(id);
    expect(problems).toEqual([]);
  });
});
