/**
 * `geo-dino model build|info|pull|demo` as a user runs them: exit codes, JSON results, and
 * error lines that name the flag or file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './support/cli.js';
import { REPO_ROOT } from './support/shared-data.js';
import { startHubServer, type HubServer } from './support/hf-hub-server.js';

const FIX = join(REPO_ROOT, 'test', 'fixtures', 'model');
let tmp: string;
let env: NodeJS.ProcessEnv;
let hub: HubServer;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'geo-dino-model-cli-'));
  env = { GEO_DINO_HOME: join(tmp, 'home'), HF_TOKEN: '' };
  const files: Record<string, Uint8Array> = {};
  for (const f of await readdir(join(FIX, 'chmv2-vit7b-like'))) {
    if (!f.startsWith('reference-')) files[f] = new Uint8Array(await readFile(join(FIX, 'chmv2-vit7b-like', f)));
  }
  hub = await startHubServer({ 'acme/tiny-chm': { files }, 'acme/gated-chm': { files, token: 'hf_yes' } });
});
afterAll(async () => {
  await hub.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('geo-dino model', () => {
  it('build --split, then info (human and --json)', async () => {
    const out = join(tmp, 'split');
    const b = await runCli(['model', 'build', '--from', join(FIX, 'chmv2-vitl-like'), '--out', out, '--split', '--tile-size', '128', '--json'], { env });
    expect(b.code, b.stderr).toBe(0);
    const j = JSON.parse(b.stdout) as { layout: string; input: { tileSize: number[] }; heads: { name: string }[] };
    expect(j.layout).toBe('split');
    expect(j.input.tileSize).toEqual([128, 128]);
    expect(j.heads.map((h) => h.name)).toEqual(['chm']);
    const i = await runCli(['model', 'info', out], { env });
    expect(i.code, i.stderr).toBe(0);
    expect(i.stdout).toMatch(/layout\s+split, fp32, fixed 128×128 tiles/);
    expect(i.stdout).toMatch(/graph backbone\s+backbone\.onnx: pixel_values → features_0/);
    expect(i.stdout).toMatch(/weights\s+sha256 [0-9a-f]{64} \(3 files/);
  });

  it.each([
    [['--tile-size', '100'], /--tile-size must be a positive multiple of the patch size 16, got 100/],
    [['--tile-size', 'big'], /--tile-size: /],
    [['--dtype', 'fp8'], /--dtype: /],
  ])('build %j is refused with exit 2', async (extra, re) => {
    const r = await runCli(['model', 'build', '--from', join(FIX, 'chmv2-vit7b-like'), '--out', join(tmp, 'bad'), ...extra], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(re);
  });

  it('build from a directory without a model: exit 2 naming it', async () => {
    const r = await runCli(['model', 'build', '--from', join(tmp, 'nothing'), '--out', join(tmp, 'o')], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(join(tmp, 'nothing'));
  });

  it('build --from an exported .onnx wraps it after checking its I/O', async () => {
    const fused = join(tmp, 'fused');
    expect((await runCli(['model', 'build', '--from', join(FIX, 'chmv2-vit7b-like'), '--out', fused], { env })).code).toBe(0);
    const r = await runCli(['model', 'build', '--from', join(fused, 'model.onnx'), '--out', join(tmp, 'imported'), '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { family: string }).family).toBe('external');
  });

  it('pull from a Hub-layout server, then build what was pulled', async () => {
    const out = join(tmp, 'pulled');
    const p = await runCli(['model', 'pull', 'acme/tiny-chm', '--out', out, '--endpoint', hub.url, '--json'], { env });
    expect(p.code, p.stderr).toBe(0);
    const j = JSON.parse(p.stdout) as { commit: string; files: { name: string }[] };
    expect(j.files.map((f) => f.name).sort()).toEqual(['config.json', 'model.safetensors']);
    const b = await runCli(['model', 'build', '--from', out, '--out', join(tmp, 'pulled-built')], { env });
    expect(b.code, b.stderr).toBe(0);
  });

  it('pull of a gated repository without HF_TOKEN: exit 1 with what to do', async () => {
    const r = await runCli(['model', 'pull', 'acme/gated-chm', '--out', join(tmp, 'g'), '--endpoint', hub.url], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/acme\/gated-chm is a gated repository: accept its licence at .*set HF_TOKEN/);
    const ok = await runCli(['model', 'pull', 'acme/gated-chm', '--out', join(tmp, 'g'), '--endpoint', hub.url], { env: { ...env, HF_TOKEN: 'hf_yes' } });
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('demo creates the random-weight demo model, flagged as such', async () => {
    const r = await runCli(['model', 'demo', '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { demo: boolean; dir: string };
    expect(j.demo).toBe(true);
    expect(j.dir).toBe(join(tmp, 'home', 'models', 'demo'));
    const i = await runCli(['model', 'info', 'demo'], { env });
    expect(i.stdout).toMatch(/DEMO: random weights/);
  });
});
