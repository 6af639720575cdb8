/**
 * The hand-written protobuf/ONNX writer: wire-format bytes against the protobuf encoding spec's
 * examples, and whole models that onnxruntime loads and runs, with inline and external data,
 * checked against the same math done in TypeScript.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Graph, ProtoMessage, attr, lazyBytes, saveModel, bytesOf } from '@geo-dino/model';
import { tempDir } from './support.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await tempDir('geo-dino-onnx-');
});
afterAll(async () => tmp.cleanup());

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('protobuf wire format', () => {
  it('varints, negative int64, strings, floats and nested messages', () => {
    expect(hex(new ProtoMessage().int(1, 150).toBytes())).toBe('089601'); // the spec's example
    expect(hex(new ProtoMessage().int(3, -1).toBytes())).toBe('18ffffffffffffffffff01');
    expect(hex(new ProtoMessage().string(2, 'testing').toBytes())).toBe('120774657374696e67');
    expect(hex(new ProtoMessage().float(2, 1).toBytes())).toBe('150000803f');
    const inner = new ProtoMessage().int(1, 150);
    expect(hex(new ProtoMessage().message(3, inner).toBytes())).toBe('1a03089601');
    expect(hex(new ProtoMessage().packedInts(4, [3, 270, 86942]).toBytes())).toBe('2206038e029ea705');
  });
});

function matmulBias(x: Float32Array, w: Float32Array, b: Float32Array, n: number, k: number, m: number): Float32Array {
  const y = new Float32Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) {
    let s = 0;
    for (let t = 0; t < k; t++) s += x[i * k + t]! * w[t * m + j]!;
    y[i * m + j] = s + b[j]!;
  }
  return y;
}

async function tinyModel(path: string, external: 'never' | 'always', K = 16, M = 32): Promise<{ w: Float32Array; b: Float32Array }> {
  const g = new Graph('tiny');
  const x = g.input('x', 'float32', ['n', K]);
  const w = Float32Array.from({ length: K * M }, (_, i) => Math.sin(i) * 0.5);
  const b = Float32Array.from({ length: M }, (_, i) => i / 10);
  let produced = 0;
  const W = g.initializer('W', 'float32', [K, M], lazyBytes(w.byteLength, () => {
    produced++;
    return bytesOf(w);
  }));
  const B = g.constF32(b, [M], 'B');
  const y = g.op1('Add', [g.op1('MatMul', [x, W]), B]);
  const r = g.op1('Relu', [g.op1('Transpose', [y], { perm: attr.ints([1, 0]) })]);
  g.output(r, 'y', 'float32', [M, 'n']);
  const saved = await saveModel(g, path, { opsets: [{ domain: '', version: 20 }], irVersion: 9, externalData: external });
  expect(produced).toBe(1);
  if (external === 'always') {
    expect(saved.externalDataFile).toBe(`${path}.data`);
    expect((await stat(`${path}.data`)).size).toBe(w.byteLength);
    // the model file itself does not hold the weights
    expect(saved.bytes).toBeLessThan(w.byteLength);
  }
  return { w, b };
}

describe('models onnxruntime runs', () => {
  it.each(['never', 'always'] as const)('MatMul + Add + Transpose + Relu, data %s external', async (mode) => {
    const path = join(tmp.dir, `tiny-${mode}.onnx`);
    const { w, b } = await tinyModel(path, mode);
    const s = await ort.InferenceSession.create(path);
    const x = Float32Array.from({ length: 3 * 16 }, (_, i) => Math.cos(i));
    const out = await s.run({ x: new ort.Tensor('float32', x, [3, 16]) });
    const y = out['y']!;
    expect(y.dims).toEqual([32, 3]);
    const ref = matmulBias(x, w, b, 3, 16, 32);
    const got = y.data as Float32Array;
    for (let j = 0; j < 32; j++) for (let i = 0; i < 3; i++) expect(got[j * 3 + i]).toBeCloseTo(Math.max(0, ref[i * 32 + j]!), 5);
    await s.release();
  });

  it('writes the model atomically: a failing tensor producer leaves no file', async () => {
    const g = new Graph('bad');
    const x = g.input('x', 'float32', [1]);
    const W = g.initializer('W', 'float32', [1], lazyBytes(4, () => {
      throw new Error('producer failed');
    }));
    g.output(g.op1('Add', [x, W]), 'y', 'float32', [1]);
    const path = join(tmp.dir, 'bad.onnx');
    await expect(saveModel(g, path, { opsets: [{ domain: '', version: 20 }], irVersion: 9 })).rejects.toThrow(/producer failed/);
    await expect(readFile(path)).rejects.toThrow(/ENOENT/);
  });

  it('rejects duplicate value names and wrong initializer sizes when building', () => {
    const g = new Graph('g');
    g.input('x', 'float32', [1]);
    expect(() => g.input('x', 'float32', [1])).toThrow(/duplicate value name x/);
    expect(() => g.initializer('w', 'float32', [2], new Uint8Array(4))).toThrow(/expected 8/);
  });
});
