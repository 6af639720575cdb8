/**
 * `npm run bench -- strip`: a single-strip DEFLATE GeoTIFF (16384 × 16384 × 8 bit: one 256 MiB
 * strip) read as the tiler reads scenes — 512² windows, four at a time, through a 16 MiB block
 * cache as `geo-dino chm` uses — against the same pixels as a tiled file written by GDAL, in the
 * same run: windows per second and peak memory (each in its own child process). The strip is
 * decoded once (the cache keeps a block larger than itself as its only entry) instead of once per
 * window.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import type { BenchModule, BenchReport } from './report.js';


/** One strip of `size`² 8-bit pixels, DEFLATE, as a classic TIFF written byte by byte. */
function writeSingleStrip(path: string, size: number): void {
  const px = Buffer.alloc(size * size);
  for (let i = 0; i < px.length; i += 97) px[i] = (i >> 7) & 255;
  const z = deflateSync(px, { level: 1 });
  const entries: [number, number, number][] = [
    [256, 4, size],
    [257, 4, size],
    [258, 3, 8],
    [259, 3, 8],
    [262, 3, 1],
    [273, 4, 8],
    [277, 3, 1],
    [278, 4, size],
    [279, 4, z.length],
  ];
  const ifd = Buffer.alloc(2 + entries.length * 12 + 4);
  ifd.writeUInt16LE(entries.length, 0);
  entries.forEach(([tag, type, v], i) => {
    const o = 2 + i * 12;
    ifd.writeUInt16LE(tag, o);
    ifd.writeUInt16LE(type, o + 2);
    ifd.writeUInt32LE(1, o + 4);
    if (type === 3) ifd.writeUInt16LE(v, o + 8);
    else ifd.writeUInt32LE(v, o + 8);
  });
  const pad = z.length % 2;
  const head = Buffer.from([0x49, 0x49, 42, 0, 0, 0, 0, 0]);
  head.writeUInt32LE(8 + z.length + pad, 4);
  const fd = openSync(path, 'w');
  writeSync(fd, head);
  writeSync(fd, z);
  if (pad) writeSync(fd, Buffer.alloc(1));
  writeSync(fd, ifd);
  closeSync(fd);
}

const CHILD = fileURLToPath(new URL('./strip-child.js', import.meta.url));

interface ChildResult {
  windows: number;
  seconds: number;
  decodes: number;
  peakRssMiB: number;
}

function measure(path: string, size: number): ChildResult {
  return JSON.parse(execFileSync(process.execPath, [CHILD, path, String(size)], { encoding: 'utf8', timeout: 600_000 })) as ChildResult;
}

export const stripBench: BenchModule = {
  description: 'single-strip 256 MiB DEFLATE GeoTIFF read in 512² windows (16 MiB block cache) vs the same pixels tiled by GDAL',
  async run(): Promise<BenchReport> {
    const size = 16384;
    const dir = mkdtempSync(join(tmpdir(), 'gd-bench-strip-'));
    try {
      const strip = join(dir, 'strip.tif');
      const tiled = join(dir, 'tiled.tif');
      writeSingleStrip(strip, size);
      execFileSync('gdal_translate', ['-q', '-co', 'TILED=YES', '-co', 'BLOCKXSIZE=512', '-co', 'BLOCKYSIZE=512', '-co', 'COMPRESS=DEFLATE', strip, tiled], { stdio: 'ignore' });
      const ref = measure(tiled, size);
      const got = measure(strip, size);
      return {
        name: 'strip',
        context: { sizePx: size, stripMiB: (size * size) / 2 ** 20, windows: got.windows, stripDecodes: got.decodes, tiledDecodes: ref.decodes },
        rows: [
          { metric: `512² windows from one ${(size * size) / 2 ** 20} MiB DEFLATE strip`, value: got.windows / got.seconds, unit: 'windows/s', reference: { name: 'the same pixels tiled 512² (GDAL)', value: ref.windows / ref.seconds }, better: 'higher' },
          { metric: 'peak RSS, single strip', value: got.peakRssMiB, unit: 'MiB', reference: { name: 'tiled', value: ref.peakRssMiB }, better: 'lower', note: `the strip itself is ${(size * size) / 2 ** 20} MiB decoded` },
        ],
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
