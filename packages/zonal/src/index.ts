export * from './raster.js';
export * from './stats.js';
export * from './point.js';
export * from './provenance.js';
export * from './mosaic.js';
