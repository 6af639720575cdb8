/**
 * STAC links of a run's documents, judged by stac-node-validator (offline schemas):
 * - a sharded run without a public location: the shard Items link their Collection with relative
 *   `collection`/`parent`/`root` hrefs and have no `self` (pystac's SELF_CONTAINED layout); the
 *   Collection has a relative `root` and no `self`;
 * - with `--stac-base-url`: absolute `self` links on the Collection and every shard Item, the
 *   other links still relative; a single-layout run's item.json gets its `self` too;
 * - a relative `self` fails the STAC schema (so the validator does judge `self`);
 * - the imagery resampling (`--resampling cubic`) is recorded in the Items and run.json;
 * - a base URL that is not absolute: one line, exit 2.
 * (An s3:// `--out` uses its URL as the base: test/object-storage/chm-s3.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { rectangleAoi, writeSyntheticScene } from '@geo-dino/chm';
import { validateStac } from '../support/stac-validator.js';
import { chm, tempDir, writeJson } from './helpers.js';

interface Link {
  rel: string;
  href: string;
}
interface Doc {
  links: Link[];
  properties?: Record<string, unknown>;
}

let dir: string;
let home: string;
let scene: string;
let aoiPath: string;
beforeAll(async () => {
  dir = tempDir('stac-links');
  home = join(dir, 'home');
  scene = join(dir, 'scene.tif');
  const s = await writeSyntheticScene(scene, { size: 800, seed: 5 });
  const aoi = rectangleAoi(s.epsg, s.transform, 800, 800, 0.05, 'scene');
  aoiPath = writeJson(join(dir, 'aoi.geojson'), { type: 'MultiPolygon', coordinates: aoi.geometry });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const common = (): string[] => ['--model', 'demo', '--aoi', aoiPath, '--imagery', scene, '--tile-size', '256', '--overlap', '32', '--no-web-tiles'];

function read(path: string): Doc {
  return JSON.parse(readFileSync(path, 'utf8')) as Doc;
}

function shardItems(out: string): string[] {
  return readdirSync(join(out, 'shards'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name === 'item.json')
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

function linksOf(doc: Doc, rels: readonly string[]): Record<string, string> {
  return Object.fromEntries(doc.links.filter((l) => rels.includes(l.rel)).map((l) => [l.rel, l.href]));
}

const posix = (p: string): string => p.split(sep).join('/');

describe('STAC links', () => {
  it('a sharded run without a public location: relative root/parent/collection, no self; valid STAC', async () => {
    const out = join(dir, 'plain');
    const r = await chm([...common(), '--out', out, '--shard-size', '512'], home, { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const items = shardItems(out);
    expect(items.length).toBeGreaterThan(1);
    const collection = read(join(out, 'collection.json'));
    expect(linksOf(collection, ['root', 'self'])).toEqual({ root: './collection.json' });
    for (const p of items) {
      const back = posix(relative(join(p, '..'), join(out, 'collection.json')));
      expect(back).toMatch(/^(\.\.\/)+collection\.json$/);
      expect(linksOf(read(p), ['root', 'parent', 'collection', 'self']), p).toEqual({ root: back, parent: back, collection: back });
      expect(read(p).properties!['geo-dino:resampling']).toBe('bilinear');
    }
    const v = validateStac([join(out, 'collection.json'), ...items]);
    expect(v.ok, v.output).toBe(true);

    // A relative self is invalid STAC: the validator must say so.
    const bad = join(dir, 'relative-self.json');
    const doc = read(items[0]!);
    writeFileSync(bad, JSON.stringify({ ...doc, links: [...doc.links, { rel: 'self', href: './item.json', type: 'application/geo+json' }] }));
    const vb = validateStac([bad]);
    expect(vb.ok, vb.output).toBe(false);
    expect(vb.output).toMatch(/iri|self/i);
  }, 300_000);

  it('--stac-base-url: absolute self links on the Collection and every shard Item; resampling recorded', async () => {
    const out = join(dir, 'published');
    const base = 'https://data.example.org/canopy/run-1/';
    const r = await chm([...common(), '--out', out, '--shard-size', '512', '--stac-base-url', base, '--resampling', 'cubic'], home, { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const items = shardItems(out);
    expect(items.length).toBeGreaterThan(1);
    const collection = read(join(out, 'collection.json'));
    expect(linksOf(collection, ['root', 'self'])).toEqual({ root: './collection.json', self: 'https://data.example.org/canopy/run-1/collection.json' });
    for (const p of items) {
      const back = posix(relative(join(p, '..'), join(out, 'collection.json')));
      const self = `https://data.example.org/canopy/run-1/${posix(relative(out, p))}`;
      expect(linksOf(read(p), ['root', 'parent', 'collection', 'self']), p).toEqual({ root: back, parent: back, collection: back, self });
      expect(read(p).properties!['geo-dino:resampling']).toBe('cubic');
    }
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { tiling: { resampling: string } };
    expect(run.tiling.resampling).toBe('cubic');
    const v = validateStac([join(out, 'collection.json'), ...items]);
    expect(v.ok, v.output).toBe(true);
  }, 300_000);

  it('a single-layout run: item.json gets its self link from --stac-base-url (s3:// too); valid STAC', async () => {
    const out = join(dir, 'single');
    const r = await chm([...common(), '--out', out, '--stac-base-url', 's3://bucket/runs/single'], home, { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const item = read(join(out, 'item.json'));
    expect(linksOf(item, ['self'])).toEqual({ self: 's3://bucket/runs/single/item.json' });
    expect(item.properties!['geo-dino:resampling']).toBe('bilinear');
    const v = validateStac([join(out, 'item.json')]);
    expect(v.ok, v.output).toBe(true);
  }, 300_000);

  it('a base URL that is not absolute: one line naming the flag, exit 2', async () => {
    for (const value of ['data/runs', 'https://example.org/runs?x=1']) {
      const r = await chm([...common(), '--out', join(dir, 'never'), '--stac-base-url', value], home);
      expect(r.code, value).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, value).toHaveLength(1);
      // --json: the error is one JSON line.
      const err = JSON.parse(lines[0]!) as { code: string; message: string };
      expect(err.code).toBe('E_ARGUMENT');
      expect(err.message, value).toMatch(new RegExp(`--stac-base-url: "${value.replace(/[?.]/g, '\\$&')}" (is not an absolute URL|must be a URL with a host and no query)`));
    }
  });
});
