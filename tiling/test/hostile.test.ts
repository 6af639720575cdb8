/**
 * Hostile and corrupt files: each must end in a clear, typed error naming the file, quickly and
 * without allocating what the file claims. The files are built here, byte by byte.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDeflate, deflateSync } from 'node:zlib';
import { GeoDinoError } from '@geo-dino/core';
import { openRaster, inlineDecoder, type BlockDecoder } from '@geo-dino/tiling';
import { sharedData } from '../../test/support/shared-data.js';
import { requireGdal } from '../../test/support/tools.js';
import { diff, gdalRead } from './support/gdal.js';
import { TiffBuilder, stripImage } from './support/tiff-builder.js';

let dir: string;
const file = (name: string, bytes: Uint8Array): string => {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gd-hostile-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function expectError(path: string, code: string, pattern: RegExp, decoder?: BlockDecoder, window?: { x: number; y: number; width: number; height: number }): Promise<GeoDinoError> {
  let caught: unknown;
  try {
    const src = await openRaster(path, decoder ? { decoder } : {});
    try {
      await src.read(window ?? { x: 0, y: 0, width: Math.min(64, src.info.width), height: Math.min(64, src.info.height) });
    } finally {
      await src.close();
    }
  } catch (err) {
    caught = err;
  }
  expect(caught, `${path} should fail`).toBeInstanceOf(GeoDinoError);
  const e = caught as GeoDinoError;
  expect(e.code).toBe(code);
  expect(e.message).toContain(path);
  expect(e.message).toMatch(pattern);
  return e;
}

/** A zlib stream of `mib` MiB of zeros, made in 1 MiB chunks (never holding the whole). */
async function zeroBomb(mib: number): Promise<Uint8Array> {
  const d = createDeflate({ level: 9 });
  const chunks: Buffer[] = [];
  d.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((r) => d.on('end', () => r()));
  const zero = Buffer.alloc(1 << 20);
  for (let i = 0; i < mib; i++) {
    if (!d.write(zero)) await new Promise<void>((r) => d.once('drain', () => r()));
  }
  d.end();
  await done;
  return new Uint8Array(Buffer.concat(chunks));
}

