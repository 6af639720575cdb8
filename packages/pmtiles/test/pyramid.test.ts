/**
 * The pyramid's scheduling: the four leaves under a parent render together (so reads decode in
 * the worker pool while the main thread warps another leaf), and a failing leaf lets its siblings
 * finish before the error propagates (the caller then removes the files safely).
 */
import { describe, expect, it } from 'vitest';
import { buildPyramid } from '../src/pyramid.js';
import { ORIGIN_SHIFT } from '../src/mercator.js';
import { emptyTile, type TileData } from '../src/tiles.js';
import type { PMTilesWriter } from '../src/writer.js';

const WORLD = { minX: -ORIGIN_SHIFT, minY: -ORIGIN_SHIFT, maxX: ORIGIN_SHIFT, maxY: ORIGIN_SHIFT };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function fakeWriter(): { writer: PMTilesWriter; added: string[] } {
  const added: string[] = [];
  const writer = { addTile: async (z: number, x: number, y: number): Promise<void> => void added.push(`${z}/${x}/${y}`) } as unknown as PMTilesWriter;
  return { writer, added };
}

describe('pyramid scheduling', () => {
  it('renders the four leaves of a parent at once, never more, and writes every tile once', async () => {
    let running = 0;
    let most = 0;
    const rendered: string[] = [];
    const { writer, added } = fakeWriter();
    const result = await buildPyramid({
      kind: 'value',
      minZoom: 0,
      maxZoom: 3,
      bounds: WORLD,
      writer,
      render: async (x, y): Promise<TileData> => {
        running++;
        most = Math.max(most, running);
        await sleep(2);
        running--;
        rendered.push(`${x}/${y}`);
        const t = emptyTile('value');
        if (t.kind === 'value') t.values.fill(x + 8 * y);
        return t;
      },
      encode: async () => new Uint8Array([1]),
    });
    expect(most).toBe(4);
    expect(new Set(rendered).size).toBe(64);
    expect(rendered.length).toBe(64);
    expect(result.tiles).toBe(1 + 4 + 16 + 64);
    expect(new Set(added).size).toBe(85);
  });

  it('a failing leaf: its siblings finish before the error comes out, and nothing runs after', async () => {
    let running = 0;
    let afterFailure = 0;
    let failed = false;
    const { writer } = fakeWriter();
    const run = buildPyramid({
      kind: 'value',
      minZoom: 0,
      maxZoom: 2,
      bounds: WORLD,
      writer,
      render: async (x, y): Promise<TileData> => {
        if (failed) afterFailure++;
        running++;
        try {
          if (x === 1 && y === 0) {
            await sleep(1);
            failed = true;
            throw new Error('source read failed at 2/1/0');
          }
          await sleep(20);
          return emptyTile('value');
        } finally {
          running--;
        }
      },
      encode: async () => new Uint8Array([1]),
    });
    await expect(run).rejects.toThrow('source read failed at 2/1/0');
    expect(running).toBe(0);
    expect(afterFailure).toBe(0);
  });
});
