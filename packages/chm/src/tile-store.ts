/**
 * The tile store: one file per predicted tile in a run's state directory. It is what makes runs
 * resumable and distributable: a tile is done when its file exists; files are written under a
 * temporary name, fsynced and renamed (`writeFileAtomic`), so a crash or a kill leaves either a
 * complete tile or none; and the same tile predicted twice (a retried job) gives the same bytes,
 * so whichever rename lands last changes nothing.
 *
 * File layout (`tiles/<id / 1000>/<id>.tile`):
 *
 * ```
 * "GDTILE1\n"                     8 bytes magic
 * u32 LE                          header length
 * header (UTF-8 JSON)             format, configHash, id, spec, empty, validCount, sourcesUsed,
 *                                 planes [{name, dtype, raw, bytes, predictor}], sha256
 * plane data                      each DEFLATE-compressed (floats after TIFF predictor 3)
 * ```
 *
 * Planes are named and typed, so heads other than canopy height (land-cover scores) add planes
 * without a format change. `sha256` covers the compressed plane bytes: a damaged file is refused.
 */
import { readdir, readFile, rm, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { inflate, constants } from 'node:zlib';
import { GeoDinoError, ensureDir, fsError, isTemporaryName, writeFileAtomic, writeJsonAtomic, readJsonFile, fileExists } from '@geo-dino/core';
import { applyFloatingPoint, deflateEncodeAsync, undoFloatingPoint, type TileSpec } from '@geo-dino/tiling';
import { sha256Hex } from './hash.js';

const MAGIC = new TextEncoder().encode('GDTILE1\n');
const SHARD = 1000;
const MAX_HEADER = 1 << 20;

export type PlaneDtype = 'float32' | 'uint8' | 'uint16';
export type PlaneArray = Float32Array | Uint8Array | Uint16Array;

/** Where a stored tile sits in the grid (the tiler's tile spec without layout-only fields). */
export type TileRecordSpec = Pick<TileSpec, 'row' | 'col' | 'x' | 'y' | 'width' | 'height'>;

export interface TileRecord {
  id: number;
  spec: TileRecordSpec;
  /** No valid pixel (nothing to blend); such tiles carry no planes. */
  empty: boolean;
  validCount: number;
  /** Indexes (into the plan's sources) of the scenes that supplied pixels. */
  sourcesUsed: number[];
  /**
   * width × height arrays, row-major: `height`, `uncertainty` (float32, metres), `valid` (uint8,
   * 1 = valid imagery inside the AOI), `source` (uint16, index of the scene of each pixel), `red`,
   * `green`, `blue` (uint8, the model's input imagery, 0 where not valid; see imagery.ts).
   */
  planes: Record<string, PlaneArray>;
}

interface PlaneHeader {
  name: string;
  dtype: PlaneDtype;
  raw: number;
  bytes: number;
  predictor: 'float' | 'none';
}

interface TileHeader {
  format: 'geo-dino-tile';
  version: 1;
  configHash: string;
  id: number;
  spec: TileRecordSpec;
  empty: boolean;
  validCount: number;
  sourcesUsed: number[];
  planes: PlaneHeader[];
  sha256: string;
}

function dtypeOf(a: PlaneArray): PlaneDtype {
  return a instanceof Float32Array ? 'float32' : a instanceof Uint16Array ? 'uint16' : 'uint8';
}

function bytesOf(a: PlaneArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function inflateCapped(data: Uint8Array, cap: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    inflate(data, { maxOutputLength: Math.max(1, cap), finishFlush: constants.Z_SYNC_FLUSH }, (err, out) =>
      err ? reject(err) : resolve(new Uint8Array(out.buffer, out.byteOffset, out.byteLength)),
    );
  });
}

