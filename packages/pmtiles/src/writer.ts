/**
 * A streaming PMTiles v3 writer.
 *
 * Tiles may be added in any order. Their bytes are appended to a temporary file as they come;
 * only compact columns (tile id, content index; content offset and length) stay in memory.
 * Identical tiles are stored once (SHA-256 of the bytes). `finish()` sorts the entries by tile id,
 * lays the contents out in that order (a clustered archive: every content is written where its
 * first tile in id order needs it; later identical tiles point back to it), merges consecutive
 * ids with the same content into runs, builds the directories (leaf directories when the root
 * would not fit in the first 16 KiB), gzips directories and metadata, and writes
 *
 *   header (127 B) | root directory | JSON metadata | leaf directories | tile data
 *
 * under a temporary name that is renamed into place when complete. `abort()` removes everything.
 */
import { createHash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import {
  GeoDinoError,
  fsError,
  openAtomic,
  temporaryPathFor,
  throwIfAborted,
  type AtomicFile,
} from '@geo-dino/core';
import { buildDirectories, gzip, HEADER_BYTES } from './directory.js';
import { EntryArrays, f64Column, u32Column } from './entries.js';
import { Compression, serializeHeader, TileType, type Header } from './header.js';
import { tileIdZoom, zxyToTileId } from './tileid.js';

export interface PMTilesWriterOptions {
  tileType: TileType;
  /** Compression of the tile bytes as given (images: None, the default). */
  tileCompression?: Compression;
  signal?: AbortSignal;
}

export interface FinishOptions {
  /** The archive's JSON metadata (gzipped into the file). */
  metadata: Record<string, unknown>;
  /** [west, south, east, north] of the data, degrees. */
  bounds: [number, number, number, number];
  /** Default view; the centre of the bounds at the middle zoom when omitted. */
  center?: { lon: number; lat: number; zoom: number };
}

export interface PMTilesSummary {
  path: string;
  bytes: number;
  addressedTiles: number;
  tileEntries: number;
  tileContents: number;
  minZoom: number;
  maxZoom: number;
  leafDirectories: number;
  rootDirectoryBytes: number;
  tileDataBytes: number;
}

/** Bytes buffered before an append to the temporary data file. */
const APPEND_BUFFER = 4 << 20;
/** Largest single read when copying tile data into the archive. */
const COPY_CHUNK = 8 << 20;

export class PMTilesWriter {
  private readonly tileIds = f64Column();
  private readonly tileContent = u32Column();
  private readonly contentOffset = f64Column();
  private readonly contentLength = u32Column();
  private readonly byHash = new Map<string, number>();
  private dataBytes = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushedBytes = 0;
  private state: 'open' | 'finishing' | 'done' | 'aborted' = 'open';

  private constructor(
    readonly path: string,
    private readonly options: PMTilesWriterOptions,
    private readonly dataPath: string,
    private readonly data: FileHandle,
  ) {}

  static async create(path: string, options: PMTilesWriterOptions): Promise<PMTilesWriter> {
    const dataPath = temporaryPathFor(`${path}.data`);
    let data: FileHandle;
    try {
      data = await open(dataPath, 'w+');
    } catch (err) {
      throw fsError(err, path, 'write');
    }
    return new PMTilesWriter(path, options, dataPath, data);
  }

  /** Tiles added so far (including duplicates). */
  get tileCount(): number {
    return this.tileIds.length;
  }

  /** Distinct tile contents so far. */
  get contentCount(): number {
    return this.contentLength.length;
  }

  async addTile(z: number, x: number, y: number, bytes: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw new GeoDinoError('E_INTERNAL', `${this.path}: addTile after finish or abort`);
    if (bytes.length === 0) throw new GeoDinoError('E_INTERNAL', `${this.path}: tile ${z}/${x}/${y} is empty`);
    const id = zxyToTileId(z, x, y);
    const key = createHash('sha256').update(bytes).digest('base64');
    let content = this.byHash.get(key);
    if (content === undefined) {
      content = this.contentLength.length;
      this.byHash.set(key, content);
      this.contentOffset.push(this.dataBytes);
      this.contentLength.push(bytes.length);
      this.dataBytes += bytes.length;
      // Copy: the caller may reuse its buffer.
      this.pending.push(Buffer.from(bytes));
      this.pendingBytes += bytes.length;
      if (this.pendingBytes >= APPEND_BUFFER) await this.flush();
    }
    this.tileIds.push(id);
    this.tileContent.push(content);
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const chunk = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    try {
      let off = 0;
      while (off < chunk.length) {
        const { bytesWritten } = await this.data.write(chunk, off, chunk.length - off, this.flushedBytes + off);
        off += bytesWritten;
      }
    } catch (err) {
      throw fsError(err, this.path, 'write');
    }
    this.flushedBytes += chunk.length;
  }

  async finish(opts: FinishOptions): Promise<PMTilesSummary> {
    if (this.state !== 'open') throw new GeoDinoError('E_INTERNAL', `${this.path}: finish called twice or after abort`);
    this.state = 'finishing';
    const signal = this.options.signal;
    let out: AtomicFile | undefined;
    let leavesPath: string | undefined;
    let leaves: FileHandle | undefined;
    try {
      const n = this.tileIds.length;
      if (n === 0) throw new GeoDinoError('E_NO_OVERLAP', `${this.path}: no tiles to write (the source has no valid pixels)`);
      await this.flush();
      throwIfAborted(signal);

      // 1. Order the tiles by id.
      const ids = this.tileIds.view();
      const order = new Uint32Array(n);
      for (let i = 0; i < n; i++) order[i] = i;
      let sorted = true;
      for (let i = 1; i < n && sorted; i++) if (ids[i]! < ids[i - 1]!) sorted = false;
      if (!sorted) order.sort((a, b) => ids[a]! - ids[b]!);

      // 2. Place each content where its first tile (in id order) is; merge runs.
      const contentCount = this.contentLength.length;
      const placed = new Float64Array(contentCount).fill(-1);
      const copyOrder = new Uint32Array(contentCount);
      let copied = 0;
      let cursor = 0;
      const entries = new EntryArrays();
      let lastId = -1;
      let lastContent = -1;
      for (let k = 0; k < n; k++) {
        const i = order[k]!;
        const id = ids[i]!;
        if (id === lastId) {
          throw new GeoDinoError('E_INTERNAL', `${this.path}: tile id ${id} was added twice`);
        }
        const c = this.tileContent.get(i);
        if (placed[c] === -1) {
          placed[c] = cursor;
          cursor += this.contentLength.get(c);
          copyOrder[copied++] = c;
        }
        const runEnd = entries.count > 0 ? entries.tileId(entries.count - 1) + entries.runLength(entries.count - 1) : -1;
        if (c === lastContent && id === runEnd) entries.extendLastRun();
        else entries.push(id, placed[c]!, this.contentLength.get(c), 1);
        lastId = id;
        lastContent = c;
      }
      throwIfAborted(signal);

      // 3. Directories: leaves stream to a temporary file.
      leavesPath = temporaryPathFor(`${this.path}.leaves`);
      try {
        leaves = await open(leavesPath, 'w+');
      } catch (err) {
        throw fsError(err, this.path, 'write');
      }
      const leafFile = leaves;
      let leafPos = 0;
      const dirs = await buildDirectories(entries, {
        async writeLeaf(bytes) {
          await leafFile.write(bytes, 0, bytes.length, leafPos);
          leafPos += bytes.length;
        },
        async resetLeaves() {
          await leafFile.truncate(0);
          leafPos = 0;
        },
      });
      const metadata = gzip(new TextEncoder().encode(JSON.stringify(opts.metadata)));

      // 4. Header.
      const minZoom = tileIdZoom(ids[order[0]!]!);
      const maxZoom = tileIdZoom(ids[order[n - 1]!]!);
      const [w, s, e, nn] = opts.bounds;
      const center = opts.center ?? {
        lon: (w + e) / 2,
        lat: (s + nn) / 2,
        zoom: Math.round((minZoom + maxZoom) / 2),
      };
      const header: Header = {
        rootDirectoryOffset: HEADER_BYTES,
        rootDirectoryLength: dirs.root.length,
        jsonMetadataOffset: HEADER_BYTES + dirs.root.length,
        jsonMetadataLength: metadata.length,
        leafDirectoryOffset: HEADER_BYTES + dirs.root.length + metadata.length,
        leafDirectoryLength: dirs.leafBytes,
        tileDataOffset: HEADER_BYTES + dirs.root.length + metadata.length + dirs.leafBytes,
        tileDataLength: cursor,
        numAddressedTiles: n,
        numTileEntries: entries.count,
        numTileContents: contentCount,
        clustered: true,
        internalCompression: Compression.Gzip,
        tileCompression: this.options.tileCompression ?? Compression.None,
        tileType: this.options.tileType,
        minZoom,
        maxZoom,
        bounds: opts.bounds,
        center: { ...center, zoom: Math.min(maxZoom, Math.max(minZoom, Math.round(center.zoom))) },
      };

      // 5. Assemble under a temporary name.
      out = await openAtomic(this.path);
      await out.write(serializeHeader(header));
      await out.write(dirs.root);
      await out.write(metadata);
      await copyRange(leafFile, 0, dirs.leafBytes, out);
      let k = 0;
      while (k < copied) {
        throwIfAborted(signal);
        const first = copyOrder[k]!;
        const start = this.contentOffset.get(first);
        let end = start + this.contentLength.get(first);
        k++;
        // Coalesce contents that are also contiguous in the temporary file.
        while (k < copied && end - start < COPY_CHUNK && this.contentOffset.get(copyOrder[k]!) === end) {
          end += this.contentLength.get(copyOrder[k]!);
          k++;
        }
        await copyRange(this.data, start, end - start, out);
      }
      const bytes = out.position;
      await out.commit();
      out = undefined;
      this.state = 'done';
      return {
        path: this.path,
        bytes,
        addressedTiles: n,
        tileEntries: entries.count,
        tileContents: contentCount,
        minZoom,
        maxZoom,
        leafDirectories: dirs.leafCount,
        rootDirectoryBytes: dirs.root.length,
        tileDataBytes: cursor,
      };
    } catch (err) {
      this.state = 'aborted';
      if (out) await out.abort();
      throw err;
    } finally {
      if (leaves) await leaves.close().catch(() => undefined);
      if (leavesPath) await rm(leavesPath, { force: true }).catch(() => undefined);
      await this.closeData();
    }
  }

  /** Drop everything written so far. */
  async abort(): Promise<void> {
    if (this.state === 'done') return;
    this.state = 'aborted';
    this.pending = [];
    await this.closeData();
  }

  private dataClosed = false;
  private async closeData(): Promise<void> {
    if (this.dataClosed) return;
    this.dataClosed = true;
    await this.data.close().catch(() => undefined);
    await rm(this.dataPath, { force: true }).catch(() => undefined);
  }
}

async function copyRange(from: FileHandle, start: number, length: number, to: AtomicFile): Promise<void> {
  let pos = start;
  const end = start + length;
  const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(1, length)));
  while (pos < end) {
    const want = Math.min(buf.length, end - pos);
    const { bytesRead } = await from.read(buf, 0, want, pos);
    if (bytesRead === 0) throw new GeoDinoError('E_INTERNAL', 'temporary tile data ended early');
    await to.write(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

