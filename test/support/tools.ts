/**
 * External tools some tests use as oracles (GDAL, redis-server, chromium, go-pmtiles).
 * `.ci/run` installs them. A missing tool fails the test with the reason; nothing skips silently.
 */
import { execFileSync } from 'node:child_process';

/** The Python that has GDAL's `osgeo` bindings (Debian's, not pyenv's). */
export const GDAL_PYTHON = process.env['GEO_DINO_GDAL_PYTHON'] ?? '/usr/bin/python3';

export function requireTool(cmd: string, args: readonly string[] = ['--version'], hint = 'run .ci/run or install it'): void {
  try {
    execFileSync(cmd, [...args], { stdio: 'ignore', timeout: 30_000 });
  } catch (err) {
    throw new Error(`required tool not available: ${cmd} ${args.join(' ')} (${(err as Error).message}); ${hint}`);
  }
}

export function requireGdal(): void {
  requireTool('gdalinfo', ['--version'], 'install gdal-bin python3-gdal (apt), as .ci/run does');
  requireTool(GDAL_PYTHON, ['-c', 'from osgeo import gdal'], 'install python3-gdal (apt), as .ci/run does');
}
