/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors, "Format").
 *
 * Layout: 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON
 * `{ "__metadata__": {string: string}, "<name>": { "dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end] }, ... }`, then the data; offsets are relative to the byte after
 * the header. Tensors are row-major, little-endian.
 *
 * The reader never loads a file whole: it parses the header, validates every entry against the
 * file size (a truncated or hostile file fails with the tensor and file named), and reads one
 * tensor at a time with positioned reads. Sharded Hugging Face checkpoints
 * (`model.safetensors.index.json` + `model-0000N-of-0000M.safetensors`) are one {@link WeightSet}.
 */
import { open, stat, readdir, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { GeoDinoError, fsError, readJsonFile, openAtomic } from '@geo-dino/core';
import { bf16ArrayToFloat32, halfArrayToFloat32 } from './half.js';

export const SAFETENSORS_DTYPES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
} as const;
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;

/** Largest header the reader accepts (the reference implementation's limit is 100 MB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte offset of the data in `file`. */
  offset: number;
  byteLength: number;
  file: string;
}

function bad(message: string, details: Record<string, unknown> = {}): GeoDinoError {
  return new GeoDinoError('E_BAD_MODEL', message, { details });
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** One `.safetensors` file, header parsed and checked; tensors read on demand. */
export class SafetensorsFile {
  readonly path: string;
  readonly size: number;
  readonly metadata: Record<string, string>;
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  private handle: FileHandle | undefined;

  private constructor(path: string, size: number, handle: FileHandle, metadata: Record<string, string>, tensors: Map<string, TensorInfo>) {
    this.path = path;
    this.size = size;
    this.handle = handle;
    this.metadata = metadata;
    this.tensors = tensors;
  }

  static async open(path: string): Promise<SafetensorsFile> {
    const handle = await openForReading(path);
    try {
      const size = (await handle.stat()).size;
      if (size < 8) throw bad(`${path}: not a safetensors file (${size} bytes, shorter than the 8-byte header length)`, { path });
      const lenBuf = Buffer.alloc(8);
      await readFully(handle, lenBuf, 0, path);
      const n = lenBuf.readBigUInt64LE(0);
      if (n > BigInt(MAX_HEADER_BYTES)) {
        throw bad(`${path}: safetensors header of ${n} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`, { path });
      }
      const headerLen = Number(n);
      if (8 + headerLen > size) {
        throw bad(`${path}: truncated: header says ${headerLen} bytes of JSON but the file has ${size - 8} bytes after the length`, { path });
      }
      const headerBuf = Buffer.alloc(headerLen);
      await readFully(handle, headerBuf, 8, path);
      let header: unknown;
      try {
        header = JSON.parse(headerBuf.toString('utf8'));
      } catch (err) {
        throw bad(`${path}: safetensors header is not valid JSON: ${(err as Error).message}`, { path });
      }
      if (header === null || typeof header !== 'object' || Array.isArray(header)) {
        throw bad(`${path}: safetensors header is not a JSON object`, { path });
      }
      const dataStart = 8 + headerLen;
      const dataLen = size - dataStart;
      const tensors = new Map<string, TensorInfo>();
      let metadata: Record<string, string> = {};
      const spans: [number, number, string][] = [];
      for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
        if (name === '__metadata__') {
          if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
            metadata = Object.fromEntries(Object.entries(raw as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
          }
          continue;
        }
        const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
        if (!e || typeof e !== 'object') throw bad(`${path}: tensor ${name}: header entry is not an object`, { path, tensor: name });
        if (typeof e.dtype !== 'string' || !(e.dtype in SAFETENSORS_DTYPES)) {
          throw bad(`${path}: tensor ${name}: unknown dtype ${JSON.stringify(e.dtype)}`, { path, tensor: name });
        }
        const dtype = e.dtype as SafetensorsDtype;
        if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
          throw bad(`${path}: tensor ${name}: shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`, { path, tensor: name });
        }
        const shape = e.shape as number[];
        const off = e.data_offsets;
        if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && (d as number) >= 0) || (off[1] as number) < (off[0] as number)) {
          throw bad(`${path}: tensor ${name}: data_offsets ${JSON.stringify(off)} are not [begin, end] with begin <= end`, { path, tensor: name });
        }
        const [begin, end] = off as [number, number];
        const want = numelOf(shape) * SAFETENSORS_DTYPES[dtype];
        if (end - begin !== want) {
          throw bad(`${path}: tensor ${name}: ${end - begin} bytes of data for shape [${shape.join(',')}] ${dtype}, which needs ${want}`, { path, tensor: name });
        }
        if (end > dataLen) {
          throw bad(`${path}: truncated: tensor ${name} ends at byte ${dataStart + end} but the file has ${size} bytes`, { path, tensor: name });
        }
        spans.push([begin, end, name]);
        tensors.set(name, { name, dtype, shape, offset: dataStart + begin, byteLength: end - begin, file: path });
      }
      spans.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < spans.length; i++) {
        const prev = spans[i - 1]!;
        const cur = spans[i]!;
        if (cur[0] < prev[1]) throw bad(`${path}: tensors ${prev[2]} and ${cur[2]} overlap in the file`, { path });
      }
      return new SafetensorsFile(path, size, handle, metadata, tensors);
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw bad(`${this.path}: no tensor named ${name}`, { path: this.path, tensor: name });
    return t;
  }

  /** The tensor's bytes as stored. */
  async readRaw(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    if (!this.handle) throw new GeoDinoError('E_INTERNAL', `${this.path}: read after close`);
    const buf = new Uint8Array(t.byteLength);
    await readFully(this.handle, buf, t.offset, this.path);
    return buf;
  }

  /** The tensor as float32 (F32 as is; F16, BF16, F64 and integer types converted). */
  async readFloat32(name: string): Promise<Float32Array> {
    const t = this.info(name);
    return toFloat32(await this.readRaw(name), t.dtype, `${this.path}: tensor ${name}`);
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    await h?.close().catch(() => undefined);
  }
}

