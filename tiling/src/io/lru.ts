/**
 * A least-recently-used cache bounded by a byte budget (each entry says what it costs).
 * Used for decoded blocks and for HTTP byte chunks; the budget is what keeps memory flat.
 */
export class LruCache<K, V> {
  private readonly map = new Map<K, { value: V; cost: number }>();
  private used = 0;

  /**
   * `oversized`: what to do with an entry costing more than the whole budget: 'skip' it (the
   * default), or 'alone': keep it as the only entry (everything else is evicted), so that a block
   * larger than the budget is still produced once, not once per use; memory is then bounded by
   * the largest such entry instead of the budget.
   */
  constructor(
    readonly capacityBytes: number,
    private readonly oversized: 'skip' | 'alone' = 'skip',
  ) {}

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    // Re-insert to mark as most recently used (Map keeps insertion order).
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  set(key: K, value: V, cost: number): void {
    const old = this.map.get(key);
    if (old) {
      this.used -= old.cost;
      this.map.delete(key);
    }
    if (cost > this.capacityBytes) {
      if (this.oversized === 'skip') return; // never cache what would evict everything
      this.clear();
      this.map.set(key, { value, cost });
      this.used = cost;
      return;
    }
    this.map.set(key, { value, cost });
    this.used += cost;
    while (this.used > this.capacityBytes && this.map.size > 1) {
      const first = this.map.keys().next();
      if (first.done) break;
      const e = this.map.get(first.value)!;
      this.used -= e.cost;
      this.map.delete(first.value);
    }
  }

  delete(key: K): void {
    const e = this.map.get(key);
    if (!e) return;
    this.used -= e.cost;
    this.map.delete(key);
  }

  /** Remove every entry whose key matches. */
  deleteWhere(pred: (key: K) => boolean): void {
    for (const [k, e] of [...this.map]) {
      if (pred(k)) {
        this.used -= e.cost;
        this.map.delete(k);
      }
    }
  }

  clear(): void {
    this.map.clear();
    this.used = 0;
  }
}

/** A counting semaphore for bounding concurrent work (HTTP requests, decodes). */
export class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiters.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiters.shift()?.();
    }
  }
}
