/**
 * `geo-dino monitor` as a user runs it: $GEO_DINO_HOME honoured, bad input (exit 2, the flag or
 * value named, nothing written), JSON output, the daemon stopping cleanly on SIGTERM, and a run
 * killed with SIGKILL in the middle of its tiles resumed by the next `monitor start --once`
 * without redoing the tiles it had finished.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@geo-dino/core';
import { MonitorStore, monitorPaths } from '@geo-dino/monitor';
import { discoverRuns } from '@geo-dino/server';
import { CLI_BIN } from '../support/shared-data.js';
import { runCli } from '../support/cli.js';
import { requireGdal } from '../support/tools.js';
import { makeScenes } from '../../packages/monitor/test/support/helpers.js';

let root: string;
let home: string;
let catalog: string;
let aoi: string;
const env = (): NodeJS.ProcessEnv => ({ GEO_DINO_HOME: home });

beforeAll(() => {
  requireGdal();
  root = mkdtempSync(join(tmpdir(), 'geo-dino-monitor-cli-'));
  home = join(root, 'state home');
  ({ catalog, aoi } = makeScenes(join(root, 'imagery'), [{ id: 's2025', datetime: '2025-06-01T08:00:00Z' }], [1600, 1200], 5));
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('geo-dino monitor (CLI)', () => {
  it('bad input: exit 2 with the flag or value named; nothing written', async () => {
    const cases: [string[], RegExp][] = [
      [['monitor', 'add', 'x', '--aoi', aoi, '--schedule', '0 3 * *', '--imagery', catalog, '--model', 'demo'], /--schedule "0 3 \* \*": not a valid cron expression/],
      [['monitor', 'add', 'x', '--aoi', aoi, '--schedule', '0 3 * * *', '--timezone', 'Moon/Base', '--imagery', catalog, '--model', 'demo'], /--timezone "Moon\/Base" is not a valid IANA time zone/],
      [['monitor', 'add', 'x/y', '--aoi', aoi, '--schedule', '@daily', '--imagery', catalog, '--model', 'demo'], /region name "x\/y" is not valid/],
      [['monitor', 'add', 'x', '--aoi', aoi, '--schedule', '@daily', '--imagery', catalog, '--model', 'demo', '--loss-threshold-m', '-1'], /--loss-threshold-m: must be > 0/],
      [['monitor', 'add', 'x', '--aoi', aoi, '--schedule', '@daily', '--imagery', catalog, '--model', 'demo', '--webhook', 'mailto:a@b'], /--webhook: "mailto:a@b" must be an http/],
      [['monitor', 'add', 'x', '--schedule', '@daily', '--imagery', catalog, '--model', 'demo'], /--aoi: is required/],
      [['monitor', 'add', 'x', '--aoi', aoi, '--schedule', '*/5 * * * *', '--imagery', catalog, '--model', 'demo'], /--schedule "\*\/5 \* \* \* \*": fires more than once an hour/],
      [['monitor', 'add', 'x', '--aoi', aoi, '--schedule', '@daily', '--imagery', catalog, '--model', 'demo', '--webhook', 'http://0xa9fea9fe/latest'], /points to 169\.254\.169\.254, a link-local \(cloud metadata\) address.*--allow-private-webhook/],
      [['monitor', 'add', 'x', '--aoi', aoi, '--schedule', '@daily', '--imagery', catalog, '--model', 'demo', '--webhook', 'http://[::ffff:10.0.0.1]/h'], /a private address/],
      [['monitor', 'add', 'x', '--aoi', aoi, '--schedule', '@daily', '--imagery', catalog, '--model', 'demo', '--shard-size', '1000'], /--shard-size: must be a multiple of the 512-pixel block size/],
      [['monitor', 'run', 'nope'], /unknown region "nope"/],
      [['monitor', 'history', 'nope'], /unknown region "nope"/],
      [['monitor', 'run', 'nope', '--queue', 'http://localhost:6379'], /--queue: "http:\/\/localhost:6379" must be a redis/],
      [['worker', '--queue', 'localhost:6379'], /--queue: "localhost:6379" must be a redis:\/\/ or rediss:\/\/ URL/],
    ];
    // Independent commands: run them side by side.
    const results = await Promise.all(cases.map(([args]) => runCli(args, { env: env() })));
    for (const [i, [args, re]] of cases.entries()) {
      const r = results[i]!;
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(re);
    }
    const list = await runCli(['monitor', 'list', '--json'], { env: env() });
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual({ regions: [] });
    expect(existsSync(join(home, 'regions', 'x'))).toBe(false);
  }, 180_000);

  it('add, list and history honour $GEO_DINO_HOME and print JSON', async () => {
    // A schedule that will not come up while the tests run (29 February), so only what the test does happens.
    const add = await runCli(['monitor', 'add', 'forest', '--aoi', aoi, '--schedule', '0 0 29 2 *', '--imagery', catalog, '--model', 'demo', '--webhook', 'http://hook:hunter2@127.0.0.1:9/x?sig=s3cr3t', '--allow-private-webhook', '--json'], { env: env() });
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout + add.stderr).not.toMatch(/hunter2|s3cr3t/);
    const added = JSON.parse(add.stdout) as { region: { name: string; webhookSecret: string; aoiPath: string }; nextRun: string; directory: string };
    expect(added.region.name).toBe('forest');
    expect(added.region.webhookSecret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(added.directory).toBe(join(home, 'regions', 'forest'));
    expect(added.region.aoiPath).toBe(join(home, 'regions', 'forest', 'aoi.geojson'));
    expect(existsSync(join(home, 'geo-dino.sqlite'))).toBe(true);
    expect(new Date(added.nextRun).getUTCMonth()).toBe(1);
    expect(new Date(added.nextRun).getUTCDate()).toBe(29);
    const list = JSON.parse((await runCli(['monitor', 'list', '--json'], { env: env() })).stdout) as { regions: { name: string; webhook: string; runs: number }[] };
    // The stored URL is shown without its password and signature.
    expect(list.regions).toEqual([expect.objectContaining({ name: 'forest', webhook: 'http://hook:***@127.0.0.1:9/x?sig=***', runs: 0 })]);
    expect(JSON.stringify(list)).not.toContain(added.region.webhookSecret);
    const hist = await runCli(['monitor', 'history', 'forest'], { env: env() });
    expect(hist.code).toBe(0);
    expect(hist.stdout).toMatch(/no runs yet/);
    expect((await runCli(['monitor', 'history', 'forest', '--json'], { env: env() })).stdout).not.toMatch(/hunter2|s3cr3t/);
    expect(statSync(join(home, 'geo-dino.sqlite')).mode & 0o077).toBe(0);

    // The same home with its store truncated to 0 bytes: refused, not started over.
    const lost = join(root, 'lost home');
    cpSync(home, lost, { recursive: true });
    for (const f of ['geo-dino.sqlite-wal', 'geo-dino.sqlite-shm']) rmSync(join(lost, f), { force: true });
    truncateSync(join(lost, 'geo-dino.sqlite'), 0);
    const refused = await runCli(['monitor', 'list'], { env: { GEO_DINO_HOME: lost } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/the store is empty \(0 bytes\) but .* holds 1 region \(forest\)/);
    expect(statSync(join(lost, 'geo-dino.sqlite')).size).toBe(0);
  }, 120_000);

  it('monitor start stops cleanly on SIGTERM and releases the daemon lock', async () => {
    const proc = spawn(process.execPath, [CLI_BIN, 'monitor', 'start', '--json'], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    const started = new Promise<void>((resolve) =>
      proc.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('monitoring daemon started')) resolve();
      }),
    );
    const exited = new Promise<number | null>((r) => proc.on('close', (c) => r(c)));
    await started;
    // A second daemon on the same home is refused while the first runs.
    const second = await runCli(['monitor', 'start', '--once'], { env: env() });
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/a monitoring daemon is already running/);
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(err).toMatch(/monitoring daemon stopped/);
    const store = MonitorStore.open(monitorPaths(home).store);
    try {
      expect(store.daemon()).toBeNull();
    } finally {
      store.close();
    }
  }, 120_000);

  it('a run killed with SIGKILL mid-tiles is resumed by `monitor start --once`, keeping the tiles done', async () => {
    const proc = spawn(process.execPath, [CLI_BIN, 'monitor', 'run', 'forest', '--no-web-tiles', '--threads', '1', '--json'], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    const exited = new Promise<NodeJS.Signals | null>((r) => proc.on('close', (_c, s) => r(s)));
    proc.stderr.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        try {
          const rec = JSON.parse(l) as { type?: string; task?: string; done?: number };
          if (rec.type === 'progress' && rec.task === 'predicting' && (rec.done ?? 0) >= 3) proc.kill('SIGKILL');
        } catch {
          /* not JSON */
        }
      }
    });
    expect(await exited).toBe('SIGKILL');
    const paths = monitorPaths(home);
    let store = MonitorStore.open(paths.store);
    const interrupted = store.runs('forest')[0]!;
    store.close();
    expect(interrupted).toMatchObject({ status: 'running', phase: 'predict', executions: 1 });
    const done = readdirSync(join(paths.work('forest', interrupted.id), 'tiles', '0')).filter((n) => n.endsWith('.tile')).length;
    expect(done).toBeGreaterThanOrEqual(3);
    expect(existsSync(interrupted.dir)).toBe(false);

    const resume = await runCli(['monitor', 'start', '--once', '--no-web-tiles', '--threads', '1', '--json'], { env: env(), timeoutMs: 300_000 });
    expect(resume.code, resume.stderr).toBe(0);
    const summary = JSON.parse(resume.stdout) as { resumed: { run: string }[]; fired: unknown[] };
    expect(summary.resumed).toEqual([{ region: 'forest', run: interrupted.id }]);
    store = MonitorStore.open(paths.store);
    try {
      const run = store.run('forest', interrupted.id);
      expect(run).toMatchObject({ status: 'succeeded', executions: 2 });
      const runJson = JSON.parse(readFileSync(join(run.dir, 'run.json'), 'utf8')) as { tiles: { total: number; resumed: number; predicted: number } };
      expect(runJson.tiles.resumed).toBe(done);
      expect(runJson.tiles.predicted).toBe(runJson.tiles.total - done);
      expect(run.tilesDone).toBe(runJson.tiles.total);
    } finally {
      store.close();
    }
    const hist = JSON.parse((await runCli(['monitor', 'history', 'forest', '--json'], { env: env() })).stdout) as { runs: { run: { id: string; status: string }; statistics: { meanHeightM: number } | null }[] };
    expect(hist.runs).toEqual([expect.objectContaining({ run: expect.objectContaining({ id: interrupted.id, status: 'succeeded' }) })]);
    expect(hist.runs[0]!.statistics!.meanHeightM).toBeGreaterThan(0);

    // What `geo-dino serve $GEO_DINO_HOME/regions` shows: the run, grouped under its region (the
    // viewer's date picker lists the runs of one group), dated by its imagery.
    const served = await discoverRuns(realpathSync(join(home, 'regions')), silentLogger());
    expect(served).toEqual([expect.objectContaining({ id: `forest/runs/${interrupted.id}`, area: 'forest', datetime: '2025-06-01T08:00:00.000Z', demo: true })]);
  }, 400_000);
});
