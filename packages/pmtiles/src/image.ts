/**
 * Tiles to image bytes with sharp (libvips, off the event loop): lossless PNG for values and
 * classes, WebP for imagery.
 */
import sharp from 'sharp';
import { encodeClassTile, encodeValueTile, isValueEncoding, TILE_SIZE, type TileEncoding } from './encoding.js';
import type { TileData } from './tiles.js';

export interface ImageOptions {
  /** WebP quality of imagery tiles, 1-100 (default 85). */
  webpQuality?: number;
  /** zlib level of PNG tiles, 0-9 (default 6). */
  pngCompression?: number;
}

const raw = { raw: { width: TILE_SIZE, height: TILE_SIZE, channels: 4 as const } };

function opaque(rgba: Uint8Array): boolean {
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 255) return false;
  return true;
}

/** Encode a tile; also returns how many values were clamped to the encodable range. */
export async function encodeTileImage(tile: TileData, encoding: TileEncoding, options: ImageOptions = {}): Promise<{ bytes: Uint8Array; clamped: number }> {
  const png = { compressionLevel: options.pngCompression ?? 6, adaptiveFiltering: true, palette: false };
  if (tile.kind === 'value') {
    if (!isValueEncoding(encoding)) throw new Error(`value tiles need a value encoding (terrarium, rg16), got ${encoding.type}`);
    const { rgba, clamped } = encodeValueTile(tile.values, encoding);
    return { bytes: new Uint8Array(await sharp(rgba, raw).png(png).toBuffer()), clamped };
  }
  if (tile.kind === 'class') {
    const rgba = encodeClassTile(tile.classes, tile.valid);
    return { bytes: new Uint8Array(await sharp(rgba, raw).png(png).toBuffer()), clamped: 0 };
  }
  const img = sharp(tile.rgba, raw);
  const webp = { quality: options.webpQuality ?? 85, alphaQuality: 100, effort: 4 };
  const out = opaque(tile.rgba) ? await img.removeAlpha().webp(webp).toBuffer() : await img.webp(webp).toBuffer();
  return { bytes: new Uint8Array(out), clamped: 0 };
}
