export * from './server.js';
export { parseRange, safeSegments, resolveInside } from './files.js';
export { discoverRuns, LocalSource, type RunInfo, type LayerInfo } from './runs.js';
export { polygonStats, valueAt, type HeightStats, type PointValue } from './raster.js';
export { blendAt, sceneAt } from './provenance.js';
export * from './api-types.js';
export { ObjectRunTree } from './object-store.js';
