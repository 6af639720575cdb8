/**
 * Decode one TIFF block (a tile or a strip) into host-order samples. Used in the main thread and
 * in the decoder worker threads alike (the task is plain data, so it can be posted).
 *
 * Every decoder is bounded by the block's nominal size (what its tile or strip dimensions can
 * hold): decompressing more is an error ("decompression bomb"), fewer bytes than the rows
 * present is an error ("truncated"), never silent zeros.
 */
import { GeoDinoError } from '@geo-dino/core';
import { Compression, COMPRESSION_NAMES, Photometric } from '../tiff/tags.js';
import { deflateDecode } from './deflate.js';
import { lzwDecode } from './lzw.js';
import { packbitsDecode } from './packbits.js';
import { zstdDecode, BoundExceeded } from './zstd.js';
import { jpegDecode } from './jpeg.js';
import { LITTLE_ENDIAN_HOST, swapBytes, undoFloatingPoint, undoHorizontal } from './predictor.js';

export interface BlockTask {
  /** File name for errors, and what the block is ("tile 3 of level 0"). */
  name: string;
  what: string;
  compression: number;
  predictor: number;
  photometric: number;
  /** Block width in pixels. */
  width: number;
  /** Rows actually present in this block (the last strip may be shorter). */
  rows: number;
  /** Rows the block can hold (tile height or RowsPerStrip). */
  nominalRows: number;
  /** Samples per pixel stored in this block (1 for planar-separate). */
  samples: number;
  bitsPerSample: number;
  /** 1 unsigned, 2 signed, 3 float. */
  sampleFormat: number;
  littleEndian: boolean;
  jpegTables: Uint8Array | null;
  data: Uint8Array;
  /**
   * Reorganise the output (done in the worker, so the main thread only copies rows):
   * 'planar' splits pixel-interleaved samples into one plane per sample (plane s holds rows ×
   * width samples); 'bits' expands 1-bit samples to one byte (0/1) per pixel.
   */
  layout?: 'as-is' | 'planar' | 'bits';
}

export function rowBytesOf(width: number, samples: number, bits: number): number {
  return Math.ceil((width * samples * bits) / 8);
}