describe('hostile TIFF structures', () => {
  it('an IFD that points to itself: error, no hang', { timeout: 10_000 }, async () => {
    const b = new TiffBuilder();
    const data = b.append(new Uint8Array(16));
    const { offset, nextAt } = b.ifd(stripImage(4, 4, data, 16));
    b.first(offset);
    b.u32(nextAt, offset);
    await expectError(file('self-loop.tif', b.bytes()), 'E_BAD_RASTER', /IFD chain loops/);
  });

  it('a two-IFD cycle: error, no hang', { timeout: 10_000 }, async () => {
    const b = new TiffBuilder();
    const data = b.append(new Uint8Array(16));
    const a = b.ifd(stripImage(4, 4, data, 16));
    const c = b.ifd(stripImage(4, 4, data, 16, 1, [{ tag: 254, type: 4, values: [1] }]), a.offset);
    b.first(a.offset);
    b.u32(a.nextAt, c.offset);
    await expectError(file('cycle.tif', b.bytes()), 'E_BAD_RASTER', /IFD chain loops/);
  });

  it('a chain of 2000 IFDs: E_LIMIT', { timeout: 10_000 }, async () => {
    const b = new TiffBuilder();
    const data = b.append(new Uint8Array(16));
    let prev: { offset: number; nextAt: number } | null = null;
    for (let i = 0; i < 2000; i++) {
      const cur = b.ifd(stripImage(4, 4, data, 16, 1, i ? [{ tag: 254, type: 4, values: [1] }] : []));
      if (prev) b.u32(prev.nextAt, cur.offset);
      else b.first(cur.offset);
      prev = cur;
    }
    await expectError(file('long-chain.tif', b.bytes()), 'E_LIMIT', /more than 1024 IFDs/);
  });

  it('the first IFD past the end of the file', async () => {
    const b = new TiffBuilder();
    b.append(new Uint8Array(8));
    b.first(1_000_000);
    await expectError(file('ifd-past-eof.tif', b.bytes()), 'E_BAD_RASTER', /past the end of the file/);
  });

  it('a strip offset 1 GB past the end of the file: an error, not zeros', async () => {
    const b = new TiffBuilder();
    const { offset } = b.ifd(stripImage(64, 64, 1 << 30, 4096));
    b.first(offset);
    const e = await expectError(file('strip-past-eof.tif', b.bytes()), 'E_BAD_RASTER', /strip \(0, 0\) at level 0: bytes 1073741824-.* past the end of the file/);
    expect(e.details['offset']).toBe(1 << 30);
  });

  it('a forged tag count (2^28 strip offsets) is refused before allocating', async () => {
    const b = new TiffBuilder();
    const entries = stripImage(64, 64, 8, 4096).map((e) => (e.tag === 273 ? { ...e, values: [8, 8], count: 1 << 28 } : e));
    const { offset } = b.ifd(entries);
    b.first(offset);
    await expectError(file('forged-count.tif', b.bytes()), 'E_LIMIT', /StripOffsets holds 1\.0 GiB/);
  });

  it('an IFD claiming 60000 entries: E_LIMIT', async () => {
    const b = new TiffBuilder();
    const at = b.append(new Uint8Array([0x60, 0xea, 0, 0, 0, 0]));
    b.first(at);
    await expectError(file('many-entries.tif', b.bytes()), 'E_LIMIT', /declares 60000 entries/);
  });

  it('one strip of 100000 × 100000 pixels: refused by maxBlockBytes before reading', async () => {
    const b = new TiffBuilder();
    const data = b.append(deflateSync(new Uint8Array(100)));
    const { offset } = b.ifd(stripImage(100_000, 100_000, data, 20, 8));
    b.first(offset);
    await expectError(file('huge-strip.tif', b.bytes()), 'E_LIMIT', /decodes to 9\.3 GiB, above the 256\.0 MiB limit/);
  });

  it('a 16×16 DEFLATE strip that inflates to 256 MiB: stopped at the block size (worker and main thread)', { timeout: 30_000 }, async () => {
    const bomb = await zeroBomb(256);
    const b = new TiffBuilder();
    const data = b.append(bomb);
    const { offset } = b.ifd(stripImage(16, 16, data, bomb.length, 8));
    b.first(offset);
    const path = file('bomb.tif', b.bytes());
    const before = process.memoryUsage().arrayBuffers;
    await expectError(path, 'E_BAD_RASTER', /inflates to more than 256 bytes.*decompression bomb/);
    await expectError(path, 'E_BAD_RASTER', /inflates to more than 256 bytes.*decompression bomb/, inlineDecoder);
    // Inflating the bomb would have needed 256 MiB of ArrayBuffer memory here.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('a truncated DEFLATE block: "truncated", not zeros', async () => {
    const full = deflateSync(new Uint8Array(4096).map((_, i) => (i * 7) & 255));
    const b = new TiffBuilder();
    const data = b.append(full.subarray(0, full.length >> 1));
    const { offset } = b.ifd(stripImage(64, 64, data, full.length >> 1, 8));
    b.first(offset);
    await expectError(file('truncated-deflate.tif', b.bytes()), 'E_BAD_RASTER', /decodes to \d+ bytes, 4096 expected \(truncated or corrupt\)/);
  });

  it('LZW with a code that refers to an undefined entry', async () => {
    const b = new TiffBuilder();
    // Clear (256), 'A', then code 4000 (undefined), in 9-bit MSB-first codes.
    const bits = [256, 65, 4000 & 511].map((c) => c.toString(2).padStart(9, '0')).join('').padEnd(32, '0');
    const bytes = new Uint8Array(4).map((_, i) => parseInt(bits.slice(i * 8, i * 8 + 8), 2));
    const data = b.append(bytes);
    const { offset } = b.ifd(stripImage(8, 8, data, bytes.length, 5));
    b.first(offset);
    await expectError(file('bad-lzw.tif', b.bytes()), 'E_BAD_RASTER', /cannot decode lzw data: code \d+ refers to an undefined table entry/);
  });

  it('a JPEG frame larger than its tile is refused before decoding', async () => {
    // A minimal JPEG header: SOI, SOF0 claiming 60000×60000, 3 components.
    const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0xea, 0x60, 0xea, 0x60, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xff, 0xd9]);
    const b = new TiffBuilder();
    const data = b.append(jpeg);
    const entries = stripImage(16, 16, data, jpeg.length, 7).map((e) =>
      e.tag === 258 ? { ...e, values: [8, 8, 8] } : e.tag === 277 ? { ...e, values: [3] } : e.tag === 262 ? { ...e, values: [6] } : e,
    );
    const { offset } = b.ifd(entries);
    b.first(offset);
    await expectError(file('jpeg-forged-sof.tif', b.bytes()), 'E_BAD_RASTER', /JPEG frame is 60000×60000, larger than the 16×16 block/);
  });

  it('strips sharing one offset: a small window decodes only the strips it needs', async () => {
    const payload = deflateSync(new Uint8Array(4096 * 16).fill(7));
    const b = new TiffBuilder();
    const data = b.append(payload);
    const strips = 256;
    const entries = stripImage(4096, 16 * strips, data, payload.length, 8).map((e) =>
      e.tag === 273 ? { ...e, values: new Array<number>(strips).fill(data) } : e.tag === 279 ? { ...e, values: new Array<number>(strips).fill(payload.length) } : e.tag === 278 ? { ...e, values: [16] } : e,
    );
    const { offset } = b.ifd(entries);
    b.first(offset);
    const src = await openRaster(file('shared-strips.tif', b.bytes()));
    try {
      const d = await src.read({ x: 0, y: 0, width: 100, height: 10 });
      expect(d.bands[0]![99]).toBe(7);
      expect(src.stats.blocksDecoded).toBe(1);
    } finally {
      await src.close();
    }
  });

  it('a window above maxReadBytes: E_LIMIT', async () => {
    const src = await openRaster(sharedData('rasterio', 'RGB.byte.tif'), { limits: { maxReadBytes: 1024 * 1024 } });
    try {
      await expect(src.read({ x: 0, y: 0, width: 791, height: 718 })).rejects.toMatchObject({ code: 'E_LIMIT', message: expect.stringMatching(/maxReadBytes/) });
    } finally {
      await src.close();
    }
  });

  it('not a TIFF, an empty file, a missing file', async () => {
    await expectError(file('text.tif', new TextEncoder().encode('hello, this is not a tiff at all')), 'E_BAD_RASTER', /not a TIFF file/);
    await expectError(file('empty.tif', new Uint8Array(0)), 'E_BAD_RASTER', /not a TIFF file/);
    await expect(openRaster(join(dir, 'missing.tif'))).rejects.toMatchObject({ code: 'E_FILE_NOT_FOUND' });
  });
});