async function openForReading(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (err) {
    throw fsError(err, path, 'open');
  }
}

async function readFully(handle: FileHandle, buf: Uint8Array, position: number, path: string): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buf, off, Math.min(buf.length - off, 1 << 30), position + off));
    } catch (err) {
      throw fsError(err, path, 'read');
    }
    if (bytesRead === 0) throw bad(`${path}: truncated: unexpected end of file at byte ${position + off}`, { path });
    off += bytesRead;
  }
}

/** Convert raw little-endian tensor bytes to float32. */
export function toFloat32(raw: Uint8Array, dtype: SafetensorsDtype, what: string): Float32Array {
  // Copy into an aligned buffer when needed (typed-array views need aligned offsets).
  const aligned = (size: number): ArrayBuffer => {
    if (raw.byteOffset % size === 0) return raw.buffer as ArrayBuffer;
    const copy = new Uint8Array(raw.length);
    copy.set(raw);
    return copy.buffer;
  };
  const off = (size: number): number => (raw.byteOffset % size === 0 ? raw.byteOffset : 0);
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned(4), off(4), raw.length / 4);
    case 'F16':
      return halfArrayToFloat32(new Uint16Array(aligned(2), off(2), raw.length / 2));
    case 'BF16':
      return bf16ArrayToFloat32(new Uint16Array(aligned(2), off(2), raw.length / 2));
    case 'F64':
      return Float32Array.from(new Float64Array(aligned(8), off(8), raw.length / 8));
    case 'I64':
      return Float32Array.from(new BigInt64Array(aligned(8), off(8), raw.length / 8), (v) => Number(v));
    case 'I32':
      return Float32Array.from(new Int32Array(aligned(4), off(4), raw.length / 4));
    case 'I16':
      return Float32Array.from(new Int16Array(aligned(2), off(2), raw.length / 2));
    case 'I8':
      return Float32Array.from(new Int8Array(raw.buffer, raw.byteOffset, raw.length));
    case 'U8':
    case 'BOOL':
      return Float32Array.from(raw);
    case 'U16':
      return Float32Array.from(new Uint16Array(aligned(2), off(2), raw.length / 2));
    case 'U32':
      return Float32Array.from(new Uint32Array(aligned(4), off(4), raw.length / 4));
    default:
      throw bad(`${what}: dtype ${dtype} cannot be used as a floating-point weight`);
  }
}

/** The checkpoint's weight files: one `.safetensors`, or shards listed by an index. */
export class WeightSet {
  readonly dir: string;
  readonly files: readonly SafetensorsFile[];
  private readonly byName: Map<string, SafetensorsFile>;

  private constructor(dir: string, files: SafetensorsFile[], byName: Map<string, SafetensorsFile>) {
    this.dir = dir;
    this.files = files;
    this.byName = byName;
  }

  /**
   * Open the weights in `dir`: `model.safetensors.index.json` (sharded), else `model.safetensors`,
   * else the single `*.safetensors` file there. `pathOrDir` may also name one file.
   */
  static async open(pathOrDir: string): Promise<WeightSet> {
    let st;
    try {
      st = await stat(pathOrDir);
    } catch (err) {
      throw fsError(err, pathOrDir, 'open');
    }
    if (st.isFile()) {
      const f = await SafetensorsFile.open(pathOrDir);
      return new WeightSet(dirname(pathOrDir), [f], new Map([...f.tensors.keys()].map((k) => [k, f])));
    }
    const dir = pathOrDir;
    const names = await readdir(dir);
    const indexName = names.find((n) => n.endsWith('.safetensors.index.json'));
    if (indexName) return WeightSet.openIndex(join(dir, indexName));
    const single = names.includes('model.safetensors') ? 'model.safetensors' : names.filter((n) => n.endsWith('.safetensors') && !n.startsWith('.'));
    const pick = typeof single === 'string' ? single : single.length === 1 ? single[0]! : undefined;
    if (!pick) {
      if (Array.isArray(single) && single.length > 1) {
        throw bad(`${dir}: ${single.length} .safetensors files and no model.safetensors.index.json to say how they fit together`, { dir });
      }
      throw new GeoDinoError('E_MODEL_NOT_FOUND', `${dir}: no model.safetensors (or sharded index) in this directory`, { details: { dir } });
    }
    const f = await SafetensorsFile.open(join(dir, pick));
    return new WeightSet(dir, [f], new Map([...f.tensors.keys()].map((k) => [k, f])));
  }

