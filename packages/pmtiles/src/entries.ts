/**
 * Compact columns for directory entries and tile contents: parallel typed arrays (25 bytes an
 * entry) instead of objects, so an archive of millions of tiles indexes in tens of megabytes.
 */

/** A typed array that doubles when full. */
export class Column<T extends Float64Array | Uint32Array> {
  private data: T;
  private n = 0;

  constructor(private readonly make: (capacity: number) => T, capacity = 1024) {
    this.data = make(capacity);
  }

  get length(): number {
    return this.n;
  }

  push(value: number): void {
    if (this.n === this.data.length) {
      const next = this.make(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.n++] = value;
  }

  get(i: number): number {
    return this.data[i]!;
  }

  set(i: number, value: number): void {
    this.data[i] = value;
  }

  /** A view of the filled part. */
  view(): T {
    return this.data.subarray(0, this.n) as T;
  }
}

export const f64Column = (capacity?: number): Column<Float64Array> => new Column((n) => new Float64Array(n), capacity);
export const u32Column = (capacity?: number): Column<Uint32Array> => new Column((n) => new Uint32Array(n), capacity);

/** Directory entries: tile id, offset and length of the content, run length (0 = leaf pointer). */
export class EntryArrays {
  private readonly ids = f64Column();
  private readonly offsets = f64Column();
  private readonly lengths = u32Column();
  private readonly runs = u32Column();

  get count(): number {
    return this.ids.length;
  }

  push(tileId: number, offset: number, length: number, runLength: number): void {
    this.ids.push(tileId);
    this.offsets.push(offset);
    this.lengths.push(length);
    this.runs.push(runLength);
  }

  tileId(i: number): number {
    return this.ids.get(i);
  }
  offset(i: number): number {
    return this.offsets.get(i);
  }
  length(i: number): number {
    return this.lengths.get(i);
  }
  runLength(i: number): number {
    return this.runs.get(i);
  }
  /** Extend the run of the last entry by one tile. */
  extendLastRun(): void {
    this.runs.set(this.runs.length - 1, this.runs.get(this.runs.length - 1) + 1);
  }
}
