/**
 * The safetensors reader on files written by Python's `safetensors` (the fixtures), sharded and
 * single-file, F32/F16/BF16/U8, and on broken or hostile files.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { writeFile, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SafetensorsFile, WeightSet, writeSafetensors, bytesOf, halfToFloat, bf16ToFloat } from '@geo-dino/model';
import { fixture, tempDir } from './support.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await tempDir('geo-dino-st-');
});
afterAll(async () => tmp.cleanup());

/** A safetensors file by hand: header JSON and data bytes. */
function raw(header: unknown, data: Uint8Array, headerLen?: number): Uint8Array {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerLen ?? h.length));
  return Buffer.concat([len, h, data]);
}

describe('reading the fixtures written by Python safetensors', () => {
  it('opens a sharded checkpoint through its index and finds every tensor in the right shard', async () => {
    const ws = await WeightSet.open(fixture('chmv2-vitl-like'));
    try {
      expect(ws.files).toHaveLength(3);
      const index = JSON.parse(await readFile(fixture('chmv2-vitl-like', 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
      expect(ws.names().sort()).toEqual(Object.keys(index.weight_map).sort());
      for (const [name, shard] of Object.entries(index.weight_map)) expect(ws.info(name).file.endsWith(shard)).toBe(true);
      expect(ws.info('backbone.model.layer.0.attention.q_proj.weight').shape).toEqual([64, 64]);
      expect(ws.dtypes()).toEqual(['F32']);
    } finally {
      await ws.close();
    }
  });

  it('widens F16 and BF16 tensors exactly (bit-level check against the raw words)', async () => {
    for (const [model, dtype, decode] of [
      ['dinov3-lvd-like', 'F16', halfToFloat],
      ['chmv2-vit7b-like', 'BF16', bf16ToFloat],
    ] as const) {
      const ws = await WeightSet.open(fixture(model));
      try {
        expect(ws.dtypes()).toEqual([dtype]);
        const name = ws.names().find((n) => n.endsWith('norm.weight'))!;
        const f = ws.files[0]!;
        const rawBytes = await f.readRaw(name);
        const words = new Uint16Array(rawBytes.buffer, rawBytes.byteOffset, rawBytes.length / 2);
        const vals = await ws.readFloat32(name);
        expect(vals.length).toBe(words.length);
        words.forEach((w, i) => expect(vals[i]).toBe(Math.fround(decode(w))));
      } finally {
        await ws.close();
      }
    }
  });

  it('reads U8 and F32 tensors of the reference files', async () => {
    const f = await SafetensorsFile.open(fixture('chmv2-vitl-like', 'reference-square.safetensors'));
    try {
      expect(f.info('rgb_uint8')).toMatchObject({ dtype: 'U8', shape: [2, 128, 128, 3] });
      expect((await f.readFloat32('pixel_values')).length).toBe(2 * 3 * 128 * 128);
      expect(f.metadata['layout']).toMatch(/pixel_values/);
    } finally {
      await f.close();
    }
  });
});

describe('writer', () => {
  it('writes files the reader accepts, with the same bytes, header padded to 8', async () => {
    const p = join(tmp.dir, 'w.safetensors');
    const a = Float32Array.from([1, -2, 3.5, 0]);
    const b = Uint16Array.from([0x3c00, 0xc000]);
    await writeSafetensors(p, [
      { name: 'a', dtype: 'F32', shape: [2, 2], data: bytesOf(a) },
      { name: 'b', dtype: 'F16', shape: [2], data: () => bytesOf(b) },
    ], { format: 'pt' });
    const bytes = await readFile(p);
    expect(Number(bytes.readBigUInt64LE(0)) % 8).toBe(0);
    const f = await SafetensorsFile.open(p);
    expect(Array.from(await f.readFloat32('a'))).toEqual([1, -2, 3.5, 0]);
    expect(Array.from(await f.readFloat32('b'))).toEqual([1, -2]);
    expect(f.metadata).toEqual({ format: 'pt' });
    await f.close();
    await expect(writeSafetensors(join(tmp.dir, 'bad.safetensors'), [{ name: 'x', dtype: 'F32', shape: [3], data: new Uint8Array(4) }])).rejects.toThrow(/expected 12/);
    expect((await readdir(tmp.dir)).filter((n) => n.includes('bad'))).toEqual([]);
  });
});

describe('broken and hostile files fail with the file and tensor named', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['tiny', Buffer.from('abc'), /shorter than the 8-byte header length/],
    ['hugeheader', raw('{}', new Uint8Array(0), 2 ** 40), /exceeds the .*-byte limit/],
    ['truncheader', raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(0), 500), /truncated: header says 500 bytes/],
    ['notjson', raw('{not json', new Uint8Array(0)), /not valid JSON/],
    ['array', raw('[1,2]', new Uint8Array(0)), /not a JSON object/],
    ['dtype', raw({ w: { dtype: 'F13', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor w: unknown dtype "F13"/],
    ['shape', raw({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor w: shape \[-1\]/],
    ['count', raw({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, new Uint8Array(12)), /tensor w: 12 bytes of data for shape \[2,2\] F32, which needs 16/],
    ['truncdata', raw({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(10)), /truncated: tensor w ends at byte/],
    [
      'overlap',
      raw({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)),
      /tensors a and b overlap/,
    ],
  ];
  it.each(cases)('%s', async (name, bytes, re) => {
    const p = join(tmp.dir, `${name}.safetensors`);
    await writeFile(p, bytes);
    const err = await SafetensorsFile.open(p).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'E_BAD_MODEL' });
    expect((err as Error).message).toMatch(re);
    expect((err as Error).message).toContain(p);
  });

  it('an index naming a shard that lacks the tensor, or a path outside the directory', async () => {
    const d = join(tmp.dir, 'idx');
    await import('node:fs/promises').then((fs) => fs.mkdir(d));
    await writeFile(join(d, 'model-00001-of-00001.safetensors'), raw({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)));
    await writeFile(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00001-of-00001.safetensors', b: 'model-00001-of-00001.safetensors' } }));
    await expect(WeightSet.open(d)).rejects.toThrow(/tensor b is listed in model-00001-of-00001.safetensors but that shard does not contain it/);
    await writeFile(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: '../x.safetensors' } }));
    await expect(WeightSet.open(d)).rejects.toThrow(/not a plain file name/);
  });

  it('a directory with no weights is E_MODEL_NOT_FOUND', async () => {
    const d = join(tmp.dir, 'empty');
    await import('node:fs/promises').then((fs) => fs.mkdir(d));
    await expect(WeightSet.open(d)).rejects.toMatchObject({ code: 'E_MODEL_NOT_FOUND' });
  });
});
