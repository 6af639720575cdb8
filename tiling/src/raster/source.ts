/**
 * `openRaster`: a guarded GeoTIFF / COG reader for local files and http(s) URLs.
 *
 * The TIFF structure is parsed by geo-dino's own reader (`tiff/ifd.ts`), not geotiff.js, so that
 * every hostile-file guard is in one place: IFD loops, tag sizes, offsets past the end of the
 * file, decoded block sizes before inflating, and a cap on each window read. Blocks are decoded
 * in worker threads (`codec/pool.ts`) and kept in a shared LRU cache with a byte budget, so
 * overlapping tiles reuse decoded blocks and memory stays flat.
 */
import { GeoDinoError, silentLogger, throwIfAborted, type Logger } from '@geo-dino/core';
import { openByteSource, checkRange, type ByteSource, type OpenByteSourceOptions } from '../io/byte-source.js';
import type { HttpOptions } from '../io/http-source.js';
import { LruCache } from '../io/lru.js';
import { badRaster, limitError, unsupportedRaster, fmtBytes, MiB } from '../errors.js';
import { DEFAULT_TIFF_LIMITS, readTiffStructure, tagNumber, tagNumbers, tagString, type Ifd, type TiffLimits } from '../tiff/ifd.js';
import { Compression, COMPRESSION_NAMES, Photometric, PHOTOMETRIC_NAMES, Tag } from '../tiff/tags.js';
import { crsFromGeoKeys, geoTransformOf, parseGeoKeys } from '../tiff/geokeys.js';
import { parseGdalMetadata, parseNodata } from '../tiff/gdal-metadata.js';
import { parseCrs, type Crs } from '../crs/crs.js';
import { rowBytesOf, type BlockTask } from '../codec/decode.js';
import { sharedDecoderPool, type BlockDecoder } from '../codec/pool.js';
import {
  allocate,
  BYTES_PER_SAMPLE,
  dtypeOf,
  isFloat,
  viewAs,
  type BandInfo,
  type ColorInterp,
  type DataType,
  type LevelInfo,
  type PixelWindow,
  type RasterData,
  type RasterInfo,
  type TypedArray,
} from './types.js';

export interface RasterLimits extends TiffLimits {
  /** Largest decoded block (tile or strip), all samples (default 256 MiB). */
  maxBlockBytes: number;
  /** Largest window one read may return, all bands (default 1 GiB). */
  maxReadBytes: number;
}

export const DEFAULT_RASTER_LIMITS: RasterLimits = { ...DEFAULT_TIFF_LIMITS, maxBlockBytes: 256 * MiB, maxReadBytes: 1024 * MiB };

/** Decoded blocks shared by every open raster, keyed by raster and block. */
export type BlockCache = LruCache<string, Uint8Array>;

/**
 * A decoded-block cache of `bytes`. A block larger than that (a big strip: a single-strip file
 * decodes to one block of the whole image) is kept as the only entry: it is decoded once, not once
 * per window read from it, and the cache then holds at most that one block (≤ maxBlockBytes).
 */
export function createBlockCache(bytes = 256 * MiB): BlockCache {
  return new LruCache<string, Uint8Array>(bytes, 'alone');
}

let sharedCache: BlockCache | null = null;
/** The process-wide decoded-block cache (256 MiB). */
export function sharedBlockCache(): BlockCache {
  if (!sharedCache) sharedCache = createBlockCache();
  return sharedCache;
}

export interface OpenRasterOptions {
  log?: Logger;
  signal?: AbortSignal;
  limits?: Partial<RasterLimits>;
  http?: HttpOptions;
  /** Decode blocks with this decoder (default: the shared worker pool; `inlineDecoder` for the calling thread). */
  decoder?: BlockDecoder;
  /** Decoded-block cache (default: the shared 256 MiB cache). */
  cache?: BlockCache;
  /** Use this CRS instead of the file's (for files without one, or with one geo-dino cannot transform). */
  crs?: string | Crs;
  /** An already open byte source (tests, custom transports). */
  bytes?: ByteSource;
}

export interface ReadOptions {
  /** 0 = full resolution (default); 1.. = overviews (see `info.levels`). */
  level?: number;
  /** 0-based bands to read (default: all). */
  bands?: readonly number[];
  signal?: AbortSignal;
}

