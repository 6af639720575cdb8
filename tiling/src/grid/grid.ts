/**
 * Target grids and tile layouts.
 *
 * `gridForAoi(aoi, { crs, gsd, tileSize, overlap })` puts a north-up grid over an AOI: by default
 * in the WGS 84 / UTM zone of the AOI's centroid at 0.6 m (the SAT backbone's and CHMv2's native
 * GSD). The grid's origin is snapped to a multiple of the GSD (like `gdalwarp -tap`), so runs over
 * overlapping AOIs share pixel boundaries.
 *
 * Tiles are `tileSize` square with `overlap` pixels shared between neighbours (stride =
 * tileSize − overlap), laid out row-major from the grid's top-left corner; tiles of the last row
 * and column may extend past the grid's right and bottom edges (those pixels are never valid).
 * Tiles are enumerated lazily (`tiles()`), each with whether it touches the AOI, so a continent-
 * sized AOI costs no memory per tile.
 */
import { GeoDinoError } from '@geo-dino/core';
import { affineCrsToPixel, affinePixelToCrs, bboxOf, DENSIFY_DEG, densify, lonLatToPixelSpace, mapPositions, type Aoi, type MultiPolygonCoords, type Position } from '@geo-dino/geometry';
import { crsLabel, parseCrs, transformBetween, utmCrsFor, WGS84, type Crs } from '../crs/crs.js';
import type { GeoTransform } from '../tiff/geokeys.js';
import { PolygonRaster, type Edge } from './polygon-raster.js';

export interface Grid {
  crs: Crs;
  /** GDAL geotransform: [originX, gsd, 0, originY, 0, −gsd]. */
  transform: GeoTransform;
  width: number;
  height: number;
  /** Pixel size in CRS units (metres for projected CRSs). */
  gsd: number;
}

export interface TileSpec {
  /** Row-major index among all tiles of the layout (including those that do not touch the AOI). */
  index: number;
  row: number;
  col: number;
  /** Pixel window in the grid (may extend past the grid's right/bottom edge). */
  x: number;
  y: number;
  width: number;
  height: number;
  touchesAoi: boolean;
}

export interface GridOptions {
  /** Target CRS (`EPSG:n`, PROJ string, WKT, or a Crs); default: UTM zone of the AOI centroid. */
  crs?: Crs | string;
  /** Pixel size in CRS units; default 0.6 (metres), or its equivalent in degrees for a geographic CRS. */
  gsd?: number;
  /** Tile size in pixels, a multiple of 32 (default 512). */
  tileSize?: number;
  /** Pixels shared by neighbouring tiles (default 64; < tileSize, even). */
  overlap?: number;
}

export const DEFAULT_GSD_M = 0.6;
export const DEFAULT_TILE_SIZE = 512;
export const DEFAULT_OVERLAP = 64;

/** Grid pixel (x right, y down) ↔ grid CRS coordinates. */
export function pixelToCrs(grid: Pick<Grid, 'transform'>, px: number, py: number): Position {
  return affinePixelToCrs(grid.transform, px, py);
}

export function crsToPixel(grid: Pick<Grid, 'transform'>, x: number, y: number): Position {
  return affineCrsToPixel(grid.transform, x, y);
}

export class TileLayout {
  readonly stride: number;
  readonly cols: number;
  readonly rows: number;
  /** The AOI in grid pixel coordinates (x right, y down): rasterise it per tile with `aoiMask`. */
  readonly aoiPixels: MultiPolygonCoords;
  private readonly raster: PolygonRaster;
  private rowCache: { row: number; spans: [number, number][]; edges: Edge[] } | null = null;

  constructor(
    readonly grid: Grid,
    readonly tileSize: number,
    readonly overlap: number,
    aoiPixels: MultiPolygonCoords,
  ) {
    this.stride = tileSize - overlap;
    this.cols = Math.max(1, Math.ceil((grid.width - overlap) / this.stride));
    this.rows = Math.max(1, Math.ceil((grid.height - overlap) / this.stride));
    this.aoiPixels = aoiPixels;
    this.raster = new PolygonRaster(aoiPixels);
  }

  get tileCount(): number {
    return this.rows * this.cols;
  }

  private band(row: number): { spans: [number, number][]; edges: Edge[] } {
    if (this.rowCache?.row !== row) {
      const y0 = row * this.stride;
      const edges = this.raster.edgesInBand(y0, y0 + this.tileSize);
      this.rowCache = { row, spans: this.raster.spansInBand(y0, y0 + this.tileSize, edges), edges };
    }
    return this.rowCache;
  }

