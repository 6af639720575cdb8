/**
 * A run directory made with GDAL (test/support/make-fixture-run.py) from the shared real imagery,
 * laid out per the run-directory contract, for the PMTiles, server and viewer tests.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedData } from './shared-data.js';
import { GDAL_PYTHON, requireGdal } from './tools.js';

export interface FixtureRun {
  dir: string;
  /** UTM 52N geotransform of chm.tif / imagery.tif / landcover.tif. */
  geotransform: [number, number, number, number, number, number];
  width: number;
  height: number;
  /** [west, south, east, north] */
  bbox: [number, number, number, number];
  epsg: number;
}

const HERE = fileURLToPath(new URL('.', import.meta.url));

export function makeFixtureRun(dir: string, opts: { offset?: number; date?: string; tag?: string } = {}): FixtureRun {
  requireGdal();
  const args = [join(HERE, 'make-fixture-run.py'), sharedData('rasterio', 'cogeo.tif'), dir];
  if (opts.offset !== undefined) args.push('--offset', String(opts.offset));
  if (opts.date) args.push('--date', opts.date);
  if (opts.tag) args.push('--tag', opts.tag);
  const out = execFileSync(GDAL_PYTHON, args, { encoding: 'utf8', timeout: 120_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as FixtureRun;
}

/** GDAL's warp of `raster` onto Web Mercator tiles: per tile, the bands and a validity plane. */
export function gdalTiles(
  raster: string,
  outDir: string,
  resampling: 'near' | 'bilinear' | 'average' | 'mode',
  bands: number[],
  tiles: readonly [number, number, number][],
): Map<string, { bands: Float32Array[]; valid: Float32Array }> {
  requireGdal();
  execFileSync(GDAL_PYTHON, [join(HERE, 'gdal-tiles.py'), raster, outDir, resampling, bands.join(','), ...tiles.map((t) => t.join('/'))], {
    timeout: 300_000,
  });
  const result = new Map<string, { bands: Float32Array[]; valid: Float32Array }>();
  for (const [z, x, y] of tiles) {
    const buf = readFileSync(join(outDir, `${z}-${x}-${y}.bin`));
    const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const plane = 256 * 256;
    result.set(`${z}/${x}/${y}`, {
      bands: bands.map((_, i) => all.slice(i * plane, (i + 1) * plane)),
      valid: all.slice(bands.length * plane, (bands.length + 1) * plane),
    });
  }
  return result;
}

/** Run a small Python+GDAL script with arguments; returns its stdout parsed as JSON. */
export function gdalJson(script: string, args: readonly string[] = []): unknown {
  requireGdal();
  const out = execFileSync(GDAL_PYTHON, ['-c', script, ...args], { encoding: 'utf8', timeout: 120_000 });
  return JSON.parse(out) as unknown;
}