export interface RasterSource {
  readonly info: RasterInfo;
  /** Path or redacted URL, for messages. */
  readonly name: string;
  /**
   * Read a window of a level. The window may extend past the raster: pixels outside are filled
   * with the nodata value (or 0) and marked invalid.
   */
  read(window: PixelWindow, options?: ReadOptions): Promise<RasterData>;
  /** Counters, for tests and benchmarks. */
  readonly stats: { blocksDecoded: number; bytesRead: number };
  close(): Promise<void>;
}

interface Level {
  ifd: Ifd;
  width: number;
  height: number;
  blockWidth: number;
  blockHeight: number;
  across: number;
  down: number;
  tiled: boolean;
  offsets: number[];
  counts: number[];
  compression: number;
  predictor: number;
  photometric: number;
  jpegTables: Uint8Array | null;
  /** Samples stored per pixel in a block (1 when planar-separate). */
  blockSamples: number;
  planes: number;
  bits: number;
  sampleFormat: number;
}

let nextUid = 1;

/** The part of block (bc, br) inside the window [x0, x1) × [y0, y1), in level pixels. */
function clipBlock(bc: number, br: number, lv: Pick<Level, 'blockWidth' | 'blockHeight'>, x0: number, y0: number, x1: number, y1: number) {
  const bx0 = bc * lv.blockWidth;
  const by0 = br * lv.blockHeight;
  return { bx0, by0, cx0: Math.max(x0, bx0), cx1: Math.min(x1, bx0 + lv.blockWidth), cy0: Math.max(y0, by0), cy1: Math.min(y1, by0 + lv.blockHeight) };
}

function levelOf(name: string, ifd: Ifd, what: string, limits: RasterLimits, main: boolean): Level {
  const width = tagNumber(ifd, Tag.ImageWidth);
  const height = tagNumber(ifd, Tag.ImageLength);
  if (!width || !height || width < 1 || height < 1 || width > 0x7fffffff || height > 0x7fffffff) {
    throw badRaster(name, `${what}: invalid image size ${width}×${height}`);
  }
  const spp = tagNumber(ifd, Tag.SamplesPerPixel) ?? 1;
  if (spp < 1 || spp > 4096) throw badRaster(name, `${what}: invalid SamplesPerPixel ${spp}`);
  const bitsArr = tagNumbers(ifd, Tag.BitsPerSample) ?? [1];
  const bits = bitsArr[0]!;
  if (bitsArr.some((b) => b !== bits)) throw unsupportedRaster(name, `${what}: bands of different bit depths (${bitsArr.join(', ')}) are not supported`);
  const sampleFormat = tagNumber(ifd, Tag.SampleFormat) ?? 1;
  const planar = tagNumber(ifd, Tag.PlanarConfiguration) ?? 1;
  const compression = tagNumber(ifd, Tag.Compression) ?? 1;
  const photometric = tagNumber(ifd, Tag.Photometric) ?? (spp >= 3 ? Photometric.Rgb : Photometric.MinIsBlack);
  const predictor = tagNumber(ifd, Tag.Predictor) ?? 1;
  if (!(compression in COMPRESSION_NAMES) || [2, 3, 4, 6, 34661, 34887, 34925, 50001, 50002].includes(compression)) {
    throw unsupportedRaster(name, `${what}: compression ${COMPRESSION_NAMES[compression] ?? compression} is not supported (geo-dino reads none, deflate, lzw, zstd, jpeg, packbits)`, {
      compression,
    });
  }
  if (photometric === Photometric.YCbCr && compression !== Compression.Jpeg) {
    throw unsupportedRaster(name, `${what}: YCbCr without JPEG compression is not supported`);
  }
  if (main && bits !== 8 && bits !== 16 && bits !== 32 && bits !== 64) {
    throw unsupportedRaster(name, `${what}: ${bits}-bit samples are not supported (8, 16, 32 and 64 are)`);
  }
  const tw = tagNumber(ifd, Tag.TileWidth);
  const th = tagNumber(ifd, Tag.TileLength);
  const tiled = tw !== undefined || th !== undefined;
  let blockWidth: number;
  let blockHeight: number;
  let offsets: number[] | undefined;
  let counts: number[] | undefined;
  if (tiled) {
    if (!tw || !th || tw < 1 || th < 1 || tw > 65536 || th > 65536) throw badRaster(name, `${what}: invalid tile size ${tw}×${th}`);
    blockWidth = tw;
    blockHeight = th;
    offsets = tagNumbers(ifd, Tag.TileOffsets);
    counts = tagNumbers(ifd, Tag.TileByteCounts);
  } else {
    blockWidth = width;
    const rps = tagNumber(ifd, Tag.RowsPerStrip);
    blockHeight = rps === undefined || rps === 0 || rps > height ? height : rps;
    offsets = tagNumbers(ifd, Tag.StripOffsets);
    counts = tagNumbers(ifd, Tag.StripByteCounts);
  }
  const blockSamples = planar === 2 ? 1 : spp;
  const planes = planar === 2 ? spp : 1;
  const blockBytes = rowBytesOf(blockWidth, blockSamples, bits) * blockHeight;
  if (blockBytes > limits.maxBlockBytes) {
    throw limitError(
      name,
      `${what}: one ${tiled ? 'tile' : 'strip'} of ${blockWidth}×${blockHeight}×${blockSamples} decodes to ${fmtBytes(blockBytes)}, above the ${fmtBytes(limits.maxBlockBytes)} limit (maxBlockBytes)`,
      { blockBytes },
    );
  }
  const across = Math.ceil(width / blockWidth);
  const down = Math.ceil(height / blockHeight);
  const need = across * down * planes;
  if (!offsets || !counts) throw badRaster(name, `${what}: no ${tiled ? 'TileOffsets/TileByteCounts' : 'StripOffsets/StripByteCounts'}`);
  if (offsets.length < need || counts.length < need) {
    throw badRaster(name, `${what}: ${Math.min(offsets.length, counts.length)} block offsets for ${need} blocks (corrupt directory)`);
  }
  const tables = ifd.tags.get(Tag.JPEGTables)?.bytes ?? null;
  return {
    ifd,
    width,
    height,
    blockWidth,
    blockHeight,
    across,
    down,
    tiled,
    offsets,
    counts,
    compression,
    predictor,
    photometric,
    jpegTables: compression === Compression.Jpeg ? tables : null,
    blockSamples: photometric === Photometric.YCbCr ? 3 : blockSamples,
    planes,
    bits,
    sampleFormat,
  };
}