function fail(task: BlockTask, what: string, cause?: unknown): GeoDinoError {
  return new GeoDinoError('E_BAD_RASTER', `${task.name}: ${task.what}: ${what}`, {
    details: { file: task.name, block: task.what },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** Copy into a fresh, 8-byte aligned buffer when typed views would need alignment. */
function aligned(u8: Uint8Array): Uint8Array {
  if (u8.byteOffset % 8 === 0) return u8;
  const c = new Uint8Array(u8.length);
  c.set(u8);
  return c;
}

export async function decodeBlock(task: BlockTask): Promise<Uint8Array> {
  const rowBytes = rowBytesOf(task.width, task.samples, task.bitsPerSample);
  const expected = rowBytes * task.rows;
  const cap = rowBytes * task.nominalRows;
  const bps = task.bitsPerSample / 8;
  let out: Uint8Array;
  const c = task.compression;
  try {
    switch (c) {
      case Compression.None:
        out = task.data.length >= expected ? task.data.subarray(0, expected) : task.data;
        if (out.length < expected) throw fail(task, `holds ${task.data.length} bytes, ${expected} expected (truncated)`);
        out = task.data.byteOffset % 8 === 0 && out.length === task.data.length ? out : out.slice();
        break;
      case Compression.AdobeDeflate:
      case Compression.Deflate:
        out = deflateDecode(task.data, cap);
        break;
      case Compression.Lzw:
        out = lzwDecode(task.data, expected);
        break;
      case Compression.PackBits:
        out = packbitsDecode(task.data, expected);
        break;
      case Compression.Zstd:
        out = zstdDecode(task.data, cap);
        break;
      case Compression.Jpeg: {
        if (task.bitsPerSample !== 8) throw fail(task, `JPEG with ${task.bitsPerSample}-bit samples is not supported`);
        const ycbcr = task.photometric === Photometric.YCbCr;
        const j = await jpegDecode(task.data, task.jpegTables, ycbcr, task.width, task.nominalRows, task.samples);
        if (j.width === task.width) out = j.data;
        else {
          // Narrower frame than the block (rare): pad each row to the block width.
          out = new Uint8Array(rowBytes * j.height);
          for (let r = 0; r < j.height; r++) out.set(j.data.subarray(r * j.width * j.channels, (r + 1) * j.width * j.channels), r * rowBytes);
        }
        if (out.length > expected) out = out.subarray(0, expected);
        break;
      }
      default:
        throw new GeoDinoError(
          'E_UNSUPPORTED_RASTER',
          `${task.name}: compression ${COMPRESSION_NAMES[c] ?? c} is not supported (geo-dino reads none, deflate, lzw, zstd, jpeg, packbits)`,
          { details: { file: task.name, compression: c } },
        );
    }
  } catch (err) {
    if (err instanceof GeoDinoError) throw err;
    if (err instanceof BoundExceeded) {
      throw fail(task, `${err.message}, but a ${task.width}×${task.nominalRows} block holds ${cap} (a decompression bomb or a corrupt block)`, err);
    }
    throw fail(task, `cannot decode ${COMPRESSION_NAMES[c] ?? c} data: ${(err as Error).message}`, err);
  }
  if (out.length < expected) {
    throw fail(task, `decodes to ${out.length} bytes, ${expected} expected (truncated or corrupt)`);
  }
  if (out.length > expected) out = out.subarray(0, expected);
  out = aligned(out);
  if (task.compression === Compression.Jpeg) return arrange(task, out, rowBytes);

  if (task.predictor === 3) {
    if (task.sampleFormat !== 3) throw fail(task, 'predictor 3 (floating point) on non-float samples');
    undoFloatingPoint(out, task.width, task.rows, task.samples, bps);
    return arrange(task, out, rowBytes);
  }
  if (bps === 1 && task.layout === 'planar' && task.samples > 1 && (task.predictor === 1 || task.predictor === 2)) {
    return planar8(out, task.width, task.rows, task.samples, task.predictor === 2);
  }
  if (bps > 1 && task.littleEndian !== LITTLE_ENDIAN_HOST) swapBytes(out, bps);
  if (task.predictor === 2) {
    if (task.bitsPerSample < 8) throw fail(task, `predictor 2 with ${task.bitsPerSample}-bit samples is not supported`);
    undoHorizontal(out, task.width, task.rows, task.samples, bps);
  } else if (task.predictor !== 1) {
    throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${task.name}: predictor ${task.predictor} is not supported (1, 2 and 3 are)`, {
      details: { file: task.name },
    });
  }
  return arrange(task, out, rowBytes);
}

/**
 * 8-bit pixel-interleaved → planar in one pass, undoing predictor 2 on the way (the common
 * RGB/RGBA DEFLATE and LZW case; one sequential read, one write per plane).
 */
function planar8(src: Uint8Array, width: number, rows: number, spp: number, predictor: boolean): Uint8Array {
  const n = width * rows;
  const dst = new Uint8Array(n * spp);
  if (spp === 3) {
    const p0 = dst.subarray(0, n);
    const p1 = dst.subarray(n, 2 * n);
    const p2 = dst.subarray(2 * n, 3 * n);
    for (let r = 0, k = 0, i = 0; r < rows; r++) {
      let a = 0;
      let b = 0;
      let c = 0;
      for (let x = 0; x < width; x++, i++, k += 3) {
        if (predictor) {
          a = (a + src[k]!) & 255;
          b = (b + src[k + 1]!) & 255;
          c = (c + src[k + 2]!) & 255;
        } else {
          a = src[k]!;
          b = src[k + 1]!;
          c = src[k + 2]!;
        }
        p0[i] = a;
        p1[i] = b;
        p2[i] = c;
      }
    }
    return dst;
  }
  const prev = new Uint8Array(spp);
  for (let r = 0, k = 0, i = 0; r < rows; r++) {
    prev.fill(0);
    for (let x = 0; x < width; x++, i++) {
      for (let s = 0; s < spp; s++, k++) {
        const v = predictor ? (prev[s]! + src[k]!) & 255 : src[k]!;
        prev[s] = v;
        dst[s * n + i] = v;
      }
    }
  }
  return dst;
}

/** Apply the requested output layout (see BlockTask.layout). */
function arrange(task: BlockTask, out: Uint8Array, rowBytes: number): Uint8Array {
  if (task.layout === 'bits' && task.bitsPerSample === 1 && task.samples === 1) {
    const w = task.width;
    const px = new Uint8Array(w * task.rows);
    const full = w >> 3;
    for (let r = 0; r < task.rows; r++) {
      const src = r * rowBytes;
      let d = r * w;
      for (let j = 0; j < full; j++, d += 8) {
        const b = out[src + j]!;
        px[d] = b >> 7;
        px[d + 1] = (b >> 6) & 1;
        px[d + 2] = (b >> 5) & 1;
        px[d + 3] = (b >> 4) & 1;
        px[d + 4] = (b >> 3) & 1;
        px[d + 5] = (b >> 2) & 1;
        px[d + 6] = (b >> 1) & 1;
        px[d + 7] = b & 1;
      }
      for (let c = full * 8; c < w; c++) px[r * w + c] = (out[src + (c >> 3)]! >> (7 - (c & 7))) & 1;
    }
    return px;
  }
  if (task.layout === 'planar' && task.samples > 1 && task.bitsPerSample >= 8) {
    const spp = task.samples;
    const bps = task.bitsPerSample / 8;
    const n = task.width * task.rows;
    const planar = new Uint8Array(out.length);
    if (bps === 1) return planar8(out, task.width, task.rows, spp, false);
    else if (bps === 2) {
      const a = new Uint16Array(out.buffer, out.byteOffset, out.length / 2);
      const p = new Uint16Array(planar.buffer);
      for (let s = 0; s < spp; s++) for (let i = 0, k = s; i < n; i++, k += spp) p[s * n + i] = a[k]!;
    } else if (bps === 4) {
      const a = new Uint32Array(out.buffer, out.byteOffset, out.length / 4);
      const p = new Uint32Array(planar.buffer);
      for (let s = 0; s < spp; s++) for (let i = 0, k = s; i < n; i++, k += spp) p[s * n + i] = a[k]!;
    } else {
      const a = new Float64Array(out.buffer, out.byteOffset, out.length / 8);
      const p = new Float64Array(planar.buffer);
      for (let s = 0; s < spp; s++) for (let i = 0, k = s; i < n; i++, k += spp) p[s * n + i] = a[k]!;
    }
    return planar;
  }
  return out;
}
