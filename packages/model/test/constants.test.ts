/**
 * RoPE tables and mix-log bins against transformers' own code (constants.safetensors, written by
 * the reference script) and the spec's test vectors (spec §1.3, §4.4).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, mixlogBins, ropeTables, ropeInvFreq } from '@geo-dino/model';
import { fixture, maxAbsDiff } from './support.js';

let c: SafetensorsFile;
beforeAll(async () => {
  c = await SafetensorsFile.open(fixture('constants.safetensors'));
});
afterAll(async () => c.close());

describe('RoPE (2-D axial, "separate" coordinates)', () => {
  it('32×32 grid, head_dim 64: cos/sin equal transformers\' tables', async () => {
    const t = ropeTables(32, 32, 64, 100, 0);
    expect(maxAbsDiff(t.cos, await c.readFloat32('rope_cos_32x32_d64'))).toBeLessThan(2e-6);
    expect(maxAbsDiff(t.sin, await c.readFloat32('rope_sin_32x32_d64'))).toBeLessThan(2e-6);
  });

  it('non-square 6×10 grid, head_dim 128 (ViT-7B): each axis normalised by its own length', async () => {
    const t = ropeTables(6, 10, 128, 100, 0);
    expect(maxAbsDiff(t.cos, await c.readFloat32('rope_cos_6x10_d128'))).toBeLessThan(2e-6);
    expect(maxAbsDiff(t.sin, await c.readFloat32('rope_sin_6x10_d128'))).toBeLessThan(2e-6);
  });

  it('spec §1.3 test vector (512² input)', () => {
    const t = ropeTables(32, 32, 64, 100, 5);
    const sin0 = Array.from(t.sin.subarray(0, 4));
    [0.1950902, 0.9890818, 0.2775919, -0.5436629].forEach((v, i) => expect(sin0[i]).toBeCloseTo(v, 6));
    [0.9807853, -0.1473676, -0.9606991, -0.8393037].forEach((v, i) => expect(t.sin.length && t.cos[5 * 64 + i]).toBeCloseTo(v, 6));
    expect(t.cos[5 * 64 + 15]).toBeCloseTo(0.99670756, 6);
    // patch 1 (row 0, column 1): x changes, y does not
    expect(t.sin[64 + 16]).toBeCloseTo(0.5555703, 6);
    expect(t.sin[64 + 0]).toBeCloseTo(0.1950902, 6);
    // the 5 prefix tokens are not rotated: cos 1, sin 0
    expect(Array.from(t.cos.subarray(0, 5 * 64)).every((v) => v === 1)).toBe(true);
    expect(Array.from(t.sinSigned.subarray(0, 5 * 64)).every((v) => v === 0)).toBe(true);
    // rotate-half sign folded into the first half
    expect(t.sinSigned[5 * 64]).toBeCloseTo(-0.1950902, 6);
    expect(t.sinSigned[5 * 64 + 32]).toBeCloseTo(0.1950902, 6);
  });

  it('periods: 1/inv_freq = 100^(i/16) and 100^(i/32)', () => {
    const l = ropeInvFreq(64, 100);
    expect(l).toHaveLength(16);
    expect(1 / l[15]!).toBeCloseTo(74.98941802978516, 3);
    const b = ropeInvFreq(128, 100);
    expect(b).toHaveLength(32);
    expect(1 / b[31]!).toBeCloseTo(86.596435546875, 3);
  });
});

describe('CHMv2 mix-log bins', () => {
  it('equal transformers\' fp32 bins (to fp32 rounding-order differences) and the spec values', async () => {
    const ref = await c.readFloat32('bins');
    const ours = mixlogBins(256, 0.001, 96);
    // torch's vectorised linspace rounds in a different order: a few ulp, < 1e-6 m after ×8.
    expect(maxAbsDiff(ours, ref)).toBeLessThan(1e-6);
    expect(ours[0]).toBeCloseTo(0.001, 9);
    expect(ours[128]).toBeCloseTo(3.0793971, 6);
    expect(ours[255]).toBe(12);
    expect(ours.reduce((s, v) => s + v, 0)).toBeCloseTo(1060.702, 2);
  });
});
