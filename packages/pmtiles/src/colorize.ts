/**
 * Coloured PNG tiles from value and class tiles (for clients that cannot decode Terrarium
 * themselves: QGIS "XYZ Tiles", Leaflet, OpenLayers). Node only (sharp).
 */
import sharp from 'sharp';
import { buildLut, colourClasses, colourValues } from './colormap.js';
import { classValues, decodeValueTile, isValueEncoding, TILE_SIZE, type LandCoverClass, type TileEncoding } from './encoding.js';

export interface ColourOptions {
  /** A ramp of `RAMPS` (value layers). */
  colormap: string;
  /** Values mapped to the ends of the ramp. */
  min: number;
  max: number;
}

/** Decode an archive's PNG tile and colour it: values with a ramp, classes with their table. */
export async function colourTile(png: Uint8Array, encoding: TileEncoding, classes: readonly LandCoverClass[] | undefined, o: ColourOptions): Promise<Uint8Array> {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.width !== TILE_SIZE || info.height !== TILE_SIZE || info.channels !== 4) throw new Error(`unexpected tile ${info.width}×${info.height}×${info.channels}`);
  const rgba = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  let out: Uint8Array;
  if (isValueEncoding(encoding)) {
    out = colourValues(decodeValueTile(rgba, encoding), buildLut(o.colormap), o.min, o.max);
  } else if (encoding.type === 'class8') {
    out = colourClasses(classValues(rgba), classes ?? []);
  } else {
    throw new Error(`tiles of encoding ${encoding.type} are images already`);
  }
  return new Uint8Array(await sharp(out, { raw: { width: TILE_SIZE, height: TILE_SIZE, channels: 4 } }).png({ compressionLevel: 6 }).toBuffer());
}
