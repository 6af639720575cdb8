/**
 * The reader under hostile files (issue 14): tag arrays capped before they are read (a sparse
 * file declaring huge tags reads a few KiB, not hundreds of MiB), and a strip larger than the
 * block cache decoded once for every window read from it, not once per window.
 */
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBlockCache, inlineDecoder, openByteSource, openRaster, type ByteSource } from '@geo-dino/tiling';
import { TiffBuilder, stripImage } from './support/tiff-builder.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gd-hard-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A byte source that counts what is read through it. */
async function counting(path: string): Promise<{ src: ByteSource; read: () => number }> {
  const inner = await openByteSource(path);
  let n = 0;
  const src: ByteSource = {
    name: inner.name,
    size: inner.size,
    read: async (offset, length, what, signal) => {
      n += length;
      return inner.read(offset, length, what, signal);
    },
    readMany: async (ranges, what, signal) => {
      for (const r of ranges) n += r.length;
      return inner.readMany(ranges, what, signal);
    },
    close: () => inner.close(),
  };
  return { src, read: () => n };
}

describe('tag arrays', () => {
  it('a sparse file declaring a 60 MiB private tag and 4 million strip offsets for one strip reads a few KiB', async () => {
    const b = new TiffBuilder();
    const pixels = new Uint8Array(64 * 64).map((_, i) => (i * 7) & 255);
    const data = b.append(pixels);
    // Strip offsets and sizes: the first value is real, the declared count is 4 Mi (16 MiB each).
    const offsets = b.append(new Uint8Array(new Uint32Array([data]).buffer));
    const counts = b.append(new Uint8Array(new Uint32Array([pixels.length]).buffer));
    const entries = stripImage(64, 64, data, pixels.length).filter((e) => e.tag !== 273 && e.tag !== 279);
    const fileSize = 1 << 30;
    const { offset } = b.ifd([
      ...entries,
      { tag: 273, type: 4, values: [0, 0], count: 1 << 22 },
      { tag: 279, type: 4, values: [0, 0], count: 1 << 22 },
      { tag: 65000, type: 7, values: [0, 0, 0, 0, 0, 0, 0, 0], count: 60 << 20 },
    ]);
    b.first(offset);
    const bytes = b.bytes();
    // Point the forged entries at the real values (the builder wrote the placeholders elsewhere).
    const dv = new DataView(bytes.buffer);
    const n = dv.getUint16(offset, true);
    for (let i = 0; i < n; i++) {
      const at = offset + 2 + i * 12;
      const tag = dv.getUint16(at, true);
      if (tag === 273) dv.setUint32(at + 8, offsets, true);
      if (tag === 279) dv.setUint32(at + 8, counts, true);
      if (tag === 65000) dv.setUint32(at + 8, 4096, true);
    }
    const path = join(dir, 'sparse-tags.tif');
    writeFileSync(path, bytes);
    truncateSync(path, fileSize); // sparse: the declared values lie inside the file
    const { src, read } = await counting(path);
    const raster = await openRaster(path, { bytes: src, decoder: inlineDecoder });
    try {
      const got = await raster.read({ x: 0, y: 0, width: 64, height: 64 });
      expect(Buffer.from(got.bands[0] as Uint8Array).equals(Buffer.from(pixels))).toBe(true);
      expect(read()).toBeLessThan(256 * 1024);
    } finally {
      await raster.close();
    }
  });
});

describe('big strips', () => {
  it('a DEFLATE strip larger than the block cache is decoded once for 16 windows, not 16 times', async () => {
    const w = 1024;
    const h = 1024;
    const pixels = new Uint8Array(w * h).map((_, i) => (i % 251) ^ (i >> 10));
    const b = new TiffBuilder();
    const z = deflateSync(pixels);
    const data = b.append(z);
    const { offset } = b.ifd(stripImage(w, h, data, z.length, 8));
    b.first(offset);
    const path = join(dir, 'one-strip.tif');
    writeFileSync(path, b.bytes());
    const cache = createBlockCache(256 * 1024); // a quarter of the strip
    const raster = await openRaster(path, { cache, decoder: inlineDecoder });
    try {
      for (let ty = 0; ty < 4; ty++) {
        for (let tx = 0; tx < 4; tx++) {
          const win = await raster.read({ x: tx * 256, y: ty * 256, width: 256, height: 256 });
          const band = win.bands[0] as Uint8Array;
          for (const [dx, dy] of [[0, 0], [255, 255], [17, 200]] as const) expect(band[dy * 256 + dx]).toBe(pixels[(ty * 256 + dy) * w + tx * 256 + dx]);
        }
      }
      expect(raster.stats.blocksDecoded).toBe(1);
      expect(cache.bytes).toBe(w * h);
    } finally {
      await raster.close();
    }
  });
});
