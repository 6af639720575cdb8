/**
 * The most frequent value of a set of samples, with GDAL's tie rule: of values that end with the
 * same count, the one that reached that count first (in the order the samples were added — row
 * by row for a window, as gdalwarp's and gdaladdo's `mode`). One counter for every categorical
 * resampling in geo-dino: the warper's `mode`, COG overviews, land-cover label alignment.
 */
export class ModeCounter {
  private readonly counts = new Map<number, number>();
  private bestValue = NaN;
  private bestCount = 0;

  clear(): void {
    this.counts.clear();
    this.bestValue = NaN;
    this.bestCount = 0;
  }

  add(v: number): void {
    const c = (this.counts.get(v) ?? 0) + 1;
    this.counts.set(v, c);
    if (c > this.bestCount) {
      this.bestCount = c;
      this.bestValue = v;
    }
  }

  /** Samples of the most frequent value (0 when nothing was added). */
  get count(): number {
    return this.bestCount;
  }

  /** The most frequent value; `fallback` when nothing was added. */
  value(fallback: number): number {
    return this.bestCount > 0 ? this.bestValue : fallback;
  }
}
