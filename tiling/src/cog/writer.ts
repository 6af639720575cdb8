/**
 * A streaming Cloud-Optimized GeoTIFF writer.
 *
 * Blocks arrive in row order (`writeBlock(col, row, bands)`, rows never going back; any column
 * order within a row; blocks never written stay sparse and read as nodata). Each block is
 * compressed at once (predictor 2 for integers, 3 for floats, then DEFLATE on libuv's thread
 * pool) and appended to a spill file beside the output.
 *
 * Overviews are built row by row while later blocks arrive, without holding a row of blocks:
 * each block, once it is in memory (as written, or as built), is reduced 2×2 into its quarter of
 * the block above it in the next level, and that quarter (¼ of a block, uncompressed) is written
 * to a slot of the spill file. Once rows 2R and 2R+1 of a level are complete, row R of the next
 * level is built block by block from its ≤ 4 quarters read back (a sparse quarter stays fill;
 * four sparse quarters leave the block sparse), folded in turn into the level above, and
 * compressed like a full-resolution block. Slots read back are reused, so the quarters take a
 * few block rows' worth of disk, not the raster's. In memory: the blocks waiting for compression
 * (≤ 16) and the few overview blocks being built, whatever the raster's width or height, plus an
 * index of 12 bytes per block. The cost over holding rows: writing and reading back each quarter
 * (⅓ of the raw full-resolution data in all, mostly from the page cache).
 *
 * `close()` lays the file out as GDAL's COG driver does and `validate_cloud_optimized_geotiff.py`
 * checks: header, GDAL's "ghost" structural metadata (LAYOUT=IFDS_BEFORE_DATA,
 * BLOCK_ORDER=ROW_MAJOR, BLOCK_LEADER=SIZE_AS_UINT4, BLOCK_TRAILER=LAST_4_BYTES_REPEATED), all
 * IFDs (full resolution first, then overviews by decreasing size), then the tile data from the
 * smallest overview to full resolution, each level row-major. It copies the tiles from the spill
 * file into a temporary sibling of the output, fsyncs and renames; `abort()` or a failure leaves
 * nothing behind. BigTIFF is chosen at close when the file would pass 4 GiB.
 *
 * Overviews: 'average' (mean of the valid pixels of each 2×2 cell, rounded for integers) for
 * continuous data, 'mode' (most frequent valid value; of tied values the one that reached the
 * count first in row order, as gdaladdo) for categorical data, 'nearest' (top-left pixel). Each
 * level is computed from the previous one.
 * Valid means not nodata, not NaN and, when a band is marked 'alpha', opaque (alpha > 0); the
 * alpha band itself takes the cell's maximum.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { GeoDinoError, TaskGroup, openAtomic, fsError, throwIfAborted, silentLogger, silentProgress, type Logger, type Progress } from '@geo-dino/core';
import { parseCrs, type Crs } from '../crs/crs.js';
import { deflateEncodeAsync } from '../codec/deflate.js';
import { applyFloatingPoint, applyHorizontal, LITTLE_ENDIAN_HOST } from '../codec/predictor.js';
import { Semaphore } from '../io/lru.js';
import { allocate, viewAs, BYTES_PER_SAMPLE, isFloat, type DataType } from '../raster/types.js';
import { geoKeysFor } from '../tiff/geokeys-write.js';
import type { GeoTransform } from '../tiff/geokeys.js';
import { formatGdalMetadata, formatNodata, type GdalMetadataItem } from '../tiff/gdal-metadata.js';
import { ModeCounter } from '../raster/mode.js';
import { serializeIfd, ifdSize, tiffHeader, type OutEntry } from './ifd-writer.js';

export type WritableDataType = Exclude<DataType, 'int8'>;
export type OverviewResampling = 'average' | 'mode' | 'nearest';
export type WriterColorInterp = 'gray' | 'red' | 'green' | 'blue' | 'alpha' | 'undefined';

export interface CogWriterOptions {
  width: number;
  height: number;
  /** Number of bands. */
  bands: number;
  dtype: WritableDataType;
  /** Tile size, a multiple of 16 (default 512). */
  blockSize?: number;
  /** Nodata value written to GDAL_NODATA, used to fill sparse/missing pixels and ignored by 'average'/'mode'. */
  nodata?: number | null;
  /** The CRS (a Crs, or `EPSG:n`, PROJ string, WKT). */
  crs: Crs | string;
  /** GDAL geotransform of the full-resolution grid. */
  transform: GeoTransform;
  bandDescriptions?: readonly (string | null)[];
  /** Colour interpretation per band; red/green/blue first on uint8 makes a Photometric RGB file. */
  colorInterp?: readonly WriterColorInterp[];
  /** RGBA (0-255) entries for a single-band uint8 or uint16 categorical raster. */
  colorTable?: readonly (readonly number[])[];
  /** 'average' (default) for continuous data, 'mode' for categorical, 'nearest'. */
  overviewResampling?: OverviewResampling;
  /** Dataset metadata items written to GDAL_METADATA. */
  metadata?: Record<string, string>;
  /** Per-band metadata items. */
  bandMetadata?: readonly Record<string, string>[];
  /** Unit of each band's values (e.g. "m"), written as GDAL's band unit type (`gdalinfo -json`: `"unit"`). */
  bandUnits?: readonly (string | null)[];
  /**
   * Compute exact statistics of every band while writing (valid full-resolution pixels: not
   * nodata, not NaN, not transparent) and store them as GDAL does (STATISTICS_MINIMUM, _MAXIMUM,
   * _MEAN, _STDDEV, _VALID_PERCENT), so QGIS and `gdalinfo` stretch without a scan. Default false.
   */
  statistics?: boolean;
  /** DEFLATE level 1-9 (default 6). */
  deflateLevel?: number;
  /** Overview levels to make: 'auto' (until one block holds the image; default) or a number. */
  overviews?: 'auto' | number;
  /** Force BigTIFF (default: only when the file would pass 4 GiB). */
  bigTiff?: boolean;
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
}

