/**
 * Rendering Web Mercator tiles of the finest zoom from a geo-dino raster in any CRS, with the
 * tiler's warper: the zoom level is a grid (EPSG:3857, 256·2^z pixels a side) and a tile is a
 * 256×256 window of it. The tiler maps every tile pixel centre to the source (exact proj4 on a
 * refined mesh, GDAL's 0.125-pixel error threshold), picks the overview level, reads the window
 * through its guarded reader and resamples: nearest neighbour for values and classes (values are
 * never invented), bilinear for imagery; a pixel is valid where the source pixel under its
 * centre is.
 */
import { GeoDinoError } from '@geo-dino/core';
import {
  footprintFromBounds,
  interpolateMesh,
  meshFor,
  prepareWarpSource,
  resample,
  WEB_MERCATOR,
  windowFromMesh,
  type Grid,
  type RasterSource,
  type Resampling,
  type WarpSource,
} from '@geo-dino/tiling';
import { TILE_SIZE } from './encoding.js';
import { mercatorToLonLat, ORIGIN_SHIFT, pixelSpan, type MercatorBounds } from './mercator.js';
import { emptyTile, type TileData, type TileKind } from './tiles.js';

const N = TILE_SIZE;

/** Zoom level z of the Web Mercator tile pyramid as a tiler grid. */
export function zoomGrid(z: number): Grid {
  const px = pixelSpan(z);
  return { crs: WEB_MERCATOR, transform: [-ORIGIN_SHIFT, px, 0, ORIGIN_SHIFT, 0, -px], width: N * 2 ** z, height: N * 2 ** z, gsd: px };
}

export interface SourceFootprint {
  /** Bounds in Mercator metres. */
  mercator: MercatorBounds;
  /** [west, south, east, north], degrees. */
  lonLat: [number, number, number, number];
  /** Mercator metres per full-resolution source pixel at the centre. */
  mercatorPixelSize: number;
  /** Ground metres per source pixel at the centre. */
  groundPixelSize: number;
}

/** Where a raster is and how fine its pixels are. */
export function footprintOf(source: RasterSource): SourceFootprint {
  // A fine reference grid: the tiler measures source pixels per grid pixel at the source centre.
  const ref = 20;
  const ws = prepareWarpSource(source, zoomGrid(ref), { overviews: 'none' });
  if (!ws.footprint) throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${source.name}: its extent cannot be projected to Web Mercator`);
  const [x0, y0, x1, y1] = ws.footprint;
  const px = pixelSpan(ref);
  const mercator = { minX: -ORIGIN_SHIFT + x0 * px, maxX: -ORIGIN_SHIFT + x1 * px, maxY: ORIGIN_SHIFT - y0 * px, minY: ORIGIN_SHIFT - y1 * px };
  const mercatorPixelSize = px / ws.ratio;
  if (!Number.isFinite(mercatorPixelSize) || mercatorPixelSize <= 0) {
    throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${source.name}: cannot measure its pixel size in Web Mercator`);
  }
  // A raster across the antimeridian projects to both ends of the Mercator plane: its bounds would
  // span the world (and the pyramid every tile of it).
  const expected = Math.max(source.info.width, source.info.height) * mercatorPixelSize * 4;
  if (mercator.maxX - mercator.minX > Math.max(expected, ORIGIN_SHIFT / 8)) {
    throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${source.name}: crosses the antimeridian (±180°); web tiles of such rasters are not supported yet — split it at 180°`);
  }
  const [, lat] = mercatorToLonLat((mercator.minX + mercator.maxX) / 2, (mercator.minY + mercator.maxY) / 2);
  return {
    mercator,
    lonLat: footprintFromBounds(source).bbox,
    mercatorPixelSize,
    groundPixelSize: mercatorPixelSize * Math.cos((lat * Math.PI) / 180),
  };
}

export interface RenderOptions {
  kind: TileKind;
  /** 0-based bands: one for values and classes, three (or one grey) for imagery. */
  bands: number[];
  signal?: AbortSignal;
}

export interface TileRenderer {
  render(x: number, y: number): Promise<TileData | null>;
  /** Range of the valid values rendered so far (value tiles). */
  readonly range: { min: number; max: number };
}

/** Renders tiles of zoom `z` from `source`. */
export function createTileRenderer(source: RasterSource, z: number, opts: RenderOptions): TileRenderer {
  const grid = zoomGrid(z);
  const ws: WarpSource = prepareWarpSource(source, grid);
  const resampling: Resampling = opts.kind === 'rgb' ? 'bilinear' : 'nearest';
  const range = { min: Infinity, max: -Infinity };
  const nb = opts.bands.length;

  async function render(x: number, y: number): Promise<TileData | null> {
    const win = { x: x * N, y: y * N, width: N, height: N };
    const mesh = meshFor(ws, grid, win);
    const sw = windowFromMesh(mesh, ws, resampling);
    if (!sw) return null;
    const m = interpolateMesh(mesh);
    const data = await source.read(sw, { level: ws.level, bands: opts.bands, ...(opts.signal ? { signal: opts.signal } : {}) });
    const out = Array.from({ length: nb }, () => new Float32Array(N * N));
    const ok = new Uint8Array(N * N);
    resample(m, ws, sw, data.bands, data.valid, resampling, out, ok);
    const tile = emptyTile(opts.kind);
    let any = false;
    const b0 = out[0]!;
    for (let i = 0; i < N * N; i++) {
      if (!ok[i]) continue;
      const v = b0[i]!;
      if (tile.kind === 'value') {
        if (!Number.isFinite(v)) continue;
        tile.values[i] = v;
        if (v < range.min) range.min = v;
        if (v > range.max) range.max = v;
      } else if (tile.kind === 'class') {
        if (!(v >= 0 && v <= 255 && Number.isInteger(v))) continue;
        tile.classes[i] = v;
        tile.valid[i] = 1;
      } else {
        const o = i * 4;
        tile.rgba[o] = Math.round(v);
        tile.rgba[o + 1] = Math.round(nb >= 3 ? out[1]![i]! : v);
        tile.rgba[o + 2] = Math.round(nb >= 3 ? out[2]![i]! : v);
        tile.rgba[o + 3] = 255;
      }
      any = true;
    }
    return any ? tile : null;
  }

  return { render, range };
}
