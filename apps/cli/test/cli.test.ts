import { afterAll, describe, expect, it } from 'vitest';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
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

describe('remote reads from the command line', () => {
  it('--timeout: a stalled imagery server fails within it, and URL secrets never reach the output', async () => {
    // A server that accepts connections and never answers.
    const stalled = createTcpServer((c) => c.on('data', () => undefined));
    await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
    try {
      const port = (stalled.address() as AddressInfo).port;
      const url = `http://reader:hunter2@127.0.0.1:${port}/scene.tif?sig=s3cr3tsig&sv=1`;
      const r = await runCli(['--timeout', '1.5', 'raster', 'info', url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/gave up after 1\.5 s \(--timeout\)/);
      expect(r.stderr).toContain(`http://reader:***@127.0.0.1:${port}/scene.tif?sig=***&sv=1`);
      expect(r.stdout + r.stderr).not.toMatch(/hunter2|s3cr3tsig/);
      const bad = await runCli(['--timeout', '0', 'raster', 'info', url]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/--timeout: must be a positive number of seconds/);
    } finally {
      stalled.close();
    }
  }, 60_000);
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

describe('--bbox wherever --aoi is accepted', () => {
  const box = '36.80,-1.30,36.81,-1.29';
  const commands: [string, string[]][] = [
    ['chm', ['chm', '--model', 'demo']],
    ['landcover train', ['landcover', 'train', '--imagery', 'x.tif', '--labels', 'l.geojson', '--model', 'm', '--out', 'o']],
    ['monitor add', ['monitor', 'add', 'r1', '--schedule', '@daily', '--imagery', 'https://example.com/stac']],
    ['raster warp', ['raster', 'warp', 'x.tif', '--out', 'o.tif']],
  ];
  it('each command takes --bbox and refuses it together with --aoi (one line, exit 2)', async () => {
    for (const [name, args] of commands) {
      const r = await runCli([...args, '--aoi', 'a.geojson', '--bbox', box], { env: { GEO_DINO_HOME: join(tmpdir(), 'gd-cli-bbox-home') } });
      expect(r.code, `${name}: ${r.stderr}`).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, name).toHaveLength(1);
      expect(lines[0], name).toMatch(/--aoi and --bbox: give one or the other, not both/);
    }
    const stac = await runCli(['stac', 'search', '--api', 'http://127.0.0.1:9/', '--aoi', 'a.geojson', '--bbox', box]);
    expect(stac.code).toBe(2);
    expect(stac.stderr).toMatch(/give exactly one of --aoi <file>, --bbox <minlon,minlat,maxlon,maxlat> or --intersects <geojson>/);
  });

  it('a box with swapped longitudes (not an antimeridian crossing) or latitudes beyond ±90 is one line, exit 2', async () => {
    for (const [bbox, msg] of [
      ['36.81,-1.30,36.80,-1.29', /--bbox: minlon 36.81 is greater than maxlon 36.8 .*did you swap the corners/],
      ['36.80,-91,36.81,-1.29', /--bbox: minlat -91 is outside \[-90, 90\]/],
      ['36.80,-1.29,36.81,-1.30', /--bbox: minlat -1.29 must be below maxlat -1.3/],
      ['36.8,-1.3,36.81', /--bbox: must be four numbers: minlon,minlat,maxlon,maxlat/],
    ] as const) {
      const r = await runCli(['chm', '--model', 'demo', '--bbox', bbox]);
      expect(r.code, bbox).toBe(2);
      expect(r.stderr.trim().split('\n'), bbox).toHaveLength(1);
      expect(r.stderr, bbox).toMatch(msg);
    }
  });
});

describe('--resampling (GDAL names)', () => {
  it('chm refuses GDAL methods the warper does not implement, and unknown names: one line naming the value and the accepted list, exit 2', async () => {
    for (const [value, msg] of [
      ['lanczos', /^geo-dino: error: --resampling: "lanczos" is a GDAL resampling method geo-dino's warper does not implement; use near \(nearest\), bilinear, cubic, average or mode, or warp with gdalwarp -r lanczos first$/],
      ['q3', /--resampling: "q3" is a GDAL resampling method .*use near \(nearest\), bilinear, cubic, average or mode/],
      ['bicubic', /--resampling: unknown resampling method "bicubic"; use near \(nearest\), bilinear, cubic, average or mode/],
    ] as const) {
      const r = await runCli(['chm', '--model', 'demo', '--resampling', value], { env: { GEO_DINO_HOME: join(tmpdir(), 'gd-cli-resampling-home') } });
      expect(r.code, value).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, value).toHaveLength(1);
      expect(lines[0], value).toMatch(msg);
    }
  });
});
