/**
 * Tile images of tile services (JPEG, PNG, WebP) decoded by sharp/libvips into planar RGBA, in
 * the tiler's worker pool (`DecoderPool.decodeImage`) or inline.
 *
 * Guards, as for GeoTIFF blocks: the format is recognised from its magic bytes (anything else,
 * e.g. an HTML error page served with status 200, is refused by name); the image header is read
 * first and its size must be the tile size the service declares, so a forged header cannot make
 * the decoder allocate more than one tile (`limitInputPixels` caps libvips as well).
 */
import sharp from 'sharp';
import { GeoDinoError } from '@geo-dino/core';
import { jpegFrame } from './jpeg.js';

export type TileImageFormat = 'jpeg' | 'png' | 'webp';

export interface ImageTask {
  /** The tile's (redacted) URL, for errors. */
  name: string;
  data: Uint8Array;
  /** The tile size the service declares. */
  width: number;
  height: number;
}

/** The image format of some bytes, from their magic number; null when they are no tile image. */
export function tileImageFormat(b: Uint8Array): TileImageFormat | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'png';
  if (b.length >= 12 && b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return 'webp';
  return null;
}

/** A short printable excerpt of bytes that are not an image (what the server sent instead). */
export function describeNonImage(b: Uint8Array): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(b.subarray(0, 160)).replace(/[^\x20-\x7e]+/g, ' ').replace(/\s+/g, ' ').trim();
  return text ? `"${text.slice(0, 120)}${b.length > 120 ? '…' : ''}"` : `${b.length} bytes`;
}

function bad(task: ImageTask, what: string, cause?: unknown): GeoDinoError {
  return new GeoDinoError('E_BAD_RASTER', `${task.name}: ${what}`, { details: { url: task.name }, ...(cause !== undefined ? { cause } : {}) });
}

/** Decode one tile image to 4 planes (R, G, B, A), each width × height bytes, concatenated. */
export async function decodeTileImage(task: ImageTask): Promise<Uint8Array> {
  const format = tileImageFormat(task.data);
  if (!format) throw bad(task, `not a JPEG, PNG or WebP image (got ${describeNonImage(task.data)})`);
  const limit = task.width * task.height;
  // The size from the header, before decoding: PNG's IHDR and JPEG's frame header are read here
  // (cheaper than asking libvips), WebP's by libvips.
  let size: { width: number | undefined; height: number | undefined };
  const d = task.data;
  if (format === 'png') {
    const ihdr = d.length >= 24 && d[12] === 0x49 && d[13] === 0x48 && d[14] === 0x44 && d[15] === 0x52;
    if (!ihdr) throw bad(task, 'PNG without an IHDR chunk');
    const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
    size = { width: v.getUint32(16), height: v.getUint32(20) };
  } else if (format === 'jpeg') {
    const f = jpegFrame(d);
    if (!f) throw bad(task, 'JPEG without a frame header (SOF)');
    size = f;
  } else {
    try {
      size = await sharp(d, { limitInputPixels: false }).metadata();
    } catch (err) {
      throw bad(task, `unreadable ${format} header: ${(err as Error).message}`, err);
    }
  }
  if (size.width !== task.width || size.height !== task.height) {
    throw bad(task, `${format} tile is ${size.width}×${size.height}, the service declares ${task.width}×${task.height} tiles`);
  }
  let data: Buffer;
  try {
    const out = await sharp(task.data, { failOn: 'error', limitInputPixels: limit, sequentialRead: true }).toColourspace('srgb').ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    if (out.info.channels !== 4 || out.info.width !== task.width || out.info.height !== task.height) {
      throw new Error(`decoded to ${out.info.width}×${out.info.height}×${out.info.channels}`);
    }
    data = out.data;
  } catch (err) {
    throw bad(task, `corrupt ${format} tile: ${(err as Error).message}`, err);
  }
  const n = limit;
  const planes = new Uint8Array(4 * n);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    planes[i] = data[j]!;
    planes[n + i] = data[j + 1]!;
    planes[2 * n + i] = data[j + 2]!;
    planes[3 * n + i] = data[j + 3]!;
  }
  return planes;
}
