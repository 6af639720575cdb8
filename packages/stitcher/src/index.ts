export * from './weights.js';
export * from './stitcher.js';
