/**
 * What the viewer's end-to-end tests share besides driving the map (map-page.ts): building the
 * viewer when its build is stale, the GDAL oracle (test/support/gdal-oracle.py) and its point
 * type, and the map's background colour.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GDAL_PYTHON, requireGdal } from '../../../../test/support/tools.js';

const VIEWER = fileURLToPath(new URL('../..', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../..', import.meta.url));
const ORACLE = fileURLToPath(new URL('../../../../test/support/gdal-oracle.py', import.meta.url));

/** The map's background (no layer drawn), RGB. */
export const BACKGROUND = [0x1d, 0x22, 0x26];

/** A pixel as the GDAL oracle reports it: grid position, lon/lat of its centre, band values (null: nodata). */
export type Pt = { col: number; row: number; lon: number; lat: number; values: [number, number] | null };

/** Run the GDAL oracle (`gdal-oracle.py <command> <args>`) and parse its JSON answer. */
export function oracle<T>(...args: string[]): T {
  requireGdal();
  return JSON.parse(execFileSync(GDAL_PYTHON, [ORACLE, ...args], { encoding: 'utf8', timeout: 120_000 })) as T;
}

/** Build the viewer when its build is missing or older than its sources. */
export function ensureViewerBuilt(): void {
  const built = join(VIEWER, 'dist', 'index.html');
  const newest = (dir: string): number =>
    Math.max(...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  const srcTime = Math.max(newest(join(VIEWER, 'src')), statSync(join(VIEWER, 'index.html')).mtimeMs);
  if (!existsSync(built) || statSync(built).mtimeMs < srcTime) {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build'], { cwd: VIEWER, stdio: 'ignore', timeout: 300_000 });
  }
}
