/**
 * Child of the `strip` benchmark: read 512² windows of a raster, four at a time, through a 16 MiB
 * block cache; print windows, seconds, blocks decoded and peak RSS as JSON.
 */
import { createBlockCache, openRaster, type PixelWindow } from '@geo-dino/tiling';

const path = process.argv[2]!;
const size = Number(process.argv[3]);
const raster = await openRaster(path, { cache: createBlockCache(16 * 1024 * 1024) });
const windows: PixelWindow[] = [];
for (let y = 0; y < 4; y++) for (let x = 0; x < size / 512; x++) windows.push({ x: x * 512, y: y * 512, width: 512, height: 512 });
const t0 = performance.now();
for (let i = 0; i < windows.length; i += 4) await Promise.all(windows.slice(i, i + 4).map((w) => raster.read(w)));
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(JSON.stringify({ windows: windows.length, seconds, decodes: raster.stats.blocksDecoded, peakRssMiB: process.resourceUsage().maxRSS / 1024 }));
await raster.close();
process.exit(0);
