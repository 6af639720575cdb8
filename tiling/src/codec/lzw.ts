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
  const prefix = new Int16Array(MAX_CODES);
  const suffix = new Uint8Array(MAX_CODES);
  const first = new Uint8Array(MAX_CODES);
  const length = new Uint16Array(MAX_CODES);
  for (let i = 0; i < 256; i++) {
    prefix[i] = -1;
    suffix[i] = i;
    first[i] = i;
    length[i] = 1;
  }
  let next = 258;
  let width = 9;
  let old = -1;
  let pos = 0;
  let bitBuf = 0;
  let bitCount = 0;
  let inPos = 0;
  const nIn = input.length;

  const emit = (code: number): void => {
    const len = length[code]!;
    let end = pos + len;
    let c = code;
    // Write backwards; drop what does not fit (the block is full).
    if (end > expected) {
      let skip = end - expected;
      while (skip > 0) {
        c = prefix[c]!;
        skip--;
      }
      end = expected;
    }
    for (let i = end - 1; i >= pos; i--) {
      out[i] = suffix[c]!;
      c = prefix[c]!;
    }
    pos = end;
  };

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
    if (old === -1) {
      if (code > 255) throw new LzwError(`invalid first code ${code} after a Clear`);
      emit(code);
      old = code;
      continue;
    }
    let firstByte: number;
    if (code < next) {
      emit(code);
      firstByte = first[code]!;
    } else if (code === next) {
      firstByte = first[old]!;
    } else {
      throw new LzwError(`code ${code} refers to an undefined table entry (next is ${next})`);
    }
    if (next < MAX_CODES) {
      prefix[next] = old;
      suffix[next] = firstByte;
      first[next] = first[old]!;
      length[next] = length[old]! + 1;
      if (code === next) emit(next);
      next++;
      if (next + 1 >= 1 << width && width < 12) width++;
    } else if (code === next) {
      throw new LzwError('code table overflow without a Clear code');
    }
    old = code;
  }
  return pos === expected ? out : out.subarray(0, pos);
}
