/**
 * @geo-dino/landcover: land-cover heads on frozen DINOv3 features — class tables, labels aligned
 * to the imagery grid, the linear probe, training from streamed tiles, the head directory (ONNX +
 * class table) and its accuracy report. Inference runs in `geo-dino chm --landcover` (the chm
 * package's extra heads) from `loadLandcoverHead(dir).spec`.
 */
export * from './classes.js';
export * from './labels.js';
export * from './probe.js';
export * from './probe-pool.js';
export * from './metrics.js';
export * from './cache.js';
export * from './head.js';
export * from './report.js';
export * from './train.js';
