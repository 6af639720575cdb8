/**
 * The on-disk tile cache: fetched tiles (and "no tile here" answers) under
 * `$GEO_DINO_HOME/cache/tiles`, so a rerun or a resume does not fetch them again.
 *
 * - Entries are files named by the SHA-256 of the tile's redacted URL (no secret reaches the
 *   disk), in 256 sub-directories; an empty file records a missing tile (404/204/blank).
 *   Writes go to a temporary sibling and are renamed into place, so a reader never sees half a
 *   tile; only tiles that passed the image check are stored.
 * - Size cap with LRU eviction: a hit touches the file's mtime; the cache's index (size and
 *   mtime of each entry) is built by one scan of the directory the first time something is
 *   written in a process, then kept up to date; when the total passes the cap, the least
 *   recently used entries are deleted until it is below 90 % of the cap. Several processes may
 *   share the directory (each evicts from what it knows; a vanished file is a miss).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { geoDinoHome } from '@geo-dino/core';

/** Default cap: 2 GiB (`GEO_DINO_TILE_CACHE_MB` overrides; 0 turns the cache off). */
export const DEFAULT_TILE_CACHE_BYTES = 2 * 1024 ** 3;

export interface TileDiskCacheOptions {
  dir: string;
  maxBytes: number;
}

/** The cache options from the environment: `$GEO_DINO_HOME/cache/tiles`, `GEO_DINO_TILE_CACHE_MB`; null when turned off. */
export function tileCacheFromEnv(env: NodeJS.ProcessEnv = process.env): TileDiskCacheOptions | null {
  const mb = env['GEO_DINO_TILE_CACHE_MB'];
  const maxBytes = mb !== undefined && mb.trim() !== '' && Number.isFinite(Number(mb)) ? Number(mb) * 1024 * 1024 : DEFAULT_TILE_CACHE_BYTES;
  if (maxBytes <= 0) return null;
  return { dir: join(geoDinoHome(env), 'cache', 'tiles'), maxBytes };
}

interface Entry {
  bytes: number;
  used: number;
}

export class TileDiskCache {
  private index: Map<string, Entry> | null = null;
  private scanning: Promise<void> | null = null;
  private total = 0;
  private evicting = false;

  constructor(readonly options: TileDiskCacheOptions) {}

  private pathOf(key: string): string {
    return join(this.options.dir, key.slice(0, 2), key);
  }

  static keyOf(redactedUrl: string): string {
    return createHash('sha256').update(redactedUrl).digest('hex');
  }

  /** The cached bytes (an empty array: no tile there), or undefined on a miss. */
  async get(key: string): Promise<Uint8Array | undefined> {
    const p = this.pathOf(key);
    let data: Buffer;
    try {
      data = await readFile(p);
    } catch {
      return undefined;
    }
    const now = new Date();
    utimes(p, now, now).catch(() => undefined);
    const e = this.index?.get(key);
    if (e) {
      this.index!.delete(key);
      this.index!.set(key, { bytes: e.bytes, used: now.getTime() });
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.scan();
    const p = this.pathOf(key);
    const tmp = `${p}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await mkdir(join(this.options.dir, key.slice(0, 2)), { recursive: true });
      await writeFile(tmp, bytes);
      await rename(tmp, p);
    } catch {
      await unlink(tmp).catch(() => undefined);
      return; // a cache: failing to store is not an error
    }
    const old = this.index!.get(key);
    if (old) {
      this.total -= old.bytes;
      this.index!.delete(key);
    }
    const cost = Math.max(bytes.length, 1);
    this.index!.set(key, { bytes: cost, used: Date.now() });
    this.total += cost;
    if (this.total > this.options.maxBytes) await this.evict();
  }

  /** Bytes the cache holds, as far as this process knows (after the first write). */
  get bytes(): number {
    return this.total;
  }

  private scan(): Promise<void> {
    if (this.index) return Promise.resolve();
    this.scanning ??= (async () => {
      const found: [string, Entry][] = [];
      let dirs: string[] = [];
      try {
        dirs = await readdir(this.options.dir);
      } catch {
        /* no cache yet */
      }
      for (const d of dirs) {
        if (!/^[0-9a-f]{2}$/.test(d)) continue;
        let names: string[] = [];
        try {
          names = await readdir(join(this.options.dir, d));
        } catch {
          continue;
        }
        for (const n of names) {
          if (!/^[0-9a-f]{64}$/.test(n)) continue;
          const st = await stat(join(this.options.dir, d, n)).catch(() => null);
          if (st) found.push([n, { bytes: Math.max(st.size, 1), used: st.mtimeMs }]);
        }
      }
      found.sort((a, b) => a[1].used - b[1].used);
      this.index = new Map(found);
      this.total = found.reduce((s, [, e]) => s + e.bytes, 0);
    })();
    return this.scanning;
  }

  private async evict(): Promise<void> {
    if (this.evicting) return;
    this.evicting = true;
    try {
      const target = this.options.maxBytes * 0.9;
      // The index is in least-recently-used order (Map insertion order, refreshed on use).
      for (const [key, e] of this.index!) {
        if (this.total <= target) break;
        this.index!.delete(key);
        this.total -= e.bytes;
        await unlink(this.pathOf(key)).catch(() => undefined);
      }
    } finally {
      this.evicting = false;
    }
  }
}
