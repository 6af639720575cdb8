/** The polygon rasteriser lives in @geo-dino/geometry (browser-safe, shared with @geo-dino/zonal); re-exported here. */
export { PolygonRaster, type Edge } from '@geo-dino/geometry';
