/**
 * Tile matrix sets: the pyramid of grids a tile service serves (OGC WMTS TileMatrixSet; XYZ/TMS
 * services use the Web Mercator quad), and the choice of the level to read for a target GSD.
 */
import { GeoDinoError } from '@geo-dino/core';
import { transformBetween, WEB_MERCATOR, WGS84, type Crs } from '../crs/crs.js';

export interface TileMatrix {
  /** Identifier used in tile URLs (the zoom level for XYZ). */
  id: string;
  /** CRS units per pixel. */
  resolution: number;
  /** Top-left corner of the matrix, CRS x (easting/longitude) and y (northing/latitude). */
  x0: number;
  y0: number;
  tileWidth: number;
  tileHeight: number;
  matrixWidth: number;
  matrixHeight: number;
  /** Tiles the service has (WMTS TileMatrixSetLimits), inclusive; null: the whole matrix. */
  limits: { minCol: number; maxCol: number; minRow: number; maxRow: number } | null;
}

export interface TileMatrixSet {
  id: string;
  crs: Crs;
  /** Coarsest first. */
  matrices: TileMatrix[];
}

/** Half the width of the Web Mercator world, metres. */
export const WEB_MERCATOR_HALF = 20037508.342789244;

/** The Web Mercator quad of XYZ/TMS services: zoom z has 2^z × 2^z tiles of `tileSize` px. */
export function webMercatorQuad(maxZoom = 24, tileSize = 256): TileMatrixSet {
  const matrices: TileMatrix[] = [];
  for (let z = 0; z <= maxZoom; z++) {
    const n = 2 ** z;
    matrices.push({
      id: String(z),
      resolution: (2 * WEB_MERCATOR_HALF) / (tileSize * n),
      x0: -WEB_MERCATOR_HALF,
      y0: WEB_MERCATOR_HALF,
      tileWidth: tileSize,
      tileHeight: tileSize,
      matrixWidth: n,
      matrixHeight: n,
      limits: null,
    });
  }
  return { id: 'WebMercatorQuad', crs: WEB_MERCATOR, matrices };
}

function haversineM(lon1: number, lat1: number, lon2: number, lat2: number): number {
  const R = 6371008.8;
  const r = Math.PI / 180;
  const dLat = (lat2 - lat1) * r;
  const dLon = (lon2 - lon1) * r;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)));
}

/**
 * Ground size of one pixel of a matrix at (lon, lat), metres: the larger of its width and height
 * on the ground there (in Web Mercator, resolution × cos(latitude)).
 */
export function groundResolution(set: TileMatrixSet, m: TileMatrix, lon: number, lat: number): number {
  const t = transformBetween(WGS84, set.crs, 'tile matrix set');
  const back = transformBetween(set.crs, WGS84, 'tile matrix set');
  const [x, y] = t.forward(lon, lat);
  const [lon1, lat1] = back.forward(x + m.resolution, y);
  const [lon2, lat2] = back.forward(x, y + m.resolution);
  const [lon0, lat0] = back.forward(x, y);
  const d = Math.max(haversineM(lon0, lat0, lon1, lat1), haversineM(lon0, lat0, lon2, lat2));
  if (!Number.isFinite(d) || d <= 0) {
    throw new GeoDinoError('E_BAD_CRS', `tile matrix set ${set.id}: (${lon}, ${lat}) cannot be placed in its CRS`, { details: { tileMatrixSet: set.id } });
  }
  return d;
}

/**
 * The matrix to read for a target pixel size `gsdM` (metres) at (lon, lat): the coarsest one whose
 * ground pixel is at most the target (the nearest level at least as fine); the finest one when
 * none is fine enough (`coarser: true`).
 */
export function chooseMatrix(set: TileMatrixSet, gsdM: number, lon: number, lat: number): { index: number; groundM: number; coarser: boolean } {
  if (!(gsdM > 0)) throw new GeoDinoError('E_ARGUMENT', `target pixel size must be > 0 (got ${gsdM})`);
  const ground = set.matrices.map((m) => groundResolution(set, m, lon, lat));
  let best = -1;
  for (let i = 0; i < ground.length; i++) {
    if (ground[i]! <= gsdM * (1 + 1e-9) && (best < 0 || ground[i]! > ground[best]!)) best = i;
  }
  if (best >= 0) return { index: best, groundM: ground[best]!, coarser: false };
  let finest = 0;
  for (let i = 1; i < ground.length; i++) if (ground[i]! < ground[finest]!) finest = i;
  return { index: finest, groundM: ground[finest]!, coarser: true };
}

/** A matrix named by `--zoom`: its identifier, or its position (0 = coarsest) when numeric and no identifier matches. */
export function findMatrix(set: TileMatrixSet, zoom: string | number, source = '--zoom'): number {
  const key = String(zoom).trim();
  const byId = set.matrices.findIndex((m) => m.id === key);
  if (byId >= 0) return byId;
  if (/^\d+$/.test(key) && Number(key) < set.matrices.length) return Number(key);
  throw new GeoDinoError(
    'E_ARGUMENT',
    `${source}: tile matrix set ${set.id} has no level ${JSON.stringify(key)} (it has ${set.matrices.map((m) => m.id).join(', ')})`,
    { details: { field: source, value: key } },
  );
}
