/**
 * Memory does not grow with the AOI: the same work over a 10× larger AOI peaks at the same
 * memory, measured in child processes: live memory (a high-water mark of heap + ArrayBuffer bytes
 * sampled every 5 ms, with a full GC after each tile) within +24 MiB, and peak RSS from the OS
 * within a generous +64 MiB (RSS also holds the worker threads' uncollected garbage and the
 * allocator's arenas, which vary by some tens of MiB between runs). Holding the tiles of the
 * larger run would cost ≥ 150 MiB more.
 *
 * The source is a synthetic 1.2 m COG (3200 × 9000 px) written here with geo-dino's writer; the
 * grid is the default 0.6 m UTM grid, so every tile is warped (2× upsampling) from decoded blocks.
 *
 * The COG writer alone is measured on rasters 10× wider (the direction in which a writer that
 * buffers a row of blocks per overview level would grow). It keeps working between calls
 * (compression, overview rows, the copy at close), so there live memory is what survives a full
 * GC taken every 20 ms (within +12 MiB), and peak RSS within +48 MiB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCogWriter, transformBetween, parseCrs, WGS84 } from '@geo-dino/tiling';

const CHILD = fileURLToPath(new URL('./support/memory-child.mjs', import.meta.url));
let dir: string;
let source: string;
// Source: 3200 × 9000 px at 1.2 m in UTM 33N (3.84 km × 10.8 km), 3 bands uint8.
const X0 = 500000;
const Y0 = 5000000;
const WIDTH = 3200;
const HEIGHT = 9000;
const GSD = 1.2;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gd-mem-'));
  source = join(dir, 'source.tif');
  const w = await createCogWriter(source, {
    width: WIDTH,
    height: HEIGHT,
    bands: 3,
    dtype: 'uint8',
    blockSize: 512,
    crs: 'EPSG:32633',
    transform: [X0, GSD, 0, Y0, 0, -GSD],
    colorInterp: ['red', 'green', 'blue'],
  });
  const B = 512;
  for (let row = 0; row < w.blocksDown; row++) {
    for (let col = 0; col < w.blocksAcross; col++) {
      const planes = [0, 1, 2].map((b) => {
        const a = new Uint8Array(B * B);
        for (let y = 0; y < B; y++) {
          const gy = row * B + y;
          for (let x = 0; x < B; x++) {
            const gx = col * B + x;
            a[y * B + x] = (((gx * (b + 3)) ^ (gy * 7)) + ((gx * gy) >> 9)) & 255;
          }
        }
        return a;
      });
      await w.writeBlock(col, row, planes);
    }
  }
  await w.close();
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A lon/lat box of `wm` × `hm` metres, 100 m in from the source's top-left corner. */
function bbox(wm: number, hm: number): string {
  const t = transformBetween(parseCrs('EPSG:32633'), WGS84);
  const [w, n] = t.forward(X0 + 100, Y0 - 100);
  const [e, s] = t.forward(X0 + 100 + wm, Y0 - 100 - hm);
  return [w, s, e, n].join(',');
}

interface Peak {
  tiles: number;
  pixels: number;
  maxRssKiB: number;
  highWater: number;
}

function child(args: string[]): Peak {
  const out = execFileSync(process.execPath, ['--expose-gc', CHILD, ...args], { encoding: 'utf8', timeout: 240_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as Peak;
}

function run(mode: 'stream' | 'warp', box: string): Peak {
  return child([mode, source, box, join(dir, `out-${mode}-${Math.random().toString(36).slice(2)}.tif`)]);
}

/** The COG writer alone: a float32 2-band raster (like chm.tif) of width × height px. */
function writer(width: number, height: number, blockSize: number): Peak & { levels: number; live: number } {
  return child(['writer', String(width), String(height), join(dir, `out-writer-${width}.tif`), String(blockSize)]) as Peak & { levels: number; live: number };
}

const MiB = 1024 * 1024;

describe('memory does not grow with the AOI', () => {
  it('tile stream: an AOI 10× larger (√10 per side) peaks at the same memory', { timeout: 300_000 }, () => {
    const small = run('stream', bbox(1100, 1100));
    const large = run('stream', bbox(1100 * Math.sqrt(10), 1100 * Math.sqrt(10)));
    console.log('tile stream', { small, large });
    expect(large.tiles).toBeGreaterThanOrEqual(8 * small.tiles);
    expect(large.pixels).toBeGreaterThan(8 * small.pixels);
    expect(large.maxRssKiB * 1024).toBeLessThan(small.maxRssKiB * 1024 + 64 * MiB);
    expect(large.highWater).toBeLessThan(small.highWater + 24 * MiB);
  });

  it('warp to COG (stream + writer): an AOI 10× taller peaks at the same memory', { timeout: 300_000 }, () => {
    // 1.1 km wide: 4 tile columns; 3 rows against 30 (a single-row run would not yet have built
    // an overview row).
    const small = run('warp', bbox(1100, 900));
    const large = run('warp', bbox(1100, 9000));
    console.log('warp to COG', { small, large });
    expect(large.tiles).toBeGreaterThanOrEqual(8 * small.tiles);
    expect(large.maxRssKiB * 1024).toBeLessThan(small.maxRssKiB * 1024 + 64 * MiB);
    expect(large.highWater).toBeLessThan(small.highWater + 24 * MiB);
  });

  it('COG writer: a raster 10× wider peaks at the same memory (no row of blocks is held)', { timeout: 300_000 }, () => {
    // 256-px blocks, 3 block rows. 16 blocks across already fill the writer's bounded compression
    // and overview pipelines (~13 MiB of blocks at this size); 160 blocks across is where a writer
    // holding one row of blocks per overview level would need ~150 MiB more (the writer before
    // streaming its overviews: +146 MiB live, +145 MiB RSS on this pair).
    const narrow = writer(4096, 768, 256);
    const wide = writer(40960, 768, 256);
    console.log('COG writer', { narrow, wide });
    expect(wide.tiles).toBe(10 * narrow.tiles);
    expect(wide.levels).toBeGreaterThan(narrow.levels);
    expect(wide.live).toBeLessThan(narrow.live + 12 * MiB);
    expect(wide.maxRssKiB * 1024).toBeLessThan(narrow.maxRssKiB * 1024 + 48 * MiB);
  });
});
