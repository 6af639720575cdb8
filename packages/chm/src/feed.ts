/**
 * A `TileFeed` lets assembly run while tiles are still being predicted (one process): the
 * predictor `offer`s each stored tile, the assembler `wait`s for the tiles of the window it is
 * blending. Tiles are predicted in row-major order and blended in row order, so blending follows
 * a row or two behind inference and the two overlap instead of running one after the other.
 *
 * The feed hands over the record it was offered (saving a decode) while it holds it; it holds at
 * most `maxHeld` records (oldest dropped first: the assembler then reads them from the store), so
 * a predictor far ahead of the assembler cannot grow memory.
 */
import type { TileRecord } from './tile-store.js';

export class TileFeed {
  private readonly done: Set<number>;
  private readonly held = new Map<number, TileRecord>();
  private readonly waiters = new Map<number, { resolve: (r: TileRecord | null) => void; reject: (e: unknown) => void }[]>();
  private failure: unknown = null;

  /** `alreadyDone`: tiles in the store before prediction started. */
  constructor(
    alreadyDone: Iterable<number>,
    private readonly maxHeld = 8,
  ) {
    this.done = new Set(alreadyDone);
  }

  /** A tile was stored. */
  offer(record: TileRecord): void {
    this.done.add(record.id);
    const w = this.waiters.get(record.id);
    if (w) {
      this.waiters.delete(record.id);
      for (const x of w) x.resolve(record);
      return;
    }
    this.held.set(record.id, record);
    if (this.held.size > this.maxHeld) this.held.delete(this.held.keys().next().value!);
  }

  /** Is the tile stored (before this run, or offered since, and not forgotten)? */
  has(id: number): boolean {
    return this.done.has(id);
  }

  /** A tile was deleted from the store (every shard it touches is written): stop tracking it. */
  forget(id: number): void {
    this.done.delete(id);
    this.held.delete(id);
  }

  /** Prediction failed: every wait rejects with `err`. */
  fail(err: unknown): void {
    this.failure ??= err;
    for (const w of this.waiters.values()) for (const x of w) x.reject(err);
    this.waiters.clear();
  }

  /** Resolves when tile `id` is stored: with its record if the feed still holds it, else null (read it from the store). */
  wait(id: number): Promise<TileRecord | null> {
    const rec = this.held.get(id);
    if (rec) {
      this.held.delete(id);
      return Promise.resolve(rec);
    }
    if (this.done.has(id)) return Promise.resolve(null);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const w = this.waiters.get(id) ?? [];
      w.push({ resolve, reject });
      this.waiters.set(id, w);
    });
  }
}
