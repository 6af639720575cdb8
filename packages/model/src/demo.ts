/**
 * The demo model: a tiny CHMv2 with random weights, generated from a seed in TypeScript in the
 * real Hugging Face format and built through the same `buildModel` path as released weights, so
 * `geo-dino chm --model demo` works on a fresh machine with no weights and no network.
 *
 * It has the real architecture (DINOv3 ViT with 4 registers and 2-D RoPE, four intermediate
 * layers feeding the DPT head, 256 mix-log bins) at toy width: hidden 64, 4 layers, 4 heads,
 * head channels scaled down. Its heights are NOT canopy heights (`demo: true` in geo-dino.json).
 */
import { rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { GEO_DINO_VERSION, GeoDinoError, ensureDir, fileExists, geoDinoHome, homePaths, silentLogger, temporaryPathFor, type Logger, type Progress } from '@geo-dino/core';
import { writeRandomCheckpoint, type RandomCheckpointOptions } from './random.js';
import { replaceDirectory } from './fsutil.js';
import { chmv2Config, dinov3VitConfig } from './arch.js';
import { buildModel } from './build.js';
import { openModelDir, type ModelDir } from './modeldir.js';

/** The demo's Hugging Face config (CHMv2ForDepthEstimation at toy width). */
export const DEMO_CONFIG: Record<string, unknown> = chmv2Config(
  dinov3VitConfig(64, 256, 4, 4, 'gelu', { image_size: 512, out_indices: [1, 2, 3, 4] }),
  { post_process_channels: [16, 32, 64, 128], fusion_hidden_size: 32, head_hidden_size: 8 },
);

export const DEMO_SEED = 0;

/** A demo model made by another geo-dino version is rebuilt (its config may have changed). */
const CREATED_BY = `geo-dino ${GEO_DINO_VERSION}`;

export interface DemoOptions {
  seed?: number;
  log?: Logger;
  progress?: Progress;
  /** Replace an existing directory. */
  force?: boolean;
  /**
   * A test fixture, not the demo (see {@link RandomCheckpointOptions.local}): attention off, a patch
   * embedding that also reads the patch's mean red − blue, a head of short reach, so the heights
   * respond to local radiometry as a trained model's do. Named `geo-dino-demo-local-seed<seed>`;
   * `ensureDemoModel` never makes it nor takes it for the demo.
   */
  local?: boolean;
}

/**
 * Write the demo model to `outDir` (its Hugging Face source goes to `outDir/source/`). The same
 * seed always gives the same weights (and the same weights hash).
 */
export async function createDemoModel(outDir: string, options: DemoOptions = {}): Promise<ModelDir> {
  const seed = options.seed ?? DEMO_SEED;
  const out = resolve(outDir);
  if (!options.force && (await fileExists(out))) throw new GeoDinoError('E_ARGUMENT', `${out} already exists; pass force to replace it`);
  await ensureDir(dirname(out));
  const root = temporaryPathFor(out);
  await ensureDir(root);
  try {
    const hf = join(root, 'source');
    await writeRandomCheckpoint(hf, DEMO_CONFIG, { seed, local: options.local === true });
    const built = join(root, 'model');
    await buildModel({
      from: hf,
      out: built,
      name: `geo-dino-demo-${options.local ? 'local-' : ''}seed${seed}`,
      demo: true,
      sourceInfo: { kind: 'demo', seed },
      ...(options.log ? { log: options.log } : {}),
      ...(options.progress ? { progress: options.progress } : {}),
    });
    await rename(hf, join(built, 'source'));
    await replaceDirectory(built, out);
  } finally {
    await rm(root, { recursive: true, force: true }).catch(() => undefined);
  }
  return openModelDir(out);
}

/** The demo of this seed made by this geo-dino version (not the `local` fixture). */
function isDemo(md: ModelDir, seed: number): boolean {
  return md.meta.demo === true && md.meta.source.seed === seed && md.meta.created.by === CREATED_BY && md.meta.name === `geo-dino-demo-seed${seed}`;
}

/** Where `openModel('demo')` keeps the demo model. */
export function defaultDemoDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(homePaths(geoDinoHome(env)).models, 'demo');
}

/**
 * The demo model's directory, created on first use. A directory left by another geo-dino version
 * or seed is rebuilt; two processes racing to create it both end up using one complete copy.
 */
export async function ensureDemoModel(options: { dir?: string; seed?: number; log?: Logger } = {}): Promise<string> {
  const dir = resolve(options.dir ?? defaultDemoDir());
  const seed = options.seed ?? DEMO_SEED;
  const log = options.log ?? silentLogger();
  try {
    const md = await openModelDir(dir);
    if (isDemo(md, seed)) return dir;
    if (!md.meta.demo) throw new GeoDinoError('E_ARGUMENT', `${dir} holds a model that is not the demo model; refusing to replace it`);
    log.info({ dir }, 'rebuilding the demo model');
  } catch (err) {
    if (err instanceof GeoDinoError && err.code === 'E_ARGUMENT') throw err;
    log.info({ dir }, 'creating the demo model (random weights, a few seconds)');
  }
  try {
    await createDemoModel(dir, { seed, log, force: true });
  } catch (err) {
    // Another process may have created it meanwhile.
    try {
      const md = await openModelDir(dir);
      if (isDemo(md, seed)) return dir;
    } catch {
      /* fall through */
    }
    throw err;
  }
  return dir;
}
