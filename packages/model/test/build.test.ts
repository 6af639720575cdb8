/**
 * buildModel and model directories: what goes into geo-dino.json, and bad input (no model,
 * unknown architecture, truncated weights, existing output) failing clearly with nothing left
 * half-written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir, readdir, readFile, truncate, writeFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { buildModel, openModelDir, MODEL_META_FILE } from '@geo-dino/model';
import { fixture, tempDir } from './support.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await tempDir('geo-dino-build-');
});
afterAll(async () => tmp.cleanup());

async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.tmp'));
}

async function copyFixture(name: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const f of await readdir(fixture(name))) if (!f.startsWith('reference-')) await copyFile(fixture(name, f), join(to, f));
}

describe('geo-dino.json', () => {
  it('records architecture, normalisation, GSD, I/O, heads, features and the weights hash', async () => {
    const out = join(tmp.dir, 'split');
    const md = await buildModel({ from: fixture('chmv2-vitl-like'), out, split: true, tileSize: 128 });
    const m = md.meta;
    expect(m).toMatchObject({
      format: 'geo-dino-model',
      formatVersion: 1,
      demo: false,
      family: 'chmv2',
      layout: 'split',
      dtype: 'fp32',
      input: { name: 'pixel_values', tileSize: [128, 128], sizeMultiple: 16, exactMultiple: 32 },
      normalization: { mean: [0.42, 0.411, 0.296], std: [0.213, 0.156, 0.143], scale: 255 },
      gsd: 0.6,
    });
    expect(m.features).toMatchObject({ layers: [2, 4, 5, 6], channels: 64, patchSize: 16, graph: 'backbone' });
    expect(m.graphs['backbone']!.outputs.map((o) => [o.name, o.dims])).toEqual([
      ...[0, 1, 2, 3].map((k) => [`features_${k}`, ['batch', 64, 8, 8]]),
      ...[0, 1, 2, 3].map((k) => [`cls_${k}`, ['batch', 64]]),
    ]);
    expect(m.graphs['head:chm']!.outputs.map((o) => o.name)).toEqual(['canopy_height', 'canopy_height_std']);
    expect(m.heads).toEqual([{ name: 'chm', kind: 'canopy-height', graph: 'head:chm', outputs: { height: 'canopy_height', uncertainty: 'canopy_height_std' }, unit: 'm' }]);
    // the hash is sha256 over "name sha256\n" lines of the shards, each an independent sha256 of the file
    const lines: string[] = [];
    for (const f of m.source.files) {
      const sha = createHash('sha256').update(await readFile(fixture('chmv2-vitl-like', f.name))).digest('hex');
      expect(f.sha256).toBe(sha);
      lines.push(`${f.name} ${sha}\n`);
    }
    expect(m.source.files).toHaveLength(3);
    expect(m.source.weightsSha256).toBe(createHash('sha256').update(lines.join('')).digest('hex'));
    expect(await leftovers(tmp.dir)).toEqual([]);
  });

  it('openModelDir rejects a geo-dino.json with a bad field or a missing graph file, naming them', async () => {
    const out = join(tmp.dir, 'edit');
    await buildModel({ from: fixture('chmv2-vit7b-like'), out });
    const metaPath = join(out, MODEL_META_FILE);
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as Record<string, unknown>;
    await writeFile(metaPath, JSON.stringify({ ...meta, gsd: -1 }));
    await expect(openModelDir(out)).rejects.toThrow(/geo-dino\.json: gsd: /);
    await writeFile(metaPath, JSON.stringify({ ...meta, graphs: { model: { ...(meta['graphs'] as Record<string, object>)['model'], file: 'gone.onnx' } } }));
    await expect(openModelDir(out)).rejects.toThrow(/graphs\.model: gone\.onnx is missing/);
    await writeFile(metaPath, '{ nope');
    await expect(openModelDir(out)).rejects.toMatchObject({ code: 'E_BAD_MODEL' });
  });

  it('a directory of Hugging Face weights is not a model yet: the error says to build it', async () => {
    await expect(openModelDir(fixture('chmv2-vitl-like'))).rejects.toThrow(/geo-dino model build --from/);
    await expect(openModelDir(join(tmp.dir, 'nothing-here'))).rejects.toMatchObject({ code: 'E_MODEL_NOT_FOUND' });
  });
});

describe('bad input leaves nothing behind', () => {
  it('no model in the directory', async () => {
    const from = join(tmp.dir, 'empty');
    await mkdir(from);
    await expect(buildModel({ from, out: join(tmp.dir, 'o1') })).rejects.toMatchObject({ code: 'E_MODEL_NOT_FOUND', message: expect.stringMatching(/no config\.json/) });
    await expect(stat(join(tmp.dir, 'o1'))).rejects.toThrow();
  });

  it('an unknown architecture', async () => {
    const from = join(tmp.dir, 'bert');
    await mkdir(from);
    await writeFile(join(from, 'config.json'), JSON.stringify({ model_type: 'bert' }));
    await expect(buildModel({ from, out: join(tmp.dir, 'o2') })).rejects.toThrow(/config\.json: model_type "bert" is not an architecture geo-dino builds/);
  });

  it('a truncated safetensors shard', async () => {
    const from = join(tmp.dir, 'trunc');
    await copyFixture('chmv2-vitl-like', from);
    const shard = join(from, 'model-00002-of-00003.safetensors');
    await truncate(shard, (await stat(shard)).size - 1000);
    const err = await buildModel({ from, out: join(tmp.dir, 'o3') }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_BAD_MODEL' });
    expect((err as Error).message).toMatch(/model-00002-of-00003\.safetensors: truncated: tensor .* ends at byte/);
    await expect(stat(join(tmp.dir, 'o3'))).rejects.toThrow();
    expect(await leftovers(tmp.dir)).toEqual([]);
  });

  it('an existing output directory needs force; force replaces it completely', async () => {
    const out = join(tmp.dir, 'o4');
    await mkdir(out);
    await writeFile(join(out, 'keep.txt'), 'x');
    await expect(buildModel({ from: fixture('chmv2-vit7b-like'), out })).rejects.toThrow(/already exists; .*--force/);
    expect(await readdir(out)).toEqual(['keep.txt']);
    await buildModel({ from: fixture('chmv2-vit7b-like'), out, force: true });
    expect((await readdir(out)).sort()).toEqual([MODEL_META_FILE, 'model.onnx']);
  });

  it('a tile size that is not a multiple of the patch size', async () => {
    await expect(buildModel({ from: fixture('chmv2-vit7b-like'), out: join(tmp.dir, 'o5'), tileSize: 100 })).rejects.toThrow(/--tile-size must be a positive multiple of the patch size 16, got 100/);
  });

  it('cancellation stops the build and removes the staging directory', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(buildModel({ from: fixture('chmv2-vitl-like'), out: join(tmp.dir, 'o6'), signal: ac.signal })).rejects.toMatchObject({ code: 'E_CANCELLED' });
    await expect(stat(join(tmp.dir, 'o6'))).rejects.toThrow();
    expect(await leftovers(tmp.dir)).toEqual([]);
  });
});
