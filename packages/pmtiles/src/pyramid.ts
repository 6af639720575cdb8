/**
 * A Web Mercator tile pyramid, built depth first: the tiles of the finest zoom are rendered from
 * the source, each coarser tile is reduced from its four children as soon as they exist. Only one
 * path from the root to the finest zoom is held in memory (at most four decoded tiles a level),
 * never a whole level. The four leaves under one parent render together, so their reads decode
 * in the worker pool while this thread warps another. Encoding runs a few tiles ahead on sharp's
 * thread pool; the writer takes tiles in any order.
 */
import { GeoDinoError, TaskGroup, silentProgress, throwIfAborted, type Progress } from '@geo-dino/core';
import { intersects, tileBounds, tileRange, type MercatorBounds } from './mercator.js';
import { reduceChildren, type TileData, type TileKind } from './tiles.js';
import type { PMTilesWriter } from './writer.js';

export interface PyramidOptions {
  kind: TileKind;
  minZoom: number;
  maxZoom: number;
  /** Where the data is, in Mercator metres; tiles outside are never visited. */
  bounds: MercatorBounds;
  /** Render tile (maxZoom, x, y) from the source; null when it has no valid pixel. */
  render(x: number, y: number): Promise<TileData | null>;
  /** Encode a tile as image bytes (PNG, WebP). */
  encode(tile: TileData, z: number): Promise<Uint8Array>;
  writer: PMTilesWriter;
  /** Tiles being encoded at once (default 4). */
  concurrency?: number;
  signal?: AbortSignal;
  progress?: Progress;
  /** Name of the progress task (default "tiles"). */
  task?: string;
}

export interface PyramidResult {
  /** Tiles written, per zoom. */
  tilesPerZoom: Record<number, number>;
  tiles: number;
}

/** How many tiles of zooms minZoom..maxZoom intersect the bounds (an upper bound of the output). */
export function countCandidateTiles(bounds: MercatorBounds, minZoom: number, maxZoom: number): number {
  let n = 0;
  for (let z = minZoom; z <= maxZoom; z++) {
    const r = tileRange(z, bounds);
    n += (r.maxX - r.minX + 1) * (r.maxY - r.minY + 1);
  }
  return n;
}

export async function buildPyramid(opts: PyramidOptions): Promise<PyramidResult> {
  const { kind, minZoom, maxZoom, bounds, writer, signal } = opts;
  if (!(minZoom >= 0 && minZoom <= maxZoom)) {
    throw new GeoDinoError('E_ARGUMENT', `min zoom ${minZoom} must be between 0 and the max zoom ${maxZoom}`);
  }
  const task = (opts.progress ?? silentProgress).start(opts.task ?? 'tiles', { total: countCandidateTiles(bounds, minZoom, maxZoom), unit: 'tiles' });
  const limit = Math.max(1, opts.concurrency ?? 4);
  const inflight = new TaskGroup(limit);
  let writing: Promise<void> = Promise.resolve();
  const tilesPerZoom: Record<number, number> = {};
  let tiles = 0;

  const emit = async (z: number, x: number, y: number, tile: TileData): Promise<void> => {
    await inflight.room();
    inflight.add(
      opts
      .encode(tile, z)
      .then((bytes) => {
        // One writer call at a time, in completion order.
        writing = writing.then(() => writer.addTile(z, x, y, bytes));
        return writing;
      })
      .then(() => {
        tilesPerZoom[z] = (tilesPerZoom[z] ?? 0) + 1;
        tiles++;
      }),
    );
  };

  const visit = async (z: number, x: number, y: number): Promise<TileData | null> => {
    throwIfAborted(signal);
    inflight.check();
    if (!intersects(tileBounds(z, x, y), bounds)) return null;
    let tile: TileData | null;
    if (z === maxZoom) tile = await opts.render(x, y);
    else {
      const child = (q: number): Promise<TileData | null> => visit(z + 1, 2 * x + (q & 1), 2 * y + (q >> 1));
      let children: (TileData | null)[];
      if (z + 1 === maxZoom) {
        // The four leaves render together (their reads decode in the worker pool while this
        // thread warps another); every one settles before a failure propagates.
        const settled = await Promise.allSettled([0, 1, 2, 3].map(child));
        const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        children = settled.map((r) => (r as PromiseFulfilledResult<TileData | null>).value);
      } else {
        // Upper levels one child after another: memory stays one path of the quadtree deep.
        children = [];
        for (let q = 0; q < 4; q++) children.push(await child(q));
      }
      tile = reduceChildren(kind, children);
    }
    if (z >= minZoom) {
      task.tick();
      if (tile) await emit(z, x, y, tile);
    }
    return tile;
  };

  try {
    await visit(0, 0, 0);
    await inflight.drain();
    await writing;
  } catch (err) {
    // Let jobs still running settle before the caller removes their files.
    await inflight.settle();
    await writing.catch(() => undefined);
    throw err;
  } finally {
    task.finish();
  }
  return { tilesPerZoom, tiles };
}
