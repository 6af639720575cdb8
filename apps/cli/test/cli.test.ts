import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../../test/support/cli.js';

describe('geo-dino CLI shell', () => {
  it('--help lists the commands and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: geo-dino/);
    expect(r.stdout).toMatch(/doctor/);
  });

  it('--version prints the package version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    const { version } = (await import('../../../package.json', { with: { type: 'json' } })).default as { version: string };
    expect(r.stdout.trim()).toBe(version);
  });

  it('unknown command: one line on stderr, exit 2', async () => {
    const r = await runCli(['doctr']);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^geo-dino: error: unknown command 'doctr'/);
    expect(lines[0]).toMatch(/Did you mean doctor/);
  });

  it('bad flag: one line on stderr, exit 2', async () => {
    const r = await runCli(['doctor', '--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(["geo-dino: error: unknown option '--frobnicate'"]);
  });

  it('--json errors are one JSON line', async () => {
    const r = await runCli(['--json', 'nope']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr.trim())).toMatchObject({ type: 'error', code: 'E_UNKNOWN_COMMAND' });
  });
});

const homes: string[] = [];
async function tempHome(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gd-home-'));
  homes.push(dir);
  return dir;
}
afterAll(async () => {
  for (const d of homes) await rm(d, { recursive: true, force: true });
});

describe('geo-dino doctor', () => {
  it('reports cpu working, cuda and webgpu with reasons, and the models it finds; exits 0', async () => {
    const home = await tempHome();
    const model = join(home, 'models', 'my-chm');
    await mkdir(model, { recursive: true });
    await writeFile(join(model, 'geo-dino.json'), JSON.stringify({ name: 'test model' }));
    const hf = join(home, 'models', 'hf-weights');
    await mkdir(hf, { recursive: true });
    await writeFile(join(hf, 'config.json'), '{}');
    await writeFile(join(hf, 'model.safetensors'), '');
    await mkdir(join(home, 'models', 'not-a-model'));

    const r = await runCli(['--json', 'doctor'], { env: { GEO_DINO_HOME: home } });
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const report = JSON.parse(r.stdout) as {
      node: string;
      cpu: { cores: number };
      memory: { totalBytes: number };
      providers: { provider: string; ok: boolean; reason?: string }[];
      models: { path: string; kind: string }[];
    };
    expect(report.node).toBe(process.version);
    expect(report.cpu.cores).toBeGreaterThan(0);
    expect(report.memory.totalBytes).toBeGreaterThan(0);
    const byName = Object.fromEntries(report.providers.map((p) => [p.provider, p]));
    expect(byName['cpu']?.ok).toBe(true);
    // This test machine has no GPU: the others must fail with a reason, not a stack trace.
    for (const gpu of ['cuda', 'webgpu']) {
      expect(byName[gpu]?.ok).toBe(false);
      expect(byName[gpu]?.reason).toMatch(/\w/);
      expect(byName[gpu]?.reason).not.toMatch(/\n/);
    }
    expect(report.models.map((m) => [m.path, m.kind])).toEqual([
      [hf, 'huggingface'],
      [model, 'geo-dino'],
    ]);
  });

  it('human output names each provider', async () => {
    const r = await runCli(['doctor'], { env: { GEO_DINO_HOME: await tempHome() } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/cpu\s+works/);
    expect(r.stdout).toMatch(/cuda\s+unavailable: /);
    expect(r.stdout).toMatch(/webgpu\s+unavailable: /);
  });
});