const INTERP_NAMES: Record<string, ColorInterp> = {
  gray: 'gray',
  grey: 'gray',
  palette: 'palette',
  red: 'red',
  green: 'green',
  blue: 'blue',
  alpha: 'alpha',
  undefined: 'undefined',
  nir: 'nir',
};

class TiffRaster implements RasterSource {
  readonly stats = { blocksDecoded: 0, bytesRead: 0 };
  private readonly uid = nextUid++;
  private readonly inflight = new Map<string, Promise<Uint8Array | null>>();
  private closed = false;

  constructor(
    readonly name: string,
    readonly info: RasterInfo,
    private readonly bytes: ByteSource,
    private readonly levels: Level[],
    private readonly masks: (Level | null)[],
    private readonly dtype: DataType,
    private readonly littleEndian: boolean,
    private readonly limits: RasterLimits,
    private readonly decoder: BlockDecoder,
    private readonly cache: BlockCache,
  ) {}

  private blockWhat(kind: string, level: number, plane: number, bi: number, lv: Level): string {
    const col = bi % lv.across;
    const row = Math.floor(bi / lv.across);
    return `${kind === 'img' ? 'image' : 'mask'} ${lv.tiled ? 'tile' : 'strip'} (${col}, ${row})${lv.planes > 1 ? ` of band ${plane + 1}` : ''} at level ${level}`;
  }