  static async openIndex(indexPath: string): Promise<WeightSet> {
    const dir = dirname(indexPath);
    const raw = await readJsonFile(indexPath);
    const map = (raw as { weight_map?: unknown } | null)?.weight_map;
    if (!map || typeof map !== 'object' || Array.isArray(map)) {
      throw bad(`${indexPath}: weight_map is missing or not an object`, { path: indexPath });
    }
    const shardNames = [...new Set(Object.values(map as Record<string, unknown>))];
    for (const s of shardNames) {
      if (typeof s !== 'string' || s.includes('/') || s.includes('\\') || s.startsWith('.')) {
        throw bad(`${indexPath}: weight_map names a shard ${JSON.stringify(s)} that is not a plain file name`, { path: indexPath });
      }
    }
    const files: SafetensorsFile[] = [];
    try {
      for (const s of (shardNames as string[]).sort()) files.push(await SafetensorsFile.open(join(dir, s)));
    } catch (err) {
      await Promise.all(files.map((f) => f.close()));
      throw err;
    }
    const byFile = new Map(files.map((f) => [basename(f.path), f]));
    const byName = new Map<string, SafetensorsFile>();
    for (const [name, shard] of Object.entries(map as Record<string, string>)) {
      const f = byFile.get(shard)!;
      if (!f.tensors.has(name)) {
        await Promise.all(files.map((x) => x.close()));
        throw bad(`${indexPath}: tensor ${name} is listed in ${shard} but that shard does not contain it`, { path: indexPath, tensor: name });
      }
      byName.set(name, f);
    }
    for (const f of files) {
      for (const name of f.tensors.keys()) {
        if (!byName.has(name)) byName.set(name, f);
      }
    }
    return new WeightSet(dir, files, byName);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const f = this.byName.get(name);
    if (!f) throw bad(`${this.dir}: the weights have no tensor named ${name}`, { tensor: name });
    return f.info(name);
  }

  async readFloat32(name: string): Promise<Float32Array> {
    const f = this.byName.get(name);
    if (!f) throw bad(`${this.dir}: the weights have no tensor named ${name}`, { tensor: name });
    return f.readFloat32(name);
  }

  /** The stored dtypes, most common first. */
  dtypes(): SafetensorsDtype[] {
    const count = new Map<SafetensorsDtype, number>();
    for (const n of this.byName.keys()) {
      const d = this.info(n).dtype;
      count.set(d, (count.get(d) ?? 0) + 1);
    }
    return [...count.entries()].sort((a, b) => b[1] - a[1]).map(([d]) => d);
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }
}

/** sha256 of a file, streamed. */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  const handle = await openForReading(path);
  try {
    const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
    let pos = 0;
    for (;;) {
      if (signal?.aborted) throw new GeoDinoError('E_CANCELLED', 'interrupted');
      const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return h.digest('hex');
}

// ------------------------------------------------------------------------------------------
// Writer

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** The bytes, or a function producing them (called once, in order, so large files stream). */
  data: Uint8Array | (() => Uint8Array | Promise<Uint8Array>);
}

/**
 * Write a safetensors file atomically. Tensors are written in the order given, each produced
 * when its turn comes, so memory holds one tensor at a time.
 */
export async function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata: Record<string, string> = {}): Promise<void> {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header['__metadata__'] = metadata;
  let offset = 0;
  for (const t of tensors) {
    const len = numelOf(t.shape) * SAFETENSORS_DTYPES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces to a multiple of 8 bytes, as the reference writer does.
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = Buffer.from(json, 'utf8');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(headerBytes.length));
  const file = await openAtomic(path);
  try {
    await file.write(lenBuf);
    await file.write(headerBytes);
    for (const t of tensors) {
      const bytes = typeof t.data === 'function' ? await t.data() : t.data;
      const want = numelOf(t.shape) * SAFETENSORS_DTYPES[t.dtype];
      if (bytes.length !== want) {
        throw new GeoDinoError('E_INTERNAL', `${path}: tensor ${t.name}: produced ${bytes.length} bytes, expected ${want}`);
      }
      await file.write(bytes);
    }
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err;
  }
}

/** View a typed array's bytes (no copy). */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
