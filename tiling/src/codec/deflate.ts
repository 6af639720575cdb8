/**
 * DEFLATE (zlib stream, TIFF compression 8 and 32946) with Node's native zlib. The output is
 * capped before inflating (`maxOutputLength` = what the block can hold), so a 256 MiB bomb in a
 * 16×16 tile stops after a few bytes with an error instead of allocating.
 */
import { inflateSync, inflateRawSync, deflateSync, deflate as deflateCb, constants } from 'node:zlib';
import { BoundExceeded } from './zstd.js';

export function deflateDecode(input: Uint8Array, cap: number): Uint8Array {
  try {
    // Some writers emit raw deflate without the zlib header; accept both.
    const zlibHeader = input.length >= 2 && (input[0]! & 0x0f) === 8 && ((input[0]! << 8) | input[1]!) % 31 === 0;
    // One output chunk as large as the block: no concatenation copy afterwards.
    const opts = { maxOutputLength: Math.max(1, cap), chunkSize: Math.max(64, cap), finishFlush: constants.Z_SYNC_FLUSH };
    const out = zlibHeader ? inflateSync(input, opts) : inflateRawSync(input, opts);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw new BoundExceeded(`inflates to more than ${cap} bytes`);
    }
    throw err;
  }
}

export function deflateEncode(input: Uint8Array, level = 6): Uint8Array {
  const out = deflateSync(input, { level });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Deflate on libuv's thread pool (used by the COG writer so compression runs in parallel). */
export function deflateEncodeAsync(input: Uint8Array, level = 6): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    deflateCb(input, { level }, (err, out) => (err ? reject(err) : resolve(new Uint8Array(out.buffer, out.byteOffset, out.byteLength))));
  });
}