  /** Decoded bytes of a block, or null for a sparse block (offset and size 0). */
  private async loadBlocks(kind: 'img' | 'mask', level: number, lv: Level, wanted: { plane: number; bi: number }[], signal?: AbortSignal): Promise<(Uint8Array | null)[]> {
    const keys = wanted.map((w) => `${this.uid}:${kind}:${level}:${w.plane}:${w.bi}`);
    const result: (Uint8Array | null | Promise<Uint8Array | null>)[] = new Array(wanted.length);
    const missing: number[] = [];
    keys.forEach((k, i) => {
      const hit = this.cache.get(k);
      if (hit) result[i] = hit;
      else {
        const p = this.inflight.get(k);
        if (p) result[i] = p;
        else missing.push(i);
      }
    });
    if (missing.length) {
      const ranges = missing.map((i) => {
        const w = wanted[i]!;
        const idx = w.plane * lv.across * lv.down + w.bi;
        return { offset: lv.offsets[idx]!, length: lv.counts[idx]!, i, w };
      });
      for (const r of ranges) {
        if (r.length > 0) checkRange(this.name, this.bytes.size, r.offset, r.length, this.blockWhat(kind, level, r.w.plane, r.w.bi, lv));
        if (r.length > this.limits.maxBlockBytes) {
          throw limitError(this.name, `${this.blockWhat(kind, level, r.w.plane, r.w.bi, lv)} is ${fmtBytes(r.length)} compressed, above the ${fmtBytes(this.limits.maxBlockBytes)} limit (maxBlockBytes)`);
        }
      }
      const fetchList = ranges.filter((r) => !(r.offset === 0 && r.length === 0) && r.length > 0);
      const batch = (async () => {
        const raw = await this.bytes.readMany(
          fetchList.map((r) => ({ offset: r.offset, length: r.length })),
          `${kind === 'mask' ? 'mask' : 'image'} blocks at level ${level}`,
          signal,
        );
        const map = new Map<number, Uint8Array>();
        fetchList.forEach((r, j) => map.set(r.i, raw[j]!));
        return map;
      })();
      for (const r of ranges) {
        const key = keys[r.i]!;
        const p = (async (): Promise<Uint8Array | null> => {
          if (r.length === 0) return null; // sparse block
          const data = (await batch).get(r.i)!;
          this.stats.bytesRead += data.length;
          const rows = lv.tiled ? lv.blockHeight : Math.min(lv.blockHeight, lv.height - Math.floor(r.w.bi / lv.across) * lv.blockHeight);
          const task: BlockTask = {
            name: this.name,
            what: this.blockWhat(kind, level, r.w.plane, r.w.bi, lv),
            compression: lv.compression,
            predictor: lv.predictor,
            photometric: lv.photometric,
            width: lv.blockWidth,
            rows,
            nominalRows: lv.blockHeight,
            samples: lv.blockSamples,
            bitsPerSample: lv.bits,
            sampleFormat: lv.sampleFormat,
            littleEndian: this.littleEndian,
            jpegTables: lv.jpegTables,
            data,
            layout: kind === 'mask' ? 'bits' : lv.blockSamples > 1 ? 'planar' : 'as-is',
          };
          const out = await this.decoder(task);
          this.stats.blocksDecoded++;
          this.cache.set(key, out, out.byteLength);
          return out;
        })();
        p.catch(() => undefined).finally(() => this.inflight.delete(key));
        this.inflight.set(key, p);
        result[r.i] = p;
      }
    }
    return Promise.all(result);
  }

