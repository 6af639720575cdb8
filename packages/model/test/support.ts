/**
 * Helpers for the model tests: the reference fixtures made by
 * notebooks/reference/make_model_fixtures.py (transformers, fp32, CPU), comparisons, temp dirs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '@geo-dino/model';

export const REPO = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const FIXTURES = join(REPO, 'test', 'fixtures', 'model');

export function fixture(...parts: string[]): string {
  const p = join(FIXTURES, ...parts);
  if (!existsSync(p)) throw new Error(`model fixture missing: ${p} (regenerate with notebooks/reference/make_model_fixtures.py)`);
  return p;
}

export interface Reference {
  file: SafetensorsFile;
  f32(name: string): Promise<Float32Array>;
  shape(name: string): number[];
  has(name: string): boolean;
  close(): Promise<void>;
}

export async function reference(model: string, kase: string): Promise<Reference> {
  const file = await SafetensorsFile.open(fixture(model, `reference-${kase}.safetensors`));
  return {
    file,
    f32: (n) => file.readFloat32(n),
    shape: (n) => file.info(n).shape,
    has: (n) => file.tensors.has(n),
    close: () => file.close(),
  };
}

/** max |a − b| */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** max |a − b| / max |b|: the error relative to the reference tensor's scale. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ref = 0;
  for (let i = 0; i < b.length; i++) ref = Math.max(ref, Math.abs(b[i]!));
  return maxAbsDiff(a, b) / ref;
}

export async function tempDir(prefix = 'geo-dino-model-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
