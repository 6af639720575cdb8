/**
 * The tile store: what makes runs resumable and distributable. Round trips are compared with the
 * arrays written (an exact oracle), determinism with a second encoding of an equal record, and
 * damage with bytes changed by the test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GeoDinoError } from '@geo-dino/core';
import { TileFeed, TileStore, decodeTile, encodeTile, type TileRecord } from '../src/index.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-tile-store-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HASH = 'c'.repeat(64);

function record(id: number, seed: number): TileRecord {
  const W = 64;
  const H = 48;
  const n = W * H;
  const height = new Float32Array(n);
  const uncertainty = new Float32Array(n);
  const valid = new Uint8Array(n);
  const source = new Uint16Array(n).fill(0xffff);
  for (let i = 0; i < n; i++) {
    const x = i % W;
    const y = Math.floor(i / W);
    valid[i] = (x + y + seed) % 7 === 0 ? 0 : 1;
    height[i] = valid[i] ? Math.fround(10 + 5 * Math.sin((x + seed) / 5) * Math.cos(y / 7) + 1e-3 * ((i * 2654435761) % 997)) : 0;
    uncertainty[i] = valid[i] ? Math.fround(0.5 + (x % 11) / 10) : 0;
    if (valid[i]) source[i] = x < 30 ? 0 : 3;
  }
  return { id, spec: { row: 2, col: 5, x: 448 * 5, y: 448 * 2, width: W, height: H }, empty: false, validCount: valid.reduce((s, v) => s + v, 0), sourcesUsed: [0, 3], planes: { height, uncertainty, valid, source } };
}

describe('tile encoding', () => {
  it('round-trips every plane exactly and keeps the metadata', async () => {
    const r = record(17, 1);
    const back = await decodeTile(await encodeTile(r, HASH), 'mem', HASH);
    expect(back.id).toBe(17);
    expect(back.spec).toEqual(r.spec);
    expect(back.validCount).toBe(r.validCount);
    expect(back.sourcesUsed).toEqual([0, 3]);
    expect(Object.keys(back.planes)).toEqual(['height', 'uncertainty', 'valid', 'source']);
    for (const k of Object.keys(r.planes)) {
      expect(back.planes[k]!.constructor).toBe(r.planes[k]!.constructor);
      expect(Array.from(back.planes[k]!)).toEqual(Array.from(r.planes[k]!));
    }
  });

  it('is deterministic: equal records give identical bytes, different ones do not', async () => {
    const a = await encodeTile(record(3, 2), HASH);
    const b = await encodeTile(record(3, 2), HASH);
    const c = await encodeTile(record(3, 4), HASH);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
  });

  it('refuses damaged files and files of another configuration', async () => {
    const bytes = await encodeTile(record(5, 3), HASH);
    const flipped = bytes.slice();
    flipped[flipped.length - 10]! ^= 0xff;
    await expect(decodeTile(flipped, 'x.tile', HASH)).rejects.toThrow(/x\.tile: damaged tile file \(checksum mismatch\)/);
    await expect(decodeTile(bytes.slice(0, bytes.length - 3), 'x.tile', HASH)).rejects.toThrow(/truncated/);
    await expect(decodeTile(new Uint8Array(4), 'x.tile', HASH)).rejects.toThrow(/not a geo-dino tile/);
    const other = decodeTile(bytes, 'x.tile', 'd'.repeat(64));
    await expect(other).rejects.toBeInstanceOf(GeoDinoError);
    await expect(decodeTile(bytes, 'x.tile', 'd'.repeat(64))).rejects.toThrow(/another run configuration/);
  });
});

describe('TileStore', () => {
  it('lists only complete tiles, removes leftovers of killed writers, and reads back what it wrote', async () => {
    const sdir = join(dir, 'store1');
    const store = await TileStore.open(sdir, HASH);
    await store.write(record(1, 1));
    await store.write(record(1234, 2));
    await store.write({ id: 7, spec: { row: 0, col: 7, x: 0, y: 0, width: 64, height: 48 }, empty: true, validCount: 0, sourcesUsed: [], planes: {} });
    // A writer killed mid-write leaves a temporary sibling (core's naming): not a tile.
    const tmp = join(sdir, '0', `.99.tile.${process.pid}.0a1b2c3d.tmp`);
    writeFileSync(tmp, 'partial');
    expect([...(await store.completed())].sort((a, b) => a - b)).toEqual([1, 7, 1234]);
    const reopened = await TileStore.open(sdir, HASH);
    expect(existsSync(tmp)).toBe(false);
    const r = await reopened.read(1234);
    expect(Array.from(r!.planes['height']!)).toEqual(Array.from(record(1234, 2).planes['height']!));
    expect((await reopened.read(7))!.empty).toBe(true);
    expect(await reopened.read(8)).toBeNull();
  });

  it('deletes a damaged tile when reading it, so a resume predicts it again', async () => {
    const sdir = join(dir, 'store2');
    const store = await TileStore.open(sdir, HASH);
    await store.write(record(2, 1));
    const p = store.pathOf(2);
    const b = readFileSync(p);
    b[b.length - 1]! ^= 0x55;
    writeFileSync(p, b);
    await expect(store.read(2)).rejects.toThrow(/damaged tile file/);
    expect(existsSync(p)).toBe(false);
    expect((await store.completed()).has(2)).toBe(false);
  });

  it('refuses a store made for another configuration', async () => {
    const sdir = join(dir, 'store3');
    await TileStore.open(sdir, HASH);
    await expect(TileStore.open(sdir, 'e'.repeat(64))).rejects.toThrow(/holds tiles of another run configuration/);
    mkdirSync(join(sdir, 'x'), { recursive: true });
    expect(readdirSync(sdir)).toContain('store.json');
  });
});

describe('TileFeed', () => {
  it('hands over offered records, resolves waits when tiles arrive, and fails pending waits', async () => {
    const feed = new TileFeed([1], 2);
    expect(await feed.wait(1)).toBeNull(); // already in the store: read it from there
    const w = feed.wait(5);
    const r5 = record(5, 0);
    feed.offer(r5);
    expect(await w).toBe(r5);
    // Held records are bounded: the oldest is dropped (then read from the store).
    feed.offer(record(6, 0));
    feed.offer(record(7, 0));
    feed.offer(record(8, 0));
    expect(await feed.wait(6)).toBeNull();
    expect((await feed.wait(8))!.id).toBe(8);
    const pending = feed.wait(9);
    feed.fail(new Error('model died'));
    await expect(pending).rejects.toThrow('model died');
    await expect(feed.wait(10)).rejects.toThrow('model died');
  });
});