  async read(window: PixelWindow, options: ReadOptions = {}): Promise<RasterData> {
    if (this.closed) throw new GeoDinoError('E_INTERNAL', `${this.name}: read after close`);
    throwIfAborted(options.signal);
    const level = options.level ?? 0;
    const lv = this.levels[level];
    if (!lv) throw new GeoDinoError('E_ARGUMENT', `${this.name}: no level ${level} (the file has ${this.levels.length})`);
    const { x, y, width, height } = window;
    if (![x, y, width, height].every(Number.isInteger) || width < 1 || height < 1) {
      throw new GeoDinoError('E_ARGUMENT', `${this.name}: invalid window ${JSON.stringify(window)}`);
    }
    const bands = options.bands ?? this.info.bands.map((b) => b.index);
    for (const b of bands) {
      if (!Number.isInteger(b) || b < 0 || b >= this.info.bandCount) throw new GeoDinoError('E_ARGUMENT', `${this.name}: no band ${b + 1} (the file has ${this.info.bandCount})`);
    }
    const bps = BYTES_PER_SAMPLE[this.dtype];
    const bytes = width * height * (bands.length * bps + 1);
    if (bytes > this.limits.maxReadBytes) {
      throw limitError(this.name, `a ${width}×${height} read of ${bands.length} bands needs ${fmtBytes(bytes)}, above the ${fmtBytes(this.limits.maxReadBytes)} limit (maxReadBytes)`);
    }
    const n = width * height;
    const fill = this.info.nodata ?? 0;
    const out = bands.map(() => {
      const a = allocate(this.dtype, n);
      if (fill !== 0) a.fill(fill);
      return a;
    });
    const valid = new Uint8Array(n);
    // Clamp to the level.
    const x0 = Math.max(0, x);
    const y0 = Math.max(0, y);
    const x1 = Math.min(lv.width, x + width);
    const y1 = Math.min(lv.height, y + height);
    if (x1 <= x0 || y1 <= y0) return { width, height, dtype: this.dtype, bands: out, valid };

    const bc0 = Math.floor(x0 / lv.blockWidth);
    const bc1 = Math.floor((x1 - 1) / lv.blockWidth);
    const br0 = Math.floor(y0 / lv.blockHeight);
    const br1 = Math.floor((y1 - 1) / lv.blockHeight);
    const planesNeeded = lv.planes > 1 ? [...new Set(bands)] : [0];
    const wanted: { plane: number; bi: number }[] = [];
    for (const plane of planesNeeded) for (let br = br0; br <= br1; br++) for (let bc = bc0; bc <= bc1; bc++) wanted.push({ plane, bi: br * lv.across + bc });
    const blocks = await this.loadBlocks('img', level, lv, wanted, options.signal);
    throwIfAborted(options.signal);

    // Pixels covered by a non-sparse block; not needed when every block is there and the window
    // lies inside the level (the common case: skipping it saves a pass over the window).
    const whole = x0 === x && y0 === y && x1 === x + width && y1 === y + height && blocks.every((b) => b !== null);
    const written = whole ? null : new Uint8Array(n);
    let k = 0;
    for (const plane of planesNeeded) {
      for (let br = br0; br <= br1; br++) {
        for (let bc = bc0; bc <= bc1; bc++) {
          const block = blocks[k++];
          if (!block) continue;
          const view = viewAs(this.dtype, block);
          const { bx0, by0, cx0, cx1, cy0, cy1 } = clipBlock(bc, br, lv, x0, y0, x1, y1);
          // Blocks are planar (see BlockTask.layout): sample s of a block is plane s.
          const rows = lv.tiled ? lv.blockHeight : Math.min(lv.blockHeight, lv.height - by0);
          const planeLen = lv.blockWidth * rows;
          const span = cx1 - cx0;
          for (let bi = 0; bi < bands.length; bi++) {
            const band = bands[bi]!;
            if (lv.planes > 1 && band !== plane) continue;
            const sample = lv.planes > 1 ? 0 : band;
            const dst = out[bi]!;
            const src = view.subarray(sample * planeLen, (sample + 1) * planeLen);
            for (let yy = cy0; yy < cy1; yy++) {
              const s0 = (yy - by0) * lv.blockWidth + (cx0 - bx0);
              dst.set(src.subarray(s0, s0 + span) as never, (yy - y) * width + (cx0 - x));
            }
          }
          if (written) for (let yy = cy0; yy < cy1; yy++) written.fill(1, (yy - y) * width + (cx0 - x), (yy - y) * width + (cx1 - x));
        }
      }
    }
    await this.computeValidity(level, window, bands, out, written, valid, options.signal);
    return { width, height, dtype: this.dtype, bands: out, valid };
  }

