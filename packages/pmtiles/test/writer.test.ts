/**
 * The PMTiles writer against the oracles: the `pmtiles` JS reader (header, metadata, every tile,
 * tile ids) and the reference Go CLI (`verify`, `show`). Clustering, run lengths and
 * deduplication are checked on the decoded directories against counts computed here.
 */
import { mkdtempSync, readdirSync, rmSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { zxyToTileId as oracleTileId, tileIdToZxy as oracleZxy } from 'pmtiles';
import { GeoDinoError } from '@geo-dino/core';
import { PMTilesWriter, TileType, zxyToTileId, hilbertIndex, MAX_ROOT_BYTES } from '../src/index.js';
import { allEntries, openArchive } from './support.js';
import { rng } from '../../../test/support/rng.js';
import { runPmtilesCli } from '../../../test/support/pmtiles-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'gd-pmtiles-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Tile {
  z: number;
  x: number;
  y: number;
  bytes: Uint8Array;
}

async function write(path: string, tiles: readonly Tile[], metadata: Record<string, unknown> = { name: 't' }): Promise<void> {
  const w = await PMTilesWriter.create(path, { tileType: TileType.Png });
  for (const t of tiles) await w.addTile(t.z, t.x, t.y, t.bytes);
  await w.finish({ metadata, bounds: [10, 20, 11, 21] });
}

function verifyWithGo(path: string): string {
  const r = runPmtilesCli(['verify', path]);
  expect(r.code, r.output).toBe(0);
  // go-pmtiles logs problems such as out-of-order entries without failing: treat them as failures.
  expect(r.output).not.toMatch(/invalid/i);
  return r.output;
}

describe('tile ids', () => {
  it('match the pmtiles reader for every tile up to zoom 7 and random tiles up to zoom 26', () => {
    for (let z = 0; z <= 7; z++) {
      const n = 2 ** z;
      for (let x = 0; x < n; x++) for (let y = 0; y < n; y++) expect(zxyToTileId(z, x, y)).toBe(oracleTileId(z, x, y));
    }
    const r = rng(7);
    for (let i = 0; i < 5000; i++) {
      const z = 8 + Math.floor(r() * 19);
      const x = Math.floor(r() * 2 ** z);
      const y = Math.floor(r() * 2 ** z);
      const id = zxyToTileId(z, x, y);
      expect(id).toBe(oracleTileId(z, x, y));
      expect(oracleZxy(id)).toEqual([z, x, y]);
    }
  });

  it('are nested: the children of a tile are the four consecutive Hilbert positions after 4·d', () => {
    for (let z = 0; z < 7; z++) {
      const n = 2 ** z;
      for (let x = 0; x < n; x++)
        for (let y = 0; y < n; y++) {
          const d = hilbertIndex(z, x, y);
          const kids = [0, 1, 2, 3].map((k) => hilbertIndex(z + 1, 2 * x + (k & 1), 2 * y + (k >> 1))).sort((a, b) => a - b);
          expect(kids).toEqual([4 * d, 4 * d + 1, 4 * d + 2, 4 * d + 3]);
        }
    }
  });

  it('reject tiles outside the grid with a clear error', () => {
    expect(() => zxyToTileId(3, 8, 0)).toThrow(/3\/8\/0 is outside the zoom 3 grid/);
    expect(() => zxyToTileId(27, 0, 0)).toThrow(GeoDinoError);
  });
});

describe('PMTilesWriter', () => {
  it('writes an archive the JS reader and the Go CLI read back exactly (dedup, runs, any insertion order)', async () => {
    const r = rng(1);
    const tiles: Tile[] = [];
    const distinct = (seed: number): Uint8Array => Uint8Array.from({ length: 20 + (seed % 50) }, (_, i) => (seed * 31 + i * 7) & 0xff);
    // zoom 0..4 fully, with a shared "ocean" tile covering many of them, in shuffled order
    const ocean = Uint8Array.from({ length: 100 }, (_, i) => i);
    for (let z = 0; z <= 4; z++) {
      const n = 2 ** z;
      for (let x = 0; x < n; x++) for (let y = 0; y < n; y++) tiles.push({ z, x, y, bytes: r() < 0.5 ? ocean : distinct(tiles.length) });
    }
    for (let i = tiles.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [tiles[i], tiles[j]] = [tiles[j]!, tiles[i]!];
    }
    const path = join(dir, 'small.pmtiles');
    const metadata = { name: 'small', attribution: '<b>x</b> & "y"', geo_dino: { demo: true, units: 'm' } };
    await write(path, tiles, metadata);

    const archive = openArchive(path);
    const header = await archive.getHeader();
    expect(header.specVersion).toBe(3);
    expect(header.tileType).toBe(TileType.Png);
    expect(header.minZoom).toBe(0);
    expect(header.maxZoom).toBe(4);
    expect(header.clustered).toBe(true);
    expect(header.internalCompression).toBe(2);
    expect(header.tileCompression).toBe(1);
    expect([header.minLon, header.minLat, header.maxLon, header.maxLat]).toEqual([10, 20, 11, 21]);
    expect(await archive.getMetadata()).toEqual(metadata);
    for (const t of tiles) {
      const got = await archive.getZxy(t.z, t.x, t.y);
      expect(got, `${t.z}/${t.x}/${t.y}`).toBeDefined();
      expect(new Uint8Array(got!.data)).toEqual(t.bytes);
    }
    expect(await archive.getZxy(5, 0, 0)).toBeUndefined();

    // Counts computed independently from the input.
    const uniq = new Set(tiles.map((t) => Buffer.from(t.bytes).toString('hex')));
    expect(header.numAddressedTiles).toBe(tiles.length);
    expect(header.numTileContents).toBe(uniq.size);
    const byId = [...tiles].sort((a, b) => oracleTileId(a.z, a.x, a.y) - oracleTileId(b.z, b.x, b.y));
    let runs = 0;
    byId.forEach((t, i) => {
      const prev = byId[i - 1];
      const sameRun = prev && Buffer.compare(Buffer.from(prev.bytes), Buffer.from(t.bytes)) === 0;
      if (!sameRun) runs++;
    });
    expect(header.numTileEntries).toBe(runs);
    expect(header.numTileEntries).toBeLessThan(tiles.length);

    // Clustered: contents appear in tile-id order, duplicates point back, no gaps.
    const { entries } = allEntries(path);
    let cursor = 0;
    const seen = new Set<number>();
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (i > 0) expect(e.tileId).toBeGreaterThanOrEqual(entries[i - 1]!.tileId + entries[i - 1]!.runLength);
      if (seen.has(e.offset)) expect(e.offset).toBeLessThan(cursor);
      else {
        expect(e.offset).toBe(cursor);
        cursor += e.length;
        seen.add(e.offset);
      }
    }
    expect(cursor).toBe(header.tileDataLength);

    const verify = verifyWithGo(path);
    expect(verify).toMatch(/Completed verify/);
    const show = runPmtilesCli(['show', path]);
    expect(show.code, show.output).toBe(0);
    expect(show.output).toMatch(/tile type: png/i);
    expect(show.output).toMatch(/clustered: true/i);
    expect(show.output).toMatch(/min zoom: 0/i);
    expect(show.output).toMatch(/max zoom: 4/i);
    expect(show.output).toMatch(new RegExp(`addressed tiles count: ${tiles.length}`, 'i'));
    // And a tile fetched by the Go CLI matches.
    const t = tiles[3]!;
    const tile = runPmtilesCli(['tile', path, String(t.z), String(t.x), String(t.y)]);
    expect(tile.code).toBe(0);
  });

  it('splits a large index into leaf directories, keeping header and root within the first 16 KiB', async () => {
    const r = rng(2);
    const tiles: Tile[] = [];
    const z = 10;
    const used = new Set<number>();
    while (tiles.length < 40_000) {
      const x = Math.floor(r() * 1024);
      const y = Math.floor(r() * 1024);
      if (used.has(x * 1024 + y)) continue;
      used.add(x * 1024 + y);
      const len = 1 + Math.floor(r() * 120);
      tiles.push({ z, x, y, bytes: Uint8Array.from({ length: len }, () => Math.floor(r() * 256)) });
    }
    const path = join(dir, 'leaves.pmtiles');
    await write(path, tiles);
    const { header, entries, leafDirectories } = allEntries(path);
    expect(leafDirectories).toBeGreaterThan(1);
    expect(header.rootDirectoryOffset + header.rootDirectoryLength).toBeLessThanOrEqual(16384);
    expect(header.rootDirectoryLength).toBeLessThanOrEqual(MAX_ROOT_BYTES);
    expect(entries.length).toBe(tiles.length);

    const archive = openArchive(path);
    for (let i = 0; i < tiles.length; i += 37) {
      const t = tiles[i]!;
      const got = await archive.getZxy(t.z, t.x, t.y);
      expect(new Uint8Array(got!.data)).toEqual(t.bytes);
    }
    verifyWithGo(path);
    const show = runPmtilesCli(['show', path]);
    expect(show.output).toMatch(/tile entries count: 40000/i);
  });

  it('merges consecutive identical tiles into one run-length entry', async () => {
    const same = new Uint8Array([1, 2, 3]);
    const tiles: Tile[] = [];
    for (let x = 0; x < 4; x++) for (let y = 0; y < 4; y++) tiles.push({ z: 2, x, y, bytes: same });
    const path = join(dir, 'runs.pmtiles');
    await write(path, tiles);
    const { header, entries } = allEntries(path);
    expect(entries).toEqual([{ tileId: oracleTileId(2, 0, 0), offset: 0, length: 3, runLength: 16 }]);
    expect(header.numAddressedTiles).toBe(16);
    expect(header.numTileContents).toBe(1);
    expect(header.tileDataLength).toBe(3);
    verifyWithGo(path);
  });

  it('leaves nothing behind on abort, on a duplicate tile, or when finished', async () => {
    const sub = mkdtempSync(join(dir, 'atomic-'));
    const a = await PMTilesWriter.create(join(sub, 'a.pmtiles'), { tileType: TileType.Webp });
    await a.addTile(0, 0, 0, new Uint8Array([1]));
    await a.abort();
    expect(readdirSync(sub)).toEqual([]);

    const b = await PMTilesWriter.create(join(sub, 'b.pmtiles'), { tileType: TileType.Webp });
    await b.addTile(1, 0, 0, new Uint8Array([1]));
    await b.addTile(1, 0, 0, new Uint8Array([2]));
    await expect(b.finish({ metadata: {}, bounds: [0, 0, 1, 1] })).rejects.toThrow(/added twice/);
    expect(readdirSync(sub)).toEqual([]);

    const c = await PMTilesWriter.create(join(sub, 'c.pmtiles'), { tileType: TileType.Webp });
    await expect(c.finish({ metadata: {}, bounds: [0, 0, 1, 1] })).rejects.toThrow(/no tiles/);
    expect(readdirSync(sub)).toEqual([]);

    const d = await PMTilesWriter.create(join(sub, 'd.pmtiles'), { tileType: TileType.Webp });
    await d.addTile(0, 0, 0, new Uint8Array([9, 9]));
    const summary = await d.finish({ metadata: {}, bounds: [0, 0, 1, 1] });
    expect(readdirSync(sub)).toEqual(['d.pmtiles']);
    expect(statSync(join(sub, 'd.pmtiles')).size).toBe(summary.bytes);
    expect(existsSync(join(sub, 'd.pmtiles'))).toBe(true);
  });

  it('honours an abort signal in finish', async () => {
    const sub = mkdtempSync(join(dir, 'signal-'));
    const ac = new AbortController();
    const w = await PMTilesWriter.create(join(sub, 's.pmtiles'), { tileType: TileType.Png, signal: ac.signal });
    await w.addTile(0, 0, 0, new Uint8Array([1]));
    ac.abort();
    await expect(w.finish({ metadata: {}, bounds: [0, 0, 1, 1] })).rejects.toMatchObject({ code: 'E_CANCELLED' });
    expect(readdirSync(sub)).toEqual([]);
  });
});
