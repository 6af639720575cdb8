/**
 * `geo-dino tiles` and `geo-dino serve` as a user runs them (the built CLI in a child process):
 * archives the Go CLI verifies, the run-directory form, clear errors with exit 2 and nothing
 * half-written, and a server that starts on loopback, serves, and stops cleanly on SIGINT.
 */
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { CLI_BIN } from './support/shared-data.js';
import { makeFixtureRun, type FixtureRun } from './support/fixture-run.js';
import { runPmtilesCli } from './support/pmtiles-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'gd-cli-tiles-'));
let run: FixtureRun;
beforeAll(() => {
  run = makeFixtureRun(join(dir, 'run'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('geo-dino tiles', () => {
  it('writes one archive from a COG (JSON result), verified by go-pmtiles', async () => {
    const out = join(dir, 'h.pmtiles');
    const r = await runCli(['tiles', join(run.dir, 'chm.tif'), '--out', out, '--max-zoom', '17', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { outputs: { file: string; layer: string; maxZoom: number; tiles: number; min: number }[] };
    expect(res.outputs).toHaveLength(1);
    expect(res.outputs[0]).toMatchObject({ file: out, layer: 'height', maxZoom: 17, min: 0 });
    const v = runPmtilesCli(['verify', out]);
    expect(v.code, v.output).toBe(0);
    expect(v.output).not.toMatch(/invalid/i);
  });

  it('writes every web layer of a run directory', async () => {
    const r = await runCli(['tiles', run.dir, '--imagery', join(run.dir, 'imagery.tif'), '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['chm.pmtiles', 'chm-uncertainty.pmtiles', 'imagery.pmtiles', 'landcover.pmtiles']) {
      expect(existsSync(join(run.dir, f)), f).toBe(true);
      expect(runPmtilesCli(['verify', join(run.dir, f)]).code).toBe(0);
    }
    const show = runPmtilesCli(['show', join(run.dir, 'chm.pmtiles')]);
    expect(show.output).toMatch(/DEMO/); // run.json says demo: the name and attribution say so
  });

  it('fails with exit 2 and a clear message on bad input, writing nothing', async () => {
    const out = mkdtempSync(join(dir, 'bad-'));
    const cases: [string[], RegExp][] = [
      [['tiles', join(dir, 'nope.tif'), '--out', join(out, 'x.pmtiles')], /nope\.tif: no such file or directory/],
      [['tiles', join(run.dir, 'chm.tif')], /--out: is required/],
      [['tiles', join(run.dir, 'chm.tif'), '--out', join(out, 'x.mbtiles')], /--out: must end in \.pmtiles/],
      [['tiles', join(run.dir, 'chm.tif'), '--out', join(out, 'x.pmtiles'), '--max-zoom', '40'], /--max-zoom: must be 0-24/],
      [['tiles', join(run.dir, 'chm.tif'), '--out', join(out, 'x.pmtiles'), '--layer', 'trees'], /--layer: must be one of height, uncertainty, imagery, landcover/],
      [['tiles', join(run.dir, 'chm.tif'), '--out', join(out, 'x.pmtiles'), '--band', '5'], /band 5 does not exist \(the raster has 2 bands\)/],
    ];
    const badClasses = join(dir, 'classes.json');
    writeFileSync(badClasses, JSON.stringify([{ value: 1, name: 'x', color: 'green' }]));
    cases.push([['tiles', join(run.dir, 'landcover.tif'), '--out', join(out, 'x.pmtiles'), '--classes', badClasses], /classes\.json: 0\.color: must be #rrggbb/]);
    for (const [args, message] of cases) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    expect(readdirSync(out)).toEqual([]);
  });
});

describe('geo-dino serve', () => {
  it('serves on loopback, answers the API, and stops on SIGINT with exit 0', async () => {
    const proc = spawn(process.execPath, [CLI_BIN, 'serve', run.dir, '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('serve did not start')), 30_000);
      proc.stdout.on('data', () => {
        const m = /"url":\s*"([^"]+)"/.exec(stdout);
        if (m) {
          clearTimeout(t);
          resolve(m[1]!);
        }
      });
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const runs = (await (await fetch(`${url}api/runs`)).json()) as { runs: { id: string; layers: unknown[] }[] };
    expect(runs.runs[0]!.id).toBe('.');
    expect((await fetch(`${url}data/chm.pmtiles`, { headers: { Range: 'bytes=0-6' } })).status).toBe(206);
    const code = await new Promise<number | null>((resolve) => {
      proc.on('close', (c) => resolve(c));
      proc.kill('SIGINT');
    });
    expect(code).toBe(0);
  });

  it("--host '[::1]' listens on IPv6 loopback; --allow-host names are answered, other names get 421", async () => {
    const proc = spawn(process.execPath, [CLI_BIN, 'serve', run.dir, '--port', '0', '--host', '[::1]', '--allow-host', 'geo.example.lan', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const result = await new Promise<{ url: string; loopback: boolean }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 30_000);
      proc.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('\n')) {
          clearTimeout(t);
          resolve(JSON.parse(stdout) as { url: string; loopback: boolean });
        }
      });
    });
    try {
      expect(result.loopback).toBe(true);
      const m = /^http:\/\/\[::1\]:(\d+)\/$/.exec(result.url);
      expect(m, result.url).not.toBeNull();
      const status = (host: string): Promise<number> =>
        new Promise((resolve, reject) => {
          const req = httpRequest({ host: '::1', port: Number(m![1]), path: '/api/config', headers: { Host: host } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end();
        });
      expect(await status('geo.example.lan')).toBe(200);
      expect(await status(`[::1]:${m![1]}`)).toBe(200);
      expect(await status('rebind.attacker.example')).toBe(421);
    } finally {
      await new Promise<void>((resolve) => {
        proc.on('close', () => resolve());
        proc.kill('SIGINT');
      });
    }
  });

  it('refuses a missing directory and a bad port with exit 2', async () => {
    const a = await runCli(['serve', join(dir, 'missing')]);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/missing: no such directory/);
    const b = await runCli(['serve', run.dir, '--port', '70000']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--port: must be 0-65535/);
  });
});