  private async computeValidity(
    level: number,
    window: PixelWindow,
    bands: readonly number[],
    data: TypedArray[],
    /** Pixels covered by a non-sparse block; null when every pixel of the window is. */
    written: Uint8Array | null,
    valid: Uint8Array,
    signal?: AbortSignal,
  ): Promise<void> {
    const n = window.width * window.height;
    const info = this.info;
    const mlv = info.mask === 'internal' ? this.masks[level] : undefined;
    if (mlv) {
      await this.readMaskInto(level, mlv, window, valid, signal);
      if (written) for (let i = 0; i < n; i++) valid[i] = valid[i]! & written[i]!;
    } else {
      // The pixels present (also what a level without its own internal mask falls back to).
      if (written) valid.set(written);
      else valid.fill(1);
      if (info.mask === 'alpha' && info.alphaBand !== null) {
        let alpha: TypedArray;
        const ai = bands.indexOf(info.alphaBand);
        if (ai >= 0) alpha = data[ai]!;
        else alpha = (await this.read(window, { level, bands: [info.alphaBand], ...(signal ? { signal } : {}) })).bands[0]!;
        for (let i = 0; i < n; i++) if (!(alpha[i]! > 0)) valid[i] = 0;
      }
    }
    // Nodata: a pixel is invalid when every band read equals nodata (GDAL's unified nodata).
    const nodata = info.nodata;
    const float = isFloat(this.dtype);
    if ((nodata !== null && info.mask === 'nodata') || float) {
      const nanNodata = nodata !== null && Number.isNaN(nodata);
      for (let i = 0; i < n; i++) {
        if (!valid[i]) continue;
        let any = false;
        for (let b = 0; b < data.length; b++) {
          const v = data[b]![i]!;
          if (float && Number.isNaN(v)) continue;
          if (nodata !== null && !nanNodata && info.mask === 'nodata' && v === nodata) continue;
          any = true;
          break;
        }
        if (!any) valid[i] = 0;
      }
    }
  }

