/**
 * Child process of the `tiler` benchmark (so each measurement gets its own thread settings:
 * UV_THREADPOOL_SIZE and VIPS_CONCURRENCY are read at start-up).
 *
 * argv: mode ('decode' | 'stream'), file, threads, [bbox w,s,e,n and GSD for 'stream'].
 * Prints one JSON line: { mpix, seconds, cpuSeconds (all threads of the process) }.
 */
import { aoiFromBbox } from '@geo-dino/geometry';
import { DecoderPool, createBlockCache, gridForAoi, openRaster, tileStream } from '@geo-dino/tiling';

const [mode, file, threadsText, bbox, gsd] = process.argv.slice(2);
const threads = Number(threadsText);
const pool = new DecoderPool(threads);
// Every worker started before timing: thread start-up is not decoding.
await pool.warm();

const PASSES = 4;

if (mode === 'decode') {
  // Every block of full resolution, PASSES times (cache cleared between passes), block-aligned
  // windows, 2 reads in flight per thread.
  const cache = createBlockCache(64 * 1024 * 1024);
  const src = await openRaster(file!, { decoder: pool.decode, cache });
  const { width, height, blockWidth: bw, blockHeight: bh } = src.info;
  const windows: { x: number; y: number; width: number; height: number }[] = [];
  for (let y = 0; y < height; y += bh) for (let x = 0; x < width; x += bw) windows.push({ x, y, width: Math.min(bw, width - x), height: Math.min(bh, height - y) });
  // Warm-up: start the workers and decode one block.
  await src.read(windows[0]!);
  cache.clear();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let pass = 0; pass < PASSES; pass++) {
    cache.clear();
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < windows.length) await src.read(windows[next++]!);
    };
    await Promise.all(Array.from({ length: 2 * threads }, lane));
  }
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpuSeconds = (c.user + c.system) / 1e6;
  process.stdout.write(JSON.stringify({ mpix: (PASSES * width * height) / 1e6, seconds, cpuSeconds, blocks: src.stats.blocksDecoded }) + '\n');
  await src.close();
} else {
  const src = await openRaster(file!, { decoder: pool.decode, cache: createBlockCache(128 * 1024 * 1024) });
  const layout = gridForAoi(aoiFromBbox(bbox!.split(',').map(Number), 'bench'), { tileSize: 512, overlap: 0, gsd: Number(gsd) });
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let px = 0;
  for await (const tile of tileStream(layout, [{ id: 'bench', raster: src }], { lookahead: 2 * threads, warp: pool.warp })) px += tile.spec.width * tile.spec.height;
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpuSeconds = (c.user + c.system) / 1e6;
  process.stdout.write(JSON.stringify({ mpix: px / 1e6, seconds, cpuSeconds, width: layout.grid.width, height: layout.grid.height, transform: layout.grid.transform, epsg: layout.grid.crs.epsg, gsd: layout.grid.gsd }) + '\n');
  await src.close();
}
await pool.close();
process.exit(0);
