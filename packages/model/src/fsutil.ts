/**
 * Multi-file outputs (model directories) are assembled in a hidden sibling directory and moved
 * into place only when complete.
 */
import { rename, rm } from 'node:fs/promises';
import { fileExists, fsError, temporaryPathFor } from '@geo-dino/core';

/**
 * Move a completed `staging` directory to `out`, replacing an existing `out` (renamed aside
 * first and removed after, so `out` is never missing a file that the new version has).
 */
export async function replaceDirectory(staging: string, out: string): Promise<void> {
  try {
    if (await fileExists(out)) {
      const old = temporaryPathFor(out);
      await rename(out, old);
      await rename(staging, out);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(staging, out);
    }
  } catch (err) {
    throw fsError(err, out, 'write');
  }
}
