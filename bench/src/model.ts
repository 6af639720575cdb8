/**
 * `npm run bench -- model [--threads=N] [--tiles=N] [--rounds=N] [--variants=fp16,int8,matmul,split,torch-bf16] [--keep=DIR]`
 *
 * Builds a full-size CHMv2 (DINOv3 ViT-L/16 + DPT head, 336.9 M parameters) with random weights at
 * bench time (nothing big is committed), then times 512×512 tiles on the CPU provider:
 * - geo-dino's fp32 graph vs PyTorch transformers' CHMv2ForDepthEstimation in fp32 at the same
 *   thread count, in the same run, on the same weights and tiles (target: ratio ≥ 1.0);
 * - geo-dino fp16 and int8 builds, the fp32 build with plain MatMul attention instead of
 *   MultiHeadAttention, and PyTorch bf16 autocast, with their height error against the fp32
 *   result of the same implementation;
 * - backbone vs head time of the fp32 graph (split build, per-session timings).
 *
 * The PyTorch side needs a Python with torch + transformers: $GEO_DINO_TORCH_PYTHON (default
 * `python3` on the PATH). Without it the bench fails with that message (it never needs it in CI).
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHMV2_VITL16_CONFIG, buildModel, normalizeRgb, openModel, writeRandomCheckpoint, type ModelDtype, type AttentionImpl } from '@geo-dino/model';
import { createSessionPool } from '@geo-dino/runtime';
import type { BenchModule, BenchReport, BenchRow } from './report.js';

const TILE = 512;
const TORCH_SCRIPT = fileURLToPath(new URL('../python/chmv2_torch.py', import.meta.url));

/** `--name=value` (run.ts treats separate values as benchmark names). */
function arg(args: readonly string[], name: string): string | undefined {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit?.slice(name.length + 3);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Deterministic, image-like tiles (smooth structure plus texture), normalised. */
function makeTiles(n: number): Float32Array {
  const out = new Float32Array(n * 3 * TILE * TILE);
  for (let t = 0; t < n; t++) {
    const rgb = new Uint8Array(TILE * TILE * 3);
    for (let y = 0; y < TILE; y++) {
      for (let x = 0; x < TILE; x++) {
        const i = (y * TILE + x) * 3;
        const canopy = 0.5 + 0.5 * Math.sin((x + 37 * t) / 23) * Math.cos((y - 11 * t) / 31);
        const noise = ((x * 7919 + y * 104729 + t * 31) % 97) / 97;
        rgb[i] = 40 + 90 * canopy + 30 * noise;
        rgb[i + 1] = 60 + 120 * canopy + 25 * noise;
        rgb[i + 2] = 30 + 60 * canopy + 20 * noise;
      }
    }
    normalizeRgb(rgb, { height: TILE, width: TILE, out: out.subarray(t * 3 * TILE * TILE, (t + 1) * 3 * TILE * TILE) });
  }
  return out;
}

function errors(a: Float32Array, b: Float32Array): { maxAbs: number; meanAbs: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    max = Math.max(max, d);
    sum += d;
  }
  return { maxAbs: max, meanAbs: sum / a.length };
}

/** The PyTorch side as a long-lived process, so tiles can be interleaved with geo-dino's. */
class TorchServer {
  private proc: ChildProcessWithoutNullStreams;
  private lines: string[] = [];
  private waiters: ((line: string) => void)[] = [];
  private stderr = '';
  private exited: string | undefined;
  torch = '';

