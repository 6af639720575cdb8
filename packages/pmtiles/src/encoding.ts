/**
 * How geo-dino layers are stored in PMTiles tiles, and the metadata that says so. Browser-safe
 * (no Node imports): the viewer imports this module as `@geo-dino/pmtiles/encoding`.
 *
 * - Values (canopy height, uncertainty): `rg16`. Lossless PNG, RGBA, 256×256.
 *   code = R·256 + G (16 bits), value = offset + code × scale (scale 0.01: centimetres),
 *   B = 0, A = 255 where the pixel is valid and 0 where it is nodata. A browser decodes the image
 *   without premultiplication and colours it with any ramp; the exact value is a pixel read away.
 * - Land cover: `class8`. Lossless PNG, R = class value, A = 255 valid / 0 nodata; the class
 *   table (value, name, colour) is in the metadata.
 * - Imagery: `rgb`. WebP RGB with the mask in alpha.
 */

export const TILE_SIZE = 256;

export type LayerName = 'height' | 'uncertainty' | 'imagery' | 'landcover';

export interface ValueEncoding {
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

export type TileEncoding = ValueEncoding | ClassEncoding | ImageEncoding;

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

/**
 * An `rg16` encoding for values in [min, max]: centimetres from 0 when they fit (0..655.35), else
 * the finest power-of-ten step over a whole-number offset that covers the range.
 */
export function valueEncodingFor(min: number, max: number, preferredScale = 0.01): ValueEncoding {
  const lo = Number.isFinite(min) ? min : 0;
  const hi = Number.isFinite(max) ? max : lo;
  const offset = lo >= 0 ? 0 : Math.floor(lo);
  let scale = preferredScale;
  while ((hi - offset) / scale > RG16_MAX_CODE) scale *= 10;
  return { type: 'rg16', scale, offset, mask: 'alpha' };
}

/** The code of a value (rounded, clamped to 0..65535). */
export function valueCode(value: number, enc: ValueEncoding): number {
  const c = Math.round((value - enc.offset) / enc.scale);
  return c < 0 ? 0 : c > RG16_MAX_CODE ? RG16_MAX_CODE : c;
}

/** The value a pixel's red and green channels encode. */
export function decodeValue(r: number, g: number, enc: ValueEncoding): number {
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
    const raw = Math.round((v - enc.offset) / enc.scale);
    if (raw < 0 || raw > RG16_MAX_CODE) clamped++;
    const c = raw < 0 ? 0 : raw > RG16_MAX_CODE ? RG16_MAX_CODE : raw;
    out[o] = c >>> 8;
    out[o + 1] = c & 0xff;
    out[o + 2] = 0;
    out[o + 3] = 255;
  }
  return { rgba: out, clamped };
}

/** Decode RGBA bytes of an `rg16` tile to values (NaN where alpha is 0). */
export function decodeValueTile(rgba: Uint8Array | Uint8ClampedArray, enc: ValueEncoding, out = new Float32Array(rgba.length / 4)): Float32Array {
  for (let i = 0, o = 0; i < out.length; i++, o += 4) {
    out[i] = rgba[o + 3] === 0 ? NaN : enc.offset + (rgba[o]! * 256 + rgba[o + 1]!) * enc.scale;
  }
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
