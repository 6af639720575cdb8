/**
 * Serialising TIFF / BigTIFF IFDs (little-endian). An IFD is laid out as its entries followed
 * directly by the values that do not fit in an entry, so its size is known before the offsets
 * of the image data are (they only change values, not sizes).
 */

export type FieldType = 2 | 3 | 4 | 12 | 16; // ASCII, SHORT, LONG, DOUBLE, LONG8

export interface OutEntry {
  tag: number;
  type: FieldType;
  /** Numbers (a typed array for long offset/count lists) or an ASCII string. */
  values: ArrayLike<number> | string;
}

const SIZE: Record<FieldType, number> = { 2: 1, 3: 2, 4: 4, 12: 8, 16: 8 };

function count(e: OutEntry): number {
  return typeof e.values === 'string' ? new TextEncoder().encode(e.values).length + 1 : e.values.length;
}

/** Bytes an IFD takes, values included. */
export function ifdSize(entries: readonly OutEntry[], bigTiff: boolean): number {
  const entrySize = bigTiff ? 20 : 12;
  const inlineMax = bigTiff ? 8 : 4;
  let size = (bigTiff ? 8 : 2) + entries.length * entrySize + (bigTiff ? 8 : 4);
  for (const e of entries) {
    const n = count(e) * SIZE[e.type];
    if (n > inlineMax) size += n + (n % 2);
  }
  return size;
}

function writeValues(dv: DataView, at: number, e: OutEntry): void {
  if (typeof e.values === 'string') {
    const b = new TextEncoder().encode(e.values);
    new Uint8Array(dv.buffer, dv.byteOffset + at, b.length).set(b);
    dv.setUint8(at + b.length, 0);
    return;
  }
  const s = SIZE[e.type];
  const values = e.values;
  for (let i = 0; i < values.length; i++) {
    const o = at + i * s;
    const v = values[i]!;
    switch (e.type) {
      case 3:
        dv.setUint16(o, v, true);
        break;
      case 4:
        dv.setUint32(o, v, true);
        break;
      case 12:
        dv.setFloat64(o, v, true);
        break;
      case 16:
        dv.setBigUint64(o, BigInt(v), true);
        break;
    }
  }
}

/** Serialise an IFD to be placed at `offset`, pointing to `next`. Entries are sorted by tag. */
export function serializeIfd(entries: readonly OutEntry[], offset: number, next: number, bigTiff: boolean): Uint8Array {
  const sorted = [...entries].sort((a, b) => a.tag - b.tag);
  const size = ifdSize(sorted, bigTiff);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  const entrySize = bigTiff ? 20 : 12;
  const inlineMax = bigTiff ? 8 : 4;
  let p = 0;
  if (bigTiff) {
    dv.setBigUint64(0, BigInt(sorted.length), true);
    p = 8;
  } else {
    dv.setUint16(0, sorted.length, true);
    p = 2;
  }
  let extra = p + sorted.length * entrySize + (bigTiff ? 8 : 4);
  for (const e of sorted) {
    const n = count(e);
    const bytes = n * SIZE[e.type];
    dv.setUint16(p, e.tag, true);
    dv.setUint16(p + 2, e.type, true);
    if (bigTiff) dv.setBigUint64(p + 4, BigInt(n), true);
    else dv.setUint32(p + 4, n, true);
    const valueAt = p + (bigTiff ? 12 : 8);
    if (bytes <= inlineMax) writeValues(dv, valueAt, e);
    else {
      if (bigTiff) dv.setBigUint64(valueAt, BigInt(offset + extra), true);
      else dv.setUint32(valueAt, offset + extra, true);
      writeValues(dv, extra, e);
      extra += bytes + (bytes % 2);
    }
    p += entrySize;
  }
  if (bigTiff) dv.setBigUint64(p, BigInt(next), true);
  else dv.setUint32(p, next, true);
  return out;
}

/** The 8-byte (classic) or 16-byte (BigTIFF) header pointing at the first IFD. */
export function tiffHeader(firstIfd: number, bigTiff: boolean): Uint8Array {
  const out = new Uint8Array(bigTiff ? 16 : 8);
  const dv = new DataView(out.buffer);
  out[0] = 0x49;
  out[1] = 0x49;
  if (bigTiff) {
    dv.setUint16(2, 43, true);
    dv.setUint16(4, 8, true);
    dv.setUint16(6, 0, true);
    dv.setBigUint64(8, BigInt(firstIfd), true);
  } else {
    dv.setUint16(2, 42, true);
    dv.setUint32(4, firstIfd, true);
  }
  return out;
}
