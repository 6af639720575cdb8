/** TIFF 6.0, BigTIFF, GeoTIFF 1.1 and GDAL tag numbers and field types used by geo-dino. */

export const Tag = {
  NewSubfileType: 254,
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  ImageDescription: 270,
  StripOffsets: 273,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  XResolution: 282,
  YResolution: 283,
  PlanarConfiguration: 284,
  ResolutionUnit: 296,
  Software: 305,
  DateTime: 306,
  Predictor: 317,
  ColorMap: 320,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  SubIFDs: 330,
  ExtraSamples: 338,
  SampleFormat: 339,
  JPEGTables: 347,
  YCbCrSubSampling: 530,
  ReferenceBlackWhite: 532,
  ModelPixelScale: 33550,
  ModelTiepoint: 33922,
  ModelTransformation: 34264,
  GeoKeyDirectory: 34735,
  GeoDoubleParams: 34736,
  GeoAsciiParams: 34737,
  GdalMetadata: 42112,
  GdalNodata: 42113,
  LercParameters: 50674,
} as const;

export const TAG_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Tag).map(([k, v]) => [v, k]));

/** Field types: byte size of one value. */
export const TYPE_SIZE: Record<number, number> = {
  1: 1, // BYTE
  2: 1, // ASCII
  3: 2, // SHORT
  4: 4, // LONG
  5: 8, // RATIONAL
  6: 1, // SBYTE
  7: 1, // UNDEFINED
  8: 2, // SSHORT
  9: 4, // SLONG
  10: 8, // SRATIONAL
  11: 4, // FLOAT
  12: 8, // DOUBLE
  13: 4, // IFD
  16: 8, // LONG8
  17: 8, // SLONG8
  18: 8, // IFD8
};

export const Compression = {
  None: 1,
  CcittRle: 2,
  CcittFax3: 3,
  CcittFax4: 4,
  Lzw: 5,
  OldJpeg: 6,
  Jpeg: 7,
  AdobeDeflate: 8,
  Jbig: 34661,
  PackBits: 32773,
  Deflate: 32946,
  Lerc: 34887,
  Lzma: 34925,
  Zstd: 50000,
  Webp: 50001,
  JpegXl: 50002,
} as const;

export const COMPRESSION_NAMES: Record<number, string> = {
  1: 'none',
  2: 'ccitt-rle',
  3: 'ccitt-fax3',
  4: 'ccitt-fax4',
  5: 'lzw',
  6: 'old-jpeg',
  7: 'jpeg',
  8: 'deflate',
  32946: 'deflate',
  32773: 'packbits',
  34661: 'jbig',
  34887: 'lerc',
  34925: 'lzma',
  50000: 'zstd',
  50001: 'webp',
  50002: 'jpegxl',
};

export const Photometric = {
  MinIsWhite: 0,
  MinIsBlack: 1,
  Rgb: 2,
  Palette: 3,
  Mask: 4,
  Separated: 5,
  YCbCr: 6,
  CieLab: 8,
} as const;

export const PHOTOMETRIC_NAMES: Record<number, string> = {
  0: 'min-is-white',
  1: 'min-is-black',
  2: 'rgb',
  3: 'palette',
  4: 'mask',
  5: 'separated',
  6: 'ycbcr',
  8: 'cielab',
};
