/**
 * Where the project's shared test data lives: `../shared/data` beside the repository (real
 * rasters, STAC documents, AOIs, STAC schemas). Tests read from there and never copy it in.
 * Override with GEO_DINO_SHARED_DATA. A missing directory fails loudly: tests never skip silently.
 */
import { existsSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export const SHARED_DATA = resolve(process.env['GEO_DINO_SHARED_DATA'] ?? join(REPO_ROOT, '..', 'shared', 'data'));

/** Absolute path of a file under the shared data directory; throws if it is missing. */
export function sharedData(...parts: string[]): string {
  const p = join(SHARED_DATA, ...parts);
  if (!existsSync(p)) {
    throw new Error(`shared test data not found: ${p} (expected ../shared/data beside the repository, or set GEO_DINO_SHARED_DATA)`);
  }
  return p;
}

/** The geo-dino CLI entry (built by `tsc -b`). */
export const CLI_BIN = join(REPO_ROOT, 'apps', 'cli', 'bin', 'geo-dino.js');