export interface CogWriter {
  readonly path: string;
  readonly blockSize: number;
  readonly blocksAcross: number;
  readonly blocksDown: number;
  /** Full-resolution plus overview sizes. */
  readonly levels: readonly { width: number; height: number }[];
  /**
   * Write one full-resolution block: one array per band of blockSize² samples, row-major (pixels
   * past the right/bottom edge are ignored). Rows must not go back; each block at most once.
   */
  writeBlock(col: number, row: number, bands: readonly ArrayLike<number>[]): Promise<void>;
  /** Finish: overviews, layout, fsync, rename. Returns the final size in bytes. */
  close(): Promise<{ path: string; bytes: number }>;
  /** Stop and remove everything written. */
  abort(): Promise<void>;
}

interface LevelState {
  width: number;
  height: number;
  across: number;
  down: number;
  /** Spill positions per block: [offset, length]; length 0 = sparse. */
  spillOffset: Float64Array;
  spillLength: Uint32Array;
  /**
   * Levels ≥ 1: the spilled quarters of the blocks not yet built, by block index: where each
   * quadrant (top-left, top-right, bottom-left, bottom-right) lies in the spill file, NaN if its
   * source block is sparse. Holds at most a few rows of blocks' worth of numbers.
   */
  quarters: Map<number, Float64Array>;
  /** Quarter writes of this level's completed rows not yet built into the next level (≤ 2 rows). */
  pending: Promise<unknown>[];
}

/** Overview blocks built at once. */
const OVERVIEW_PARALLEL = 4;
/** Overview rows queued behind the writer before `writeBlock` waits for them. */
const MAX_QUEUED_ROWS = 4;

const SAMPLE_FORMAT: Record<WritableDataType, number> = { uint8: 1, uint16: 1, uint32: 1, int16: 2, int32: 2, float32: 3, float64: 3 };

function ghostArea(): Uint8Array {
  const body = 'LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\nBLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n ';
  const head = `GDAL_STRUCTURAL_METADATA_SIZE=${String(body.length).padStart(6, '0')} bytes\n`;
  return new TextEncoder().encode(head + body);
}

function bad(path: string, what: string): GeoDinoError {
  return new GeoDinoError('E_ARGUMENT', `${path}: COG writer: ${what}`, { details: { path } });
}

