/**
 * ZSTD through fzstd's streaming decoder, with output bounded: decoding stops with an error as
 * soon as it would produce more than the block can hold (decompression bombs never allocate).
 */
import { Decompress } from 'fzstd';

export class BoundExceeded extends Error {}

export function zstdDecode(input: Uint8Array, cap: number): Uint8Array {
  const out = new Uint8Array(cap);
  let pos = 0;
  const d = new Decompress((chunk) => {
    if (pos + chunk.length > cap) throw new BoundExceeded(`decodes to more than ${cap} bytes`);
    out.set(chunk, pos);
    pos += chunk.length;
  });
  d.push(input, true);
  return pos === cap ? out : out.subarray(0, pos);
}
