export * from './server.js';
export { parseRange, safeSegments, resolveInside } from './files.js';
export { discoverRuns, LocalSource, type RunInfo, type LayerInfo } from './runs.js';
export { polygonStats, valueAt, windowRaster, type HeightStats, type PointValue } from './raster.js';
export { blendAt, sceneAt } from './provenance.js';
export * from './api-types.js';
export { ObjectRunTree } from './object-store.js';
export { publishSite, type PublishOptions, type PublishResult } from './publish.js';
