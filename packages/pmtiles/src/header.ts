/**
 * The fixed 127-byte PMTiles v3 header (spec §"Header"), little-endian.
 */
import { HEADER_BYTES } from './directory.js';

export const Compression = { Unknown: 0, None: 1, Gzip: 2, Brotli: 3, Zstd: 4 } as const;
export type Compression = (typeof Compression)[keyof typeof Compression];

export const TileType = { Unknown: 0, Mvt: 1, Png: 2, Jpeg: 3, Webp: 4, Avif: 5 } as const;
export type TileType = (typeof TileType)[keyof typeof TileType];

export interface Header {
  rootDirectoryOffset: number;
  rootDirectoryLength: number;
  jsonMetadataOffset: number;
  jsonMetadataLength: number;
  leafDirectoryOffset: number;
  leafDirectoryLength: number;
  tileDataOffset: number;
  tileDataLength: number;
  numAddressedTiles: number;
  numTileEntries: number;
  numTileContents: number;
  clustered: boolean;
  internalCompression: Compression;
  tileCompression: Compression;
  tileType: TileType;
  minZoom: number;
  maxZoom: number;
  /** [west, south, east, north] in degrees. */
  bounds: [number, number, number, number];
  center: { lon: number; lat: number; zoom: number };
}

const e7 = (deg: number): number => Math.round(deg * 1e7);

export function serializeHeader(h: Header): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES);
  out.set(new TextEncoder().encode('PMTiles'), 0);
  const v = new DataView(out.buffer);
  v.setUint8(7, 3);
  const u64 = (at: number, value: number): void => v.setBigUint64(at, BigInt(value), true);
  u64(8, h.rootDirectoryOffset);
  u64(16, h.rootDirectoryLength);
  u64(24, h.jsonMetadataOffset);
  u64(32, h.jsonMetadataLength);
  u64(40, h.leafDirectoryOffset);
  u64(48, h.leafDirectoryLength);
  u64(56, h.tileDataOffset);
  u64(64, h.tileDataLength);
  u64(72, h.numAddressedTiles);
  u64(80, h.numTileEntries);
  u64(88, h.numTileContents);
  v.setUint8(96, h.clustered ? 1 : 0);
  v.setUint8(97, h.internalCompression);
  v.setUint8(98, h.tileCompression);
  v.setUint8(99, h.tileType);
  v.setUint8(100, h.minZoom);
  v.setUint8(101, h.maxZoom);
  v.setInt32(102, e7(h.bounds[0]), true);
  v.setInt32(106, e7(h.bounds[1]), true);
  v.setInt32(110, e7(h.bounds[2]), true);
  v.setInt32(114, e7(h.bounds[3]), true);
  v.setUint8(118, h.center.zoom);
  v.setInt32(119, e7(h.center.lon), true);
  v.setInt32(123, e7(h.center.lat), true);
  return out;
}
