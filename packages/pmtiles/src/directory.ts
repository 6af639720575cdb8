/**
 * PMTiles v3 directories (spec §"Directories"): entries sorted by tile id, stored column by
 * column as varints — the count, tile-id deltas, run lengths, lengths, then offsets, where an
 * offset equal to the end of the previous entry is written as 0 and any other as offset + 1.
 *
 * An entry with run length 0 points to a leaf directory; run length n ≥ 1 means tiles
 * tileId .. tileId+n-1 all have this content.
 *
 * The root directory must fit, with the 127-byte header, in the first 16 KiB that readers fetch.
 * When all entries do not fit, they are split into leaf directories of equal entry counts (one
 * level, as the spec recommends) and the root points to the leaves; the leaf size grows until the
 * root fits.
 */
import { gzipSync } from 'node:zlib';
import { GeoDinoError } from '@geo-dino/core';
import { EntryArrays } from './entries.js';
import { ByteWriter } from './varint.js';

export const HEADER_BYTES = 127;
/** Bytes readers fetch first; header + root directory must fit. */
export const FIRST_FETCH_BYTES = 16384;
export const MAX_ROOT_BYTES = FIRST_FETCH_BYTES - HEADER_BYTES;

/** Serialize entries [start, end) of `e` (uncompressed). */
export function serializeDirectory(e: EntryArrays, start = 0, end = e.count): Uint8Array {
  const w = new ByteWriter(Math.max(64, (end - start) * 6));
  w.writeVarint(end - start);
  let last = 0;
  for (let i = start; i < end; i++) {
    const id = e.tileId(i);
    w.writeVarint(id - last);
    last = id;
  }
  for (let i = start; i < end; i++) w.writeVarint(e.runLength(i));
  for (let i = start; i < end; i++) w.writeVarint(e.length(i));
  for (let i = start; i < end; i++) {
    const contiguous = i > start && e.offset(i) === e.offset(i - 1) + e.length(i - 1);
    w.writeVarint(contiguous ? 0 : e.offset(i) + 1);
  }
  return w.bytes().slice();
}

export function gzip(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(bytes, { level: 9 }));
}

export interface BuiltDirectories {
  /** The compressed root directory. */
  root: Uint8Array;
  /** Total bytes of the compressed leaf directories written through `writeLeaf`. */
  leafBytes: number;
  leafCount: number;
  /** Entries per leaf (0 when everything fit in the root). */
  leafSize: number;
}

/**
 * Build the root (and leaf directories when needed). Leaves are handed to `writeLeaf` in order,
 * back to back, so the caller can stream them to disk; `resetLeaves` is called before a retry with
 * a larger leaf size.
 */
export async function buildDirectories(
  entries: EntryArrays,
  io: { writeLeaf(bytes: Uint8Array): Promise<void>; resetLeaves(): Promise<void> },
  compress: (b: Uint8Array) => Uint8Array = gzip,
): Promise<BuiltDirectories> {
  if (entries.count === 0) throw new GeoDinoError('E_INTERNAL', 'a PMTiles archive needs at least one tile');
  const whole = compress(serializeDirectory(entries));
  if (whole.length <= MAX_ROOT_BYTES) return { root: whole, leafBytes: 0, leafCount: 0, leafSize: 0 };

  let leafSize = 4096;
  for (;;) {
    await io.resetLeaves();
    const root = new EntryArrays();
    let offset = 0;
    for (let start = 0; start < entries.count; start += leafSize) {
      const end = Math.min(entries.count, start + leafSize);
      const leaf = compress(serializeDirectory(entries, start, end));
      await io.writeLeaf(leaf);
      root.push(entries.tileId(start), offset, leaf.length, 0);
      offset += leaf.length;
    }
    const rootBytes = compress(serializeDirectory(root));
    if (rootBytes.length <= MAX_ROOT_BYTES) return { root: rootBytes, leafBytes: offset, leafCount: root.count, leafSize };
    leafSize *= 2;
  }
}