  constructor(python: string, hfDir: string, tilesPath: string, n: number, threads: number, private readonly outDir: string) {
    this.proc = spawn(python, [TORCH_SCRIPT, '--model', hfDir, '--tiles', tilesPath, '--n', String(n), '--size', String(TILE), '--threads', String(threads), '--out-dir', outDir]);
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const w = this.waiters.shift();
      if (w) w(line);
      else this.lines.push(line);
    });
    this.proc.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.proc.on('close', (code) => {
      this.exited = `PyTorch reference exited (code ${code}): ${this.stderr.trim().split('\n').slice(-5).join(' | ')}`;
      for (const w of this.waiters.splice(0)) w('');
    });
  }

  private next(): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const take = (line: string): void => {
        if (!line) return reject(new Error(this.exited ?? 'PyTorch reference stopped'));
        resolve(JSON.parse(line) as Record<string, unknown>);
      };
      const l = this.lines.shift();
      if (l !== undefined) take(l);
      else if (this.exited) reject(new Error(this.exited));
      else this.waiters.push(take);
    });
  }

  async ready(): Promise<void> {
    const r = await this.next();
    this.torch = String(r['torch']);
  }

  async run(tile: number, bf16: boolean): Promise<RunTime> {
    this.proc.stdin.write(JSON.stringify({ tile, bf16 }) + '\n');
    const r = await this.next();
    const buf = await readFile(join(this.outDir, `torch-${bf16 ? 'bf16' : 'fp32'}-${tile}.f32`));
    return { seconds: Number(r['seconds']), cpuSeconds: Number(r['cpu_seconds']), heights: new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4) };
  }

  close(): void {
    this.proc.stdin.end();
  }
}

/** Wall time, and CPU time of the whole process (all its threads): the latter is much less
 * affected when other processes share the machine. */
interface RunTime {
  seconds: number;
  cpuSeconds: number;
  heights?: Float32Array;
}

function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

interface Contender {
  name: string;
  /** Run tile i. */
  run(i: number): Promise<RunTime>;
  close(): Promise<void>;
  seconds: number[];
  cpuSeconds: number[];
  heights: Map<number, Float32Array>;
  extra?: { backbone: number[]; head: number[] };
}

async function geoDinoContender(name: string, dir: string, tiles: Float32Array, threads: number): Promise<Contender> {
  const r = await openModel(dir, { device: 'cpu', threads, workers: 1 });
  const per = 3 * TILE * TILE;
  return {
    name,
    seconds: [],
    cpuSeconds: [],
    heights: new Map(),
    async run(i) {
      const px = tiles.slice(i * per, (i + 1) * per);
      const c0 = cpuNow();
      const t0 = performance.now();
      const res = await r.runChm(px, 1, TILE, TILE);
      return { seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuNow() - c0, heights: res.height };
    },
    close: () => r.close(),
  };
}

/** A split build run as backbone → head in one worker, with per-session timings. */
async function splitContender(dir: string, tiles: Float32Array, threads: number): Promise<Contender> {
  const pool = await createSessionPool(
    [
      { name: 'backbone', path: join(dir, 'backbone.onnx') },
      { name: 'head', path: join(dir, 'head-chm.onnx') },
    ],
    { device: 'cpu', threads },
  );
  const per = 3 * TILE * TILE;
  const c: Contender = {
    name: 'geo-dino fp32 split',
    seconds: [],
    cpuSeconds: [],
    heights: new Map(),
    extra: { backbone: [], head: [] },
    async run(i) {
      const px = tiles.slice(i * per, (i + 1) * per);
      const c0 = cpuNow();
      const t0 = performance.now();
      const r = await pool.run(['backbone', 'head'], { pixel_values: { type: 'float32', dims: [1, 3, TILE, TILE], data: px } }, { outputs: ['canopy_height'] });
      c.extra!.backbone.push(r.timings[0]!.ms / 1000);
      c.extra!.head.push(r.timings[1]!.ms / 1000);
      return { seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuNow() - c0 };
    },
    close: () => pool.close(),
  };
  return c;
}

function torchContender(server: TorchServer, bf16: boolean): Contender {
  return {
    name: bf16 ? 'PyTorch bf16' : 'PyTorch fp32',
    seconds: [],
    cpuSeconds: [],
    heights: new Map(),
    run: (i) => server.run(i, bf16),
    close: async () => undefined,
  };
}

