export * from './types.js';
export * from './measure.js';
export * from './ops.js';
export * from './aoi.js';
export * from './polygonize.js';
