/**
 * Shared pieces of the `geo-dino chm` end-to-end tests: a private $GEO_DINO_HOME per test file
 * (the demo model is made there on first use), AOIs over the shared real imagery, running the CLI
 * with `--json`, and GDAL oracles.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runCli, type CliResult } from '../support/cli.js';
import { gdalJson } from '../support/fixture-run.js';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `geo-dino-chm-${prefix}-`));
}

/** A pentagon inside ../shared/data/rasterio/cogeo.tif (about 335 × 345 m). */
export const COGEO_AOI = {
  type: 'Feature',
  properties: { name: 'inside cogeo.tif' },
  geometry: {
    type: 'Polygon',
    coordinates: [
      [
        [128.6562, 37.6672],
        [128.66, 37.667],
        [128.6602, 37.6695],
        [128.6585, 37.6701],
        [128.6563, 37.6694],
        [128.6562, 37.6672],
      ],
    ],
  },
};

export function writeJson(path: string, value: unknown): string {
  writeFileSync(path, JSON.stringify(value));
  return path;
}

export interface ChmCli extends CliResult {
  json: Record<string, unknown> | null;
  /** JSON lines the CLI wrote to stderr (logs, progress events, the error). */
  events: Record<string, unknown>[];
}

/** Run `geo-dino chm ... --json` with a private home; parse the result and the stderr events. */
export async function chm(args: readonly string[], home: string, options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ChmCli> {
  const r = await runCli(['chm', ...args, '--json'], { env: { GEO_DINO_HOME: home, GEO_DINO_MODEL: '', ...(options.env ?? {}) }, timeoutMs: options.timeoutMs ?? 240_000, ...(options.cwd ? { cwd: options.cwd } : {}) });
  let json: Record<string, unknown> | null = null;
  try {
    json = r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : null;
  } catch {
    json = null;
  }
  const events = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
  return { ...r, json, events };
}

/** Tiles stored in a run's state directory (its tile store, `tiles/<id/1000>/<id>.tile`). */
export function tilesIn(state: string): number {
  const tiles = join(state, 'tiles');
  if (!existsSync(tiles)) return 0;
  let n = 0;
  for (const shard of readdirSync(tiles)) {
    if (!/^\d+$/.test(shard)) continue;
    n += readdirSync(join(tiles, shard)).filter((f) => f.endsWith('.tile')).length;
  }
  return n;
}

export function readJson<T = Record<string, unknown>>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** GDAL reads a raster band (1-based) as float64 values, row-major, plus its size. */
export function gdalBand(path: string, band: number): { width: number; height: number; values: Float64Array } {
  const out = join(tempDir('band'), 'band.f64');
  const meta = gdalJson(
    String.raw`
import sys, json
from osgeo import gdal
import numpy as np
gdal.UseExceptions()
ds = gdal.Open(sys.argv[1])
a = ds.GetRasterBand(int(sys.argv[2])).ReadAsArray().astype('<f8')
a.tofile(sys.argv[3])
print(json.dumps({'width': ds.RasterXSize, 'height': ds.RasterYSize}))
`,
    [path, String(band), out],
  ) as { width: number; height: number };
  const buf = readFileSync(out);
  rmSync(dirname(out), { recursive: true, force: true });
  return { ...meta, values: new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8) };
}