export const modelBench: BenchModule = {
  explicitOnly: true,
  description: 'CHMv2 ViT-L, 512² tiles on CPU: geo-dino ONNX (fp32, fp16, int8) vs PyTorch transformers (fp32, bf16)',
  async run(args): Promise<BenchReport> {
    const python = process.env['GEO_DINO_TORCH_PYTHON'] || 'python3';
    try {
      execFileSync(python, ['-c', 'import torch, transformers; transformers.CHMv2ForDepthEstimation'], { stdio: 'ignore', timeout: 120_000 });
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : 'cannot import torch and transformers (>= 5, with CHMv2ForDepthEstimation)';
      throw new Error(`the model benchmark needs a Python with torch and transformers for the reference: ${python}: ${why}; set GEO_DINO_TORCH_PYTHON to one that can`);
    }
    const threads = Number(arg(args, 'threads') ?? availableParallelism());
    const nTiles = Number(arg(args, 'tiles') ?? 2);
    const rounds = Number(arg(args, 'rounds') ?? 3);
    const variants = (arg(args, 'variants') ?? 'matmul,fp16,int8,split,torch-bf16').split(',').filter((v) => v && v !== 'fp32');
    const keep = arg(args, 'keep');
    const work = keep ?? (await mkdtemp(join(tmpdir(), 'geo-dino-bench-model-')));
    const log = (m: string): boolean => process.stderr.write(`  ${m}\n`);
    const contenders: Contender[] = [];
    let server: TorchServer | undefined;
    try {
      const hf = join(work, 'chmv2-vitl16-random');
      if (!existsSync(join(hf, 'model.safetensors'))) {
        log('writing a full-size CHMv2 ViT-L checkpoint with random weights (1.35 GB)…');
        await writeRandomCheckpoint(hf, CHMV2_VITL16_CONFIG, { seed: 1 });
      }
      const tiles = makeTiles(nTiles);
      const tilesPath = join(work, 'tiles.f32');
      await writeFile(tilesPath, new Uint8Array(tiles.buffer));

      const build = async (name: string, dtype: ModelDtype, attention?: AttentionImpl, split = false): Promise<string> => {
        const out = join(work, name);
        if (!existsSync(join(out, 'geo-dino.json'))) {
          log(`building ${name}…`);
          await buildModel({ from: hf, out, dtype, tileSize: TILE, ...(attention ? { attention } : {}), split, force: true });
        }
        return out;
      };

      log('loading models…');
      const fp32 = await geoDinoContender('geo-dino fp32', await build('geo-dino-fp32-mha', 'fp32'), tiles, threads);
      contenders.push(fp32);
      server = new TorchServer(python, hf, tilesPath, nTiles, threads, work);
      await server.ready();
      const torch32 = torchContender(server, false);
      contenders.push(torch32);
      for (const v of variants) {
        if (v === 'torch-bf16') contenders.push(torchContender(server, true));
        else if (v === 'split') contenders.push(await splitContender(await build('geo-dino-fp32-split-mha', 'fp32', undefined, true), tiles, threads));
        else if (v === 'matmul') contenders.push(await geoDinoContender('geo-dino fp32 MatMul attention', await build('geo-dino-matmul', 'fp32', 'matmul'), tiles, threads));
        else if (v === 'fp16' || v === 'int8') contenders.push(await geoDinoContender(`geo-dino ${v}`, await build(`geo-dino-${v}`, v), tiles, threads));
        else throw new Error(`unknown variant ${v} (fp16, int8, matmul, split, torch-bf16)`);
      }

      log(`warm-up, then ${rounds} rounds of ${contenders.length} contenders, interleaved tile by tile, ${threads} threads…`);
      for (const c of contenders) await c.run(0);
      if (contenders.some((c) => c.extra)) for (const c of contenders) if (c.extra) (c.extra.backbone.length = 0), (c.extra.head.length = 0);
      for (let r = 0; r < rounds; r++) {
        const i = r % nTiles;
        for (const c of contenders) {
          const res = await c.run(i);
          c.seconds.push(res.seconds);
          c.cpuSeconds.push(res.cpuSeconds);
          if (res.heights && !c.heights.has(i)) c.heights.set(i, res.heights.slice());
        }
        log(`round ${r + 1}: ${contenders.map((c) => `${c.name} ${c.seconds.at(-1)!.toFixed(2)} s (CPU ${c.cpuSeconds.at(-1)!.toFixed(2)} s)`).join(', ')}`);
      }

      const errVs = (a: Contender, b: Contender): { maxAbs: number; meanAbs: number } => {
        let max = 0;
        let sum = 0;
        let n = 0;
        for (const [i, h] of a.heights) {
          const e = errors(h, b.heights.get(i)!);
          max = Math.max(max, e.maxAbs);
          sum += e.meanAbs;
          n++;
        }
        return { maxAbs: max, meanAbs: sum / n };
      };
      // Per-round ratios cancel most of the load that other processes put on a shared machine.
      const pairedRatio = (a: Contender, b: Contender): number => median(a.seconds.map((s, k) => b.seconds[k]! / s));
      const parity = errVs(fp32, torch32);
      const rows: BenchRow[] = [
        {
          metric: `geo-dino fp32, CPU time (all threads) for one ${TILE}² tile`,
          value: median(fp32.cpuSeconds),
          unit: 'CPU s',
          reference: { name: 'PyTorch fp32', value: median(torch32.cpuSeconds) },
          better: 'lower',
          target: 1.0,
          note: 'process CPU time is far less affected than wall time when other processes share the machine',
        },
        {
          metric: `geo-dino fp32, one ${TILE}² tile`,
          value: median(fp32.seconds),
          unit: 's',
          reference: { name: 'PyTorch fp32 (transformers CHMv2ForDepthEstimation)', value: median(torch32.seconds) },
          better: 'lower',
          target: 1.0,
          note: `median of per-round ratios ${pairedRatio(fp32, torch32).toFixed(2)}×; same weights and tiles; height difference max ${parity.maxAbs.toExponential(2)} m, mean ${parity.meanAbs.toExponential(2)} m`,
        },
      ];
      for (const c of contenders.slice(2)) {
        if (c.extra) {
          rows.push({
            metric: `geo-dino fp32 split: DPT head, one ${TILE}² tile`,
            value: median(c.extra.head),
            unit: 's',
            reference: { name: 'geo-dino fp32 split: backbone', value: median(c.extra.backbone) },
            better: 'lower',
            note: 'ratio > 1 means the head costs less than the backbone',
          });
          continue;
        }
        const ref = c.name.startsWith('PyTorch') ? torch32 : fp32;
        const e = errVs(c, ref);
        rows.push({
          metric: `${c.name === 'PyTorch bf16' ? "PyTorch bf16 autocast (the original Depther's CPU default)" : c.name}, one ${TILE}² tile`,
          value: median(c.seconds),
          unit: 's',
          reference: { name: ref.name, value: median(ref.seconds) },
          better: 'lower',
          note: `median of per-round ratios ${pairedRatio(c, ref).toFixed(2)}×; CPU time ${median(c.cpuSeconds).toFixed(2)} s vs ${median(ref.cpuSeconds).toFixed(2)} s; height vs ${ref.name}: max ${e.maxAbs.toFixed(3)} m, mean ${e.meanAbs.toFixed(4)} m`,
        });
      }
      const context: Record<string, unknown> = {
        cpu: cpus()[0]?.model.trim(),
        threads,
        rounds,
        tiles: nTiles,
        tile: `${TILE}x${TILE}`,
        params: 336_876_800,
        torch: server.torch,
        seconds: Object.fromEntries(contenders.map((c) => [c.name, c.seconds.map((x) => Number(x.toFixed(3)))])),
        cpuSeconds: Object.fromEntries(contenders.map((c) => [c.name, c.cpuSeconds.map((x) => Number(x.toFixed(3)))])),
      };
      return { name: 'model', rows, context };
    } finally {
      server?.close();
      for (const c of contenders) await c.close().catch(() => undefined);
      if (!keep) await rm(work, { recursive: true, force: true });
    }
  },
};
