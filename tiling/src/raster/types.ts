/** Pixel data types and typed arrays. */
import type { Crs } from '../crs/crs.js';
import type { GeoTransform } from '../tiff/geokeys.js';

export type DataType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';

export type TypedArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

export const BYTES_PER_SAMPLE: Record<DataType, number> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  float64: 8,
};

export function allocate(dtype: DataType, n: number): TypedArray {
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(n);
    case 'int8':
      return new Int8Array(n);
    case 'uint16':
      return new Uint16Array(n);
    case 'int16':
      return new Int16Array(n);
    case 'uint32':
      return new Uint32Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
  }
}

/** A typed view of host-order bytes (the buffer must be aligned for the type). */
export function viewAs(dtype: DataType, bytes: Uint8Array): TypedArray {
  const n = bytes.byteLength / BYTES_PER_SAMPLE[dtype];
  const b = bytes.buffer;
  const o = bytes.byteOffset;
  switch (dtype) {
    case 'uint8':
      return bytes;
    case 'int8':
      return new Int8Array(b, o, n);
    case 'uint16':
      return new Uint16Array(b, o, n);
    case 'int16':
      return new Int16Array(b, o, n);
    case 'uint32':
      return new Uint32Array(b, o, n);
    case 'int32':
      return new Int32Array(b, o, n);
    case 'float32':
      return new Float32Array(b, o, n);
    case 'float64':
      return new Float64Array(b, o, n);
  }
}

export function dtypeOf(sampleFormat: number, bits: number): DataType | null {
  if (sampleFormat === 3) return bits === 32 ? 'float32' : bits === 64 ? 'float64' : null;
  const signed = sampleFormat === 2;
  switch (bits) {
    case 8:
      return signed ? 'int8' : 'uint8';
    case 16:
      return signed ? 'int16' : 'uint16';
    case 32:
      return signed ? 'int32' : 'uint32';
    default:
      return null;
  }
}

export function isFloat(dtype: DataType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

/** Colour interpretation of a band, as GDAL names them (lower case). */
export type ColorInterp = 'gray' | 'palette' | 'red' | 'green' | 'blue' | 'alpha' | 'undefined' | 'nir';

export interface BandInfo {
  /** 0-based band index. */
  index: number;
  colorInterp: ColorInterp;
  description: string | null;
  nodata: number | null;
}

export interface LevelInfo {
  /** 0 is full resolution; 1.. are overviews, finest first. */
  level: number;
  width: number;
  height: number;
  blockWidth: number;
  blockHeight: number;
  /** Full-resolution pixels per pixel of this level (x, y). */
  factorX: number;
  factorY: number;
  /** A GDAL internal mask exists at this level. */
  hasMask: boolean;
}

export type MaskKind = 'internal' | 'alpha' | 'nodata' | 'none';

export interface RasterInfo {
  /** Path, or URL with secrets redacted. */
  source: string;
  fileBytes: number;
  bigTiff: boolean;
  width: number;
  height: number;
  bandCount: number;
  dtype: DataType;
  bands: BandInfo[];
  crs: Crs | null;
  /** GDAL geotransform [originX, pixelW, rotX, originY, rotY, pixelH]; null without georeferencing. */
  geoTransform: GeoTransform | null;
  /** The geotransform has rotation or shear terms. */
  rotated: boolean;
  nodata: number | null;
  /** What decides validity: a GDAL internal mask, an alpha band, the nodata value, or nothing. */
  mask: MaskKind;
  /** 0-based index of the alpha band, when there is one. */
  alphaBand: number | null;
  levels: LevelInfo[];
  tiled: boolean;
  blockWidth: number;
  blockHeight: number;
  interleave: 'pixel' | 'band';
  compression: string;
  predictor: number;
  photometric: string;
  /** RGBA entries (0-255) of the colour map, for palette images. */
  colorTable: [number, number, number, number][] | null;
  /** Dataset metadata items from GDAL_METADATA (default domain). */
  metadata: Record<string, string>;
  /**
   * Structural problems found when opening (e.g. blocks that lie past the end of the file).
   * The rest of the file can still be read; reading a damaged block is an error.
   */
  problems: string[];
}

export interface PixelWindow {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface RasterData {
  width: number;
  height: number;
  dtype: DataType;
  /** One array per requested band, row-major (planar). */
  bands: TypedArray[];
  /** 1 where the pixel is valid imagery, 0 where not (outside the raster, masked, nodata). */
  valid: Uint8Array;
}
