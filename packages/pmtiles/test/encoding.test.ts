/**
 * Value encodings against their published formulas (not our decoder): Terrarium
 * (value = R·256 + G + B/256 − 32768, Mapzen/MapLibre), nodata in alpha distinct from 0 m, the
 * centimetre kept; and the rg16 encoding of archives written before 0.2 still decodes.
 */
import { describe, expect, it } from 'vitest';
import { decodeValueTile, encodeValueTile, valueEncodingFor, type ValueEncoding } from '@geo-dino/pmtiles';

describe('value encodings', () => {
  it('Terrarium: every value from -50 m to 700 m in 1 mm steps within 2 mm by the published formula; nodata is alpha 0, 0 m is opaque', () => {
    const enc = valueEncodingFor();
    expect(enc.type).toBe('terrarium');
    const n = 750_001;
    const values = new Float32Array(n + 1);
    for (let i = 0; i < n; i++) values[i] = Math.fround(-50 + i * 0.001);
    values[n] = NaN;
    const { rgba, clamped } = encodeValueTile(values, enc);
    expect(clamped).toBe(0);
    let worst = 0;
    let transparent = 0;
    for (let i = 0; i < n; i++) {
      if (rgba[i * 4 + 3] !== 255) transparent++;
      worst = Math.max(worst, Math.abs(rgba[i * 4]! * 256 + rgba[i * 4 + 1]! + rgba[i * 4 + 2]! / 256 - 32768 - values[i]!));
    }
    expect(transparent).toBe(0);
    expect(worst).toBeLessThanOrEqual(1 / 512 + 1e-4);
    expect(rgba[n * 4 + 3]).toBe(0);
    const zero = encodeValueTile(new Float32Array([0]), enc).rgba;
    expect([...zero]).toEqual([128, 0, 0, 255]);
    const back = decodeValueTile(rgba, enc);
    expect(Number.isNaN(back[n]!)).toBe(true);
    expect(Math.abs(back[50_000]! - values[50_000]!)).toBeLessThan(0.01);
  });

  it('rg16 tiles of older archives still decode: offset + (R·256 + G) · scale', () => {
    const enc: ValueEncoding = { type: 'rg16', scale: 0.01, offset: 0, mask: 'alpha' };
    const rgba = new Uint8Array([0x0f, 0xa0, 0, 255, 0, 0, 0, 0]);
    const v = decodeValueTile(rgba, enc);
    expect(v[0]).toBeCloseTo((0x0f * 256 + 0xa0) * 0.01, 5);
    expect(Number.isNaN(v[1]!)).toBe(true);
  });
});
