// Child process for memory.test.ts (run with --expose-gc): runs the tiler over an AOI and prints
// its peak memory. A full GC runs after every tile, so the high-water mark measures what is
// alive, not how lazily V8 collects garbage in a longer run.
// argv: mode ('stream' | 'warp'), source COG, bbox (w,s,e,n), output path (warp mode).
import { getHeapStatistics } from 'node:v8';
import { aoiFromBbox } from '@geo-dino/geometry';
import { createBlockCache, gridForAoi, openRaster, tileStream, warpToCog } from '@geo-dino/tiling';

const [mode, source, bboxText, out] = process.argv.slice(2);
const bbox = bboxText.split(',').map(Number);
const aoi = aoiFromBbox(bbox, 'test');
let highWater = 0;
const sample = () => {
  const m = process.memoryUsage();
  highWater = Math.max(highWater, getHeapStatistics().used_heap_size + m.arrayBuffers);
};
const timer = setInterval(sample, 5);
let tiles = 0;
let pixels = 0;
const cache = createBlockCache(32 * 1024 * 1024);
if (mode === 'stream') {
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
  // A progress sink that collects garbage after every tile.
  const progress = { start: () => ({ tick() { globalThis.gc(); }, update() {}, setTotal() {}, finish() {}, snapshot: () => ({}) }) };
  const r = await warpToCog([source], out, { aoi, open: { cache }, progress });
  tiles = r.tilesWritten;
  pixels = r.validPixels;
}
clearInterval(timer);
sample();
process.stdout.write(JSON.stringify({ tiles, pixels, maxRssKiB: process.resourceUsage().maxRSS, highWater }) + '\n');
process.exit(0);
