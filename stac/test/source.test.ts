/**
 * What an `--imagery` string is (raster, STAC API, static catalog, item, ItemCollection), and
 * searching static sources: broken children, cycles, strict mode, bad input.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GeoDinoError } from '@geo-dino/core';
import { aoiFromBbox } from '@geo-dino/geometry';
import { detectImagerySource, searchScenes, walkCatalog, type ImagerySource } from '../src/index.js';
import { sharedData } from '../../test/support/shared-data.js';
import { sendJson, serveDirectory, startServer, type TestServer, expectError } from './helpers.js';

let dir: string;
let files: TestServer;
let api: TestServer;
const stac = (...p: string[]): string => sharedData('stac', ...p);


beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-stac-src-'));
  files = await startServer(serveDirectory(sharedData()));
  const PC = 'https://planetarycomputer.microsoft.com';
  api = await startServer((req, res, base) => {
    const path = new URL(req.url, base).pathname;
    const rewrite = (f: string): unknown => JSON.parse(readFileSync(stac(f), 'utf8').split(PC).join(base));
    if (path === '/api/stac/v1/' || path === '/api/stac/v1') return sendJson(res, 200, rewrite('planetary-computer-landing-page.json'));
    if (path === '/api/stac/v1/collections/naip') return sendJson(res, 200, rewrite('planetary-computer-naip-collection.json'));
    sendJson(res, 404, { code: 'NotFound', description: 'Not Found' });
  });
});
afterAll(async () => {
  await Promise.all([files.close(), api.close()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('detectImagerySource', () => {
  it('local files: raster, item, ItemCollection, catalog, collection', async () => {
    const kind = async (p: string): Promise<ImagerySource['kind']> => (await detectImagerySource(p)).kind;
    expect(await kind(sharedData('rasterio', 'RGB.byte.tif'))).toBe('raster');
    expect(await kind(stac('planetary-computer-naip-item.json'))).toBe('stac-item');
    expect(await kind(stac('planetary-computer-naip-search-page-1.json'))).toBe('stac-item-collection');
    expect(await kind(stac('static-catalog-pystac-landsat-8', 'catalog.json'))).toBe('stac-catalog');
    const col = await detectImagerySource(stac('stac-spec-examples', 'collection.json'));
    expect(col.kind === 'stac-catalog' && col.document.type).toBe('Collection');
  });

  it('URLs: a raster by its first bytes, a static catalog, a STAC API, an API collection', async () => {
    expect(await detectImagerySource(`${files.url}/rasterio/RGB.byte.tif`)).toEqual({ kind: 'raster', href: `${files.url}/rasterio/RGB.byte.tif` });
    // Only the first 64 KiB were asked for.
    expect(files.requests.at(-1)!.headers['range']).toBe('bytes=0-65535');
    expect((await detectImagerySource(`${files.url}/stac/static-catalog-pystac-landsat-8/catalog.json`)).kind).toBe('stac-catalog');
    const a = await detectImagerySource(`${api.url}/api/stac/v1/`);
    expect(a.kind).toBe('stac-api');
    expect(a.kind === 'stac-api' && a.api.search.POST).toBe(`${api.url}/api/stac/v1/search`);
    const c = await detectImagerySource(`${api.url}/api/stac/v1/collections/naip`);
    expect(c.kind === 'stac-api' && c.collections).toEqual(['naip']);
  });

  it('bad input: missing, directory, not JSON, broken JSON, JSON that is not STAC, other schemes', async () => {
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    writeFileSync(join(dir, 'broken.json'), '{"type": "Feature", ');
    writeFileSync(join(dir, 'other.json'), '{"hello": 1}');
    await expectError(detectImagerySource(join(dir, 'absent.tif')), 'E_FILE_NOT_FOUND', /absent\.tif: no such file/);
    await expectError(detectImagerySource(dir), 'E_FILE_NOT_FOUND', /is a directory/);
    await expectError(detectImagerySource(join(dir, 'notes.txt')), 'E_ARGUMENT', /notes\.txt: neither a GeoTIFF nor a STAC JSON document/);
    await expectError(detectImagerySource(join(dir, 'broken.json')), 'E_BAD_JSON', /broken\.json: invalid JSON/);
    await expectError(detectImagerySource(join(dir, 'other.json')), 'E_BAD_STAC', /other\.json: JSON but not STAC/);
    await expectError(detectImagerySource('gs://bucket/key.tif'), 'E_ARGUMENT', /gs:\/\/ is not supported/);
    await expectError(detectImagerySource(`${files.url}/nope.json`), 'E_HTTP_STATUS', /HTTP 404/);
  });
});

describe('searching static sources', () => {
  const naipItem = JSON.parse(readFileSync(stac('planetary-computer-naip-item.json'), 'utf8')) as { id: string; bbox: number[]; properties: { datetime: string } };

  function writeCatalogTree(root: string, opts: { brokenChild?: boolean; cycle?: boolean }): void {
    mkdirSync(join(root, 'col'), { recursive: true });
    const links = [
      { rel: 'root', href: './catalog.json' },
      { rel: 'child', href: './col/collection.json' },
      ...(opts.brokenChild ? [{ rel: 'child', href: './broken/catalog.json' }] : []),
      ...(opts.cycle ? [{ rel: 'child', href: './catalog.json' }] : []),
    ];
    writeFileSync(join(root, 'catalog.json'), JSON.stringify({ type: 'Catalog', stac_version: '1.0.0', id: 'root', description: 'd', links }));
    writeFileSync(
      join(root, 'col', 'collection.json'),
      JSON.stringify({
        type: 'Collection', stac_version: '1.0.0', id: 'naip', description: 'd', license: 'x',
        extent: { spatial: { bbox: [naipItem.bbox] }, temporal: { interval: [[null, null]] } },
        links: [{ rel: 'item', href: './item.json' }, ...(opts.cycle ? [{ rel: 'parent', href: '../catalog.json' }, { rel: 'child', href: '../catalog.json' }] : [])],
      }),
    );
    writeFileSync(join(root, 'col', 'item.json'), readFileSync(stac('planetary-computer-naip-item.json')));
    if (opts.brokenChild) {
      mkdirSync(join(root, 'broken'), { recursive: true });
      writeFileSync(join(root, 'broken', 'catalog.json'), '{"type": "Catalog", oops');
    }
  }

  it('a broken child is skipped and reported; strict mode fails on it', async () => {
    const root = join(dir, 'broken-tree');
    writeCatalogTree(root, { brokenChild: true });
    const [w, s, e, n] = naipItem.bbox as [number, number, number, number];
    const aoi = aoiFromBbox([w, s, e, n]);
    const r = await searchScenes({ catalog: join(root, 'catalog.json') }, aoi);
    expect(r.scenes.map((x) => x.itemId)).toEqual([naipItem.id]);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]!.message).toMatch(/broken\/catalog\.json: invalid JSON: .*\(linked as "child" from .*catalog\.json/);
    await expectError(searchScenes({ catalog: join(root, 'catalog.json') }, aoi, {}, { strict: true }), 'E_BAD_JSON', /broken\/catalog\.json: invalid JSON/);
  });

  it('links that form a cycle terminate, each item once', async () => {
    const root = join(dir, 'cycle-tree');
    writeCatalogTree(root, { cycle: true });
    const ids: string[] = [];
    for await (const li of walkCatalog(join(root, 'catalog.json'))) ids.push(li.item.id);
    expect(ids).toEqual([naipItem.id]);
  });

  it('collections whose extent misses the AOI are not descended into', async () => {
    const root = join(dir, 'prune-tree');
    writeCatalogTree(root, {});
    const far = aoiFromBbox([100, 10, 101, 11]);
    const r = await searchScenes({ catalog: join(root, 'catalog.json') }, far);
    expect(r.considered).toBe(0);
    expect(r.scenes).toEqual([]);
  });

  it('a single item file; a raster is refused as a STAC source; an invalid root is an error', async () => {
    const [w, s, e, n] = naipItem.bbox as [number, number, number, number];
    const r = await searchScenes(stac('planetary-computer-naip-item.json'), aoiFromBbox([w, s, e, n]));
    expect(r.source.kind).toBe('stac-item');
    expect(r.scenes).toHaveLength(1);
    expect(r.scenes[0]!.datetime).toBe(new Date(naipItem.properties.datetime).toISOString());
    await expectError(searchScenes(sharedData('rasterio', 'RGB.byte.tif'), aoiFromBbox([w, s, e, n])), 'E_ARGUMENT', /a raster file, not a STAC source/);
    writeFileSync(join(dir, 'bad-root.json'), '[1,2');
    await expectError(searchScenes({ catalog: join(dir, 'bad-root.json') }, aoiFromBbox([w, s, e, n])), 'E_BAD_JSON', /bad-root\.json: invalid JSON/);
  });
});
