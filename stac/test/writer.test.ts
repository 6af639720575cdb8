/**
 * The STAC writer: Items for a run, Catalogs and Collections, validated by stac-node-validator
 * (an implementation we did not write) against the offline schemas in
 * ../shared/data/stac-schemas (every schema URL mapped to its local file; no network). Checksums
 * are compared with coreutils `sha256sum`; grid bounds with hand-computed values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { GeoDinoError } from '@geo-dino/core';
import {
  EXTENSIONS,
  addItemToCollection,
  buildOutputItem,
  writeCatalog,
  writeOutputItem,
  type OutputItemInput,
  type SourceRef,
  type StacItem,
} from '../src/index.js';
import { validateStac } from '../../test/support/stac-validator.js';
import { requireTool } from '../../test/support/tools.js';

const validate = validateStac;

function sha256sum(path: string): string {
  requireTool('sha256sum', ['--version']);
  return execFileSync('sha256sum', [path]).toString().split(/\s+/)[0]!;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-stac-writer-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SOURCES: SourceRef[] = [
  { itemId: 'S2B_20EPT_20250731_0_L2A', collection: 'sentinel-2-l2a', itemHref: 'https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a/items/S2B_20EPT_20250731_0_L2A', datetime: '2025-07-31T13:19:22.930Z' },
  { itemId: 'naip-a', collection: 'naip', itemHref: 'https://planetarycomputer.microsoft.com/api/stac/v1/collections/naip/items/naip-a', datetime: '2023-06-22T16:00:00Z' },
];
const WEIGHTS = 'a'.repeat(64);

function runDir(name: string): { dir: string; input: OutputItemInput } {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'chm.tif'), Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31) % 256)));
  writeFileSync(join(d, 'landcover.tif'), Buffer.from('II*\0landcover'));
  writeFileSync(join(d, 'provenance.geojson'), '{"type":"FeatureCollection","features":[]}\n');
  writeFileSync(join(d, 'run.json'), '{}\n');
  const input: OutputItemInput = {
    id: `kenya-${name.replace(/\//g, "-")}`,
    itemPath: join(d, 'item.json'),
    geometry: { type: 'Polygon', coordinates: [[[36.8, -1.3], [36.81, -1.3], [36.81, -1.29], [36.8, -1.29], [36.8, -1.3]]] },
    grid: { code: 'EPSG:32737', shape: [1000, 2000], transform: [0.6, 0, 300000, 0, -0.6, 9856000] },
    assets: [
      {
        key: 'chm',
        path: join(d, 'chm.tif'),
        title: 'Canopy height',
        roles: ['data'],
        bands: [
          { name: 'canopy_height', description: 'canopy height above ground', dataType: 'float32', nodata: -9999, unit: 'm', statistics: { minimum: 0, maximum: 41.5, mean: 12.25, stddev: 6.5, valid_percent: 97.5 } },
          { name: 'uncertainty', description: 'std of the height distribution', dataType: 'float32', nodata: -9999, unit: 'm', statistics: { minimum: 0.1, maximum: 9, mean: 2, stddev: 1 } },
        ],
      },
      {
        key: 'landcover',
        path: join(d, 'landcover.tif'),
        roles: ['data'],
        bands: [
          {
            name: 'land_cover',
            dataType: 'uint8',
            nodata: 255,
            classes: [
              { value: 1, name: 'tree_cover', title: 'Tree cover', colorHint: '006400', percentage: 40 },
              { value: 2, name: 'grassland', colorHint: 'ffff4c' },
              { value: 255, name: 'no-data', nodata: true },
            ],
          },
        ],
      },
      { key: 'provenance', path: join(d, 'provenance.geojson'), roles: ['metadata'], title: 'Which scene supplied each part of the map' },
      { key: 'run', path: join(d, 'run.json'), roles: ['metadata'] },
    ],
    sources: SOURCES,
    model: { name: 'dinov3-vitl16-chmv2', weightsSha256: WEIGHTS },
    demo: true,
    software: { 'onnxruntime-node': '1.23.0' },
    created: new Date('2026-01-02T03:04:05Z'),
  };
  return { dir: d, input };
}

describe('Items for geo-dino outputs', () => {
  it('carries projection, raster, processing, file and classification fields that check out', async () => {
    const { dir: d, input } = runDir('run1');
    const { path, item } = await writeOutputItem(input);
    expect(path).toBe(join(d, 'item.json'));
    const onDisk = JSON.parse(readFileSync(path, 'utf8')) as StacItem;
    expect(onDisk).toEqual(item);
    expect(item.stac_version).toBe('1.1.0');
    expect(item.stac_extensions).toEqual([EXTENSIONS.projection, EXTENSIONS.raster, EXTENSIONS.processing, EXTENSIONS.file, EXTENSIONS.classification]);
    const p = item.properties;
    expect(p['proj:code']).toBe('EPSG:32737');
    expect(p['proj:shape']).toEqual([1000, 2000]);
    expect(p['proj:transform']).toEqual([0.6, 0, 300000, 0, -0.6, 9856000]);
    // 2000 columns × 0.6 m = 1200 m east; 1000 rows × 0.6 m = 600 m south.
    expect(p['proj:bbox']).toEqual([300000, 9855400, 301200, 9856000]);
    // Two sources → an interval, datetime null.
    expect(p.datetime).toBeNull();
    expect(p['start_datetime']).toBe('2023-06-22T16:00:00.000Z');
    expect(p['end_datetime']).toBe('2025-07-31T13:19:22.930Z');
    expect(p['processing:software']).toEqual({ 'geo-dino': expect.any(String), 'onnxruntime-node': '1.23.0', 'dinov3-vitl16-chmv2': `sha256:${WEIGHTS}` });
    expect(p['processing:lineage']).toMatch(/dinov3-vitl16-chmv2 \(weights sha256:a{64}, DEMO weights/);
    expect(p['geo-dino:model']).toEqual({ name: 'dinov3-vitl16-chmv2', weights_sha256: WEIGHTS });
    expect(p['geo-dino:demo']).toBe(true);
    expect(item.links.filter((l) => l.rel === 'derived_from').map((l) => l.href)).toEqual(SOURCES.map((s) => s.itemHref));

    const chm = item.assets['chm']!;
    expect(chm.href).toBe('./chm.tif');
    expect(chm.type).toBe('image/tiff; application=geotiff; profile=cloud-optimized');
    expect(chm['file:checksum']).toBe('1220' + sha256sum(join(d, 'chm.tif')));
    expect(chm['file:size']).toBe(statSync(join(d, 'chm.tif')).size);
    const bands = chm['bands'] as Record<string, unknown>[];
    expect(bands.map((b) => [b['name'], b['unit'], b['nodata'], b['data_type']])).toEqual([
      ['canopy_height', 'm', -9999, 'float32'],
      ['uncertainty', 'm', -9999, 'float32'],
    ]);
    expect(bands[0]!['raster:spatial_resolution']).toBeCloseTo(0.6, 12);
    expect(bands[0]!['statistics']).toEqual({ minimum: 0, maximum: 41.5, mean: 12.25, stddev: 6.5, valid_percent: 97.5 });
    const lc = (item.assets['landcover']!['bands'] as Record<string, unknown>[])[0]!;
    expect(lc['classification:classes']).toEqual([
      { value: 1, name: 'tree_cover', title: 'Tree cover', color_hint: '006400', percentage: 40 },
      { value: 2, name: 'grassland', color_hint: 'FFFF4C' },
      { value: 255, name: 'no-data', nodata: true },
    ]);
    expect(item.assets['provenance']!.type).toBe('application/geo+json');
    // Nothing half-written left behind.
    expect(readdirSync(d).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const v = validate([path]);
    expect(v.ok, v.output).toBe(true);
    expect(v.output).toMatch(/Valid: 1/);
  });

  it('the validator really checks the extensions: a broken checksum or shape is reported invalid', async () => {
    const { input } = runDir('run-bad');
    const item = await buildOutputItem(input);
    const broken1 = structuredClone(item);
    broken1.assets['chm']!['file:checksum'] = 'not-hex!';
    const broken2 = structuredClone(item);
    broken2.properties['proj:shape'] = ['1000', 2000];
    const f1 = join(dir, 'broken1.json');
    const f2 = join(dir, 'broken2.json');
    writeFileSync(f1, JSON.stringify(broken1));
    writeFileSync(f2, JSON.stringify(broken2));
    for (const f of [f1, f2]) {
      const v = validate([f]);
      expect(v.ok).toBe(false);
      expect(v.output).toMatch(/Invalid: 1/);
    }
  });

  it('one source: a single datetime; no STAC source: acquisition given or marked unknown', async () => {
    const { input } = runDir('run2');
    const one = await buildOutputItem({ ...input, sources: [SOURCES[0]!], assets: input.assets.slice(0, 1) });
    expect(one.properties.datetime).toBe('2025-07-31T13:19:22.930Z');
    expect(one.properties['start_datetime']).toBeUndefined();
    expect(one.stac_extensions).not.toContain(EXTENSIONS.classification);
    const local = await buildOutputItem({ ...input, sources: [], acquisition: { datetime: '2022-02-02T00:00:00Z' } });
    expect(local.properties.datetime).toBe('2022-02-02T00:00:00.000Z');
    expect(local.links.filter((l) => l.rel === 'derived_from')).toEqual([]);
    // A source item on this disk is linked relative to the item (portable); URLs stay URLs.
    const onDisk = { ...SOURCES[0]!, itemHref: join(dir, 'sources', 'scene-item.json') };
    const rel = await buildOutputItem({ ...input, sources: [onDisk, SOURCES[1]!] });
    expect(rel.links.filter((l) => l.rel === 'derived_from').map((l) => l.href)).toEqual([relative(dirname(input.itemPath), onDisk.itemHref).split(sep).join('/'), SOURCES[1]!.itemHref]);
    const unknown = await buildOutputItem({ ...input, sources: [] });
    expect(unknown.properties.datetime).toBe('2026-01-02T03:04:05.000Z');
    expect(unknown.properties['geo-dino:acquisition_unknown']).toBe(true);
    const files = ['one', 'local', 'unknown'].map((n) => join(dir, `${n}.json`));
    [one, local, unknown].forEach((it, i) => writeFileSync(files[i]!, JSON.stringify(it)));
    const v = validate(files);
    expect(v.ok, v.output).toBe(true);
  });

  it('bad input is refused before anything is written', async () => {
    const { dir: d, input } = runDir('run3');
    const attempts: [Partial<OutputItemInput>, RegExp][] = [
      [{ model: { name: 'm', weightsSha256: 'xyz' } }, /weightsSha256 must be 64 hex digits/],
      [{ grid: { code: 'EPSG:32737', shape: [0, 5], transform: input.grid.transform } }, /grid shape must be \[rows, cols\] of positive integers/],
      [{ grid: { code: 'EPSG:32737', shape: [5, 5], transform: [1, 2, 3] } }, /grid transform must be 6 or 9 finite numbers/],
      [{ assets: [{ key: 'lc', path: join(d, 'landcover.tif'), bands: [{ name: 'x', dataType: 'uint8', classes: [{ value: 1, name: 'tree cover' }] }] }] }, /classes\[0\]\.name "tree cover" may only contain/],
      [{ geometry: { type: 'Polygon', coordinates: [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]] } }, /crosses itself/],
    ];
    for (const [patch, msg] of attempts) {
      let err: unknown;
      try {
        await writeOutputItem({ ...input, ...patch });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GeoDinoError);
      expect((err as GeoDinoError).code).toBe('E_ARGUMENT');
      expect((err as GeoDinoError).message).toMatch(msg);
    }
    let missing: unknown;
    try {
      await writeOutputItem({ ...input, assets: [{ key: 'chm', path: join(d, 'absent.tif') }] });
    } catch (e) {
      missing = e;
    }
    expect((missing as GeoDinoError).code).toBe('E_FILE_NOT_FOUND');
    expect((missing as GeoDinoError).message).toMatch(/absent\.tif: no such file/);
    expect(existsSync(join(d, 'item.json'))).toBe(false);
    expect(readdirSync(d).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('Catalogs and Collections', () => {
  it('a run catalog, and a region collection that grows by one item per monitoring run', async () => {
    const runs = ['2025-01', '2025-02', '2025-03'].map((n) => runDir(`region/${n}`));
    const written: string[] = [];
    for (const [i, r] of runs.entries()) {
      const { path } = await writeOutputItem({ ...r.input, sources: [SOURCES[i % 2]!] });
      written.push(path);
    }
    const catalogPath = join(runs[0]!.dir, 'catalog.json');
    await writeCatalog(catalogPath, { id: 'run-2025-01', description: 'geo-dino run', items: [written[0]!] });
    const collectionPath = join(dir, 'region', 'collection.json');
    const info = { id: 'kenya-nairobi', description: 'Canopy height runs for Nairobi', title: 'Nairobi', license: 'CC-BY-4.0', keywords: ['canopy height'] };
    for (const p of written) await addItemToCollection(collectionPath, p, info);
    await addItemToCollection(collectionPath, written[1]!, info); // adding again does not duplicate
    const c = JSON.parse(readFileSync(collectionPath, 'utf8')) as { links: { rel: string; href: string }[]; extent: { temporal: { interval: string[][] }; spatial: { bbox: number[][] } } };
    expect(c.links.filter((l) => l.rel === 'item').map((l) => l.href)).toEqual(['./2025-01/item.json', './2025-02/item.json', './2025-03/item.json']);
    expect(c.extent.temporal.interval).toEqual([['2023-06-22T16:00:00.000Z', '2025-07-31T13:19:22.930Z']]);
    expect(c.extent.spatial.bbox[0]).toEqual([36.8, -1.3, 36.81, -1.29]);
    const item = JSON.parse(readFileSync(written[2]!, 'utf8')) as StacItem;
    expect(item.collection).toBe('kenya-nairobi');
    expect(item.links.find((l) => l.rel === 'collection')?.href).toBe('../collection.json');
    // root/parent where they live, relative like every href of the directory (self must be absolute in STAC: omitted).
    expect(Object.fromEntries(item.links.filter((l) => ['self', 'root', 'parent'].includes(l.rel)).map((l) => [l.rel, l.href]))).toEqual({ root: '../collection.json', parent: '../collection.json' });
    // Relative hrefs resolve to the files from where the documents are (what STAC clients do).
    for (const l of item.links.filter((x) => x.rel !== 'derived_from')) expect(existsSync(join(dirname(written[2]!), l.href)), l.href).toBe(true);
    for (const a of Object.values(item.assets)) expect(existsSync(join(dirname(written[2]!), a.href)), a.href).toBe(true);
    const v = validate([catalogPath, collectionPath, ...written]);
    expect(v.ok, v.output).toBe(true);
    expect(v.output).toMatch(/Valid: 5/);
  });
});
