/** PackBits (TIFF 6.0 §9), bounded by the size of the block it fills. */
export function packbitsDecode(input: Uint8Array, expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  let i = 0;
  let o = 0;
  while (o < expected && i < input.length) {
    const n = (input[i++]! << 24) >> 24; // signed byte
    if (n >= 0) {
      const count = Math.min(n + 1, expected - o, input.length - i);
      out.set(input.subarray(i, i + count), o);
      i += n + 1;
      o += count;
    } else if (n !== -128) {
      const count = Math.min(1 - n, expected - o);
      if (i >= input.length) break;
      out.fill(input[i++]!, o, o + count);
      o += count;
    }
  }
  return o === expected ? out : out.subarray(0, o);
}
