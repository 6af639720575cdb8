/**
 * Shared pieces of the land-cover end-to-end tests: the tiny random-weight CHMv2 (the demo
 * architecture) built fused and split from one checkpoint, the CLI run with `--json`, and the
 * metrics the tests compute themselves (not with the package's code).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_CONFIG, buildModel, writeRandomCheckpoint } from '@geo-dino/model';
import { runCli, type CliResult } from '../support/cli.js';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `geo-dino-lc-${prefix}-`));
}

/** A random-weight CHMv2 checkpoint (the demo's architecture) built as split and, optionally, fused models. */
export async function makeModels(dir: string, options: { fused?: boolean; seed?: number } = {}): Promise<{ split: string; fused: string | null }> {
  const hf = join(dir, 'hf');
  await writeRandomCheckpoint(hf, DEMO_CONFIG, { seed: options.seed ?? 0 });
  const split = join(dir, 'model-split');
  await buildModel({ from: hf, out: split, split: true, name: 'tiny-chmv2' });
  let fused: string | null = null;
  if (options.fused) {
    fused = join(dir, 'model-fused');
    await buildModel({ from: hf, out: fused, name: 'tiny-chmv2' });
  }
  return { split, fused };
}

export interface Cli extends CliResult {
  json: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
}

/** `geo-dino <args> --json` with a private home. */
export async function cli(args: readonly string[], home: string, timeoutMs = 300_000): Promise<Cli> {
  const r = await runCli([...args, '--json'], { env: { GEO_DINO_HOME: home, GEO_DINO_MODEL: '' }, timeoutMs });
  let json: Record<string, unknown> | null = null;
  try {
    json = r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : null;
  } catch {
    json = null;
  }
  let error: Cli['error'] = null;
  for (const line of r.stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const e = JSON.parse(line) as Record<string, unknown>;
      if (e['type'] === 'error') error = { code: String(e['code']), message: String(e['message']) };
    } catch {
      /* not JSON */
    }
  }
  return { ...r, json, error };
}

export function readJson<T = Record<string, unknown>>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** mIoU over classes with a non-empty union, from paired reference/predicted class values. */
export function meanIou(reference: ArrayLike<number>, predicted: ArrayLike<number>, classes: readonly number[], skip: (i: number) => boolean): { miou: number; oa: number; pixels: number } {
  const tp = new Map<number, number>();
  const ref = new Map<number, number>();
  const pred = new Map<number, number>();
  let n = 0;
  let ok = 0;
  for (let i = 0; i < reference.length; i++) {
    if (skip(i)) continue;
    const r = reference[i]!;
    const p = predicted[i]!;
    n++;
    ref.set(r, (ref.get(r) ?? 0) + 1);
    pred.set(p, (pred.get(p) ?? 0) + 1);
    if (r === p) {
      ok++;
      tp.set(r, (tp.get(r) ?? 0) + 1);
    }
  }
  const ious: number[] = [];
  for (const c of classes) {
    const t = tp.get(c) ?? 0;
    const u = (ref.get(c) ?? 0) + (pred.get(c) ?? 0) - t;
    if (u > 0) ious.push(t / u);
  }
  return { miou: ious.reduce((a, b) => a + b, 0) / ious.length, oa: ok / n, pixels: n };
}