/** Serialise a tile record (deterministic: the same record always gives the same bytes). */
export async function encodeTile(record: TileRecord, configHash: string): Promise<Uint8Array> {
  const planes: PlaneHeader[] = [];
  const chunks: Uint8Array[] = [];
  if (!record.empty) {
    for (const name of Object.keys(record.planes)) {
      const a = record.planes[name]!;
      const dtype = dtypeOf(a);
      const raw = bytesOf(a).slice();
      let predictor: PlaneHeader['predictor'] = 'none';
      if (dtype === 'float32') {
        applyFloatingPoint(raw, record.spec.width, record.spec.height, 1, 4);
        predictor = 'float';
      }
      // Level 1: state files are temporary; CPU spent here competes with inference.
      const z = await deflateEncodeAsync(raw, 1);
      planes.push({ name, dtype, raw: raw.length, bytes: z.length, predictor });
      chunks.push(z);
    }
  }
  const total = chunks.reduce((s, c) => s + c.length, 0);
  const body = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    body.set(c, off);
    off += c.length;
  }
  const header: TileHeader = {
    format: 'geo-dino-tile',
    version: 1,
    configHash,
    id: record.id,
    spec: { row: record.spec.row, col: record.spec.col, x: record.spec.x, y: record.spec.y, width: record.spec.width, height: record.spec.height },
    empty: record.empty,
    validCount: record.validCount,
    sourcesUsed: [...record.sourcesUsed],
    planes,
    sha256: sha256Hex(body),
  };
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(MAGIC.length + 4 + h.length + body.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, h.length, true);
  out.set(h, MAGIC.length + 4);
  out.set(body, MAGIC.length + 4 + h.length);
  return out;
}

function damaged(path: string, what: string): GeoDinoError {
  return new GeoDinoError('E_INTERNAL', `${path}: damaged tile file (${what})`, { details: { path, damaged: true } });
}

/** Parse and verify a tile file's bytes. */
export async function decodeTile(bytes: Uint8Array, path: string, configHash: string): Promise<TileRecord> {
  if (bytes.length < MAGIC.length + 4 || !MAGIC.every((b, i) => bytes[i] === b)) throw damaged(path, 'not a geo-dino tile');
  const hl = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(MAGIC.length, true);
  if (hl > MAX_HEADER || MAGIC.length + 4 + hl > bytes.length) throw damaged(path, 'header length');
  let header: TileHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, MAGIC.length + 4 + hl))) as TileHeader;
  } catch {
    throw damaged(path, 'header is not JSON');
  }
  if (header.format !== 'geo-dino-tile' || header.version !== 1) throw damaged(path, 'unknown format');
  if (header.configHash !== configHash) {
    throw new GeoDinoError('E_ARGUMENT', `${path}: belongs to another run configuration (${header.configHash.slice(0, 12)}, this run is ${configHash.slice(0, 12)})`, {
      details: { path },
    });
  }
  const body = bytes.subarray(MAGIC.length + 4 + hl);
  if (body.length !== header.planes.reduce((s, p) => s + p.bytes, 0)) throw damaged(path, 'truncated');
  if (sha256Hex(body) !== header.sha256) throw damaged(path, 'checksum mismatch');
  const n = header.spec.width * header.spec.height;
  const planes: Record<string, PlaneArray> = {};
  let off = 0;
  for (const p of header.planes) {
    const size = p.dtype === 'float32' ? 4 : p.dtype === 'uint16' ? 2 : 1;
    if (p.raw !== n * size) throw damaged(path, `plane ${p.name} size`);
    let raw: Uint8Array;
    try {
      raw = await inflateCapped(body.subarray(off, off + p.bytes), p.raw);
    } catch {
      throw damaged(path, `plane ${p.name} does not inflate`);
    }
    off += p.bytes;
    if (raw.length !== p.raw) throw damaged(path, `plane ${p.name} length`);
    const own = raw.byteOffset % 4 === 0 ? raw : raw.slice();
    if (p.predictor === 'float') undoFloatingPoint(own, header.spec.width, header.spec.height, 1, 4);
    planes[p.name] =
      p.dtype === 'float32'
        ? new Float32Array(own.buffer, own.byteOffset, n)
        : p.dtype === 'uint16'
          ? new Uint16Array(own.buffer, own.byteOffset, n)
          : new Uint8Array(own.buffer, own.byteOffset, n);
  }
  return { id: header.id, spec: header.spec, empty: header.empty, validCount: header.validCount, sourcesUsed: header.sourcesUsed, planes };
}

