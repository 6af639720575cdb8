/**
 * `geo-dino landcover train --imagery xyz:...`: the synthetic scene (scene.ts) cut into XYZ tiles
 * by `gdal2tiles.py --xyz` and served by Python's `http.server`. The head trained from the tiles
 * learns the classes about as well as the head trained from the scene's COG with the same
 * arguments (the tiles are the scene resampled to Web Mercator and back), and its report names
 * the service with the key redacted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { makeXyzTiles, startStaticServer, type LoopbackServer } from '../support/tile-servers.js';
import { requireGdal } from '../support/tools.js';
import { drawScene, writeSceneFiles } from './scene.js';
import { cli, makeModels, readJson, tempDir } from './helpers.js';

const SECRET = 'LC-SECRET-42';
let dir: string;
let home: string;
let split: string;
let img: string;
let lab: string;
let classes: string;
let tiles: LoopbackServer;

beforeAll(async () => {
  requireGdal();
  dir = tempDir('tiles');
  home = join(dir, 'home');
  split = (await makeModels(dir)).split;
  ({ img, lab, classes } = await writeSceneFiles(dir, drawScene({ size: 512, seed: 1, regions: 10 })));
  await makeXyzTiles(img, join(dir, 'xyz'), '18');
  tiles = await startStaticServer(join(dir, 'xyz'));
}, 300_000);

afterAll(async () => {
  await tiles?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('geo-dino landcover train from a tile service', () => {
  it('learns the classes about as well as from the COG; the report redacts the key', async () => {
    const args = (imagery: string, out: string): string[] => ['landcover', 'train', '--imagery', imagery, '--labels', lab, '--model', split, '--out', out, '--tile-size', '128', '--epochs', '8', '--classes', classes];
    const fromCog = join(dir, 'head-cog');
    const fromTiles = join(dir, 'head-xyz');
    const a = await cli(args(img, fromCog), home);
    expect(a.code, a.stderr).toBe(0);
    const b = await cli([...args(`xyz:${tiles.url}/{z}/{x}/{y}.png?key=${SECRET}`, fromTiles), '--attribution', 'Scene tiles'], home);
    expect(b.code, b.stderr).toBe(0);
    const ra = readJson(join(fromCog, 'report.json')) as { validation: { meanIou: number } };
    const rb = readJson(join(fromTiles, 'report.json')) as { validation: { meanIou: number } };
    console.log(`land-cover head validation mIoU: from the COG ${ra.validation.meanIou.toFixed(3)}, from XYZ tiles ${rb.validation.meanIou.toFixed(3)}`);
    expect(rb.validation.meanIou).toBeGreaterThan(0.7);
    expect(Math.abs(rb.validation.meanIou - ra.validation.meanIou)).toBeLessThan(0.1);
    for (const f of readdirSync(fromTiles)) expect(readFileSync(join(fromTiles, f)).includes(SECRET), f).toBe(false);
    const text = readdirSync(fromTiles)
      .filter((f) => f.endsWith('.json'))
      .map((f) => readFileSync(join(fromTiles, f), 'utf8'))
      .join('\n');
    expect(text).toContain(`xyz:${tiles.url}/{z}/{x}/{y}.png?key=***`);
    expect(text).toContain('"attribution": "Scene tiles"');
  }, 600_000);
});
