/**
 * `npm run bench -- tileservice`: reading imagery from an XYZ tile service on loopback (tiles/s
 * and decoded MPix/s), with a cold and a warm on-disk tile cache, next to reading the same area
 * from the COG the tiles were made from (reference, same run).
 *
 * Imagery: cogeo.tif enlarged 4× to 4096 × 4096 (0.149 m, JPEG COG, 512-px blocks), cut into
 * zoom-20 XYZ PNG tiles by `gdal2tiles.py --xyz` and served by Python's `http.server` (a plain
 * static server, threaded). Both sources are read over the same lon/lat box in 512 × 512 windows,
 * 4 windows in flight (the tile stream's look-ahead), on the shared decoder pool.
 * "cold": a fresh disk cache (every tile fetched over loopback and decoded); "warm": a second
 * source over the same cache (tiles from disk, decoded again: the decoded-tile LRU is per source).
 * The COG is read by a fresh source on each pass, so its blocks are decoded again too.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { footprintFromBounds, openRaster, openTileService, sharedDecoderPool, type RasterSource } from '@geo-dino/tiling';
import type { BenchModule, BenchReport } from './report.js';

const SHARED = resolve(process.env['GEO_DINO_SHARED_DATA'] ?? join(fileURLToPath(new URL('../..', import.meta.url)), '..', 'shared', 'data'));
const PYTHON = process.env['GEO_DINO_GDAL_PYTHON'] ?? '/usr/bin/python3';

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function waitUp(url: string, proc: ChildProcess): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}`);
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not answer`);
}

/** Read every 512 × 512 window of a source, 4 in flight; returns the seconds taken. */
async function readAll(src: RasterSource): Promise<number> {
  const W = 512;
  const windows: { x: number; y: number }[] = [];
  for (let y = 0; y < src.info.height; y += W) for (let x = 0; x < src.info.width; x += W) windows.push({ x, y });
  const t0 = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < windows.length) {
      const w = windows[next++]!;
      await src.read({ x: w.x, y: w.y, width: Math.min(W, src.info.width - w.x), height: Math.min(W, src.info.height - w.y) });
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return (performance.now() - t0) / 1000;
}

export const tileServiceBench: BenchModule = {
  description: 'XYZ tile service on loopback (cold and warm tile cache) vs the same area from the COG',
  async run(): Promise<BenchReport> {
    const dir = mkdtempSync(join(tmpdir(), 'geo-dino-bench-tiles-'));
    let server: ChildProcess | null = null;
    try {
      const cog = join(dir, 'big.tif');
      sh('gdal_translate', ['-q', '-outsize', '400%', '400%', '-r', 'bilinear', '-of', 'COG', '-co', 'COMPRESS=JPEG', '-co', 'BLOCKSIZE=512', join(SHARED, 'rasterio', 'cogeo.tif'), cog]);
      sh(PYTHON, ['-m', 'osgeo_utils.gdal2tiles', '--xyz', '-q', '-w', 'none', '-r', 'bilinear', '-z', '20', '--processes=2', cog, join(dir, 'xyz')]);
      const port = await freePort();
      server = spawn(PYTHON, ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', join(dir, 'xyz')], { stdio: 'ignore' });
      const url = `http://127.0.0.1:${port}`;
      await waitUp(`${url}/`, server);
      await sharedDecoderPool().warm();

      // The COG (reference) over the area the tiles cover: each pass a fresh source, so every
      // block is decoded again (closing a source drops its decoded blocks); best of 2 after a warm-up.
      let refBest = Infinity;
      let bbox: [number, number, number, number] = [0, 0, 0, 0];
      let refInfo = '';
      let refPixels = 0;
      for (let pass = 0; pass < 3; pass++) {
        const ref = await openRaster(cog);
        bbox = footprintFromBounds(ref).bbox;
        refInfo = `${ref.info.width}×${ref.info.height} JPEG, 512-px blocks`;
        refPixels = ref.info.width * ref.info.height;
        const s = await readAll(ref);
        if (pass > 0) refBest = Math.min(refBest, s);
        await ref.close();
      }
      const refMpix = refPixels / 1e6 / refBest;

      const cache = { dir: join(dir, 'cache'), maxBytes: 1024 ** 3 };
      const open = () => openTileService(`xyz:${url}/{z}/{x}/{y}.png`, { bbox, zoom: 20, marginTiles: 0, diskCache: cache });
      const cold = await open();
      const coldS = await readAll(cold);
      const tiles = cold.tiles.decoded;
      const missing = cold.tiles.missing;
      const area = cold.info.width * cold.info.height;
      await cold.close();
      const warm = await open();
      const warmS = await readAll(warm);
      const fromDisk = warm.tiles.fromDiskCache;
      await warm.close();
      const tilePix = 256 * 256;
      return {
        name: 'tileservice',
        context: {
          tiles,
          missingTiles: missing,
          tileFormat: 'PNG 256 px (gdal2tiles, zoom 20)',
          cog: refInfo,
          windowsInFlight: 4,
          decoderThreads: sharedDecoderPool().threads,
          warmFromDisk: fromDisk,
        },
        rows: [
          { metric: 'tile service, cold cache', value: (tiles * tilePix) / 1e6 / coldS, unit: 'MPix/s', reference: { name: 'COG (same area)', value: refMpix }, better: 'higher', note: `${(tiles / coldS).toFixed(0)} tiles/s; ${(area / 1e6 / coldS).toFixed(1)} MPix/s of the whole box` },
          { metric: 'tile service, warm cache', value: (tiles * tilePix) / 1e6 / warmS, unit: 'MPix/s', reference: { name: 'COG (same area)', value: refMpix }, better: 'higher', note: `${(tiles / warmS).toFixed(0)} tiles/s` },
        ],
      };
    } finally {
      server?.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
