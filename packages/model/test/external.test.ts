/**
 * Accepting an ONNX file exported elsewhere: its inputs and outputs are checked with
 * onnxruntime and a probe run before it is wrapped in a model directory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Graph, attr, buildModel, importOnnxModel, openModel, saveModel, checkExternalIo, type Dim } from '@geo-dino/model';
import { fixture, maxAbsDiff, reference, tempDir } from './support.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await tempDir('geo-dino-ext-');
});
afterAll(async () => tmp.cleanup());

/** An "exported" depth model: predicted_depth [B, H, W] = 10 · mean over channels + 20, optionally downsampled. */
async function exported(name: string, opts: { half?: boolean; inputs?: number; outDims?: Dim[] } = {}): Promise<string> {
  const g = new Graph('exported');
  const x = g.input('pixel_values', 'float32', ['batch', 3, 'height', 'width']);
  if (opts.inputs === 2) g.input('mask', 'float32', ['batch', 1, 'height', 'width']);
  let m = g.op1('ReduceMean', [x, g.constI64([1])], { keepdims: attr.i(0) });
  m = g.op1('Add', [g.op1('Mul', [m, g.constF32([10], [])]), g.constF32([20], [])]);
  if (opts.half) m = g.op1('Slice', [m, g.constI64([0, 0]), g.constI64([2 ** 30, 2 ** 30]), g.constI64([1, 2]), g.constI64([1, 2])]);
  g.output(m, 'predicted_depth', 'float32', opts.outDims ?? ['batch', 'height', 'width']);
  const p = join(tmp.dir, `${name}.onnx`);
  await saveModel(g, p, { opsets: [{ domain: '', version: 20 }], irVersion: 9 });
  return p;
}

describe('importing an exported ONNX model', () => {
  it('accepts pixel_values → predicted_depth and runs it through the same runner (no uncertainty)', async () => {
    const md = await importOnnxModel(await exported('good'), { out: join(tmp.dir, 'good') });
    expect(md.meta).toMatchObject({ family: 'external', layout: 'external', heads: [{ outputs: { height: 'predicted_depth', uncertainty: null } }] });
    const r = await openModel(md.dir, { device: 'cpu' });
    try {
      const H = 32;
      const W = 48;
      const px = Float32Array.from({ length: 3 * H * W }, (_, i) => Math.sin(i));
      const res = await r.runChm(px.slice(), 1, H, W);
      expect(res.dims).toEqual([1, H, W]);
      expect(res.uncertainty).toBeNull();
      for (let p = 0; p < H * W; p += 97) {
        const want = ((px[p]! + px[H * W + p]! + px[2 * H * W + p]!) / 3) * 10 + 20;
        expect(res.height[p]).toBeCloseTo(want, 4);
      }
    } finally {
      await r.close();
    }
  });

  it('accepts a geo-dino-built fused model as an external file, uncertainty included', async () => {
    const built = await buildModel({ from: fixture('chmv2-vit7b-like'), out: join(tmp.dir, 'b') });
    const md = await importOnnxModel(built.graphPath('model'), { out: join(tmp.dir, 'reimported') });
    expect(md.meta.heads[0]!.outputs).toEqual({ height: 'canopy_height', uncertainty: 'canopy_height_std' });
    const r = await openModel(md.dir, { device: 'cpu' });
    const ref = await reference('chmv2-vit7b-like', 'square');
    try {
      const res = await r.runChm(await ref.f32('pixel_values'), 1, 64, 64);
      expect(maxAbsDiff(res.height, await ref.f32('predicted_depth'))).toBeLessThan(1e-3);
      expect(res.uncertainty).not.toBeNull();
    } finally {
      await ref.close();
      await r.close();
    }
  });

  it('refuses models whose I/O does not fit, naming what is wrong', async () => {
    await expect(importOnnxModel(await exported('two', { inputs: 2 }), { out: join(tmp.dir, 'two') })).rejects.toThrow(/expected one input .* found 2: pixel_values, mask/);
    await expect(importOnnxModel(await exported('half', { half: true }), { out: join(tmp.dir, 'half') })).rejects.toThrow(/a 64×64 probe gave a 64×32 height map/);
    await expect(importOnnxModel(join(tmp.dir, 'missing.onnx'), { out: join(tmp.dir, 'm') })).rejects.toMatchObject({ code: 'E_FILE_NOT_FOUND' });
    expect(() => checkExternalIo('f.onnx', [{ name: 'x', type: 'uint8', dims: [1, 3, 8, 8] }], [])).toThrow(/input x is uint8 \[1, 3, 8, 8\]; expected float32/);
    expect(() =>
      checkExternalIo('f.onnx', [{ name: 'x', type: 'float32', dims: ['b', 3, 'h', 'w'] }], [{ name: 'logits', type: 'float32', dims: ['b', 256, 'h', 'w'] }]),
    ).toThrow(/logits \[b, 256, h, w\] has 256 channels/);
  });
});