  tile(row: number, col: number): TileSpec {
    if (row < 0 || row >= this.rows || col < 0 || col >= this.cols) throw new GeoDinoError('E_ARGUMENT', `no tile (${col}, ${row}) in a ${this.cols}×${this.rows} layout`);
    const x = col * this.stride;
    const y = row * this.stride;
    const spans = this.band(row).spans;
    const touchesAoi = spans.some(([a, b]) => a < x + this.tileSize && b > x);
    return { index: row * this.cols + col, row, col, x, y, width: this.tileSize, height: this.tileSize, touchesAoi };
  }

  /** Tiles in row-major order; by default only those touching the AOI. */
  *tiles(options: { all?: boolean } = {}): Generator<TileSpec> {
    for (let row = 0; row < this.rows; row++) {
      for (let col = 0; col < this.cols; col++) {
        const t = this.tile(row, col);
        if (t.touchesAoi || options.all) yield t;
      }
    }
  }

  /** Number of tiles touching the AOI (one pass over the layout; no memory per tile). */
  countTouching(): number {
    let n = 0;
    for (const _ of this.tiles()) n++;
    return n;
  }

  /** Does the AOI touch this pixel window (clipped to the grid)? */
  windowTouchesAoi(x: number, y: number, width: number, height: number): boolean {
    const y0 = Math.max(0, y);
    const y1 = Math.min(this.grid.height, y + height);
    const x0 = Math.max(0, x);
    const x1 = Math.min(this.grid.width, x + width);
    if (y1 <= y0 || x1 <= x0) return false;
    return this.raster.spansInBand(y0, y1).some(([a, b]) => a < x1 && b > x0);
  }

  /** 1 where the pixel centre lies inside the AOI (and inside the grid), for one tile. */
  aoiMask(tile: Pick<TileSpec, 'x' | 'y' | 'width' | 'height'>): Uint8Array {
    const m = new Uint8Array(tile.width * tile.height);
    const row = Math.floor(tile.y / this.stride);
    const edges = row * this.stride === tile.y && tile.height === this.tileSize ? this.band(row).edges : this.raster.edgesInBand(tile.y, tile.y + tile.height);
    this.raster.fill(m, tile.x, tile.y, tile.width, tile.height, edges);
    // Pixels past the grid are never valid.
    const w = Math.min(tile.width, this.grid.width - tile.x);
    const h = Math.min(tile.height, this.grid.height - tile.y);
    if (w < tile.width || h < tile.height) {
      for (let j = 0; j < tile.height; j++) {
        if (j >= h) m.fill(0, j * tile.width, (j + 1) * tile.width);
        else if (w < tile.width) m.fill(0, j * tile.width + Math.max(0, w), (j + 1) * tile.width);
      }
    }
    return m;
  }
}

/** Densify step for lon/lat AOI edges before projecting (degrees; ~1 km). */

/** Project a lon/lat MultiPolygon to grid pixel coordinates. */
export function lonLatToPixels(geometry: MultiPolygonCoords, grid: Grid): MultiPolygonCoords {
  return lonLatToPixelSpace(geometry, transformBetween(WGS84, grid.crs, 'AOI').forward, grid.transform);
}

function checkTiling(tileSize: number, overlap: number): void {
  if (!Number.isInteger(tileSize) || tileSize < 32 || tileSize % 32 !== 0 || tileSize > 8192) {
    throw new GeoDinoError('E_ARGUMENT', `tile size ${tileSize} must be a multiple of 32 between 32 and 8192`, { details: { tileSize } });
  }
  if (!Number.isInteger(overlap) || overlap < 0 || overlap % 2 !== 0 || overlap >= tileSize / 2) {
    throw new GeoDinoError('E_ARGUMENT', `overlap ${overlap} must be an even number of pixels, at least 0 and below half the tile size (${tileSize / 2})`, {
      details: { overlap },
    });
  }
}

