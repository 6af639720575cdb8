/**
 * Interrupt and resume: a demo run (`--model demo` alone: the built-in synthetic
 * scene, outputs labelled DEMO; 25 tiles of 256² at 1.2 m) is stopped mid-way,
 * once with SIGKILL (no chance to clean up) and once with SIGINT (Ctrl-C: stops at a tile
 * boundary, exit 130), then continued with `--resume`. The oracle is an uninterrupted run of
 * the same command: chm.tif and provenance.geojson must be byte-identical to it, and the resumed
 * run must not predict again the tiles that were already in the state (and a run whose blending is
 * cut into 512-pixel chunks must give the same bytes). Nothing may appear in
 * --out before the run completes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_BIN } from '../support/shared-data.js';
import { chm, readJson, tempDir, tilesIn } from './helpers.js';

let dir: string;
let home: string;
beforeAll(() => {
  dir = tempDir('resume');
  home = join(dir, 'home');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ARGS = ['--model', 'demo', '--no-web-tiles', '--tile-size', '256', '--overlap', '32', '--gsd', '1.2'];
const TOTAL = 25; // 5 × 5 tiles of 256² over the demo scene at 1.2 m (1009² pixels)

/** Start a run, wait until `atLeast` tiles are stored, send `signal`; resolve with how it ended. */
function interrupt(out: string, signal: NodeJS.Signals, atLeast: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; tilesAtSignal: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI_BIN, 'chm', ...ARGS, '--out', out], { env: { ...process.env, GEO_DINO_HOME: home, GEO_DINO_MODEL: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const state = join(dir, `.${out.split('/').pop()}.geo-dino-state`);
    let sent = -1;
    const timer = setInterval(() => {
      const n = tilesIn(state);
      if (sent < 0 && n >= atLeast) {
        sent = n;
        p.kill(signal);
      }
    }, 10);
    const guard = setTimeout(() => p.kill('SIGKILL'), 180_000);
    p.on('error', reject);
    p.on('close', (code, sig) => {
      clearInterval(timer);
      clearTimeout(guard);
      resolve({ code, signal: sig, stderr, tilesAtSignal: sent });
    });
  });
}

describe('interrupt and --resume', () => {
  let reference: { chm: Buffer; provenance: Buffer };

  beforeAll(async () => {
    const r = await chm([...ARGS, '--out', join(dir, 'reference')], home);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json!['tiles']).toMatchObject({ total: TOTAL, predicted: TOTAL });
    // `--model demo` alone: the built-in synthetic scene, every output labelled DEMO.
    expect(r.json!['demo']).toBe(true);
    const ref = join(dir, 'reference');
    expect(readJson(join(ref, 'run.json'))).toMatchObject({ demo: true, model: { demo: true }, status: 'complete' });
    expect(readJson<{ properties: Record<string, unknown> }>(join(ref, 'item.json')).properties['geo-dino:demo']).toBe(true);
    const prov = readJson<{ features: { properties: Record<string, unknown> }[] }>(join(ref, 'provenance.geojson'));
    expect(prov.features.map((f) => [f.properties['scene_id'], f.properties['datetime']])).toEqual([['geo-dino-demo-scene-seed0', '2025-01-15T08:00:00.000Z']]);
    reference = { chm: readFileSync(join(dir, 'reference', 'chm.tif')), provenance: readFileSync(join(dir, 'reference', 'provenance.geojson')) };
  }, 240_000);

  it('gives byte-identical outputs when blending is cut into 512-pixel chunks (memory bound, not an output change)', async () => {
    const out = join(dir, 'chunked');
    const r = await chm([...ARGS, '--out', out, '--chunk-width', '512'], home);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(out, 'chm.tif')).equals(reference.chm)).toBe(true);
    expect(readFileSync(join(out, 'provenance.geojson')).equals(reference.provenance)).toBe(true);
  });

  for (const signal of ['SIGKILL', 'SIGINT'] as const) {
    it(`after ${signal}, --resume finishes without redoing stored tiles and gives byte-identical outputs`, async () => {
      const out = join(dir, `run-${signal}`);
      const state = join(dir, `.run-${signal}.geo-dino-state`);
      const k = await interrupt(out, signal, 6);
      expect(k.tilesAtSignal).toBeGreaterThanOrEqual(6);
      if (signal === 'SIGKILL') expect(k.signal).toBe('SIGKILL');
      else {
        expect(k.code, k.stderr).toBe(130);
        expect(k.stderr).toMatch(/interrupted with \d+ of 25 tiles done; rerun the same command with --resume/);
      }
      // Nothing presented as complete; the state is there.
      expect(existsSync(out)).toBe(false);
      expect(existsSync(join(state, 'plan.json'))).toBe(true);
      const stored = tilesIn(state);
      expect(stored).toBeGreaterThanOrEqual(6);
      expect(stored).toBeLessThan(TOTAL);

      // Without --resume the state is not discarded: a clear error says what to do.
      const refused = await chm([...ARGS, '--out', out], home);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/interrupted run of these arguments has \d+ of 25 tiles done; add --resume/);
      // A state of other arguments is refused too.
      const other = await chm([...ARGS, '--out', out, '--overlap', '16', '--resume'], home);
      expect(other.code).toBe(2);
      expect(other.stderr).toMatch(/different arguments/);

      const r = await chm([...ARGS, '--out', out, '--resume'], home);
      expect(r.code, r.stderr).toBe(0);
      const tiles = r.json!['tiles'] as { total: number; predicted: number; resumed: number };
      expect(tiles.total).toBe(TOTAL);
      expect(tiles.resumed).toBe(stored);
      expect(tiles.predicted).toBe(TOTAL - stored);
      expect(readFileSync(join(out, 'chm.tif')).equals(reference.chm)).toBe(true);
      expect(readFileSync(join(out, 'provenance.geojson')).equals(reference.provenance)).toBe(true);
      expect(readJson(join(out, 'run.json'))['configHash']).toBe(readJson(join(dir, 'reference', 'run.json'))['configHash']);
      expect(existsSync(state)).toBe(false);
    });
  }
});
