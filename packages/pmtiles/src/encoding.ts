/**
 * How geo-dino layers are stored in PMTiles tiles, and the metadata that says so. Browser-safe
 * (no Node imports): the viewer imports this module as `@geo-dino/pmtiles/encoding`.
 *
 * - Values (canopy height, uncertainty): `terrarium` (since 0.2). Lossless PNG, RGBA, 256×256,
 *   Mapzen's Terrarium elevation encoding: value (m) = R·256 + G + B/256 − 32768 (steps of
 *   1/256 m ≈ 4 mm, so centimetres are kept), A = 255 where the pixel is valid and 0 where it is
 *   nodata (0 m is R=128, G=0, B=0: distinct from nodata). MapLibre (`raster-dem`,
 *   `encoding: "terrarium"`, hillshade and color-relief), QGIS (XYZ "Terrarium terrain RGB"
 *   interpretation), Tangram and pmtiles viewers decode it without geo-dino's code.
 * - Values in archives written before 0.2: `rg16`, code = R·256 + G, value = offset + code ×
 *   scale, B = 0, same alpha; still decoded.
 * - Land cover: `class8`. Lossless PNG, R = class value, A = 255 valid / 0 nodata; the class
 *   table (value, name, colour) is in the metadata.
 * - Imagery: `rgb`. WebP RGB with the mask in alpha.
 */

export const TILE_SIZE = 256;

export type LayerName = 'height' | 'uncertainty' | 'imagery' | 'landcover';

/** Mapzen Terrarium: value = R·256 + G + B/256 − 32768, alpha 0 = nodata. */
export interface TerrariumEncoding {
  type: 'terrarium';
  /** Where validity is stored. */
  mask: 'alpha';
}

/** geo-dino's encoding before 0.2 (kept for reading old archives). */
export interface Rg16Encoding {
  type: 'rg16';
  /** Units per code step (0.01 m = centimetres). */
  scale: number;
  /** The value of code 0. */
  offset: number;
  /** Where validity is stored. */
  mask: 'alpha';
}

export interface ClassEncoding {
  type: 'class8';
  mask: 'alpha';
}

export interface ImageEncoding {
  type: 'rgb';
  mask: 'alpha';
}

export type ValueEncoding = TerrariumEncoding | Rg16Encoding;

export type TileEncoding = ValueEncoding | ClassEncoding | ImageEncoding;

/** True for the encodings of continuous values (height, uncertainty). */
export function isValueEncoding(e: TileEncoding | undefined | null): e is ValueEncoding {
  return e?.type === 'terrarium' || e?.type === 'rg16';
}

/** The range Terrarium can hold, metres. */
export const TERRARIUM_MIN = -32768;
export const TERRARIUM_MAX = 32767 + 255 / 256;

/** A one-line statement of an encoding, for archive descriptions and docs. */
export function describeValueEncoding(e: ValueEncoding): string {
  return e.type === 'terrarium'
    ? 'Terrarium: value = R*256 + G + B/256 - 32768 (1/256 m steps), alpha 0 = nodata'
    : `rg16: value = ${e.offset} + (R*256 + G) * ${e.scale}, alpha 0 = nodata`;
}

export interface LandCoverClass {
  value: number;
  name: string;
  /** CSS colour, `#rrggbb`. */
  color: string;
}

/** The `geo_dino` object in a PMTiles archive's JSON metadata. */
export interface GeoDinoTilesetInfo {
  /** geo-dino version that wrote the archive. */
  version: string;
  layer: LayerName;
  /** Units of the values (`m`), null for imagery and classes. */
  units: string | null;
  encoding: TileEncoding;
  /** Range of the valid values at full resolution (null for imagery). */
  min: number | null;
  max: number | null;
  /** Land cover only. */
  classes?: LandCoverClass[];
  /** True when the data came from geo-dino's demo model (not a real prediction). */
  demo: boolean;
  source: {
    file: string;
    bands: number[];
    crs: string;
    /** Ground sample distance of the source, metres. */
    gsd_m: number;
    width: number;
    height: number;
  };
  resampling: { max_zoom: 'nearest' | 'bilinear'; lower_zooms: 'mean' | 'mode' };
  /** Acquisition or run date when known (ISO 8601). */
  datetime?: string | null;
}