/** A grid and tile layout over an AOI. */
export function gridForAoi(aoi: Aoi, options: GridOptions = {}): TileLayout {
  const tileSize = options.tileSize ?? DEFAULT_TILE_SIZE;
  const overlap = options.overlap ?? DEFAULT_OVERLAP;
  checkTiling(tileSize, overlap);
  const crs = options.crs === undefined ? utmCrsFor(aoi.centroid[0], aoi.centroid[1]) : typeof options.crs === 'string' ? parseCrs(options.crs, '--crs') : options.crs;
  if (aoi.crossesAntimeridian && (crs.geographic || crs.epsg === 3857)) {
    throw new GeoDinoError('E_BAD_AOI', `${aoi.source}: the AOI crosses the antimeridian, which ${crsLabel(crs)} cuts in two; use the default UTM grid or another projected CRS`, {
      details: { source: aoi.source },
    });
  }
  // 0.6 m, converted to the CRS's units (degrees at the equator for a geographic CRS).
  const gsd = options.gsd ?? DEFAULT_GSD_M / crs.metresPerUnit;
  if (!Number.isFinite(gsd) || gsd <= 0) throw new GeoDinoError('E_ARGUMENT', `GSD ${gsd} must be a positive number`, { details: { gsd } });
  const t = transformBetween(WGS84, crs, 'AOI');
  const projected = mapPositions(densify(aoi.geometry, DENSIFY_DEG), ([lon, lat]) => {
    const p = t.forward(lon, lat);
    if (!Number.isFinite(p[0])) {
      throw new GeoDinoError('E_BAD_AOI', `${aoi.source}: the AOI point [${lon}, ${lat}] cannot be projected to ${crsLabel(crs)}`, { details: { source: aoi.source } });
    }
    return p;
  });
  const [minX, minY, maxX, maxY] = bboxOf(projected);
  const x0 = Math.floor(minX / gsd) * gsd;
  const y0 = Math.ceil(maxY / gsd) * gsd;
  const width = Math.max(1, Math.ceil((maxX - x0) / gsd - 1e-9));
  const height = Math.max(1, Math.ceil((y0 - minY) / gsd - 1e-9));
  if (width > 0x7fffffff || height > 0x7fffffff) {
    throw new GeoDinoError('E_LIMIT', `${aoi.source}: a ${width}×${height} grid at ${gsd} ${crs.geographic ? 'degrees' : 'm'} is too large`, { details: { width, height } });
  }
  const grid: Grid = { crs, transform: [x0, gsd, 0, y0, 0, -gsd], width, height, gsd };
  const pixels = mapPositions(projected, ([x, y]) => crsToPixel(grid, x, y));
  return new TileLayout(grid, tileSize, overlap, pixels);
}

/** A layout over an explicit grid (no AOI: every pixel of the grid counts as inside). */
export function layoutForGrid(grid: Grid, options: { tileSize?: number; overlap?: number } = {}): TileLayout {
  const tileSize = options.tileSize ?? DEFAULT_TILE_SIZE;
  const overlap = options.overlap ?? DEFAULT_OVERLAP;
  checkTiling(tileSize, overlap);
  const rect: MultiPolygonCoords = [
    [
      [
        [0, 0],
        [grid.width, 0],
        [grid.width, grid.height],
        [0, grid.height],
        [0, 0],
      ],
    ],
  ];
  return new TileLayout(grid, tileSize, overlap, rect);
}

/**
 * The lon/lat box [west, south, east, north] of a grid (its outline, 64 points per edge); west >
 * east when it crosses the antimeridian. What a tile service source is cut to.
 */
export function gridLonLatBbox(grid: Grid): [number, number, number, number] {
  const t = transformBetween(grid.crs, WGS84, 'grid');
  const lons: number[] = [];
  let south = Infinity;
  let north = -Infinity;
  const N = 64;
  for (let i = 0; i <= N; i++) {
    const f = i / N;
    for (const [px, py] of [
      [f * grid.width, 0],
      [f * grid.width, grid.height],
      [0, f * grid.height],
      [grid.width, f * grid.height],
    ] as const) {
      const [X, Y] = pixelToCrs(grid, px, py);
      const [lon, lat] = t.forward(X, Y);
      if (!Number.isFinite(lon) || !Number.isFinite(lat)) continue;
      lons.push(lon);
      south = Math.min(south, lat);
      north = Math.max(north, lat);
    }
  }
  if (!lons.length) throw new GeoDinoError('E_BAD_CRS', `grid in ${grid.crs.name}: its outline has no lon/lat position`);
  let west = Math.min(...lons);
  let east = Math.max(...lons);
  if (east - west > 180) {
    const shifted = lons.map((l) => (l < 0 ? l + 360 : l));
    west = Math.min(...shifted);
    east = Math.max(...shifted) - 360;
  }
  return [west, south, east, north];
}
