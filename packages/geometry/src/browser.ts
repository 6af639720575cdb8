/**
 * The browser-safe part of @geo-dino/geometry (no Node imports): everything but reading an AOI
 * from a file. Used by the viewer's static mode through @geo-dino/zonal.
 */
export * from './types.js';
export * from './measure.js';
export * from './ops.js';
export * from './aoi.js';
export * from './polygonize.js';
export * from './polygon-raster.js';
export * from './footprint.js';
export * from './affine.js';
export * from './utm.js';
