/**
 * `npm run bench -- shards [--areas=1,4,16] [--base=1024] [--tile-size=128] [--shard-size=512] [--band-width=1]`
 *
 * National-scale bounds (issue 13): a sharded run's state directory and memory do not grow with
 * the AOI, and planning a country is quick.
 *
 * - The same sharded run (demo model, 128² tiles, 512-px shards in bands one shard wide, so that
 *   even the 1× area holds whole bands) over 1×, 4× and 16× the area:
 *   peak size of the state directory (tile store, ledger, plan; the outputs staged beside it are
 *   not state), polled while the run goes, and the process's peak RSS (run.json). Reference: the
 *   1× run, measured in the same benchmark.
 * - `--dry-run` of Kenya (≈ 580,000 km², ≈ 8 million 512² tiles) on a coarse raster: wall time and
 *   peak RSS, against the dry run of a 1 km² AOI in the same benchmark (and the bound of
 *   1 GiB, noted).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultDemoDir, ensureDemoModel } from '@geo-dino/model';
import { rectangleAoi, writeSyntheticScene } from '@geo-dino/chm';
import { createCogWriter, crsFromEpsg } from '@geo-dino/tiling';
import type { BenchModule, BenchReport, BenchRow } from './report.js';

const CLI = fileURLToPath(new URL('../../apps/cli/bin/geo-dino.js', import.meta.url));
const KENYA = fileURLToPath(new URL('../../../shared/data/aoi/kenya.geojson', import.meta.url));

function arg(args: readonly string[], name: string): string | undefined {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit?.slice(name.length + 3);
}

async function dirBytes(dir: string, skip: string): Promise<number> {
  let n = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const p = join(dir, name);
    if (p === skip) continue;
    const st = await stat(p).catch(() => null);
    if (!st) continue;
    n += st.isDirectory() ? await dirBytes(p, skip) : st.size;
  }
  return n;
}

/** Run the CLI; resolve with its stdout and the peak of `poll()` sampled while it ran. */
function runCli(args: string[], env: NodeJS.ProcessEnv, poll?: () => Promise<number>): Promise<{ stdout: string; peak: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let peak = 0;
    let busy = false;
    const timer = poll
      ? setInterval(() => {
          if (busy) return;
          busy = true;
          void poll()
            .then((v) => (peak = Math.max(peak, v)))
            .finally(() => (busy = false));
        }, 100)
      : null;
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      if (timer) clearInterval(timer);
      const seconds = (performance.now() - t0) / 1000;
      if (code === 0) resolve({ stdout: out, peak, seconds });
      else reject(new Error(`geo-dino ${args.join(' ')} failed (${code}): ${err.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

/** A coarse 8-bit RGB raster in EPSG:4326 over a lon/lat box (stands in for imagery when planning). */
async function coarseRaster(path: string, bbox: [number, number, number, number], size: number): Promise<void> {
  const [w, s, e, n] = bbox;
  const cog = await createCogWriter(path, { width: size, height: size, bands: 3, dtype: 'uint8', blockSize: 256, crs: crsFromEpsg(4326), transform: [w, (e - w) / size, 0, n, 0, -(n - s) / size], colorInterp: ['red', 'green', 'blue'], overviews: 0 });
  const block = [new Uint8Array(256 * 256).fill(60), new Uint8Array(256 * 256).fill(100), new Uint8Array(256 * 256).fill(50)];
  for (let r = 0; r < Math.ceil(size / 256); r++) for (let c = 0; c < Math.ceil(size / 256); c++) await cog.writeBlock(c, r, block);
  await cog.close();
}

export const shardsBench: BenchModule = {
  description: 'sharded runs: state-directory peak and RSS at 1×/4×/16× the area; --dry-run of Kenya (time, memory)',
  async run(args): Promise<BenchReport> {
    const areas = (arg(args, 'areas') ?? '1,4,16').split(',').map(Number);
    const base = Number(arg(args, 'base') ?? 1024);
    const tile = Number(arg(args, 'tile-size') ?? 128);
    const shard = Number(arg(args, 'shard-size') ?? 512);
    const band = Number(arg(args, 'band-width') ?? 1);
    const work = await mkdtemp(join(tmpdir(), 'geo-dino-bench-shards-'));
    const log = (m: string): boolean => process.stderr.write(`  ${m}\n`);
    const rows: BenchRow[] = [];
    const home = join(work, 'home');
    try {
      await ensureDemoModel({ dir: defaultDemoDir({ GEO_DINO_HOME: home }) });
      const biggest = Math.round(base * Math.sqrt(Math.max(...areas)));
      const scene = join(work, `scene-${biggest}.tif`);
      const s = await writeSyntheticScene(scene, { size: biggest + 64, seed: 21 });
      const res: { area: number; px: number; state: number; store: number; rss: number; shards: number; tiles: number; inferred: number }[] = [];
      for (const a of areas) {
        const px = Math.round(base * Math.sqrt(a));
        const aoiPath = join(work, `aoi-${a}.geojson`);
        await writeFile(aoiPath, JSON.stringify({ type: 'MultiPolygon', coordinates: rectangleAoi(s.epsg, s.transform, px, px, 0.02, `${a}x`).geometry }));
        const out = join(work, `run-${a}`);
        const state = join(work, `.run-${a}.geo-dino-state`);
        log(`${a}× area (${px}² px), ${shard}-px shards, bands of ${band} shards…`);
        const r = await runCli(
          ['chm', '--model', 'demo', '--aoi', aoiPath, '--imagery', scene, '--out', out, '--tile-size', String(tile), '--overlap', String(tile / 8), '--shard-size', String(shard), '--band-width', String(band), '--no-web-tiles', '--quiet', '--json'],
          { GEO_DINO_HOME: home },
          () => dirBytes(state, join(state, 'out')),
        );
        void r;
        const run = JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as { memory: { maxRssBytes: number }; state: { tileStorePeakBytes: number }; shards: { count: number }; tiles: { total: number; predicted: number; empty: number } };
        res.push({ area: a, px, state: r.peak / 2 ** 20, store: run.state.tileStorePeakBytes / 2 ** 20, rss: run.memory.maxRssBytes / 2 ** 20, shards: run.shards.count, tiles: run.tiles.total, inferred: run.tiles.predicted + run.tiles.empty });
        await rm(out, { recursive: true, force: true });
      }
      const ref = res[0]!;
      for (const p of res.slice(1)) {
        const what = `${p.area}× area (${p.px}² px, ${p.shards} shards, ${p.tiles} tiles)`;
        const refName = `${ref.area}× area (${ref.px}² px, ${ref.shards} shards, ${ref.tiles} tiles)`;
        rows.push({ metric: `state directory peak, ${what}`, value: p.state, unit: 'MiB', reference: { name: refName, value: ref.state }, better: 'lower', target: 0.9, note: `tile store peak ${p.store.toFixed(1)} vs ${ref.store.toFixed(1)} MiB; tiles inferred ${p.inferred} for ${p.tiles} (band borders), vs ${ref.inferred} for ${ref.tiles}` });
        rows.push({ metric: `peak RSS, ${what}`, value: p.rss, unit: 'MiB', reference: { name: refName, value: ref.rss }, better: 'lower', target: 0.9 });
      }

      // Planning: Kenya vs 1 km², same raster resolution class, same process shape.
      log('dry run: Kenya…');
      const kenyaRgb = join(work, 'kenya-rgb.tif');
      await coarseRaster(kenyaRgb, [33.5, -5, 42.5, 5.5], 1024);
      const small = join(work, 'small.geojson');
      await writeFile(small, JSON.stringify({ type: 'Polygon', coordinates: [[[37.0, 0.0], [37.009, 0.0], [37.009, 0.009], [37.0, 0.009], [37.0, 0.0]]] }));
      const dry = async (aoi: string): Promise<{ seconds: number; rss: number; tiles: number; shards: number }> => {
        const r = await runCli(['chm', '--model', 'demo', '--aoi', aoi, '--imagery', kenyaRgb, '--dry-run', '--rate', '1', '--json', '--quiet'], { GEO_DINO_HOME: home });
        const j = JSON.parse(r.stdout) as { tiles: number; shards: number; memory: { maxRssBytes: number } };
        return { seconds: r.seconds, rss: j.memory.maxRssBytes / 2 ** 20, tiles: j.tiles, shards: j.shards };
      };
      const k = await dry(KENYA);
      const one = await dry(small);
      rows.push({ metric: `--dry-run of Kenya (${k.tiles} tiles, ${k.shards} shards), wall time of the command`, value: k.seconds, unit: 's', reference: { name: `--dry-run of 1 km² (${one.tiles} tiles)`, value: one.seconds }, better: 'lower' });
      rows.push({ metric: `--dry-run of Kenya, peak RSS`, value: k.rss, unit: 'MiB', reference: { name: `--dry-run of 1 km² (the issue's bound: well under 1024 MiB)`, value: one.rss }, better: 'lower' });
      return { name: 'shards', rows, context: { cpu: cpus()[0]?.model.trim(), cores: cpus().length, shardSize: shard, bandWidth: band, base, tileSize: tile } };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
};
