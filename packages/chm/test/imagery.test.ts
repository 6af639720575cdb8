/**
 * The imagery layer's mosaic COG from stored tiles, against a brute-force oracle computed here
 * (every pixel takes the last tile, in row-major order, valid there — the provenance rule) and
 * read back by GDAL. Windows are fed as assembly feeds them, two chunks per block row with a
 * partial block at the right and bottom edges, so window and block borders are covered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@geo-dino/core';
import { crsFromEpsg } from '@geo-dino/tiling';
import { IMAGERY_MOSAIC_FILE, ImageryLayer, imageryPlanes, type RunPlan, type TileRecord } from '../src/index.js';
import { gdalBand } from '../../../test/chm/helpers.js';
import { requireGdal } from '../../../test/support/tools.js';

const W = 200;
const H = 150;
const T = 64;
const STRIDE = 56;
const BLOCK = 64;
const CHUNK = 128;

function plan(): RunPlan {
  return {
    configHash: 'b'.repeat(64),
    grid: { crs: crsFromEpsg(32636), transform: [698400, 0.6, 0, 32400, 0, -0.6], width: W, height: H, gsd: 0.6 },
    tiling: { tileSize: T, overlap: T - STRIDE, stride: STRIDE, rows: 3, cols: 4, tiles: 12, blockSize: BLOCK, window: 'raised-cosine', resampling: 'bilinear' },
  } as unknown as RunPlan;
}

/** Tile (i, j): a colour of its own (red, blue), green from the grid position, a patchy mask. */
function tile(i: number, j: number, withImagery = true): TileRecord {
  const id = i * 4 + j;
  const n = T * T;
  const rgb = new Uint8Array(3 * n);
  const valid = new Uint8Array(n);
  for (let y = 0; y < T; y++) {
    for (let x = 0; x < T; x++) {
      const k = y * T + x;
      const gx = j * STRIDE + x;
      const gy = i * STRIDE + y;
      rgb[k] = 10 + 20 * id;
      rgb[n + k] = (gx + 3 * gy) % 256;
      rgb[2 * n + k] = 200 - 7 * id;
      valid[k] = (gx * 7 + gy * 3 + id * 5) % 11 > 2 && !(id === 5 && x < 40) ? 1 : 0;
    }
  }
  const planes: TileRecord['planes'] = { valid, source: new Uint16Array(n) };
  if (withImagery) Object.assign(planes, imageryPlanes(rgb, valid));
  return { id, spec: { row: i, col: j, x: j * STRIDE, y: i * STRIDE, width: T, height: T }, empty: false, validCount: valid.reduce((s, v) => s + v, 0), sourcesUsed: [0], planes };
}

/** Feed the tiles window by window as assembleRun does. */
async function feed(layer: ImageryLayer, tiles: TileRecord[]): Promise<void> {
  for (let br = 0; br * BLOCK < H; br++) {
    const y0 = br * BLOCK;
    const rows = Math.min(BLOCK, H - y0);
    for (let cx0 = 0; cx0 < W; cx0 += CHUNK) {
      const cw = Math.min(CHUNK, W - cx0);
      layer.begin(cw, rows);
      for (const t of tiles) {
        const s = t.spec;
        if (s.x < cx0 + cw && s.x + s.width > cx0 && s.y < y0 + rows && s.y + s.height > y0) layer.add(t, cx0, y0);
      }
      await layer.end(br, cx0);
    }
  }
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-imagery-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('imagery planes and mosaic', () => {
  it('imageryPlanes splits planar RGB and zeroes pixels that are not valid', () => {
    const rgb = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const p = imageryPlanes(rgb, Uint8Array.from([1, 0, 1, 1]));
    expect([...p.red, ...p.green, ...p.blue]).toEqual([1, 0, 3, 4, 5, 0, 7, 8, 9, 0, 11, 12]);
    expect(() => imageryPlanes(rgb, new Uint8Array(5))).toThrow(/rgb has 12 samples for a 5-pixel tile/);
  });

  it('takes every pixel from the last tile valid there, alpha 255 exactly there (GDAL reads it back)', async () => {
    requireGdal();
    const tiles: TileRecord[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) tiles.push(tile(i, j));
    const out = join(dir, 'ok');
    mkdirSync(out);
    const layer = await ImageryLayer.open(plan(), out);
    await feed(layer, tiles);
    const mosaic = await layer.close();
    expect(mosaic).not.toBeNull();
    expect(mosaic!.path).toBe(join(out, IMAGERY_MOSAIC_FILE));

    // The oracle: paint the tiles in row-major order, each over the previous where it is valid.
    const want = [0, 1, 2, 3].map(() => new Uint8Array(W * H));
    for (const t of tiles) {
      for (let y = 0; y < T; y++) {
        for (let x = 0; x < T; x++) {
          const gx = t.spec.x + x;
          const gy = t.spec.y + y;
          const k = y * T + x;
          if (gx >= W || gy >= H || !t.planes['valid']![k]) continue;
          const o = gy * W + gx;
          want[0]![o] = 10 + 20 * t.id;
          want[1]![o] = (gx + 3 * gy) % 256;
          want[2]![o] = 200 - 7 * t.id;
          want[3]![o] = 255;
        }
      }
    }
    let valid = 0;
    for (let b = 0; b < 4; b++) {
      const got = gdalBand(mosaic!.path, b + 1);
      expect([got.width, got.height]).toEqual([W, H]);
      let bad = 0;
      for (let i = 0; i < W * H; i++) if (got.values[i] !== want[b]![i]) bad++;
      expect(bad, `band ${b + 1}`).toBe(0);
    }
    for (let i = 0; i < W * H; i++) if (want[3]![i]) valid++;
    expect(mosaic!.validPixels).toBe(valid);
    // Tile 5's left part is invalid: the tiles to its left and above show through there.
    expect(valid).toBeLessThan(W * H);
  });

  it('writes nothing when stored tiles lack the imagery planes (a state of an older geo-dino)', async () => {
    const out = join(dir, 'old');
    mkdirSync(out);
    let logged = '';
    const log = createLogger({ json: true, stream: new Writable({ write: (c: Buffer, _e, cb) => ((logged += c.toString()), cb()) }) });
    const layer = await ImageryLayer.open(plan(), out, { log });
    await feed(layer, [tile(0, 0), tile(0, 1, false), tile(1, 0)]);
    expect(await layer.close()).toBeNull();
    expect(readdirSync(out)).toEqual([]);
    expect(logged).toMatch(/imagery\.pmtiles not written: tiles of this run were stored without their imagery/);
  });
});
