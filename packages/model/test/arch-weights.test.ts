/**
 * Architecture parsing and the checkpoint check: parameter counts against the spec's published
 * totals (§5: the Hub's safetensors metadata for CHMv2 is 336,876,800), and clear errors for
 * unknown architectures, missing, extra or mis-shaped tensors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, mkdir, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CHMV2_VITL16_CONFIG,
  KNOWN_CONFIGS,
  WeightSet,
  backboneTensors,
  expectedTensors,
  parseArchitecture,
  resolveWeights,
  writeSafetensors,
  bytesOf,
  numelOf,
} from '@geo-dino/model';
import { fixture, tempDir } from './support.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await tempDir('geo-dino-arch-');
});
afterAll(async () => tmp.cleanup());

const params = (list: { shape: number[]; optional?: boolean }[]): number => list.reduce((s, t) => s + numelOf(t.shape), 0);

describe('architectures', () => {
  it('CHMv2 on ViT-L/16 SAT: 336,876,800 parameters (backbone 303,129,600 + head 33,747,200), as spec §5', () => {
    const a = parseArchitecture(CHMV2_VITL16_CONFIG);
    expect(a.family).toBe('chmv2');
    expect(a.backbone).toMatchObject({ hiddenSize: 1024, layers: 24, heads: 16, headDim: 64, registers: 4, keyBias: false, layerNormEps: 1e-5, outIndices: [6, 12, 18, 24] });
    const all = expectedTensors(a);
    const bb = all.filter((t) => t.name.startsWith('backbone.'));
    expect(params(all)).toBe(336_876_800);
    expect(params(bb)).toBe(303_129_600);
    expect(params(all) - params(bb)).toBe(33_747_200);
  });

  it('ViT-7B/16 SAT: SwiGLU 8192, no q/k/v bias, 32 heads of 128; per block 167,821,312 parameters (spec §5)', () => {
    const a = parseArchitecture(KNOWN_CONFIGS['dinov3-vit7b16-pretrain-sat493m']);
    expect(a.backbone).toMatchObject({ gatedMlp: true, hiddenAct: 'silu', queryBias: false, valueBias: false, headDim: 128, outIndices: [10, 20, 30, 40] });
    const t = backboneTensors(a.backbone);
    expect(params(t.filter((x) => x.name.startsWith('backbone.layer.0.')))).toBe(167_821_312);
  });

  it('every published configuration parses; the web ViT-L has the SAT ViT-L\'s architecture', () => {
    for (const [name, cfg] of Object.entries(KNOWN_CONFIGS)) expect(() => parseArchitecture(cfg, name)).not.toThrow();
    const lvd = parseArchitecture(KNOWN_CONFIGS['dinov3-vitl16-pretrain-lvd1689m']);
    expect(params(backboneTensors(lvd.backbone))).toBe(303_129_600);
    expect(parseArchitecture(KNOWN_CONFIGS['dinov3-vits16-pretrain-lvd1689m']).backbone).toMatchObject({ hiddenSize: 384, heads: 6, headDim: 64, outIndices: [3, 6, 9, 12] });
  });

  it('reads the fixtures\' configs, including CHMv2 and a bare DINOv3ViTModel', async () => {
    const l = parseArchitecture(JSON.parse(await readFile(fixture('chmv2-vitl-like', 'config.json'), 'utf8')));
    expect(l.backbone.outIndices).toEqual([2, 4, 5, 6]);
    expect(l.head).toMatchObject({ postProcessChannels: [8, 16, 32, 64], fusionHiddenSize: 32, bins: 256 });
    const b = parseArchitecture(JSON.parse(await readFile(fixture('dinov3-lvd-like', 'config.json'), 'utf8')));
    expect(b.family).toBe('dinov3_vit');
    // a DINOv3ViTModel's out_indices is transformers' default; geo-dino uses four even layers
    expect(b.backbone.outIndices).toEqual([1, 2, 3, 4]);
  });

  it('CHMv2 without backbone_config uses transformers\' injected defaults (key_bias, eps 1e-6)', () => {
    const a = parseArchitecture({ model_type: 'chmv2' });
    expect(a.backbone).toMatchObject({ keyBias: true, layerNormEps: 1e-6, hiddenSize: 1024, outIndices: [6, 12, 18, 24] });
  });

  it.each([
    [{ model_type: 'vit' }, /model_type "vit" is not an architecture geo-dino builds/],
    [{}, /model_type undefined is not an architecture/],
    [{ model_type: 'dinov3_vit', hidden_size: 100, num_attention_heads: 3 }, /num_attention_heads: 3 does not divide hidden_size 100/],
    [{ model_type: 'dinov3_vit', hidden_act: 'relu' }, /hidden_act: "relu" is not supported/],
    [{ model_type: 'chmv2', bins_strategy: 'linear' }, /bins_strategy: "linear" is not supported/],
    [{ model_type: 'chmv2', backbone_config: { model_type: 'dinov2' } }, /backbone_config.model_type: backbone type "dinov2"/],
    [{ model_type: 'dinov3_vit', num_channels: 4 }, /num_channels: geo-dino models take RGB/],
    [{ model_type: 'chmv2', backbone_config: { model_type: 'dinov3_vit', out_indices: [1, 2] } }, /takes four feature maps/],
    [{ model_type: 'dinov3_vit', layer_norm_eps: 'small' }, /layer_norm_eps: expected a number/],
  ])('rejects %j', (cfg, re) => {
    expect(() => parseArchitecture(cfg, 'my/config.json')).toThrow(re);
    try {
      parseArchitecture(cfg, 'my/config.json');
    } catch (e) {
      expect(e).toMatchObject({ code: 'E_BAD_MODEL' });
      expect((e as Error).message.startsWith('my/config.json: ')).toBe(true);
    }
  });
});

describe('checkpoint check', () => {
  const cfgPath = () => fixture('chmv2-vit7b-like', 'config.json');

  /** A copy of the 7B-like fixture with its tensors edited. */
  async function variant(name: string, edit: (tensors: Map<string, { dtype: 'F32' | 'BF16' | 'I32'; shape: number[]; data: Uint8Array }>) => void): Promise<string> {
    const d = join(tmp.dir, name);
    await mkdir(d, { recursive: true });
    await copyFile(cfgPath(), join(d, 'config.json'));
    const ws = await WeightSet.open(fixture('chmv2-vit7b-like'));
    const m = new Map<string, { dtype: 'F32' | 'BF16' | 'I32'; shape: number[]; data: Uint8Array }>();
    for (const n of ws.names()) m.set(n, { dtype: 'F32', shape: ws.info(n).shape, data: bytesOf(await ws.readFloat32(n)) });
    await ws.close();
    edit(m);
    await writeSafetensors(join(d, 'model.safetensors'), [...m].map(([n, t]) => ({ name: n, ...t })));
    return d;
  }

  async function check(dir: string): Promise<unknown> {
    const arch = parseArchitecture(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')), 'config.json');
    const ws = await WeightSet.open(dir);
    try {
      return await resolveWeights(arch, ws, 'config.json');
    } finally {
      await ws.close();
    }
  }

  it('accepts both on-disk layer prefixes (layer.N and model.layer.N)', async () => {
    await expect(check(fixture('chmv2-vit7b-like'))).resolves.toBeDefined(); // backbone.layer.N
    await expect(check(fixture('chmv2-vitl-like'))).resolves.toBeDefined(); // backbone.model.layer.N
  });

  it('missing tensor', async () => {
    const d = await variant('missing', (m) => m.delete('head.convs.2.weight'));
    await expect(check(d)).rejects.toThrow(/missing tensor head\.convs\.2\.weight required by config\.json/);
  });

  it('extra tensor', async () => {
    const d = await variant('extra', (m) => m.set('head.surprise.weight', { dtype: 'F32', shape: [2], data: new Uint8Array(8) }));
    await expect(check(d)).rejects.toThrow(/model\.safetensors: unexpected tensor head\.surprise\.weight/);
  });

  it('wrong shape', async () => {
    const d = await variant('shape', (m) => m.set('backbone.layer.1.attention.q_proj.weight', { dtype: 'F32', shape: [64, 32], data: new Uint8Array(64 * 32 * 4) }));
    await expect(check(d)).rejects.toThrow(/tensor backbone\.layer\.1\.attention\.q_proj\.weight has shape \[64,32\], expected \[64,64\]/);
  });

  it('integer dtype', async () => {
    const d = await variant('dtype', (m) => {
      const t = m.get('backbone.norm.weight')!;
      m.set('backbone.norm.weight', { ...t, dtype: 'I32' });
    });
    await expect(check(d)).rejects.toThrow(/tensor backbone\.norm\.weight has dtype I32/);
  });

  it('a zero K bias is tolerated when key_bias=false; a non-zero one is an error', async () => {
    const zero = await variant('kzero', (m) => m.set('backbone.layer.0.attention.k_proj.bias', { dtype: 'F32', shape: [64], data: new Uint8Array(256) }));
    await expect(check(zero)).resolves.toBeDefined();
    const nz = await variant('knz', (m) => m.set('backbone.layer.0.attention.k_proj.bias', { dtype: 'F32', shape: [64], data: bytesOf(new Float32Array(64).fill(0.5)) }));
    await expect(check(nz)).rejects.toThrow(/non-zero key bias/);
  });
});