/** The largest code of `rg16`. */
export const RG16_MAX_CODE = 65535;

/** The encoding new archives use for values: Terrarium (any range of heights fits). */
export function valueEncodingFor(): ValueEncoding {
  return { type: 'terrarium', mask: 'alpha' };
}

/** The value a valid pixel's red, green and blue channels encode. */
export function decodeValue(r: number, g: number, b: number, enc: ValueEncoding): number {
  if (enc.type === 'terrarium') return r * 256 + g + b / 256 - 32768;
  // Round away the binary error of scale (0.01 is not exact in floating point).
  const digits = Math.max(0, -Math.floor(Math.log10(enc.scale)));
  return Number((enc.offset + (r * 256 + g) * enc.scale).toFixed(digits));
}

/**
 * Encode a tile of values (NaN = nodata) as RGBA bytes. Returns the number of values clamped to
 * the encodable range.
 */
export function encodeValueTile(values: Float32Array, enc: ValueEncoding, out = new Uint8Array(values.length * 4)): { rgba: Uint8Array; clamped: number } {
  let clamped = 0;
  for (let i = 0, o = 0; i < values.length; i++, o += 4) {
    const v = values[i]!;
    if (Number.isNaN(v)) {
      out[o] = 0;
      out[o + 1] = 0;
      out[o + 2] = 0;
      out[o + 3] = 0;
      continue;
    }
    let c: number;
    if (enc.type === 'terrarium') {
      // Code in 1/256 m: 24 bits, R·65536 + G·256 + B, of (v + 32768) · 256.
      const raw = Math.round((v + 32768) * 256);
      if (raw < 0 || raw > 0xffffff) clamped++;
      c = raw < 0 ? 0 : raw > 0xffffff ? 0xffffff : raw;
      out[o] = c >>> 16;
      out[o + 1] = (c >>> 8) & 0xff;
      out[o + 2] = c & 0xff;
    } else {
      const raw = Math.round((v - enc.offset) / enc.scale);
      if (raw < 0 || raw > RG16_MAX_CODE) clamped++;
      c = raw < 0 ? 0 : raw > RG16_MAX_CODE ? RG16_MAX_CODE : raw;
      out[o] = c >>> 8;
      out[o + 1] = c & 0xff;
      out[o + 2] = 0;
    }
    out[o + 3] = 255;
  }
  return { rgba: out, clamped };
}

/** Decode RGBA bytes of a value tile to values (NaN where alpha is 0). */
export function decodeValueTile(rgba: Uint8Array | Uint8ClampedArray, enc: ValueEncoding, out = new Float32Array(rgba.length / 4)): Float32Array {
  if (enc.type === 'terrarium') {
    for (let i = 0, o = 0; i < out.length; i++, o += 4) {
      out[i] = rgba[o + 3] === 0 ? NaN : rgba[o]! * 256 + rgba[o + 1]! + rgba[o + 2]! / 256 - 32768;
    }
    return out;
  }
  for (let i = 0, o = 0; i < out.length; i++, o += 4) {
    out[i] = rgba[o + 3] === 0 ? NaN : enc.offset + (rgba[o]! * 256 + rgba[o + 1]!) * enc.scale;
  }
  return out;
}

/** Class values of a `class8` tile's RGBA bytes (NaN where alpha is 0). */
export function classValues(rgba: Uint8Array | Uint8ClampedArray, out = new Float32Array(rgba.length / 4)): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = rgba[i * 4 + 3] === 0 ? NaN : rgba[i * 4]!;
  return out;
}

/** Encode class values (with a validity mask) as RGBA bytes. */
export function encodeClassTile(classes: Uint8Array, valid: Uint8Array, out = new Uint8Array(classes.length * 4)): Uint8Array {
  for (let i = 0, o = 0; i < classes.length; i++, o += 4) {
    const ok = valid[i] !== 0;
    out[o] = ok ? classes[i]! : 0;
    out[o + 1] = 0;
    out[o + 2] = 0;
    out[o + 3] = ok ? 255 : 0;
  }
  return out;
}

/** `#rrggbb` → [r, g, b]; null if it is not that form. */
export function parseHexColor(color: string): [number, number, number] | null {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color.trim());
  return m ? [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)] : null;
}