/** A run's tile store (see the module comment). */
export class TileStore {
  private constructor(
    readonly dir: string,
    readonly configHash: string,
  ) {}

  /**
   * Open (or create) the store in `dir` for a configuration. Leftover temporary files of killed
   * writers are removed (unless `keepTemporaries`: distributed workers share a store, and one
   * opening it must not delete the files another is writing); a store made for another
   * configuration is refused.
   */
  static async open(dir: string, configHash: string, options: { keepTemporaries?: boolean } = {}): Promise<TileStore> {
    await ensureDir(dir);
    const meta = join(dir, 'store.json');
    if (await fileExists(meta)) {
      const m = (await readJsonFile(meta)) as { configHash?: unknown };
      if (m.configHash !== configHash) {
        throw new GeoDinoError('E_ARGUMENT', `${dir}: holds tiles of another run configuration; remove it to start over`, { details: { dir } });
      }
    } else {
      await writeJsonAtomic(meta, { format: 'geo-dino-tile-store', version: 1, configHash });
    }
    const store = new TileStore(dir, configHash);
    if (!options.keepTemporaries) await store.removeTemporaries();
    return store;
  }

  pathOf(id: number): string {
    return join(this.dir, String(Math.floor(id / SHARD)), `${id}.tile`);
  }

  private async removeTemporaries(): Promise<void> {
    for (const shard of await this.shards()) {
      const d = join(this.dir, shard);
      for (const name of await readdir(d).catch(() => [] as string[])) {
        if (isTemporaryName(name)) await rm(join(d, name), { force: true });
      }
    }
  }

  private async shards(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      throw fsError(err, this.dir, 'read');
    }
    return names.filter((n) => /^\d+$/.test(n));
  }

  /** Ids of the tiles present (complete: only renamed files count). */
  async completed(): Promise<Set<number>> {
    const done = new Set<number>();
    for (const shard of await this.shards()) {
      for (const name of await readdir(join(this.dir, shard)).catch(() => [] as string[])) {
        const m = /^(\d+)\.tile$/.exec(name);
        if (m) done.add(Number(m[1]));
      }
    }
    return done;
  }

  async write(record: TileRecord): Promise<void> {
    const bytes = await encodeTile(record, this.configHash);
    const path = this.pathOf(record.id);
    try {
      await mkdir(join(path, '..'), { recursive: true });
    } catch (err) {
      throw fsError(err, join(path, '..'), 'create');
    }
    await writeFileAtomic(path, bytes);
  }

  /** Delete a tile (its every shard is written); absent is fine. */
  async remove(id: number): Promise<void> {
    await rm(this.pathOf(id), { force: true });
  }

  /** Bytes the store holds on disk now (tile files). */
  async bytes(): Promise<number> {
    let n = 0;
    for (const shard of await this.shards()) {
      for (const name of await readdir(join(this.dir, shard)).catch(() => [] as string[])) {
        const st = await stat(join(this.dir, shard, name)).catch(() => null);
        if (st?.isFile()) n += st.size;
      }
    }
    return n;
  }

  /** Read a tile; null when absent. A damaged file is deleted and reported (E_INTERNAL, `details.damaged`). */
  async read(id: number): Promise<TileRecord | null> {
    const path = this.pathOf(id);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return null;
      throw fsError(err, path, 'read');
    }
    try {
      return await decodeTile(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path, this.configHash);
    } catch (err) {
      if (err instanceof GeoDinoError && err.details['damaged']) await rm(path, { force: true });
      throw err;
    }
  }
}
