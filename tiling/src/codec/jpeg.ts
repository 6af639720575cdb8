/**
 * JPEG tiles and strips (TIFF compression 7) decoded by libjpeg-turbo through sharp/libvips.
 *
 * - Abbreviated streams: the shared JPEGTables (quantisation and Huffman tables) are spliced in
 *   after the tile's SOI marker.
 * - Colour: with Photometric YCbCr, libjpeg converts YCbCr → RGB (what GDAL does with
 *   JPEGCOLORMODE=RGB; results are bit-identical to GDAL's). With any other Photometric, the
 *   stored components are returned as they are: an Adobe APP14 marker with transform 0 is
 *   inserted so libjpeg does not guess a colour transform, and 4-component data (RGBA) comes
 *   back through libvips' CMYK path, whose Adobe inversion is undone.
 * - Guards: the frame header (SOF) is parsed first; its size and component count must fit the
 *   block, so a forged header cannot make the decoder allocate a huge image. Only 8-bit
 *   baseline/extended/progressive Huffman JPEG is accepted.
 */
import sharp from 'sharp';

export class JpegError extends Error {}

export interface JpegFrame {
  width: number;
  height: number;
  components: number;
  precision: number;
  sofMarker: number;
}

/** Find the SOF marker and read the frame size, without decoding. */
export function jpegFrame(data: Uint8Array): JpegFrame | null {
  let i = 2;
  while (i + 4 <= data.length) {
    if (data[i] !== 0xff) {
      i++;
      continue;
    }
    const m = data[i + 1]!;
    if (m === 0xff) {
      i++;
      continue;
    }
    if (m === 0xd8 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) {
      i += 2;
      continue;
    }
    if (m === 0xd9 || m === 0xda) return null;
    const len = (data[i + 2]! << 8) | data[i + 3]!;
    if ((m >= 0xc0 && m <= 0xc3) || (m >= 0xc5 && m <= 0xc7) || (m >= 0xc9 && m <= 0xcb) || (m >= 0xcd && m <= 0xcf)) {
      if (i + 9 >= data.length) return null;
      return {
        sofMarker: m,
        precision: data[i + 4]!,
        height: (data[i + 5]! << 8) | data[i + 6]!,
        width: (data[i + 7]! << 8) | data[i + 8]!,
        components: data[i + 9]!,
      };
    }
    i += 2 + len;
  }
  return null;
}

function hasAdobeMarker(data: Uint8Array): boolean {
  for (let i = 2; i + 9 < data.length; ) {
    if (data[i] !== 0xff) return false;
    const m = data[i + 1]!;
    if (m === 0xda) return false;
    const len = (data[i + 2]! << 8) | data[i + 3]!;
    if (m === 0xee && data[i + 4] === 0x41 && data[i + 5] === 0x64 && data[i + 6] === 0x6f && data[i + 7] === 0x62 && data[i + 8] === 0x65) return true;
    i += 2 + len;
  }
  return false;
}

/** APP14 "Adobe", version 100, flags 0, transform 0 (no colour transform). */
const ADOBE_RGB = Uint8Array.from([0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00]);

/** Splice JPEGTables into an abbreviated stream; add the Adobe marker when asked. */
export function assembleJpeg(tile: Uint8Array, tables: Uint8Array | null, rawComponents: boolean): Uint8Array {
  if (tile.length < 4 || tile[0] !== 0xff || tile[1] !== 0xd8) throw new JpegError('block does not start with a JPEG SOI marker');
  const parts: Uint8Array[] = [tile.subarray(0, 2)];
  const addAdobe = rawComponents && !hasAdobeMarker(tile) && !(tables && hasAdobeMarker(tables));
  if (addAdobe) parts.push(ADOBE_RGB);
  if (tables && tables.length > 4) {
    // Tables: SOI, segments, EOI.
    let end = tables.length;
    if (tables[end - 2] === 0xff && tables[end - 1] === 0xd9) end -= 2;
    parts.push(tables.subarray(tables[0] === 0xff && tables[1] === 0xd8 ? 2 : 0, end));
  }
  parts.push(tile.subarray(2));
  if (parts.length === 2) return tile;
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export interface JpegDecoded {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/**
 * Decode one JPEG block to interleaved 8-bit samples. `ycbcr`: the TIFF says Photometric YCbCr.
 */
export async function jpegDecode(
  tile: Uint8Array,
  tables: Uint8Array | null,
  ycbcr: boolean,
  maxWidth: number,
  maxHeight: number,
  components: number,
): Promise<JpegDecoded> {
  // Only 3-component data is ambiguous (libjpeg would assume YCbCr); see the module comment.
  const stream = assembleJpeg(tile, tables, !ycbcr && components === 3);
  const frame = jpegFrame(stream);
  if (!frame) throw new JpegError('no JPEG frame header (SOF) found');
  if (frame.precision !== 8) throw new JpegError(`${frame.precision}-bit JPEG is not supported (8-bit only)`);
  if (frame.sofMarker === 0xc3 || frame.sofMarker >= 0xc5) throw new JpegError(`JPEG process SOF${frame.sofMarker - 0xc0} is not supported`);
  if (frame.width === 0 || frame.height === 0 || frame.width > maxWidth || frame.height > maxHeight) {
    throw new JpegError(`JPEG frame is ${frame.width}×${frame.height}, larger than the ${maxWidth}×${maxHeight} block`);
  }
  if (frame.components !== components) {
    throw new JpegError(`JPEG frame has ${frame.components} components, the TIFF declares ${components}`);
  }
  let img = sharp(stream, { failOn: 'warning', limitInputPixels: maxWidth * maxHeight, sequentialRead: true });
  if (frame.components === 4) img = img.pipelineColourspace('cmyk').toColourspace('cmyk');
  else if (frame.components === 1) img = img.pipelineColourspace('b-w').toColourspace('b-w');
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  const out = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (frame.components === 4) for (let i = 0; i < out.length; i++) out[i] = 255 - out[i]!;
  if (info.channels !== components) throw new JpegError(`JPEG decoded to ${info.channels} channels, expected ${components}`);
  return { data: out, width: info.width, height: info.height, channels: info.channels };
}
