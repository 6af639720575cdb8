/**
 * Test helpers: the `pmtiles` JS reader (the oracle) over a local file, and a decoder of every
 * directory entry built on the reader's own varint and header functions.
 */
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import { PMTiles, bytesToHeader, readVarint, tileIdToZxy, type Header, type RangeResponse, type Source } from 'pmtiles';

/** A pmtiles `Source` reading a local file. */
export class LocalFileSource implements Source {
  constructor(private readonly path: string) {}
  getKey(): string {
    return this.path;
  }
  async getBytes(offset: number, length: number): Promise<RangeResponse> {
    return { data: readBytes(this.path, offset, length).buffer as ArrayBuffer };
  }
}

export function readBytes(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const n = Math.max(0, Math.min(length, size - offset));
    const buf = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const r = readSync(fd, buf, got, n - got, offset + got);
      if (r === 0) break;
      got += r;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

export function openArchive(path: string): PMTiles {
  return new PMTiles(new LocalFileSource(path));
}

export interface DecodedEntry {
  tileId: number;
  offset: number;
  length: number;
  runLength: number;
}

function decodeDirectory(bytes: Uint8Array): DecodedEntry[] {
  const b = { buf: bytes, pos: 0 };
  const n = readVarint(b);
  const out: DecodedEntry[] = [];
  let id = 0;
  for (let i = 0; i < n; i++) {
    id += readVarint(b);
    out.push({ tileId: id, offset: 0, length: 0, runLength: 0 });
  }
  for (const e of out) e.runLength = readVarint(b);
  for (const e of out) e.length = readVarint(b);
  out.forEach((e, i) => {
    const v = readVarint(b);
    e.offset = v === 0 && i > 0 ? out[i - 1]!.offset + out[i - 1]!.length : v - 1;
  });
  return out;
}

/** Every tile entry of an archive in directory order, following leaf pointers. */
export function allEntries(path: string): { header: Header; entries: DecodedEntry[]; leafDirectories: number } {
  const head = readBytes(path, 0, 127);
  const header = bytesToHeader(head.buffer as ArrayBuffer);
  const entries: DecodedEntry[] = [];
  let leafDirectories = 0;
  const walk = (offset: number, length: number, depth: number): void => {
    if (depth > 3) throw new Error('directory depth > 3');
    const dir = decodeDirectory(new Uint8Array(gunzipSync(readBytes(path, offset, length))));
    for (const e of dir) {
      if (e.runLength === 0) {
        leafDirectories++;
        walk(header.leafDirectoryOffset + e.offset, e.length, depth + 1);
      } else entries.push(e);
    }
  };
  walk(header.rootDirectoryOffset, header.rootDirectoryLength, 0);
  return { header, entries, leafDirectories };
}

/** Every tile of an archive as [z, x, y]. */
export function tilesOf(path: string): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (const e of allEntries(path).entries) for (let k = 0; k < e.runLength; k++) out.push(tileIdToZxy(e.tileId + k));
  return out;
}

/** A 256² tile image (PNG, WebP) decoded by sharp to RGBA bytes. */
export async function decodeRgba(bytes: ArrayBuffer): Promise<Uint8Array> {
  const { data, info } = await sharp(Buffer.from(bytes)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.width !== 256 || info.height !== 256 || info.channels !== 4) throw new Error(`tile decodes to ${info.width}×${info.height}×${info.channels}, not 256×256×4`);
  return new Uint8Array(data);
}

