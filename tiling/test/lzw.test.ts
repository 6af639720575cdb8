/**
 * LZW decoder round trips: a test-side TIFF LZW encoder (MSB-first, 9-12-bit codes, Clear before
 * the table fills, the same code-width schedule the decoder follows and GDAL's files use) feeds
 * the decoder streams with short and long repeats (KwKwK codes, table resets), cut at random
 * block sizes. The reader tests compare real GDAL-written LZW files on top of this.
 */
import { describe, expect, it } from 'vitest';
import { lzwDecode, LzwError } from '../src/codec/lzw.js';
import { rng } from '../../test/support/rng.js';

function lzwEncode(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  let buf = 0;
  let cnt = 0;
  let width = 9;
  const put = (code: number): void => {
    buf = (buf << width) | code;
    cnt += width;
    while (cnt >= 8) {
      out.push((buf >>> (cnt - 8)) & 255);
      cnt -= 8;
    }
    buf &= (1 << cnt) - 1;
  };
  let dict = new Map<number, number>();
  let next = 258;
  put(256);
  let w = -1;
  for (const c of data) {
    if (w === -1) {
      w = c;
      continue;
    }
    const e = dict.get(w * 256 + c);
    if (e !== undefined) {
      w = e;
      continue;
    }
    put(w);
    dict.set(w * 256 + c, next++);
    if (next >= 1 << width && width < 12) width++;
    if (next >= 4093) {
      put(256);
      dict = new Map();
      next = 258;
      width = 9;
    }
    w = c;
  }
  if (w !== -1) put(w);
  put(257);
  if (cnt > 0) out.push((buf << (8 - cnt)) & 255);
  return Uint8Array.from(out);
}

describe('LZW decoder', () => {
  it('round-trips streams with runs, noise and table resets, and stops exactly at the block size', () => {
    const r = rng(11);
    for (let t = 0; t < 120; t++) {
      const n = 1 + Math.floor(r() * 60_000);
      const data = new Uint8Array(n);
      const alphabet = 1 + Math.floor(r() * 255);
      const repeat = r();
      for (let i = 0; i < n; i++) data[i] = i > 0 && r() < repeat ? data[i - 1]! : Math.floor(r() * alphabet);
      const encoded = lzwEncode(data);
      expect(Buffer.from(lzwDecode(encoded, n)).equals(Buffer.from(data))).toBe(true);
      const cut = Math.max(1, Math.floor(n * r()));
      expect(Buffer.from(lzwDecode(encoded, cut)).equals(Buffer.from(data.subarray(0, cut)))).toBe(true);
    }
  });

  it('garbage gives an LzwError or a short result, never another error or a hang', () => {
    const r = rng(5);
    for (let t = 0; t < 3000; t++) {
      const input = Uint8Array.from({ length: 1 + Math.floor(r() * 120) }, () => Math.floor(r() * 256));
      if (r() < 0.5) input[0] = 0x80; // a Clear code first
      const n = 1 + Math.floor(r() * 500);
      try {
        expect(lzwDecode(input, n).length).toBeLessThanOrEqual(n);
      } catch (err) {
        expect(err).toBeInstanceOf(LzwError);
      }
    }
  });
});
