/**
 * The exported head graph, run by onnxruntime (an implementation of ONNX Conv/Resize/Softmax that
 * geo-dino did not write), against the TypeScript probe that training optimises: the same
 * per-pixel probabilities within float32 rounding — on several feature grids (square, non-square,
 * odd, one cell wide) and with concatenated inputs. If the graph's upsampling were not exactly the
 * interpolation training assumes (e.g. align_corners, or a different clamp), the borders of the
 * patch grid would disagree here.
 *
 * Also: the head directory's loader and its errors.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '@geo-dino/model';
import { createSessionPool } from '@geo-dino/runtime';
import { GeoDinoError } from '@geo-dino/core';
import { HEAD_OUTPUT, loadLandcoverHead, tileProbabilities, toFloat32, writeHeadGraph, type LinearHead } from '../src/index.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'lc-head-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('head graph', () => {
  it('onnxruntime runs the exported head exactly as the probe computes it', async () => {
    const rng = new Rng(21);
    const D = 6;
    const K = 4;
    const dir = tmp();
    for (const inputs of [['features_3'], ['features_1', 'features_3']]) {
      const C = D * inputs.length;
      const head: LinearHead = {
        K,
        C,
        W: Float64Array.from({ length: K * C }, () => rng.normal()),
        b: Float64Array.from({ length: K }, () => rng.normal()),
      };
      const h32 = toFloat32(head);
      const path = join(dir, `head-${inputs.length}.onnx`);
      await writeHeadGraph(path, h32, { inputs, channels: C, inputChannels: D, patch: 16, tileSize: null }, 'test head');
      const pool = await createSessionPool([{ name: 'head', path }], { device: 'cpu', threads: 1 });
      try {
        for (const [gh, gw] of [
          [4, 4],
          [3, 5],
          [1, 2],
          [5, 1],
        ] as const) {
          const maps = inputs.map(() => Float32Array.from({ length: D * gh * gw }, () => rng.normal()));
          const feeds = Object.fromEntries(inputs.map((n, i) => [n, { type: 'float32' as const, dims: [1, D, gh, gw], data: maps[i]!.slice() }]));
          const r = await pool.run(['head'], feeds, { transfer: false });
          const out = r.outputs[HEAD_OUTPUT]!;
          expect(out.dims).toEqual([1, K, gh * 16, gw * 16]);
          const features = new Float32Array(C * gh * gw);
          maps.forEach((m, i) => features.set(m, i * D * gh * gw));
          const ref = tileProbabilities(h32, { features, gh, gw, patch: 16, labels: new Uint8Array(gh * 16 * gw * 16) });
          const got = out.data as Float32Array;
          let max = 0;
          for (let i = 0; i < ref.length; i++) max = Math.max(max, Math.abs(got[i]! - ref[i]!));
          expect(max, `${inputs.length} input(s), grid ${gh}×${gw}`).toBeLessThan(2e-5);
        }
      } finally {
        await pool.close();
      }
    }
  });
});

describe('head directory', () => {
  async function makeHead(dir: string): Promise<void> {
    mkdirSync(dir, { recursive: true });
    const head = toFloat32({ K: 2, C: 3, W: new Float64Array(6).fill(0.5), b: new Float64Array(2) });
    await writeHeadGraph(join(dir, 'head.onnx'), head, { inputs: ['features_3'], channels: 3, inputChannels: 3, patch: 16, tileSize: null }, 'x');
    const { createHash } = await import('node:crypto');
    const sha = createHash('sha256').update(readFileSync(join(dir, 'head.onnx'))).digest('hex');
    const meta = {
      format: 'geo-dino-landcover-head',
      formatVersion: 1,
      name: 'h',
      kind: 'land-cover',
      demo: false,
      graph: { file: 'head.onnx', sha256: sha, inputs: ['features_3'], output: HEAD_OUTPUT },
      classes: [
        { value: 10, name: 'tree', color: '#006400' },
        { value: 80, name: 'water', color: '#0064c8' },
      ],
      nodata: 0,
      features: { outputs: [3], layers: [4], channels: 3, patchSize: 16, upsampling: 'bilinear' },
      backbone: { name: 'b', family: 'chmv2', weightsSha256: 'a'.repeat(64), gsd: 0.6, demo: false },
      training: {},
      metrics: {},
      createdBy: 'test',
    };
    writeFileSync(join(dir, 'landcover-head.json'), JSON.stringify(meta));
  }

  it('loads a head and gives the pipeline its spec', async () => {
    const dir = join(tmp(), 'head');
    await makeHead(dir);
    const h = await loadLandcoverHead(dir);
    expect(h.spec).toMatchObject({ name: 'landcover', kind: 'land-cover', output: HEAD_OUTPUT, nodata: 0, backboneWeightsSha256: 'a'.repeat(64), source: dir });
    expect(h.spec.classes.map((c) => c.value)).toEqual([10, 80]);
  });

  it('refuses what is not a head, a damaged graph, a nodata value that is a class', async () => {
    const root = tmp();
    const err = async (p: Promise<unknown>): Promise<GeoDinoError> => {
      try {
        await p;
      } catch (e) {
        return e as GeoDinoError;
      }
      throw new Error('expected an error');
    };
    const missing = await err(loadLandcoverHead(join(root, 'nope')));
    expect(missing.code).toBe('E_MODEL_NOT_FOUND');
    expect(missing.message).toContain('no such head directory');
    mkdirSync(join(root, 'empty'));
    const empty = await err(loadLandcoverHead(join(root, 'empty')));
    expect(empty.code).toBe('E_MODEL_NOT_FOUND');
    expect(empty.message).toContain('landcover-head.json');

    const dir = join(root, 'head');
    await makeHead(dir);
    const onnx = readFileSync(join(dir, 'head.onnx'));
    onnx[onnx.length - 5] = onnx[onnx.length - 5]! ^ 0xff;
    writeFileSync(join(dir, 'head.onnx'), onnx);
    const damaged = await err(loadLandcoverHead(dir));
    expect(damaged.code).toBe('E_BAD_MODEL');
    expect(damaged.message).toMatch(/head\.onnx: sha256 .* differs/);

    const dir2 = join(root, 'head2');
    await makeHead(dir2);
    const meta = JSON.parse(readFileSync(join(dir2, 'landcover-head.json'), 'utf8')) as { nodata: number };
    meta.nodata = 80;
    writeFileSync(join(dir2, 'landcover-head.json'), JSON.stringify(meta));
    const nod = await err(loadLandcoverHead(dir2));
    expect(nod.code).toBe('E_BAD_MODEL');
    expect(nod.message).toContain('nodata 80 is also a class value');

    const meta3 = { ...meta, nodata: 0, classes: [{ value: 10, name: 'bad name!', color: '#000000' }, { value: 11, name: 'x', color: '#000000' }] };
    writeFileSync(join(dir2, 'landcover-head.json'), JSON.stringify(meta3));
    const badName = await err(loadLandcoverHead(dir2));
    expect(badName.code).toBe('E_BAD_MODEL');
    expect(badName.message).toContain('classes.0.name');
  });
});