export async function createCogWriter(path: string, options: CogWriterOptions): Promise<CogWriter> {
  const o = options;
  const B = o.blockSize ?? 512;
  const log = o.log ?? silentLogger();
  const progress = o.progress ?? silentProgress;
  if (!Number.isInteger(o.width) || !Number.isInteger(o.height) || o.width < 1 || o.height < 1 || o.width > 0x7fffffff || o.height > 0x7fffffff) {
    throw bad(path, `invalid size ${o.width}×${o.height}`);
  }
  if (!Number.isInteger(o.bands) || o.bands < 1 || o.bands > 256) throw bad(path, `invalid band count ${o.bands}`);
  if (!Number.isInteger(B) || B < 16 || B % 16 !== 0 || B > 4096) throw bad(path, `block size ${B} must be a multiple of 16 between 16 and 4096`);
  if (!(o.dtype in SAMPLE_FORMAT)) throw bad(path, `unsupported data type ${String(o.dtype)}`);
  if (o.transform.length !== 6 || !o.transform.every(Number.isFinite) || o.transform[1] === 0 || o.transform[5] === 0) {
    throw bad(path, `invalid geotransform ${JSON.stringify(o.transform)}`);
  }
  if (!LITTLE_ENDIAN_HOST) throw new GeoDinoError('E_RUNTIME', 'the COG writer needs a little-endian host');
  const crs = typeof o.crs === 'string' ? parseCrs(o.crs, `${path}: crs`) : o.crs;
  const geoKeys = geoKeysFor(crs);
  const nodata = o.nodata ?? null;
  const resampling = o.overviewResampling ?? 'average';
  if (o.colorTable && (o.bands !== 1 || (o.dtype !== 'uint8' && o.dtype !== 'uint16'))) throw bad(path, 'a colour table needs a single uint8 or uint16 band');
  if (o.colorTable && o.colorTable.length > 2 ** (BYTES_PER_SAMPLE[o.dtype] * 8)) throw bad(path, `a colour table of ${o.colorTable.length} entries does not fit ${o.dtype}`);
  if (o.bandDescriptions && o.bandDescriptions.length > o.bands) throw bad(path, `${o.bandDescriptions.length} band descriptions for ${o.bands} bands`);
  const bps = BYTES_PER_SAMPLE[o.dtype];
  const float = isFloat(o.dtype);
  const level = o.deflateLevel ?? 6;

  // Levels: full resolution, then halves until the image fits one block (or as asked).
  const dims: { width: number; height: number }[] = [{ width: o.width, height: o.height }];
  const maxLevels = o.overviews === undefined || o.overviews === 'auto' ? Infinity : o.overviews;
  while (dims.length - 1 < maxLevels) {
    const last = dims[dims.length - 1]!;
    if (last.width <= B && last.height <= B) break;
    dims.push({ width: Math.ceil(last.width / 2), height: Math.ceil(last.height / 2) });
  }
  const levels: LevelState[] = dims.map((d) => {
    const across = Math.ceil(d.width / B);
    const down = Math.ceil(d.height / B);
    return { ...d, across, down, spillOffset: new Float64Array(across * down), spillLength: new Uint32Array(across * down), quarters: new Map(), pending: [] };
  });
  const fill = nodata ?? 0;
  /** With an alpha band, overviews average only the opaque pixels. */
  const alphaIndex = o.colorInterp ? o.colorInterp.indexOf('alpha') : -1;
  const nb = o.bands;
  const H = B / 2;
  /** A quarter: the 2×2 reduction of one block, band after band, H×H samples each. */
  const quarterBytes = H * H * nb * bps;

  // Tiles are spilled to a temporary sibling (never committed: removed when done), together
  // with the quarters waiting for their overview block, read back through a second handle.
  const spill = await openAtomic(path + '.tiles');
  const spillPath = spill.tmpPath;
  let spillReader: FileHandle;
  try {
    spillReader = await open(spillPath, 'r');
  } catch (err) {
    await spill.abort();
    throw fsError(err, spillPath, 'read');
  }
  let spillPos = 0;
  let spillChain: Promise<void> = Promise.resolve();
  /** Quarter slots of the spill file that were read back and can be written again. */
  const freeSlots: number[] = [];
  const compressSem = new Semaphore(8);
  const inflight = new TaskGroup(16);
  let state: 'open' | 'closing' | 'closed' | 'aborted' = 'open';
  const written = new Uint8Array(levels[0]!.across * levels[0]!.down);
  let currentRow = 0;
  /** Quarter writes of the full-resolution row being written. */
  let rowQuarters: Promise<unknown>[] = [];
  const task = progress.start('writing COG', { total: written.length, unit: 'blocks' });

  /** Overview rows are built one at a time, in this chain, while blocks keep arriving. */
  let pyramid: Promise<void> = Promise.resolve();
  let queuedRows = 0;
  let pyramidFailure: { error: unknown } | null = null;

  /** Running statistics per band (Chan et al.'s merge of per-block mean and M2). */
  const stats = o.statistics ? Array.from({ length: nb }, () => ({ n: 0, mean: 0, m2: 0, min: Infinity, max: -Infinity })) : null;
  const accumulateStats = (col: number, row: number, planes: readonly ArrayLike<number>[]): void => {
    const w = Math.min(B, o.width - col * B);
    const h = Math.min(B, o.height - row * B);
    const alpha = alphaIndex >= 0 ? planes[alphaIndex]! : null;
    for (let b = 0; b < nb; b++) {
      if (b === alphaIndex) continue;
      const p = planes[b]!;
      let n = 0;
      let sum = 0;
      let min = Infinity;
      let max = -Infinity;
      for (let y = 0; y < h; y++) {
        for (let x = 0, i = y * B; x < w; x++, i++) {
          const v = p[i]!;
          if (Number.isNaN(v) || (nodata !== null && v === nodata) || (alpha !== null && alpha[i] === 0)) continue;
          n++;
          sum += v;
          if (v < min) min = v;
          if (v > max) max = v;
        }
      }
      if (n === 0) continue;
      const mean = sum / n;
      let m2 = 0;
      for (let y = 0; y < h; y++) {
        for (let x = 0, i = y * B; x < w; x++, i++) {
          const v = p[i]!;
          if (Number.isNaN(v) || (nodata !== null && v === nodata) || (alpha !== null && alpha[i] === 0)) continue;
          m2 += (v - mean) * (v - mean);
        }
      }
      const st = stats![b]!;
      const total = st.n + n;
      const delta = mean - st.mean;
      st.m2 += m2 + (delta * delta * st.n * n) / total;
      st.mean += (delta * n) / total;
      st.n = total;
      if (min < st.min) st.min = min;
      if (max > st.max) st.max = max;
    }
  };

  /** Interleave planar bands, apply the predictor, deflate, append to the spill file. */
  const encode = (lvIndex: number, bi: number, planes: readonly ArrayLike<number>[]): void => {
    const buf = allocate(o.dtype, B * B * nb);
    if (nb === 1) {
      const p = planes[0]!;
      for (let i = 0; i < B * B; i++) buf[i] = p[i]!;
    } else {
      for (let b = 0; b < nb; b++) {
        const p = planes[b]!;
        for (let i = 0, d = b; i < B * B; i++, d += nb) buf[d] = p[i]!;
      }
    }
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    if (float) applyFloatingPoint(bytes, B, B, nb, bps);
    else applyHorizontal(bytes, B, B, nb, bps);
    const lv = levels[lvIndex]!;
    inflight.add(compressSem.run(async () => {
      const z = await deflateEncodeAsync(bytes, level);
      await (spillChain = spillChain.then(async () => {
        const at = spillPos;
        spillPos += z.length;
        await spill.writeAt(z, at);
        lv.spillOffset[bi] = at;
        lv.spillLength[bi] = z.length;
      }));
    }));
  };

  /**
   * Reduce block (col, row) of level k-1 (planar bands of B×B samples) 2×2 into its quarter of
   * level k's block and spill it; returns the write. Only the block's pixels inside its level
   * count.
   */
  const fold = (k: number, col: number, row: number, planes: readonly ArrayLike<number>[]): Promise<void> => {
    const src = levels[k - 1]!;
    const dst = levels[k]!;
    const srcW = Math.min(B, src.width - col * B);
    const srcH = Math.min(B, src.height - row * B);
    const q = allocate(o.dtype, H * H * nb);
    if (fill !== 0) q.fill(fill);
    const counts = new ModeCounter();
    const alpha = alphaIndex >= 0 ? planes[alphaIndex]! : null;
    for (let b = 0; b < nb; b++) {
      const s = planes[b]!;
      const qb = b * H * H;
      const isAlpha = b === alphaIndex;
      for (let j = 0; j < H; j++) {
        const sy = 2 * j;
        if (sy >= srcH) break;
        for (let i = 0; i < H; i++) {
          const sx = 2 * i;
          if (sx >= srcW) break;
          const di = qb + j * H + i;
          if (resampling === 'nearest') {
            q[di] = s[sy * B + sx]!;
            continue;
          }
          if (isAlpha) {
            // Alpha: opaque if any of the cell's pixels is.
            let m = 0;
            for (let yy = 0; yy < 2 && sy + yy < srcH; yy++) for (let xx = 0; xx < 2 && sx + xx < srcW; xx++) m = Math.max(m, s[(sy + yy) * B + sx + xx]!);
            q[di] = m;
            continue;
          }
          let sum = 0;
          let n = 0;
          if (resampling === 'mode') counts.clear();
          for (let yy = 0; yy < 2 && sy + yy < srcH; yy++) {
            for (let xx = 0; xx < 2 && sx + xx < srcW; xx++) {
              const at = (sy + yy) * B + sx + xx;
              const v = s[at]!;
              if (Number.isNaN(v) || (nodata !== null && v === nodata) || (alpha !== null && alpha[at] === 0)) continue;
              if (resampling === 'mode') counts.add(v);
              else {
                sum += v;
                n++;
              }
            }
          }
          if (resampling === 'mode') q[di] = counts.value(fill);
          else q[di] = n === 0 ? fill : float ? sum / n : Math.floor(sum / n + 0.5);
        }
      }
    }
    // Record the slot now (the block is built only after this row's writes are awaited).
    const bi = (row >> 1) * dst.across + (col >> 1);
    let slots = dst.quarters.get(bi);
    if (!slots) dst.quarters.set(bi, (slots = new Float64Array(4).fill(NaN)));
    let at = freeSlots.pop();
    if (at === undefined) {
      at = spillPos;
      spillPos += quarterBytes;
    }
    slots[(col & 1) + 2 * (row & 1)] = at;
    const done = spill.writeAt(new Uint8Array(q.buffer, q.byteOffset, q.byteLength), at);
    inflight.add(done);
    return done;
  };

  /** Build block (col, row) of level k (≥ 1) from its spilled quarters: fold it upward, encode it. */
  const buildBlock = async (k: number, col: number, row: number, slots: Float64Array, writes: Promise<unknown>[]): Promise<void> => {
    const data = allocate(o.dtype, B * B * nb);
    if (fill !== 0) data.fill(fill);
    const planes = Array.from({ length: nb }, (_, b) => data.subarray(b * B * B, (b + 1) * B * B));
    const qBytes = new Uint8Array(quarterBytes);
    const q = viewAs(o.dtype, qBytes);
    for (let quad = 0; quad < 4; quad++) {
      const at = slots[quad]!;
      if (Number.isNaN(at)) continue;
      await readFully(spillReader, qBytes, 0, at);
      freeSlots.push(at);
      const x0 = (quad & 1) * H;
      const y0 = (quad >> 1) * H;
      for (let b = 0; b < nb; b++) {
        for (let j = 0; j < H; j++) planes[b]!.set(q.subarray(b * H * H + j * H, b * H * H + (j + 1) * H), (y0 + j) * B + x0);
      }
    }
    if (k + 1 < levels.length) writes.push(fold(k + 1, col, row, planes));
    await inflight.room();
    encode(k, row * levels[k]!.across + col, planes);
  };

  /** Build row `row` of level k (≥ 1): its quarters are spilled. Returns the quarter writes for level k+1. */
  const buildRow = async (k: number, row: number): Promise<Promise<unknown>[]> => {
    const lv = levels[k]!;
    const writes: Promise<unknown>[] = [];
    const group = new TaskGroup(OVERVIEW_PARALLEL);
    try {
      for (let col = 0; col < lv.across; col++) {
        const bi = row * lv.across + col;
        const slots = lv.quarters.get(bi);
        if (!slots) continue; // no source block written: stays sparse
        lv.quarters.delete(bi);
        await group.room();
        if (state === 'aborted') return writes;
        throwIfAborted(o.signal);
        group.add(buildBlock(k, col, row, slots, writes));
      }
      await group.drain();
    } finally {
      await group.settle();
    }
    return writes;
  };

  /**
   * Row r of level k is complete (`writes`: its quarter writes for level k+1). Once it completes a
   * pair of rows (or is the last), queue the build of level k+1's row from them.
   */
  const rowComplete = (k: number, r: number, writes: Promise<unknown>[]): void => {
    const lv = levels[k]!;
    if (k + 1 >= levels.length) return;
    lv.pending.push(Promise.allSettled(writes));
    if (r % 2 === 0 && r !== lv.down - 1) return;
    const ready = lv.pending;
    lv.pending = [];
    queuedRows++;
    pyramid = pyramid.then(async () => {
      try {
        if (pyramidFailure || state === 'aborted') return;
        await Promise.all(ready);
        inflight.check();
        rowComplete(k + 1, r >> 1, await buildRow(k + 1, r >> 1));
      } catch (err) {
        pyramidFailure ??= { error: err };
      } finally {
        queuedRows--;
      }
    });
  };

  /** Wait until at most `n` overview rows are queued. */
  const pyramidBelow = async (n: number): Promise<void> => {
    while (queuedRows > n) await pyramid;
  };

  const readFully = async (handle: FileHandle, buf: Uint8Array, at: number, position: number): Promise<void> => {
    let got = 0;
    const n = buf.length - at;
    while (got < n) {
      const { bytesRead } = await handle.read(buf, at + got, n - got, position + got).catch((err: unknown) => {
        throw fsError(err, spillPath, 'read');
      });
      if (bytesRead === 0) throw new GeoDinoError('E_WRITE', `${path}: spill file ${spillPath} is shorter than expected`);
      got += bytesRead;
    }
  };

  const fail = (err: unknown): never => {
    throw err instanceof GeoDinoError ? err : fsError(err, path, 'write');
  };
  /** Throw the first compression/spill/overview failure, as a write error naming the file. */
  const checkTasks = (): void => {
    try {
      if (pyramidFailure) throw pyramidFailure.error;
      inflight.check();
    } catch (err) {
      fail(err);
    }
  };

  /** Stop the overview chain, let running tasks finish, remove the spill file. */
  const cleanup = async (): Promise<void> => {
    await pyramidBelow(0);
    await inflight.settle();
    await spillChain.catch(() => undefined);
    await spillReader.close().catch(() => undefined);
    await spill.abort();
  };

  const writer: CogWriter = {
    path,
    blockSize: B,
    blocksAcross: levels[0]!.across,
    blocksDown: levels[0]!.down,
    levels: dims,
    async writeBlock(col, row, bands) {
      if (state !== 'open') throw new GeoDinoError('E_INTERNAL', `${path}: writeBlock after ${state}`);
      checkTasks();
      throwIfAborted(o.signal);
      const l0 = levels[0]!;
      if (!Number.isInteger(col) || !Number.isInteger(row) || col < 0 || row < 0 || col >= l0.across || row >= l0.down) {
        throw bad(path, `block (${col}, ${row}) is outside the ${l0.across}×${l0.down} block grid`);
      }
      if (row < currentRow) throw bad(path, `block (${col}, ${row}) arrives after row ${currentRow} was started; rows must be written in order`);
      if (written[row * l0.across + col]) throw bad(path, `block (${col}, ${row}) written twice`);
      if (bands.length !== o.bands || bands.some((b) => b.length !== B * B)) {
        throw bad(path, `block (${col}, ${row}) must be ${o.bands} arrays of ${B}×${B} samples (got ${bands.length} of ${bands.map((b) => b.length).join(', ')})`);
      }
      if (currentRow < row) {
        while (currentRow < row) {
          rowComplete(0, currentRow++, rowQuarters);
          rowQuarters = [];
        }
        // Back-pressure: the overviews must not fall far behind.
        await pyramidBelow(MAX_QUEUED_ROWS);
        if (state !== 'open') throw new GeoDinoError('E_INTERNAL', `${path}: writeBlock after ${state}`);
        checkTasks();
        throwIfAborted(o.signal);
      }
      written[row * l0.across + col] = 1;
      if (stats) accumulateStats(col, row, bands);
      encode(0, row * l0.across + col, bands);
      if (levels.length > 1) rowQuarters.push(fold(1, col, row, bands));
      task.tick();
      // Back-pressure: keep the number of blocks being compressed bounded.
      await inflight.room().catch(fail);
    },
    async close() {
      if (state !== 'open') throw new GeoDinoError('E_INTERNAL', `${path}: close after ${state}`);
      state = 'closing';
      try {
        const l0 = levels[0]!;
        while (currentRow < l0.down) {
          rowComplete(0, currentRow++, rowQuarters);
          rowQuarters = [];
        }
        await pyramidBelow(0);
        await inflight.settle();
        await spillChain;
        checkTasks();
        throwIfAborted(o.signal);
        const bytes = await assemble();
        task.finish();
        state = 'closed';
        return { path, bytes };
      } catch (err) {
        state = 'aborted';
        await cleanup();
        throw err;
      }
    },
    async abort() {
      if (state === 'closed' || state === 'aborted') return;
      state = 'aborted';
      await cleanup();
    },
  };

  /** Lay out and write the final file from the spill file. */
  const assemble = async (): Promise<number> => {
    const ghost = ghostArea();
    const dataBytes = levels.reduce((s, lv) => s + lv.spillLength.reduce((a, n) => a + (n ? n + 8 : 0), 0), 0);
    const bigTiff = o.bigTiff === true || dataBytes + 1024 * 1024 + levels.reduce((s, lv) => s + lv.spillLength.length * 16, 0) > 0xfff00000;
    const entriesFor = (k: number, offsets: ArrayLike<number>, counts: ArrayLike<number>): OutEntry[] => {
      const lv = levels[k]!;
      const rgb = o.dtype === 'uint8' && o.bands >= 3 && o.colorInterp?.[0] === 'red' && o.colorInterp[1] === 'green' && o.colorInterp[2] === 'blue';
      const photometric = o.colorTable ? 3 : rgb ? 2 : 1;
      const base = photometric === 2 ? 3 : 1;
      const off: OutEntry['type'] = bigTiff ? 16 : 4;
      const e: OutEntry[] = [
        { tag: 254, type: 4, values: [k === 0 ? 0 : 1] },
        { tag: 256, type: 4, values: [lv.width] },
        { tag: 257, type: 4, values: [lv.height] },
        { tag: 258, type: 3, values: new Array<number>(o.bands).fill(bps * 8) },
        { tag: 259, type: 3, values: [8] },
        { tag: 262, type: 3, values: [photometric] },
        { tag: 277, type: 3, values: [o.bands] },
        { tag: 284, type: 3, values: [1] },
        { tag: 317, type: 3, values: [float ? 3 : 2] },
        { tag: 322, type: 3, values: [B] },
        { tag: 323, type: 3, values: [B] },
        { tag: 324, type: off, values: offsets },
        { tag: 325, type: off, values: counts },
        { tag: 339, type: 3, values: new Array<number>(o.bands).fill(SAMPLE_FORMAT[o.dtype]) },
      ];
      if (o.bands > base) e.push({ tag: 338, type: 3, values: Array.from({ length: o.bands - base }, (_, i) => (o.colorInterp?.[base + i] === 'alpha' ? 2 : 0)) });
      if (o.colorTable) {
        const n = 2 ** (bps * 8);
        const cm = new Array<number>(3 * n).fill(0);
        o.colorTable.forEach((c, i) => {
          cm[i] = (c[0] ?? 0) * 257;
          cm[n + i] = (c[1] ?? 0) * 257;
          cm[2 * n + i] = (c[2] ?? 0) * 257;
        });
        e.push({ tag: 320, type: 3, values: cm });
      }
      if (k === 0) {
        const gt = o.transform;
        if (gt[2] === 0 && gt[4] === 0) {
          e.push({ tag: 33550, type: 12, values: [gt[1], -gt[5], 0] });
          e.push({ tag: 33922, type: 12, values: [0, 0, 0, gt[0], gt[3], 0] });
        } else {
          e.push({ tag: 34264, type: 12, values: [gt[1], gt[2], 0, gt[0], gt[4], gt[5], 0, gt[3], 0, 0, 0, 0, 0, 0, 0, 1] });
        }
        e.push({ tag: 34735, type: 3, values: geoKeys.directory });
        if (geoKeys.doubles.length) e.push({ tag: 34736, type: 12, values: geoKeys.doubles });
        if (geoKeys.ascii.length) e.push({ tag: 34737, type: 2, values: geoKeys.ascii });
        const items: GdalMetadataItem[] = [];
        for (const [name, value] of Object.entries(o.metadata ?? {})) items.push({ name, value, sample: null, role: null, domain: null });
        o.bandDescriptions?.forEach((d, i) => {
          if (d) items.push({ name: 'DESCRIPTION', value: d, sample: i, role: 'description', domain: null });
        });
        o.bandMetadata?.forEach((md, i) => {
          for (const [name, value] of Object.entries(md)) items.push({ name, value, sample: i, role: null, domain: null });
        });
        o.bandUnits?.forEach((u, i) => {
          if (u) items.push({ name: 'UNITTYPE', value: u, sample: i, role: 'unittype', domain: null });
        });
        stats?.forEach((st, i) => {
          if (st.n === 0) return;
          items.push({ name: 'STATISTICS_MINIMUM', value: String(st.min), sample: i, role: null, domain: null });
          items.push({ name: 'STATISTICS_MAXIMUM', value: String(st.max), sample: i, role: null, domain: null });
          items.push({ name: 'STATISTICS_MEAN', value: String(st.mean), sample: i, role: null, domain: null });
          items.push({ name: 'STATISTICS_STDDEV', value: String(Math.sqrt(st.m2 / st.n)), sample: i, role: null, domain: null });
          items.push({ name: 'STATISTICS_VALID_PERCENT', value: String((100 * st.n) / (o.width * o.height)), sample: i, role: null, domain: null });
        });
        if (levels.length > 1) items.push({ name: 'OVERVIEW_RESAMPLING', value: resampling.toUpperCase(), sample: null, role: null, domain: null });
        if (o.colorInterp && photometric === 1) {
          o.colorInterp.forEach((c, i) => {
            if (c !== 'undefined' && !(i === 0 && c === 'gray')) {
              items.push({ name: 'COLORINTERP', value: c[0]!.toUpperCase() + c.slice(1), sample: i, role: 'colorinterp', domain: null });
            }
          });
        }
        if (items.length) e.push({ tag: 42112, type: 2, values: formatGdalMetadata(items) });
      } else {
        // How the overview was made, where GDAL notes it (the RESAMPLING item of the overview).
        e.push({ tag: 42112, type: 2, values: formatGdalMetadata([{ name: 'RESAMPLING', value: resampling.toUpperCase(), sample: null, role: null, domain: 'IMAGE_STRUCTURE' }]) });
      }
      // Like GDAL, every IFD carries the nodata value (GDAL reads overview nodata from its own IFD).
      if (nodata !== null) e.push({ tag: 42113, type: 2, values: formatNodata(nodata) });
      return e;
    };
    // Sizes first (offsets do not change sizes), then offsets.
    const headerSize = bigTiff ? 16 : 8;
    const firstIfd = headerSize + ghost.length + ((headerSize + ghost.length) % 2);
    const blockOffsets = levels.map((lv) => new Float64Array(lv.spillLength.length));
    const sizes = levels.map((lv, k) => ifdSize(entriesFor(k, blockOffsets[k]!, lv.spillLength), bigTiff));
    const ifdOffsets: number[] = [];
    let pos = firstIfd;
    for (const s of sizes) {
      ifdOffsets.push(pos);
      pos += s;
    }
    // Data: smallest overview first, full resolution last; each block = leader(4) + data + trailer(4).
    for (let k = levels.length - 1; k >= 0; k--) {
      const lv = levels[k]!;
      for (let i = 0; i < lv.spillLength.length; i++) {
        const n = lv.spillLength[i]!;
        if (!n) continue;
        blockOffsets[k]![i] = pos + 4;
        pos += n + 8;
      }
    }
    const total = pos;
    if (!bigTiff && total > 0xffffffff) throw new GeoDinoError('E_INTERNAL', `${path}: classic TIFF chosen for a ${total}-byte file`);
    const out = await openAtomic(path);
    try {
      await out.write(tiffHeader(firstIfd, bigTiff));
      await out.write(ghost);
      if (out.position < firstIfd) await out.write(new Uint8Array(firstIfd - out.position));
      for (let k = 0; k < levels.length; k++) {
        const lv = levels[k]!;
        const ifd = serializeIfd(entriesFor(k, blockOffsets[k]!, lv.spillLength), ifdOffsets[k]!, k + 1 < levels.length ? ifdOffsets[k + 1]! : 0, bigTiff);
        await out.write(ifd);
      }
      // Copy blocks from the spill file, batching reads into ~4 MiB chunks.
      const chunk: Uint8Array[] = [];
      let chunkBytes = 0;
      const flush = async (): Promise<void> => {
        if (!chunkBytes) return;
        const buf = new Uint8Array(chunkBytes);
        let p = 0;
        for (const c of chunk) {
          buf.set(c, p);
          p += c.length;
        }
        chunk.length = 0;
        chunkBytes = 0;
        await out.write(buf);
      };
      const copyTask = progress.start('assembling COG', { total: levels.reduce((s, lv) => s + lv.spillLength.length, 0), unit: 'blocks' });
      for (let k = levels.length - 1; k >= 0; k--) {
        const lv = levels[k]!;
        for (let i = 0; i < lv.spillLength.length; i++) {
          throwIfAborted(o.signal);
          const n = lv.spillLength[i]!;
          copyTask.tick();
          if (!n) continue;
          const data = new Uint8Array(n + 8);
          new DataView(data.buffer).setUint32(0, n, true);
          await readFully(spillReader, data.subarray(0, n + 4), 4, lv.spillOffset[i]!);
          data.copyWithin(n + 4, n, n + 4);
          chunk.push(data);
          chunkBytes += data.length;
          if (chunkBytes >= 4 * 1024 * 1024) await flush();
        }
      }
      await flush();
      copyTask.finish();
      if (out.position !== total) throw new GeoDinoError('E_INTERNAL', `${path}: wrote ${out.position} bytes, laid out ${total}`);
      await out.commit();
    } catch (err) {
      await out.abort();
      throw err;
    } finally {
      await cleanup();
    }
    log.debug({ path, bytes: total, levels: levels.length, bigTiff }, 'COG written');
    return total;
  };

  return writer;
}
