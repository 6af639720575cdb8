/**
 * A tiny little-endian classic TIFF builder for tests: lets a test write exactly the (broken)
 * structure it wants, independently of geo-dino's writer.
 */
export interface Entry {
  tag: number;
  /** 3 SHORT, 4 LONG, 2 ASCII, 7 UNDEFINED, 12 DOUBLE. */
  type: number;
  values: number[] | Uint8Array | string;
  /** Override the count written in the entry (to forge one). */
  count?: number;
}

const SIZES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 7: 1, 12: 8 };

export class TiffBuilder {
  private buf = new Uint8Array(1 << 16);
  private len = 8;

  constructor() {
    this.buf.set([0x49, 0x49, 42, 0]);
  }

  private grow(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    b.set(this.buf);
    this.buf = b;
  }

  get size(): number {
    return this.len;
  }

  /** Append bytes (word aligned); returns their offset. */
  append(data: Uint8Array): number {
    if (this.len % 2) this.len++;
    this.grow(data.length + 1);
    const at = this.len;
    this.buf.set(data, at);
    this.len += data.length;
    return at;
  }

  u32(at: number, v: number): void {
    new DataView(this.buf.buffer).setUint32(at, v, true);
  }

  /** Set the header's first-IFD offset. */
  first(offset: number): void {
    this.u32(4, offset);
  }

  private encode(e: Entry): Uint8Array {
    if (typeof e.values === 'string') return new TextEncoder().encode(e.values + '\0');
    if (e.values instanceof Uint8Array) return e.values;
    const size = SIZES[e.type]!;
    const out = new Uint8Array(e.values.length * size);
    const dv = new DataView(out.buffer);
    e.values.forEach((v, i) => {
      if (e.type === 3) dv.setUint16(i * 2, v, true);
      else if (e.type === 4) dv.setUint32(i * 4, v, true);
      else if (e.type === 12) dv.setFloat64(i * 8, v, true);
      else out[i] = v;
    });
    return out;
  }

  /** Write an IFD; returns its offset and the position of its next-IFD pointer. */
  ifd(entries: Entry[], next = 0): { offset: number; nextAt: number } {
    const sorted = [...entries].sort((a, b) => a.tag - b.tag);
    const values = sorted.map((e) => this.encode(e));
    const outOfLine = values.map((v) => (v.length > 4 ? this.append(v) : -1));
    const body = new Uint8Array(2 + sorted.length * 12 + 4);
    const dv = new DataView(body.buffer);
    dv.setUint16(0, sorted.length, true);
    sorted.forEach((e, i) => {
      const o = 2 + i * 12;
      const v = values[i]!;
      const size = typeof e.values === 'string' || e.values instanceof Uint8Array ? 1 : SIZES[e.type]!;
      dv.setUint16(o, e.tag, true);
      dv.setUint16(o + 2, e.type, true);
      dv.setUint32(o + 4, e.count ?? v.length / size, true);
      if (outOfLine[i]! >= 0) dv.setUint32(o + 8, outOfLine[i]!, true);
      else body.set(v, o + 8);
    });
    dv.setUint32(2 + sorted.length * 12, next, true);
    const offset = this.append(body);
    return { offset, nextAt: offset + 2 + sorted.length * 12 };
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Entries of a simple one-strip, 8-bit, single-band image. */
export function stripImage(width: number, height: number, stripOffset: number, stripBytes: number, compression = 1, extra: Entry[] = []): Entry[] {
  return [
    { tag: 256, type: 4, values: [width] },
    { tag: 257, type: 4, values: [height] },
    { tag: 258, type: 3, values: [8] },
    { tag: 259, type: 3, values: [compression] },
    { tag: 262, type: 3, values: [1] },
    { tag: 273, type: 4, values: [stripOffset] },
    { tag: 277, type: 3, values: [1] },
    { tag: 278, type: 4, values: [height] },
    { tag: 279, type: 4, values: [stripBytes] },
    ...extra,
  ];
}
