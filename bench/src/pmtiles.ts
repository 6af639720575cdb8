/**
 * `npm run bench -- pmtiles [--size=4096]`: web-tile generation speed.
 *
 * Input: a synthetic run made by bench/scripts/make-bench-run.py with GDAL (UTM, 0.6 m, float32
 * height + uncertainty, RGB imagery; default 4096² px ≈ 2.5 km square).
 * - COG → PMTiles, tiles/s, for the height layer (Terrarium PNG) and the imagery (WebP), against
 *   gdal2tiles.py (1 process, XYZ PNG folder, the same COG and zoom range, default resampling) —
 *   the tool analysts use today.
 * - The PMTiles writer alone (100k small distinct tiles, clustered, deduplicated, leaf
 *   directories) against appending the same bytes to a file.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PMTilesWriter, TileType, writeRasterTiles } from '@geo-dino/pmtiles';
import type { BenchModule, BenchReport, BenchRow } from './report.js';

const GDAL_PYTHON = process.env['GEO_DINO_GDAL_PYTHON'] ?? '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../scripts/make-bench-run.py', import.meta.url));

/** `--name=value` (run.ts treats bare words as benchmark names). */
function arg(args: readonly string[], name: string, fallback: number): number {
  const a = args.find((x) => x.startsWith(`${name}=`));
  const v = a ? Number(a.slice(name.length + 1)) : fallback;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

function countFiles(dir: string, ext: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) n += countFiles(join(dir, e.name), ext);
    else if (e.name.endsWith(ext)) n++;
  }
  return n;
}

/** Make the synthetic run directory of `size`² pixels (GDAL). */
export function makeBenchRun(dir: string, size: number): void {
  execFileSync(GDAL_PYTHON, [SCRIPT, dir, String(size)], { stdio: 'ignore', timeout: 600_000 });
}

export const pmtilesBench: BenchModule = {
  description: 'COG → PMTiles tiles/s vs gdal2tiles.py; PMTiles writer vs plain appends',
  async run(args): Promise<BenchReport> {
    const size = arg(args, '--size', 4096);
    const dir = mkdtempSync(join(tmpdir(), 'gd-bench-pmtiles-'));
    try {
      makeBenchRun(dir, size);
      const rows: BenchRow[] = [];
      const context: Record<string, unknown> = { sizePx: size, gsd_m: 0.6 };

      // gdal2tiles on the imagery (reference), zoom range chosen like ours.
      const t0 = performance.now();
      const img = await writeRasterTiles(join(dir, 'imagery.tif'), join(dir, 'imagery.pmtiles'), { layer: 'imagery' });
      const imgSeconds = (performance.now() - t0) / 1000;
      const t1 = performance.now();
      const height = await writeRasterTiles(join(dir, 'chm.tif'), join(dir, 'chm.pmtiles'), { layer: 'height' });
      const heightSeconds = (performance.now() - t1) / 1000;
      context['zooms'] = `${img.minZoom}-${img.maxZoom}`;
      context['peakRssMiB'] = Math.round(process.resourceUsage().maxRSS / 1024);

      const out = join(dir, 'g2t');
      const t2 = performance.now();
      execFileSync(GDAL_PYTHON, ['/usr/bin/gdal2tiles.py', '--xyz', '-w', 'none', '-q', '--processes=1', '-z', `${img.minZoom}-${img.maxZoom}`, join(dir, 'imagery.tif'), out], {
        stdio: 'ignore',
        timeout: 1_800_000,
      });
      const g2tSeconds = (performance.now() - t2) / 1000;
      const g2tTiles = countFiles(out, '.png');
      const ref = { name: `gdal2tiles.py ${img.minZoom}-${img.maxZoom}, 1 process, PNG (${g2tTiles} tiles)`, value: g2tTiles / g2tSeconds };
      rows.push({
        metric: `imagery COG → PMTiles WebP (${img.addressedTiles} tiles, ${(img.bytes / 1e6).toFixed(1)} MB)`,
        value: img.addressedTiles / imgSeconds,
        unit: 'tiles/s',
        reference: ref,
        better: 'higher',
      });
      rows.push({
        metric: `height COG → PMTiles Terrarium PNG (${height.addressedTiles} tiles, ${(height.bytes / 1e6).toFixed(1)} MB)`,
        value: height.addressedTiles / heightSeconds,
        unit: 'tiles/s',
        reference: ref,
        better: 'higher',
        note: 'reference tiles the 8-bit imagery: gdal2tiles cannot value-encode float heights',
      });

      // Writer alone: 100k distinct small tiles at zoom 10 in shuffled order.
      const n = 100_000;
      const tiles: { x: number; y: number; bytes: Uint8Array }[] = [];
      let seed = 12345;
      const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648);
      for (let i = 0; i < n; i++) {
        const bytes = new Uint8Array(100 + (next() % 700));
        new DataView(bytes.buffer).setUint32(0, i);
        tiles.push({ x: i % 1024, y: Math.floor(i / 1024), bytes });
      }
      for (let i = n - 1; i > 0; i--) {
        const j = (i * 7919) % (i + 1);
        [tiles[i], tiles[j]] = [tiles[j]!, tiles[i]!];
      }
      const t3 = performance.now();
      const w = await PMTilesWriter.create(join(dir, 'writer.pmtiles'), { tileType: TileType.Png });
      for (const t of tiles) await w.addTile(10, t.x, t.y, t.bytes);
      const summary = await w.finish({ metadata: {}, bounds: [-180, -85, 180, 85] });
      const writerSeconds = (performance.now() - t3) / 1000;
      const t4 = performance.now();
      const fh = await open(join(dir, 'plain.bin'), 'w');
      for (const t of tiles) await fh.write(t.bytes);
      await fh.sync();
      await fh.close();
      const plainSeconds = (performance.now() - t4) / 1000;
      rows.push({
        metric: `PMTiles writer, ${n} tiles (${summary.leafDirectories} leaf dirs, ${(statSync(join(dir, 'writer.pmtiles')).size / 1e6).toFixed(1)} MB)`,
        value: n / writerSeconds,
        unit: 'tiles/s',
        reference: { name: 'appending the same bytes to one file', value: n / plainSeconds },
        better: 'higher',
      });
      return { name: 'pmtiles', context, rows };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
