/**
 * The TIFF / BigTIFF structure: header and the chain of image file directories (IFDs), read
 * with guards against hostile files:
 *
 * - an IFD chain that loops (an offset seen before) is an error, not an endless loop;
 * - at most `maxIfds` IFDs and `maxEntriesPerIfd` entries per IFD;
 * - every offset is checked against the file size before it is read;
 * - tag values are capped before they are read: each tag geo-dino uses has a largest sensible
 *   count (one value for a scalar, a block count for StripOffsets/TileOffsets, computed from the
 *   IFD's size and block tags, so extra offsets are not read), other tags are not read at all
 *   beyond 64 KiB, and what is kept is counted as it sits in memory (8 bytes per decoded number)
 *   against `maxTagBytes` per tag and 4× that for the whole file, so a forged count cannot
 *   allocate gigabytes;
 * - 64-bit offsets above 2^53 are refused.
 *
 * Values of unknown field types are skipped, as TIFF 6.0 asks of readers.
 */
import { throwIfAborted } from '@geo-dino/core';
import type { ByteSource } from '../io/range.js';
import { badRaster, limitError, fmtBytes, MiB } from '../errors.js';
import { Tag, TAG_NAMES, TYPE_SIZE } from './tags.js';

export interface TiffLimits {
  /** Most IFDs followed in the chain (default 1024). */
  maxIfds: number;
  /** Most entries in one IFD (default 4096). */
  maxEntriesPerIfd: number;
  /** Largest value of one tag (default 64 MiB); the whole file may hold 4× that. */
  maxTagBytes: number;
}

export const DEFAULT_TIFF_LIMITS: TiffLimits = { maxIfds: 1024, maxEntriesPerIfd: 4096, maxTagBytes: 64 * MiB };

const SCALAR = 16;
/** The most values a tag geo-dino reads may hold (block offsets and counts are bounded by the block count). */
const TAG_MAX_COUNT: Record<number, number> = {
  [Tag.NewSubfileType]: SCALAR,
  [Tag.ImageWidth]: SCALAR,
  [Tag.ImageLength]: SCALAR,
  [Tag.Compression]: SCALAR,
  [Tag.Photometric]: SCALAR,
  [Tag.SamplesPerPixel]: SCALAR,
  [Tag.RowsPerStrip]: SCALAR,
  [Tag.PlanarConfiguration]: SCALAR,
  [Tag.Predictor]: SCALAR,
  [Tag.TileWidth]: SCALAR,
  [Tag.TileLength]: SCALAR,
  [Tag.BitsPerSample]: 4096,
  [Tag.SampleFormat]: 4096,
  [Tag.ExtraSamples]: 4096,
  [Tag.ColorMap]: 3 * 65536,
  [Tag.JPEGTables]: 1 << 20,
  [Tag.ModelPixelScale]: SCALAR,
  [Tag.ModelTransformation]: SCALAR,
  [Tag.ModelTiepoint]: 6 * 4096,
  [Tag.GeoKeyDirectory]: 4 * 4096,
  [Tag.GeoDoubleParams]: 4096,
  [Tag.GeoAsciiParams]: 1 << 20,
  [Tag.GdalMetadata]: 16 << 20,
  [Tag.GdalNodata]: 1024,
};
const BLOCK_TAGS = new Set<number>([Tag.StripOffsets, Tag.StripByteCounts, Tag.TileOffsets, Tag.TileByteCounts]);
/** Tags geo-dino does not use are kept only when their values fit in this. */
const UNUSED_TAG_BYTES = 64 * 1024;

/** Bytes a tag's values take once read: raw bytes for byte and text types, 8 per decoded number otherwise. */
function memoryOf(type: number, count: number): number {
  return type === 1 || type === 2 || type === 6 || type === 7 ? count : count * 8 + count * (TYPE_SIZE[type] ?? 0);
}