describe('corrupt.tif (real file, a truncated tile)', () => {
  it('reading the damaged tile is a clear error naming the tile', async () => {
    await expectError(sharedData('rasterio', 'corrupt.tif'), 'E_BAD_RASTER', /image tile \(1, 1\) at level 0: bytes 260000-307085 lie past the end of the file \(298232 bytes\)/, undefined, {
      x: 512,
      y: 512,
      width: 10,
      height: 10,
    });
  });

  it('intact tiles and the overviews still read exactly as GDAL reads them', async () => {
    requireGdal();
    const path = sharedData('rasterio', 'corrupt.tif');
    const src = await openRaster(path);
    try {
      const ours = await src.read({ x: 0, y: 0, width: 512, height: 512 });
      const ref = gdalRead(path, [0, 0, 512, 512]);
      ours.bands.forEach((b, i) => expect(diff(b, ref.bands[i]!).count).toBe(0));
      for (const lv of src.info.levels.slice(1)) {
        const o = await src.read({ x: 0, y: 0, width: lv.width, height: lv.height }, { level: lv.level });
        const r = gdalRead(path, [0, 0, lv.width, lv.height], { level: lv.level });
        o.bands.forEach((b, i) => expect(diff(b, r.bands[i]!).count, `level ${lv.level}`).toBe(0));
      }
    } finally {
      await src.close();
    }
  });
});
