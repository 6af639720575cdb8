/**
 * External tools some tests use as oracles (GDAL, redis-server, chromium, go-pmtiles, ...).
 * `test/tools/tools.mjs` lists them, with where they are installed; `npm test` (and
 * `npm run test:tools`) installs what is missing first. A missing tool fails the test with the
 * reason; nothing skips silently.
 */
import { execFileSync } from 'node:child_process';
import { GDAL_PYTHON, INSTALL_HINT } from '../tools/tools.mjs';

export { CHROMIUM, GDAL_PYTHON, INSTALL_HINT, mapproxyTools, pgBinDir, pmtilesCli, stacTools } from '../tools/tools.mjs';

export function requireTool(cmd: string, args: readonly string[] = ['--version'], hint = INSTALL_HINT): void {
  try {
    execFileSync(cmd, [...args], { stdio: 'ignore', timeout: 30_000 });
  } catch (err) {
    throw new Error(`required tool not available: ${cmd} ${args.join(' ')} (${(err as Error).message}); ${hint}`);
  }
}

export function requireGdal(): void {
  requireTool('gdalinfo', ['--version']);
  requireTool(GDAL_PYTHON, ['-c', 'from osgeo import gdal']);
}