/** Blocks (strips or tiles, all planes) an IFD's size and block tags call for; null when they are not plain. */
function expectedBlocks(tags: Map<number, TagEntry>): number | null {
  const one = (t: number): number | undefined => tags.get(t)?.values[0];
  const w = one(Tag.ImageWidth);
  const h = one(Tag.ImageLength);
  if (!w || !h || w < 1 || h < 1) return null;
  const planes = one(Tag.PlanarConfiguration) === 2 ? Math.max(1, one(Tag.SamplesPerPixel) ?? 1) : 1;
  const tw = one(Tag.TileWidth);
  const th = one(Tag.TileLength);
  if (tw !== undefined || th !== undefined) return tw && th && tw >= 1 && th >= 1 ? Math.ceil(w / tw) * Math.ceil(h / th) * planes : null;
  const rps = one(Tag.RowsPerStrip);
  const rows = rps === undefined || rps === 0 || rps > h ? h : rps;
  return Math.ceil(h / rows) * planes;
}

export interface TagEntry {
  tag: number;
  type: number;
  /** Values read (for block offsets, at most the block count; 0 for a large tag geo-dino does not use). */
  count: number;
  /** Numeric values (RATIONALs as quotients); empty for ASCII. */
  values: number[];
  /** Raw bytes of the value, in file byte order (BYTE, UNDEFINED, ASCII; and everything else too). */
  bytes: Uint8Array;
}

export interface Ifd {
  index: number;
  offset: number;
  tags: Map<number, TagEntry>;
}

export interface TiffStructure {
  littleEndian: boolean;
  bigTiff: boolean;
  ifds: Ifd[];
}

function u16(b: Uint8Array, o: number, le: boolean): number {
  return le ? b[o]! | (b[o + 1]! << 8) : (b[o]! << 8) | b[o + 1]!;
}
function u32(b: Uint8Array, o: number, le: boolean): number {
  return le
    ? (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000
    : b[o]! * 0x1000000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
}
function u64(name: string, b: Uint8Array, o: number, le: boolean, what: string): number {
  const lo = u32(b, le ? o : o + 4, le);
  const hi = u32(b, le ? o + 4 : o, le);
  if (hi >= 0x200000) throw badRaster(name, `${what}: 64-bit value ${hi}·2^32+${lo} is beyond 2^53`);
  return hi * 0x100000000 + lo;
}

function decodeValues(name: string, type: number, count: number, bytes: Uint8Array, le: boolean, what: string): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Array<number>(type === 2 ? 0 : count);
  switch (type) {
    case 1:
    case 7:
      for (let i = 0; i < count; i++) out[i] = bytes[i]!;
      break;
    case 6:
      for (let i = 0; i < count; i++) out[i] = dv.getInt8(i);
      break;
    case 2:
      break;
    case 3:
      for (let i = 0; i < count; i++) out[i] = dv.getUint16(i * 2, le);
      break;
    case 8:
      for (let i = 0; i < count; i++) out[i] = dv.getInt16(i * 2, le);
      break;
    case 4:
    case 13:
      for (let i = 0; i < count; i++) out[i] = dv.getUint32(i * 4, le);
      break;
    case 9:
      for (let i = 0; i < count; i++) out[i] = dv.getInt32(i * 4, le);
      break;
    case 5:
      for (let i = 0; i < count; i++) {
        const n = dv.getUint32(i * 8, le);
        const d = dv.getUint32(i * 8 + 4, le);
        out[i] = d === 0 ? NaN : n / d;
      }
      break;
    case 10:
      for (let i = 0; i < count; i++) {
        const n = dv.getInt32(i * 8, le);
        const d = dv.getInt32(i * 8 + 4, le);
        out[i] = d === 0 ? NaN : n / d;
      }
      break;
    case 11:
      for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, le);
      break;
    case 12:
      for (let i = 0; i < count; i++) out[i] = dv.getFloat64(i * 8, le);
      break;
    case 16:
    case 18:
      for (let i = 0; i < count; i++) out[i] = u64(name, bytes, i * 8, le, what);
      break;
    case 17:
      for (let i = 0; i < count; i++) {
        const v = dv.getBigInt64(i * 8, le);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw badRaster(name, `${what}: value beyond 2^53`);
        out[i] = Number(v);
      }
      break;
  }
  return out;
}

export function tagName(tag: number): string {
  return TAG_NAMES[tag] ?? `tag ${tag}`;
}

