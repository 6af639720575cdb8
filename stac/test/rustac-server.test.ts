/**
 * Against a real STAC API server we did not write: `rustac serve` (stac-utils/rustac), once with
 * its in-memory backend (item search only, no filter or sort declared) and once on pgstac
 * (PostgreSQL + PostGIS; CQL2 filter declared, sort supported). Loaded with 71 synthetic items laid
 * out so the right answers follow from the layout, plus 20 real Planetary Computer NAIP items.
 *
 * Checked: search by AOI and datetime, paging past several pages, sorting, filtering by cloud
 * cover (server side where declared, here otherwise), scene selection, "newer than" for
 * monitoring, GET paging, and the `geo-dino stac search` command.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GeoDinoError } from '@geo-dino/core';
import { aoiFromBbox, loadAoi } from '@geo-dino/geometry';
import { openStacApi, searchAll, searchPages, searchScenes, type StacApi, type StacItem } from '../src/index.js';
import { startMemoryStacApi, startPgstacStacApi, type StacApiServer } from '../../test/support/stac-api-server.js';
import { sharedData } from '../../test/support/shared-data.js';
import { runCli } from '../../test/support/cli.js';
import { validateStac } from '../../test/support/stac-validator.js';
import { ogrCoverage, type Geom } from './helpers.js';

const COLLECTION = 'geo-dino-test';
const AOI_BBOX = [36.0, 0.0, 36.3, 0.2] as const;
const cloudOf = (tile: number, k: number): number => (k * 37 + tile * 11) % 100;
const monthOf = (k: number): number => k + 1;

interface Synthetic {
  id: string;
  tile: number | null;
  month: number;
  cloud: number;
  rgb: boolean;
}

function tileBox(tile: number): [number, number, number, number] {
  const col = tile % 3;
  const row = Math.floor(tile / 3);
  return [36.0 + 0.1 * col, 0.1 * row, 36.1 + 0.1 * col, 0.1 + 0.1 * row];
}

function polygon([w, s, e, n]: readonly number[]): { type: 'Polygon'; coordinates: number[][][] } {
  return { type: 'Polygon', coordinates: [[[w!, s!], [e!, s!], [e!, n!], [w!, n!], [w!, s!]]] };
}

const synthetic: Synthetic[] = [];
for (let t = 0; t < 6; t++) for (let k = 0; k < 10; k++) synthetic.push({ id: `t${t}-m${monthOf(k)}`, tile: t, month: monthOf(k), cloud: cloudOf(t, k), rgb: true });
for (let k = 0; k < 10; k++) synthetic.push({ id: `far-m${monthOf(k)}`, tile: null, month: monthOf(k), cloud: 3, rgb: true });
synthetic.push({ id: 't0-jp2-only', tile: 0, month: 12, cloud: 0, rgb: false });

function toItem(s: Synthetic): Record<string, unknown> {
  const bbox = s.tile === null ? [10, 10, 10.1, 10.1] : tileBox(s.tile);
  const asset = s.rgb
    ? { href: `https://imagery.example.com/${s.id}.tif`, type: 'image/tiff; application=geotiff; profile=cloud-optimized', roles: ['visual'], 'eo:bands': [{ name: 'r', common_name: 'red' }, { name: 'g', common_name: 'green' }, { name: 'b', common_name: 'blue' }] }
    : { href: `https://imagery.example.com/${s.id}.jp2`, type: 'image/jp2', roles: ['visual'] };
  return {
    type: 'Feature',
    stac_version: '1.0.0',
    stac_extensions: ['https://stac-extensions.github.io/eo/v1.1.0/schema.json'],
    id: s.id,
    collection: COLLECTION,
    geometry: polygon(bbox),
    bbox,
    properties: { datetime: `2023-${String(s.month).padStart(2, '0')}-15T10:00:00Z`, 'eo:cloud_cover': s.cloud, gsd: 0.5 },
    links: [],
    assets: { visual: asset },
  };
}

const inWindow = (s: Synthetic, from: number, to: number): boolean => s.month >= from && s.month <= to;
const inAoi = (s: Synthetic): boolean => s.tile !== null;

let dir: string;
let memory: StacApiServer;
let pgstac: StacApiServer;
let aoiFile: string;
let naipItems: StacItem[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-stac-api-'));
  const collection = {
    type: 'Collection', stac_version: '1.0.0', id: COLLECTION, description: 'synthetic scenes for geo-dino tests', license: 'CC0-1.0',
    extent: { spatial: { bbox: [[10, 0, 36.3, 10.1]] }, temporal: { interval: [['2023-01-01T00:00:00Z', '2023-12-31T23:59:59Z']] } }, links: [],
  };
  writeFileSync(join(dir, 'collection.json'), JSON.stringify(collection));
  writeFileSync(join(dir, 'items.json'), JSON.stringify({ type: 'FeatureCollection', features: synthetic.map(toItem) }));
  const p1 = JSON.parse(readFileSync(sharedData('stac', 'planetary-computer-naip-search-page-1.json'), 'utf8')) as { features: StacItem[] };
  const p2 = JSON.parse(readFileSync(sharedData('stac', 'planetary-computer-naip-search-page-2.json'), 'utf8')) as { features: StacItem[] };
  naipItems = [...p1.features, ...p2.features];
  writeFileSync(join(dir, 'naip-items.json'), JSON.stringify({ type: 'FeatureCollection', features: naipItems }));
  aoiFile = join(dir, 'aoi.geojson');
  writeFileSync(aoiFile, JSON.stringify({ type: 'Feature', properties: {}, geometry: polygon(AOI_BBOX) }));
  const started = await Promise.allSettled([
    startMemoryStacApi([join(dir, 'collection.json'), join(dir, 'items.json')]),
    startPgstacStacApi([join(dir, 'collection.json'), join(dir, 'items.json'), sharedData('stac', 'planetary-computer-naip-collection.json'), join(dir, 'naip-items.json')]),
  ]);
  if (started[0].status === 'fulfilled') memory = started[0].value;
  if (started[1].status === 'fulfilled') pgstac = started[1].value;
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
});

afterAll(async () => {
  await Promise.all([memory?.stop(), pgstac?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const FAST = { retries: 2, backoffMs: 20 };

describe.each(['memory', 'pgstac'] as const)('rustac serve (%s backend)', (backend) => {
  const server = (): StacApiServer => (backend === 'memory' ? memory : pgstac);
  let api: StacApi;
  beforeAll(async () => {
    api = await openStacApi(server().url, FAST);
  });

  it('declares what its backend supports', () => {
    expect(api.classes.has('item-search')).toBe(true);
    expect(api.search.POST).toBeDefined();
    expect(api.classes.has('filter') && api.classes.has('cql2-json')).toBe(backend === 'pgstac');
  });

  it('searches by AOI and datetime, paging past several pages', async () => {
    const pages: number[] = [];
    const ids: string[] = [];
    for await (const page of searchPages(api, { intersects: polygon(AOI_BBOX), datetime: '2023-03/2023-08', collections: [COLLECTION], limit: 5 }, FAST)) {
      pages.push(page.items.length);
      ids.push(...page.items.map((i) => i.id));
    }
    const expected = synthetic.filter((s) => inAoi(s) && inWindow(s, 3, 8)).map((s) => s.id);
    expect(expected).toHaveLength(36);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual([...expected].sort());
    expect(pages.length).toBeGreaterThanOrEqual(8);
  });

  it('chooses the newest cloud-free-enough scene per tile and reports full coverage', async () => {
    const aoi = aoiFromBbox([...AOI_BBOX]);
    const result = await searchScenes({ api: server().url }, aoi, { datetime: '2023', maxCloudCover: 30, collections: [COLLECTION] }, { ...FAST, pageSize: 7 });
    const expected: string[] = [];
    for (let t = 0; t < 6; t++) {
      const best = synthetic.filter((s) => s.tile === t && s.rgb && s.cloud <= 30).sort((a, b) => b.month - a.month)[0]!;
      expected.push(best.id);
    }
    expect(result.scenes.map((s) => s.itemId).sort()).toEqual(expected.sort());
    const times = result.scenes.map((s) => Date.parse(s.datetime!));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(result.coverage.coveredPercent).toBeCloseTo(100, 6);
    expect(result.server?.cloudFilter).toBe(backend === 'pgstac' ? 'filter' : null);
    // The jp2-only item (newest on tile 0) is refused for its asset, not silently dropped.
    expect(result.rejected.find((r) => r.itemId === 't0-jp2-only')?.reason).toMatch(/no usable RGB/);
    for (const s of result.scenes) expect(s.href).toBe(`https://imagery.example.com/${s.itemId}.tif`);
  });

  it('an AOI with no imagery gives an empty selection, not an error', async () => {
    const result = await searchScenes({ api: server().url }, aoiFromBbox([-60, -10, -59.9, -9.9]), {}, FAST);
    expect(result.scenes).toEqual([]);
    expect(result.considered).toBe(0);
    expect(result.coverage.uncoveredPercent).toBe(100);
  });
});

describe('rustac serve on pgstac: server-side filter and sort', () => {
  let api: StacApi;
  beforeAll(async () => {
    // rustac's pgstac backend sorts but does not list the sort conformance class.
    api = await openStacApi(pgstac.url, { ...FAST, assumeConformance: ['sort'] });
  });

  it('filters by cloud cover with CQL2-JSON', async () => {
    const items = await searchAll(api, { collections: [COLLECTION], filter: { op: '<=', args: [{ property: 'eo:cloud_cover' }, 30] }, limit: 6 }, FAST);
    const expected = synthetic.filter((s) => s.cloud <= 30).map((s) => s.id);
    expect(items.map((i) => i.id).sort()).toEqual(expected.sort());
  });

  it('sorts across pages (cloud cover descending, then datetime ascending)', async () => {
    const byCloud = await searchAll(api, { collections: [COLLECTION], intersects: polygon(AOI_BBOX), sortby: '-properties.eo:cloud_cover', limit: 7 }, FAST);
    const clouds = byCloud.map((i) => i.properties['eo:cloud_cover'] as number);
    expect(clouds).toEqual([...clouds].sort((a, b) => b - a));
    expect(byCloud).toHaveLength(synthetic.filter(inAoi).length);
    const byTime = await searchAll(api, { collections: [COLLECTION], sortby: [{ field: 'properties.datetime', direction: 'asc' }], limit: 9 }, FAST);
    const times = byTime.map((i) => Date.parse(i.properties.datetime!));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(byTime).toHaveLength(synthetic.length);
  });

  it('pages by GET too (token next links)', async () => {
    const items = await searchAll(api, { method: 'GET', datetime: '2023-03-01/2023-08-31', limit: 10 }, FAST);
    const expected = [
      ...synthetic.filter((s) => inWindow(s, 3, 8)).map((s) => s.id),
      ...naipItems.filter((i) => i.properties.datetime! >= '2023-03-01' && i.properties.datetime! <= '2023-08-31T23:59:59Z').map((i) => i.id),
    ];
    expect(items.map((i) => i.id).sort()).toEqual(expected.sort());
  });

  it('newer than the last run: only later scenes, and the part they leave uncovered is reported', async () => {
    const aoi = aoiFromBbox([...AOI_BBOX]);
    const result = await searchScenes({ api }, aoi, { newerThan: '2023-09-30T00:00:00Z', maxCloudCover: 30, collections: [COLLECTION] }, FAST);
    const expectedTiles = [0, 1, 2, 3, 4, 5].filter((t) => synthetic.some((s) => s.tile === t && s.month === 10 && s.rgb && s.cloud <= 30));
    expect(result.scenes.map((s) => s.itemId).sort()).toEqual(expectedTiles.map((t) => `t${t}-m10`).sort());
    expect(result.server?.datetime).toBe('2023-09-30T00:00:00.000Z/..');
    const missing = [0, 1, 2, 3, 4, 5].filter((t) => !expectedTiles.includes(t)).map(tileBox);
    expect(missing.length).toBeGreaterThan(0);
    expect(result.coverage.uncoveredKm2 / ogrCoverage(polygon(AOI_BBOX), missing.map(polygon)).coveredKm2).toBeCloseTo(1, 3);
  });

  it('real NAIP items: newest first, and the covered area matches OGR over all footprints', async () => {
    const [w, s, e, n] = [-73.21, 43.99, -73.12, 44.05];
    const aoi = aoiFromBbox([w, s, e, n]);
    const result = await searchScenes({ api }, aoi, { collections: ['naip'] }, FAST);
    const newest = Math.max(...naipItems.map((i) => Date.parse(i.properties.datetime!)));
    expect(Date.parse(result.scenes[0]!.datetime!)).toBe(newest);
    const byId = new Map(naipItems.map((i) => [i.id, i]));
    for (const sc of result.scenes) {
      const raw = byId.get(sc.itemId)!;
      expect(sc.href).toBe(raw.assets['image']!.href);
      expect(sc.asset.bands).toEqual({ red: 1, green: 2, blue: 3 });
    }
    const oracle = ogrCoverage(polygon([w, s, e, n]), naipItems.map((i) => i.geometry as Geom));
    expect(result.coverage.coveredKm2 / oracle.coveredKm2).toBeCloseTo(1, 3);
    expect(result.coverage.aoiKm2 / oracle.aoiKm2).toBeCloseTo(1, 3);
  });
});

describe('rustac serve (memory backend): undeclared features are refused, not silently ignored', () => {
  it('filter and sortby without conformance are E_ARGUMENT', async () => {
    const api = await openStacApi(memory.url, FAST);
    for (const params of [{ filter: { op: '<=', args: [{ property: 'eo:cloud_cover' }, 30] } }, { sortby: '-properties.datetime' }]) {
      let err: unknown;
      try {
        await searchAll(api, params, FAST);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GeoDinoError);
      expect((err as GeoDinoError).code).toBe('E_ARGUMENT');
    }
  });
});

describe('geo-dino stac search', () => {
  it('prints the chosen scenes and coverage as JSON', async () => {
    const r = await runCli(['stac', 'search', '--api', pgstac.url, '--aoi', aoiFile, '--collections', COLLECTION, '--datetime', '2023', '--max-cloud', '30', '--limit', '8', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { found: boolean; scenes: { id: string; href: string; datetime: string; coveragePercent: number }[]; coverage: { coveredPercent: number; aoiKm2: number } };
    expect(report.found).toBe(true);
    expect(report.scenes).toHaveLength(6);
    expect(report.coverage.coveredPercent).toBeCloseTo(100, 6);
    const aoi = await loadAoi(aoiFile);
    expect(report.coverage.aoiKm2).toBeCloseTo(aoi.areaM2 / 1e6, 6);
    for (const s of report.scenes) expect(s.href).toBe(`https://imagery.example.com/${s.id}.tif`);
    expect(report.scenes.reduce((a, s) => a + s.coveragePercent, 0)).toBeCloseTo(100, 3);
  });

  it('--format itemcollection: the chosen items as a STAC ItemCollection that stac-node-validator accepts; --bbox and --intersects give the same scenes as --aoi', async () => {
    const common = ['stac', 'search', '--api', pgstac.url, '--collections', COLLECTION, '--datetime', '2023', '--max-cloud', '30'];
    const report = await runCli([...common, '--aoi', aoiFile, '--json']);
    expect(report.code, report.stderr).toBe(0);
    const ids = (JSON.parse(report.stdout) as { scenes: { id: string }[] }).scenes.map((s) => s.id);
    expect(ids).toHaveLength(6);
    const forms = [
      ['--bbox', AOI_BBOX.join(',')],
      ['--intersects', JSON.stringify(polygon(AOI_BBOX))],
    ];
    for (const form of forms) {
      const r = await runCli([...common, ...form, '--format', 'itemcollection']);
      expect(r.code, r.stderr).toBe(0);
      const fc = JSON.parse(r.stdout) as { type: string; features: StacItem[]; numberReturned: number };
      expect(fc.type).toBe('FeatureCollection');
      expect(fc.features.map((f) => f.id)).toEqual(ids);
      expect(fc.numberReturned).toBe(6);
      for (const f of fc.features) expect(f.assets['visual']!.href).toBe(`https://imagery.example.com/${f.id}.tif`);
      const file = join(dir, `itemcollection-${form[0]!.slice(2)}.json`);
      writeFileSync(file, r.stdout);
      const v = validateStac([file]);
      expect(v.ok, v.output).toBe(true);
    }
  });

  it('--ids, --filter (CQL2-JSON) where the API declares it; --sortby and --query refused where it does not', async () => {
    const ids = await runCli(['stac', 'search', '--api', memory.url, '--aoi', aoiFile, '--ids', 't0-m3,t1-m3,far-m3', '--format', 'itemcollection']);
    expect(ids.code, ids.stderr).toBe(0);
    expect((JSON.parse(ids.stdout) as { features: StacItem[] }).features.map((f) => f.id).sort()).toEqual(['t0-m3', 't1-m3']);
    const filter = JSON.stringify({ op: '<=', args: [{ property: 'eo:cloud_cover' }, 10] });
    const f = await runCli(['stac', 'search', '--api', pgstac.url, '--aoi', aoiFile, '--collections', COLLECTION, '--filter', filter, '--format', 'itemcollection']);
    expect(f.code, f.stderr).toBe(0);
    const got = (JSON.parse(f.stdout) as { features: StacItem[] }).features;
    expect(got.length).toBeGreaterThan(0);
    for (const item of got) expect(item.properties['eo:cloud_cover'] as number).toBeLessThanOrEqual(10);
    const refused: [string, string[], RegExp][] = [
      [memory.url, ['--filter', filter], /does not declare CQL2-JSON filter support/],
      [pgstac.url, ['--sortby', '-properties.eo:cloud_cover'], /does not declare sortby support/],
      [memory.url, ['--query', '{"eo:cloud_cover":{"lte":10}}'], /does not declare the query extension support/],
      [memory.url, ['--filter', '{not json'], /--filter: not valid JSON/],
      [memory.url, ['--bbox', '0,0,1,1'], /give exactly one of --aoi <file>, --bbox/],
    ];
    for (const [url, flags, msg] of refused) {
      const r = await runCli(['stac', 'search', '--api', url, '--aoi', aoiFile, ...flags]);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.stderr, flags.join(' ')).toMatch(msg);
    }
  });

  it('prints a table for people, and a clear "No imagery found" for an empty AOI', async () => {
    const r = await runCli(['stac', 'search', '--api', memory.url, '--aoi', aoiFile, '--datetime', '2023-10']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/scenes? cover [\d.]+ %/);
    expect(r.stdout).toMatch(/#\s+item\s+collection\s+datetime/);
    const empty = join(dir, 'empty.geojson');
    writeFileSync(empty, JSON.stringify({ type: 'Feature', properties: {}, geometry: polygon([-60, -10, -59.9, -9.9]) }));
    const n = await runCli(['stac', 'search', '--api', memory.url, '--aoi', empty]);
    expect(n.code, n.stderr).toBe(0);
    expect(n.stdout).toMatch(/No imagery found: 0 items considered/);
  });

  it('bad input: a dead API, a bad flag, a missing AOI file — clear errors and non-zero exits', async () => {
    const dead = await runCli(['stac', 'search', '--api', 'http://127.0.0.1:9/', '--aoi', aoiFile]);
    expect(dead.code).toBe(1);
    expect(dead.stderr).toMatch(/127\.0\.0\.1:9.*failed after \d+ attempts/);
    const flag = await runCli(['stac', 'search', '--api', memory.url, '--aoi', aoiFile, '--datetime', '2023-02-30']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--datetime: 2023-02-30 is not a calendar date/);
    const noAoi = await runCli(['stac', 'search', '--api', memory.url, '--aoi', join(dir, 'nope.geojson')]);
    expect(noAoi.code).toBe(2);
    expect(noAoi.stderr).toMatch(/nope\.geojson: no such file/);
  });
});
