/**
 * @geo-dino/tiling: guarded GeoTIFF/COG reading (local and HTTP), CRSs, grids and tile layouts,
 * warping and mosaicking into model-ready tile streams, the streaming COG writer, footprints.
 * See README.md for the contracts.
 */
// Errors and byte sources (local files, HTTP with Range, caches).
export * from './errors.js';
export * from './io/range.js';
export * from './io/byte-source.js';
export * from './io/http-source.js';
export * from './io/lru.js';
// TIFF structure, GeoTIFF keys, GDAL tags.
export * from './tiff/tags.js';
export * from './tiff/ifd.js';
export * from './tiff/geokeys.js';
export * from './tiff/geokeys-write.js';
export * from './tiff/gdal-metadata.js';
// CRSs.
export * from './crs/crs.js';
export { registryLookup, registryCodes, CRS_REGISTRY_VERSION, type Authority, type RegistryEntry } from './crs/registry.js';
// Decoding (and the worker pool that also runs warp steps).
export * from './codec/decode.js';
export * from './codec/pool.js';
export { applyFloatingPoint, undoFloatingPoint, applyHorizontal, undoHorizontal } from './codec/predictor.js';
export { deflateEncodeAsync, deflateDecode } from './codec/deflate.js';
// Reading rasters.
export * from './raster/types.js';
export * from './raster/source.js';
export * from './raster/rgb.js';
export * from './raster/footprint.js';
export * from './raster/mosaic.js';
export * from './raster/mode.js';
// Tile services (XYZ/TMS templates, WMTS) as raster sources.
export * from './codec/image.js';
export * from './tiles/template.js';
export * from './tiles/matrix.js';
export * from './tiles/wmts.js';
export * from './tiles/disk-cache.js';
export * from './tiles/service.js';
// Grids, layouts, warping, tile streams.
export * from './grid/polygon-raster.js';
export * from './grid/grid.js';
export * from './grid/shards.js';
export * from './warp/warp.js';
export * from './warp/step.js';
export * from './warp/tile-stream.js';
export * from './warp/warp-to-cog.js';
// Writing COGs.
export * from './cog/ifd-writer.js';
export * from './cog/writer.js';
