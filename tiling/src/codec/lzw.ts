/**
 * TIFF LZW (TIFF 6.0 §13): MSB-first codes of 9 to 12 bits, Clear = 256, EndOfInformation = 257,
 * and the "early change" of code width one code before the table fills.
 *
 * Output is bounded: decoding stops when `expected` bytes have been produced (like libtiff,
 * which decodes only what the strip or tile can hold), so a crafted stream cannot allocate
 * more. A code that refers to an entry not yet defined is an error.
 */
const CLEAR = 256;
const EOI = 257;
const MAX_CODES = 4096;

export class LzwError extends Error {}

export function lzwDecode(input: Uint8Array, expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  if (input.length >= 2 && input[0] === 0 && (input[1]! & 1) === 1) {
    throw new LzwError('old-style (pre-TIFF 6.0, LSB-first) LZW is not supported');
  }
  // Every table entry's string has already been written to the output once: an entry is where
  // (offset) and how long (length) — emitting it is a copy from earlier output, not a walk along
  // prefix links. Entries 0-255 are their own byte.
  const offset = new Int32Array(MAX_CODES);
  const length = new Uint16Array(MAX_CODES).fill(1, 0, 256);
  let next = 258;
  let width = 9;
  let old = -1;
  let oldPos = 0; // where old's string was written
  let pos = 0;
  let bitBuf = 0;
  let bitCount = 0;
  let inPos = 0;
  const nIn = input.length;

  while (pos < expected) {
    while (bitCount < width) {
      if (inPos >= nIn) return pos === expected ? out : out.subarray(0, pos);
      bitBuf = ((bitBuf << 8) | input[inPos++]!) >>> 0;
      bitCount += 8;
    }
    const code = (bitBuf >>> (bitCount - width)) & ((1 << width) - 1);
    bitCount -= width;
    bitBuf &= (1 << bitCount) - 1;

    if (code === EOI) break;
    if (code === CLEAR) {
      next = 258;
      width = 9;
      old = -1;
      continue;
    }
    const at = pos;
    if (old === -1) {
      if (code > 255) throw new LzwError(`invalid first code ${code} after a Clear`);
      out[pos++] = code;
      old = code;
      oldPos = at;
      continue;
    }
    if (code < 256) {
      out[pos++] = code;
    } else if (code < next && code > EOI) {
      // Copy the entry's earlier occurrence (it ends before `pos`: no overlap); clip at the block.
      const src = offset[code]!;
      const n = Math.min(length[code]!, expected - pos);
      for (let k = 0; k < n; k++) out[pos + k] = out[src + k]!;
      pos += n;
    } else if (code === next) {
      // KwKwK: old's string followed by its own first byte.
      const oldLen = length[old]!;
      const n = Math.min(oldLen + 1, expected - pos);
      for (let k = 0; k < n; k++) out[pos + k] = out[oldPos + (k < oldLen ? k : 0)]!;
      pos += n;
    } else {
      throw new LzwError(`code ${code} refers to an undefined table entry (next is ${next})`);
    }
    if (next < MAX_CODES) {
      // The new entry (old's string + this string's first byte) now stands at oldPos.
      offset[next] = oldPos;
      length[next] = length[old]! + 1;
      next++;
      if (next + 1 >= 1 << width && width < 12) width++;
    } else if (code === next) {
      throw new LzwError('code table overflow without a Clear code');
    }
    old = code;
    oldPos = at;
  }
  return pos === expected ? out : out.subarray(0, pos);
}
