/**
 * Memory does not grow with the AOI: the same run on an area 4× larger (twice as wide and twice
 * as tall: 3072² instead of 1536² output pixels, 196 tiles instead of 49) must peak within 10 % of
 * the smaller run's peak RSS (VmHWM of the CLI process, which counts the model's worker threads and
 * the decoder pool: all run in that process; recorded in run.json).
 *
 * Why 10 %: what may legitimately differ is (a) the COG writer's overview row, which is
 * proportional to the width (2 bands × 512 rows × 4 B × 1536 more columns ≈ 6 MiB), (b) fixed-size
 * caches (16 MiB of decoded source blocks, two rows of tiles) that the smaller run does not fill,
 * and (c) onnxruntime's allocator and V8's heaps settling over more runs (the demo model alone
 * grows ~50 MB between its 5th and 100th call). A pipeline that held the output raster would
 * need 3 × 4 B per pixel more: +85 MB between these two runs, more than the margin; one that held
 * the tiles would need +100 MB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { rectangleAoi, writeSyntheticScene } from '@geo-dino/chm';
import { chm, readJson, tempDir, writeJson } from './helpers.js';

let dir: string;
let home: string;
beforeAll(() => {
  dir = tempDir('memory');
  home = join(dir, 'home');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bounded memory', () => {
  it('peaks within 10 % of the same RSS on a 4× larger area', async () => {
    const scene = join(dir, 'scene.tif');
    const s = await writeSyntheticScene(scene, { size: 3072, seed: 5 });
    const peaks: Record<string, number> = {};
    for (const [name, size] of [
      ['small', 1536],
      ['large', 3072],
    ] as const) {
      const aoi = rectangleAoi(s.epsg, s.transform, size, size, 0.25, name);
      const aoiPath = writeJson(join(dir, `${name}.geojson`), { type: 'MultiPolygon', coordinates: aoi.geometry });
      const out = join(dir, name);
      const r = await chm(['--model', 'demo', '--aoi', aoiPath, '--imagery', scene, '--out', out, '--tile-size', '256', '--overlap', '32', '--chunk-width', '1024', '--no-web-tiles'], home, { timeoutMs: 300_000 });
      expect(r.code, r.stderr).toBe(0);
      const run = readJson<{ grid: { width: number; height: number }; tiles: { total: number }; memory: { maxRssBytes: number } }>(join(out, 'run.json'));
      expect([run.grid.width, run.grid.height]).toEqual([size, size]);
      peaks[name] = run.memory.maxRssBytes;
      console.log(`${name}: ${size}² px, ${run.tiles.total} tiles, peak RSS ${(run.memory.maxRssBytes / 2 ** 20).toFixed(0)} MiB`);
    }
    expect(peaks['large']!).toBeLessThan(peaks['small']! * 1.1);
  }, 600_000);
});