/** Read the header and every IFD of the main chain. */
export async function readTiffStructure(src: ByteSource, limits: TiffLimits = DEFAULT_TIFF_LIMITS, signal?: AbortSignal): Promise<TiffStructure> {
  const name = src.name;
  if (src.size < 8) throw badRaster(name, `not a TIFF file: only ${src.size} bytes`);
  const head = await src.read(0, Math.min(16, src.size), 'TIFF header', signal);
  let le: boolean;
  if (head[0] === 0x49 && head[1] === 0x49) le = true;
  else if (head[0] === 0x4d && head[1] === 0x4d) le = false;
  else throw badRaster(name, `not a TIFF file (starts with bytes ${[...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`);
  const magic = u16(head, 2, le);
  let bigTiff: boolean;
  let first: number;
  if (magic === 42) {
    bigTiff = false;
    first = u32(head, 4, le);
  } else if (magic === 43) {
    if (head.length < 16) throw badRaster(name, 'truncated BigTIFF header');
    if (u16(head, 4, le) !== 8 || u16(head, 6, le) !== 0) throw badRaster(name, 'BigTIFF header: offset size must be 8');
    bigTiff = true;
    first = u64(name, head, 8, le, 'BigTIFF header');
  } else {
    throw badRaster(name, `not a TIFF file (version ${magic}, expected 42 or 43)`);
  }

  const entrySize = bigTiff ? 20 : 12;
  const countSize = bigTiff ? 8 : 2;
  const offSize = bigTiff ? 8 : 4;
  const seen = new Set<number>();
  const ifds: Ifd[] = [];
  let totalTagBytes = 0;
  let offset = first;
  if (offset === 0) throw badRaster(name, 'the TIFF header points to no image (first IFD offset is 0)');

  while (offset !== 0) {
    throwIfAborted(signal);
    const where = `IFD ${ifds.length} at offset ${offset}`;
    if (seen.has(offset)) {
      throw badRaster(name, `the IFD chain loops: ${where} was already read (a corrupt or hostile file)`, { offset });
    }
    if (ifds.length >= limits.maxIfds) {
      throw limitError(name, `more than ${limits.maxIfds} IFDs in the chain (limit maxIfds)`, { maxIfds: limits.maxIfds });
    }
    seen.add(offset);
    if (offset + countSize > src.size) throw badRaster(name, `${where} lies past the end of the file (${src.size} bytes)`, { offset });
    const cb = await src.read(offset, countSize, where, signal);
    const count = bigTiff ? u64(name, cb, 0, le, where) : u16(cb, 0, le);
    if (count === 0) throw badRaster(name, `${where} has no entries`);
    if (count > limits.maxEntriesPerIfd) {
      throw limitError(name, `${where} declares ${count} entries (limit ${limits.maxEntriesPerIfd})`);
    }
    const body = await src.read(offset + countSize, count * entrySize + offSize, where, signal);
    const tags = new Map<number, TagEntry>();
    const pending: { entry: TagEntry; at: number }[] = [];
    for (let i = 0; i < count; i++) {
      const e = i * entrySize;
      const tag = u16(body, e, le);
      const type = u16(body, e + 2, le);
      const n = bigTiff ? u64(name, body, e + 4, le, where) : u32(body, e + 4, le);
      const ts = TYPE_SIZE[type];
      if (ts === undefined) continue; // unknown field type: ignore the entry
      const size = n * ts;
      const max = TAG_MAX_COUNT[tag];
      if (max !== undefined && n > max) {
        throw limitError(name, `${where}: ${tagName(tag)} holds ${n} values (at most ${max} expected)`, { tag, count: n });
      }
      if (BLOCK_TAGS.has(tag) && memoryOf(type, n) > limits.maxTagBytes && size > limits.maxTagBytes) {
        throw limitError(name, `${where}: ${tagName(tag)} holds ${fmtBytes(size)} (limit ${fmtBytes(limits.maxTagBytes)})`, { tag, count: n });
      }
      // A tag geo-dino does not use is not read when large.
      if (max === undefined && !BLOCK_TAGS.has(tag) && size > UNUSED_TAG_BYTES) continue;
      const inline = size <= offSize;
      const entry: TagEntry = { tag, type, count: n, values: [], bytes: new Uint8Array(0) };
      if (inline) {
        const start = e + (bigTiff ? 12 : 8);
        entry.bytes = body.slice(start, start + size);
      } else {
        const at = bigTiff ? u64(name, body, e + 12, le, where) : u32(body, e + 8, le);
        if (at + size > src.size) {
          throw badRaster(name, `${where}: ${tagName(tag)} values at bytes ${at}-${at + size - 1} lie past the end of the file (${src.size} bytes)`, {
            tag,
            offset: at,
          });
        }
        pending.push({ entry, at });
      }
      tags.set(tag, entry);
    }
    // Everything but the block offsets first (small, capped above): they say how many blocks there are.
    const readValues = async (list: { entry: TagEntry; at: number }[]): Promise<void> => {
      for (const p of list) {
        const kept = memoryOf(p.entry.type, p.entry.count);
        if (kept > limits.maxTagBytes) {
          throw limitError(name, `${where}: ${tagName(p.entry.tag)} holds ${fmtBytes(kept)} once read (limit ${fmtBytes(limits.maxTagBytes)})`, { tag: p.entry.tag, count: p.entry.count });
        }
        totalTagBytes += kept;
        if (totalTagBytes > 4 * limits.maxTagBytes) {
          throw limitError(name, `tag values exceed ${fmtBytes(4 * limits.maxTagBytes)} in total`, { tag: p.entry.tag });
        }
      }
      if (!list.length) return;
      const got = await src.readMany(
        list.map((p) => ({ offset: p.at, length: p.entry.count * TYPE_SIZE[p.entry.type]! })),
        `${where} tag values`,
        signal,
      );
      list.forEach((p, i) => (p.entry.bytes = got[i]!.slice()));
    };
    const decode = (entry: TagEntry): void => {
      // Byte and text tags are used as bytes; large ones are not turned into numbers.
      const bytewise = entry.type === 1 || entry.type === 2 || entry.type === 6 || entry.type === 7;
      if (!bytewise || entry.count <= 4096) entry.values = decodeValues(name, entry.type, entry.count, entry.bytes, le, `${where}: ${tagName(entry.tag)}`);
    };
    await readValues(pending.filter((p) => !BLOCK_TAGS.has(p.entry.tag)));
    for (const entry of tags.values()) if (!BLOCK_TAGS.has(entry.tag)) decode(entry);
    // Block offsets and sizes: only as many as the image has blocks.
    const blocks = expectedBlocks(tags);
    const blockPending = pending.filter((p) => BLOCK_TAGS.has(p.entry.tag));
    if (blocks !== null) for (const p of blockPending) p.entry.count = Math.min(p.entry.count, blocks);
    await readValues(blockPending);
    for (const entry of tags.values()) {
      if (!BLOCK_TAGS.has(entry.tag)) continue;
      if (entry.bytes.length > entry.count * TYPE_SIZE[entry.type]!) entry.bytes = entry.bytes.slice(0, entry.count * TYPE_SIZE[entry.type]!);
      decode(entry);
    }
    ifds.push({ index: ifds.length, offset, tags });
    const nextAt = count * entrySize;
    offset = bigTiff ? u64(name, body, nextAt, le, where) : u32(body, nextAt, le);
  }
  return { littleEndian: le, bigTiff, ifds };
}

/** Helpers to read tags with clear errors. */
export function tagNumbers(ifd: Ifd, tag: number): number[] | undefined {
  return ifd.tags.get(tag)?.values;
}

export function tagNumber(ifd: Ifd, tag: number): number | undefined {
  return ifd.tags.get(tag)?.values[0];
}

export function tagString(ifd: Ifd, tag: number): string | undefined {
  const e = ifd.tags.get(tag);
  if (!e) return undefined;
  let end = e.bytes.length;
  while (end > 0 && e.bytes[end - 1] === 0) end--;
  return new TextDecoder('latin1').decode(e.bytes.subarray(0, end));
}