  private async readMaskInto(level: number, mlv: Level, window: PixelWindow, valid: Uint8Array, signal?: AbortSignal): Promise<void> {
    const { x, y, width } = window;
    const x0 = Math.max(0, x);
    const y0 = Math.max(0, y);
    const x1 = Math.min(mlv.width, x + window.width);
    const y1 = Math.min(mlv.height, y + window.height);
    if (x1 <= x0 || y1 <= y0) return;
    const bc0 = Math.floor(x0 / mlv.blockWidth);
    const bc1 = Math.floor((x1 - 1) / mlv.blockWidth);
    const br0 = Math.floor(y0 / mlv.blockHeight);
    const br1 = Math.floor((y1 - 1) / mlv.blockHeight);
    const wanted: { plane: number; bi: number }[] = [];
    for (let br = br0; br <= br1; br++) for (let bc = bc0; bc <= bc1; bc++) wanted.push({ plane: 0, bi: br * mlv.across + bc });
    const blocks = await this.loadBlocks('mask', level, mlv, wanted, signal);
    let k = 0;
    for (let br = br0; br <= br1; br++) {
      for (let bc = bc0; bc <= bc1; bc++) {
        const block = blocks[k++];
        if (!block) continue; // sparse mask block: invalid
        // Mask blocks come one byte per pixel (see BlockTask.layout 'bits'); 8-bit masks as they are.
        const { bx0, by0, cx0, cx1, cy0, cy1 } = clipBlock(bc, br, mlv, x0, y0, x1, y1);
        for (let yy = cy0; yy < cy1; yy++) {
          const s0 = (yy - by0) * mlv.blockWidth + (cx0 - bx0);
          let d = (yy - y) * width + (cx0 - x);
          if (mlv.bits === 1) valid.set(block.subarray(s0, s0 + (cx1 - cx0)), d);
          else for (let i = s0, e = s0 + (cx1 - cx0); i < e; i++, d++) valid[d] = block[i] !== 0 ? 1 : 0;
        }
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const prefix = `${this.uid}:`;
    this.cache.deleteWhere((k) => k.startsWith(prefix));
    await this.bytes.close();
  }
}

function colorInterps(name: string, main: Level, spp: number, extra: number[], items: ReturnType<typeof parseGdalMetadata>): ColorInterp[] {
  const ci: ColorInterp[] = new Array(spp).fill('undefined');
  const p = main.photometric;
  if (p === Photometric.Rgb || p === Photometric.YCbCr) {
    if (spp >= 3) [ci[0], ci[1], ci[2]] = ['red', 'green', 'blue'];
  } else if (p === Photometric.Palette) ci[0] = 'palette';
  else if (p === Photometric.MinIsBlack || p === Photometric.MinIsWhite) ci[0] = 'gray';
  const firstExtra = spp - extra.length;
  extra.forEach((e, i) => {
    const b = firstExtra + i;
    if (b >= 0 && b < spp && (e === 1 || e === 2)) ci[b] = 'alpha';
    else if (b > 0 && b < spp && ci[b] !== 'red' && ci[b] !== 'green' && ci[b] !== 'blue') ci[b] = 'undefined';
  });
  for (const it of items) {
    if (it.role === 'colorinterp' && it.sample !== null && it.sample < spp) {
      const v = INTERP_NAMES[it.value.trim().toLowerCase()];
      if (v) ci[it.sample] = v;
    }
  }
  void name;
  return ci;
}

/** Open a GeoTIFF / COG from a local path or an http(s) URL. */
export async function openRaster(pathOrUrl: string, options: OpenRasterOptions = {}): Promise<RasterSource> {
  // A local geo-dino VRT (a zone of a sharded run) reads as one raster of its shards.
  if (/\.vrt$/i.test(pathOrUrl) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(pathOrUrl) && !options.bytes) {
    const { openVrtMosaic } = await import('./mosaic.js');
    return openVrtMosaic(pathOrUrl, { ...(options.log ? { log: options.log } : {}), ...(options.signal ? { signal: options.signal } : {}) });
  }
  const limits: RasterLimits = { ...DEFAULT_RASTER_LIMITS, ...(options.limits ?? {}) };
  const log = options.log ?? silentLogger();
  const byteOpts: OpenByteSourceOptions = { log, ...(options.signal ? { signal: options.signal } : {}), ...(options.http ? { http: options.http } : {}) };
  const bytes = options.bytes ?? (await openByteSource(pathOrUrl, byteOpts));
  try {
    return await build(bytes, limits, log, options);
  } catch (err) {
    await bytes.close();
    throw err;
  }
}

async function build(bytes: ByteSource, limits: RasterLimits, log: Logger, options: OpenRasterOptions): Promise<RasterSource> {
  const name = bytes.name;
  const tiff = await readTiffStructure(bytes, limits, options.signal);
  const ifd0 = tiff.ifds[0]!;
  const main = levelOf(name, ifd0, 'image', limits, true);
  const spp = tagNumber(ifd0, Tag.SamplesPerPixel) ?? 1;
  const dtype = dtypeOf(main.sampleFormat, main.bits);
  if (!dtype) throw unsupportedRaster(name, `${main.bits}-bit samples of format ${main.sampleFormat} are not supported`);

  // Overviews and masks.
  const overviews: Level[] = [];
  const maskIfds: Ifd[] = [];
  for (const ifd of tiff.ifds.slice(1)) {
    const nst = tagNumber(ifd, Tag.NewSubfileType) ?? 0;
    const photo = tagNumber(ifd, Tag.Photometric);
    if (nst & 4 || photo === Photometric.Mask) {
      maskIfds.push(ifd);
      continue;
    }
    if (!(nst & 1)) continue; // another page
    try {
      const lv = levelOf(name, ifd, `overview IFD ${ifd.index}`, limits, false);
      const same = lv.bits === main.bits && lv.sampleFormat === main.sampleFormat && (tagNumber(ifd, Tag.SamplesPerPixel) ?? 1) === spp;
      if (same && lv.width < main.width) overviews.push(lv);
      else log.debug({ file: name, ifd: ifd.index }, 'ignoring an overview that does not match the main image');
    } catch (err) {
      if (err instanceof GeoDinoError && err.code === 'E_UNSUPPORTED_RASTER') log.warn({ file: name, ifd: ifd.index, err: err.message }, 'ignoring an unsupported overview');
      else throw err;
    }
  }
  overviews.sort((a, b) => b.width - a.width);
  const levels = [main, ...overviews.filter((o, i, arr) => i === 0 || o.width < arr[i - 1]!.width)];
  const masks: (Level | null)[] = levels.map((lv) => {
    const m = maskIfds.find((ifd) => tagNumber(ifd, Tag.ImageWidth) === lv.width && tagNumber(ifd, Tag.ImageLength) === lv.height);
    if (!m) return null;
    const ml = levelOf(name, m, `mask IFD ${m.index}`, limits, false);
    if (ml.bits !== 1 && ml.bits !== 8) throw unsupportedRaster(name, `mask IFD ${m.index}: ${ml.bits}-bit masks are not supported`);
    return ml;
  });

  // Georeferencing.
  const keys = parseGeoKeys(ifd0);
  const georef = crsFromGeoKeys(keys);
  let crs = georef.crs;
  if (options.crs !== undefined) crs = typeof options.crs === 'string' ? parseCrs(options.crs, `${name}: crs override`) : options.crs;
  const geoTransform = geoTransformOf(ifd0, georef.pixelIsPoint);
  const rotated = geoTransform !== null && (geoTransform[2] !== 0 || geoTransform[4] !== 0);

  // Bands.
  const items = parseGdalMetadata(tagString(ifd0, Tag.GdalMetadata) ?? '');
  const nodata = parseNodata(tagString(ifd0, Tag.GdalNodata));
  const extra = tagNumbers(ifd0, Tag.ExtraSamples) ?? [];
  const ci = colorInterps(name, main, spp, extra, items);
  const bands: BandInfo[] = ci.map((c, i) => ({
    index: i,
    colorInterp: c,
    description: items.find((it) => it.sample === i && it.role === 'description')?.value ?? null,
    nodata,
  }));
  const alphaBand = ci.indexOf('alpha');
  const mask = masks[0] ? 'internal' : alphaBand >= 0 ? 'alpha' : nodata !== null ? 'nodata' : 'none';

  let colorTable: RasterInfo['colorTable'] = null;
  const cmap = tagNumbers(ifd0, Tag.ColorMap);
  if (main.photometric === Photometric.Palette && cmap) {
    const n = Math.min(2 ** main.bits, Math.floor(cmap.length / 3));
    colorTable = [];
    for (let i = 0; i < n; i++) colorTable.push([cmap[i]! >> 8, cmap[n + i]! >> 8, cmap[2 * n + i]! >> 8, 255]);
  }
  const metadata: Record<string, string> = {};
  for (const it of items) if (it.sample === null && it.domain === null && it.role === null) metadata[it.name] = it.value;

  const levelInfos: LevelInfo[] = levels.map((lv, i) => ({
    level: i,
    width: lv.width,
    height: lv.height,
    blockWidth: lv.blockWidth,
    blockHeight: lv.blockHeight,
    factorX: main.width / lv.width,
    factorY: main.height / lv.height,
    hasMask: masks[i] !== null,
  }));

  // Integrity: every block must lie inside the file (cheap; reads nothing).
  const problems: string[] = [];
  const checkLevel = (lv: Level, what: string): void => {
    let bad = 0;
    let first = '';
    const n = lv.across * lv.down * lv.planes;
    for (let i = 0; i < n; i++) {
      const off = lv.offsets[i]!;
      const len = lv.counts[i]!;
      if (len > 0 && off + len > bytes.size) {
        if (!bad) first = `${lv.tiled ? 'tile' : 'strip'} (${i % lv.across}, ${Math.floor(i / lv.across) % lv.down}) at bytes ${off}-${off + len - 1}`;
        bad++;
      }
    }
    if (bad) problems.push(`${what}: ${bad} block${bad > 1 ? 's' : ''} past the end of the file (${bytes.size} bytes), first ${first}`);
  };
  levels.forEach((lv, i) => checkLevel(lv, `level ${i}`));
  masks.forEach((m, i) => m && checkLevel(m, `mask of level ${i}`));
  if (problems.length) log.warn({ file: name, problems }, 'the file is damaged');

  const info: RasterInfo = {
    source: name,
    fileBytes: bytes.size,
    bigTiff: tiff.bigTiff,
    width: main.width,
    height: main.height,
    bandCount: spp,
    dtype,
    bands,
    crs,
    geoTransform,
    rotated,
    nodata,
    mask,
    alphaBand: alphaBand >= 0 ? alphaBand : null,
    levels: levelInfos,
    tiled: main.tiled,
    blockWidth: main.blockWidth,
    blockHeight: main.blockHeight,
    interleave: main.planes > 1 ? 'band' : 'pixel',
    compression: COMPRESSION_NAMES[main.compression] ?? String(main.compression),
    predictor: main.predictor,
    photometric: PHOTOMETRIC_NAMES[main.photometric] ?? String(main.photometric),
    colorTable,
    metadata,
    problems,
  };
  const decoder = options.decoder ?? sharedDecoderPool().decode;
  return new TiffRaster(name, info, bytes, levels, masks, dtype, tiff.littleEndian, limits, decoder, options.cache ?? sharedBlockCache());
}

