/**
 * binary16 / bfloat16 conversions, checked against an independent definition: the nearest
 * representable value (ties to even), found by search over all 65536 bit patterns.
 */
import { describe, expect, it } from 'vitest';
import { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat, halfArrayToFloat32, bf16ArrayToFloat32 } from '@geo-dino/model';

function nearestBySearch(x: number, decode: (b: number) => number): number {
  // Finite, sorted positive values; sign handled separately.
  let best = -1;
  let bestErr = Infinity;
  const ax = Math.abs(x);
  for (let b = 0; b < 0x8000; b++) {
    const v = decode(b);
    if (!Number.isFinite(v)) continue;
    const e = Math.abs(v - ax);
    if (e < bestErr || (e === bestErr && (b & 1) === 0)) {
      best = b;
      bestErr = e;
    }
  }
  return (x < 0 || Object.is(x, -0) ? 0x8000 : 0) | best;
}

describe('half (binary16)', () => {
  it('decodes known bit patterns', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(Number.isNaN(halfToFloat(0x7e00))).toBe(true);
  });

  it('round-trips every finite half exactly', () => {
    for (let h = 0; h < 65536; h++) {
      const v = halfToFloat(h);
      if (Number.isNaN(v)) continue;
      expect(floatToHalf(v)).toBe(h);
    }
  });

  it('rounds to the nearest half, ties to even (checked by exhaustive search)', () => {
    const samples = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -26, 0.1, 1 / 3, -7.77, 1e-6, 65519, 2049, 2051, -0.000123];
    for (let i = 0; i < 200; i++) samples.push((Math.sin(i * 12.9898) * 43758.5453) % 700);
    for (const x of samples) {
      const f = Math.fround(x);
      expect(floatToHalf(f), `x=${f}`).toBe(nearestBySearch(f, halfToFloat));
    }
    expect(floatToHalf(65520)).toBe(0x7c00); // rounds up past the largest finite half
  });

  it('array conversion agrees with the scalar one', () => {
    const bits = Uint16Array.from({ length: 1000 }, (_, i) => (i * 65.537) & 0xffff);
    const out = halfArrayToFloat32(bits);
    bits.forEach((b, i) => {
      const v = halfToFloat(b);
      if (Number.isNaN(v)) expect(Number.isNaN(out[i]!)).toBe(true);
      else expect(out[i]).toBe(v);
    });
  });
});

describe('bfloat16', () => {
  it('widening is the top 16 bits of a float32', () => {
    expect(bf16ToFloat(0x3f80)).toBe(1);
    expect(bf16ToFloat(0xc2f7)).toBe(-123.5);
    const bits = Uint16Array.from([0x3f80, 0x4049, 0x0001, 0x7f7f]);
    expect(Array.from(bf16ArrayToFloat32(bits))).toEqual(Array.from(bits, bf16ToFloat));
  });

  it('narrowing rounds to nearest, ties to even (checked by search)', () => {
    // Values of the form 1.x where the search space is the bf16 values between 1 and 2.
    for (let i = 0; i < 300; i++) {
      const x = Math.fround(1 + ((i * 0.0031) % 1));
      const got = floatToBf16(x);
      let best = 0;
      let bestErr = Infinity;
      for (let b = 0x3f80; b <= 0x4000; b++) {
        const e = Math.abs(bf16ToFloat(b) - x);
        if (e < bestErr || (e === bestErr && (b & 1) === 0)) {
          best = b;
          bestErr = e;
        }
      }
      expect(got, `x=${x}`).toBe(best);
    }
    expect(Number.isNaN(bf16ToFloat(floatToBf16(NaN)))).toBe(true);
  });
});
