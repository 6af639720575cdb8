// Child process for memory.test.ts (run with --expose-gc): runs the tiler over an AOI and prints
// its peak memory. A full GC runs after every tile, so the high-water mark measures what is
// alive, not how lazily V8 collects garbage in a longer run.
// argv: mode ('stream' | 'warp'), source COG, bbox (w,s,e,n), output path (warp mode);
// or 'writer', width, height, output path, block size: the COG writer alone (float32, 2 bands,
// nodata -9999, like chm.tif), every block written. The writer keeps working between calls
// (compression, overviews, the copy at close), so there `live` is the peak of what survives a
// full GC taken every 20 ms.
import { getHeapStatistics } from 'node:v8';
import { aoiFromBbox } from '@geo-dino/geometry';
import { createBlockCache, createCogWriter, gridForAoi, openRaster, tileStream, warpToCog } from '@geo-dino/tiling';

const [mode, source, bboxText, out] = process.argv.slice(2);
let highWater = 0;
const sample = () => {
  const m = process.memoryUsage();
  highWater = Math.max(highWater, getHeapStatistics().used_heap_size + m.arrayBuffers);
};
const timer = setInterval(sample, 5);
let tiles = 0;
let pixels = 0;
let levels;
let live = 0;
const sampleLive = () => {
  globalThis.gc();
  const m = process.memoryUsage();
  live = Math.max(live, getHeapStatistics().used_heap_size + m.arrayBuffers);
  sample();
};
const cache = createBlockCache(32 * 1024 * 1024);
if (mode === 'writer') {
  const [width, height, B] = [Number(source), Number(bboxText), Number(process.argv[6])];
  const gcTimer = setInterval(sampleLive, 20);
  const w = await createCogWriter(out, {
    width,
    height,
    bands: 2,
    dtype: 'float32',
    blockSize: B,
    nodata: -9999,
    crs: 'EPSG:32633',
    transform: [500000, 0.6, 0, 5000000, 0, -0.6],
    deflateLevel: 1,
    progress: { start: () => ({ tick: sample, update() {}, setTotal() {}, finish() {}, snapshot: () => ({}) }) },
  });
  for (let row = 0; row < w.blocksDown; row++) {
    for (let col = 0; col < w.blocksAcross; col++) {
      const planes = [0, 1].map((b) => {
        const a = new Float32Array(B * B);
        for (let y = 0; y < B; y++) {
          const gy = row * B + y;
          for (let x = 0; x < B; x++) {
            const gx = col * B + x;
            // Heights with a nodata disc per block, so overviews average around holes.
            a[y * B + x] = (x - B / 3) ** 2 + (y - B / 2) ** 2 < (B / 8) ** 2 ? -9999 : ((gx * 7 + gy * 13 + b * 101) % 997) * 0.05;
          }
        }
        return a;
      });
      await w.writeBlock(col, row, planes);
      tiles++;
      pixels += B * B;
    }
  }
  await w.close();
  clearInterval(gcTimer);
  sampleLive();
  levels = w.levels.length;
} else if (mode === 'stream') {
  const aoi = aoiFromBbox(bboxText.split(',').map(Number), 'test');
  const raster = await openRaster(source, { cache });
  const layout = gridForAoi(aoi, { tileSize: 512, overlap: 64 });
  for await (const tile of tileStream(layout, [{ id: 's', raster }], { lookahead: 4 })) {
    tiles++;
    pixels += tile.validCount;
    sample();
    globalThis.gc();
  }
  await raster.close();
} else {
  const aoi = aoiFromBbox(bboxText.split(',').map(Number), 'test');
  // A progress sink that collects garbage after every tile.
  const progress = { start: () => ({ tick() { globalThis.gc(); }, update() {}, setTotal() {}, finish() {}, snapshot: () => ({}) }) };
  const r = await warpToCog([source], out, { aoi, open: { cache }, progress });
  tiles = r.tilesWritten;
  pixels = r.validPixels;
}
clearInterval(timer);
sample();
process.stdout.write(JSON.stringify({ tiles, pixels, levels, live: mode === 'writer' ? live : undefined, maxRssKiB: process.resourceUsage().maxRSS, highWater }) + '\n');
process.exit(0);
