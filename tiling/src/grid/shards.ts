/**
 * The global shard grid: fixed, aligned cells that cut a run's outputs, so that runs of
 * overlapping AOIs and repeated monitoring runs line up pixel for pixel and shard for shard.
 *
 * Conventions (like Sentinel-2's MGRS tiles or ESA WorldCover's fixed tiles, but on the model's
 * 0.6 m pixel):
 *
 * - AOIs are split by UTM zone and hemisphere (`zonePartsOf`): each part uses its own zone's CRS,
 *   WGS 84 / UTM zone nnN (EPSG:326nn) north of the equator, nnS (EPSG:327nn) south of it, as MGRS
 *   does. Parts across the antimeridian fall into zones 60 and 1 naturally (AOIs are already
 *   split at ±180).
 * - Everything is anchored at the CRS's origin (easting 0, northing 0; for a southern zone the
 *   false northing makes every northing positive). A pixel is `gsd` CRS units; pixel edges lie on
 *   multiples of `gsd`; shards are `shardSize` pixels square with edges on multiples of
 *   `shardSize · gsd`.
 * - Shard (row, col) covers easting [col·S, (col+1)·S) and northing [row·S, (row+1)·S), S the
 *   shard size in CRS units. Rows count northwards like northings. Its id reads
 *   `<zone><N|S>_R<row>_C<col>`, e.g. `37S_R2013_C0097` (a custom CRS: `EPSG3035_R…`).
 *
 * A run's grid for one zone part (`alignedGrid`) is the part's bounding box snapped outwards to the
 * pixel lattice (or a coarser lattice, `stride` pixels); shard windows are integer pixel windows
 * of it.
 */
import { GeoDinoError } from '@geo-dino/core';
import { bboxOf, bboxPolygon, intersection, type MultiPolygonCoords } from '@geo-dino/geometry';
import { crsFromEpsg, type Crs } from '../crs/crs.js';
import type { Grid } from './grid.js';

/** Default shard size in pixels: 8192 px, 4915.2 m at 0.6 m (≈ 24 km²). */
export const DEFAULT_SHARD_SIZE = 8192;
/**
 * Default width of a processing band, in shards (16 × 4915.2 m ≈ 79 km at the defaults). Shards are
 * processed band by band (west to east), each band north to south; a tile straddling two bands is
 * predicted once for each (≈ 0.4 % more inference at the defaults), so that a run's state holds
 * about one row of a band's tiles, whatever the AOI's size.
 */
export const DEFAULT_BAND_SHARDS = 16;
/** Shards must be whole output blocks. */
export const SHARD_BLOCK = 512;

export interface ShardRef {
  /** `<zone>_R<row>_C<col>`. */
  id: string;
  zone: string;
  row: number;
  col: number;
  /** Pixel window in the run's zone grid (may extend past the grid; clip with `clipWindow`). */
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The zone label of a CRS: `37S` for EPSG:32737, `EPSG3035` for others. */
export function zoneLabel(crs: Crs): string {
  const e = crs.epsg;
  if (e !== null && e >= 32601 && e <= 32660) return `${e - 32600}N`;
  if (e !== null && e >= 32701 && e <= 32760) return `${e - 32700}S`;
  return e !== null ? `EPSG${e}` : 'CUSTOM';
}

export function checkShardSize(size: number, field = '--shard-size'): number {
  if (!Number.isInteger(size) || size < SHARD_BLOCK || size % SHARD_BLOCK !== 0) {
    throw new GeoDinoError('E_ARGUMENT', `${field}: must be a multiple of the ${SHARD_BLOCK}-pixel block size, at least ${SHARD_BLOCK} (got ${size})`, { details: { field, value: size } });
  }
  if (size > 65536) throw new GeoDinoError('E_ARGUMENT', `${field}: at most 65536 pixels (got ${size})`, { details: { field, value: size } });
  return size;
}

const pad = (n: number): string => (n < 0 ? `-${String(-n).padStart(4, '0')}` : String(n).padStart(4, '0'));

export function shardId(zone: string, row: number, col: number): string {
  return `${zone}_R${pad(row)}_C${pad(col)}`;
}

/** The part of an AOI (lon/lat) in each UTM zone and hemisphere, west to east, north before south. */
export function zonePartsOf(geometry: MultiPolygonCoords): { crs: Crs; zone: string; geometry: MultiPolygonCoords }[] {
  const [w, s, e, n] = bboxOf(geometry);
  const z0 = Math.max(1, Math.min(60, Math.floor((w + 180) / 6) + 1));
  const z1 = Math.max(1, Math.min(60, Math.floor((Math.min(e, 179.999999) + 180) / 6) + 1));
  const out: { crs: Crs; zone: string; geometry: MultiPolygonCoords }[] = [];
  for (let z = z0; z <= z1; z++) {
    const lon0 = -180 + 6 * (z - 1);
    for (const south of [false, true]) {
      if (south ? s >= 0 : n <= 0) continue;
      const strip = bboxPolygon([lon0, south ? -90 : 0, lon0 + 6, south ? 0 : 90]);
      const part = intersection(geometry, strip);
      if (!part.length) continue;
      const crs = crsFromEpsg((south ? 32700 : 32600) + z);
      out.push({ crs, zone: zoneLabel(crs), geometry: part });
    }
  }
  return out;
}

/**
 * A north-up grid over a bounding box in CRS units ([minX, minY, maxX, maxY]), its edges snapped
 * outwards to multiples of `stride · gsd` from the CRS origin (stride 1: the pixel lattice).
 */
export function alignedGrid(crs: Crs, gsd: number, bbox: readonly [number, number, number, number], stride: number): Grid {
  const [minX, minY, maxX, maxY] = bbox;
  const step = stride * gsd;
  // Integer lattice units first, so that pixel windows of shards are exact integers.
  const kx0 = Math.floor(minX / step + 1e-9);
  const ky1 = Math.ceil(maxY / step - 1e-9);
  const kx1 = Math.max(kx0 + 1, Math.ceil(maxX / step - 1e-9));
  const ky0 = Math.min(ky1 - 1, Math.floor(minY / step + 1e-9));
  const width = (kx1 - kx0) * stride;
  const height = (ky1 - ky0) * stride;
  if (width > 0x7fffffff || height > 0x7fffffff) throw new GeoDinoError('E_LIMIT', `a ${width}×${height} grid is too large`, { details: { width, height } });
  return { crs, gsd, width, height, transform: [kx0 * stride * gsd, gsd, 0, ky1 * stride * gsd, 0, -gsd] };
}

/** Global pixel coordinates of a grid's top-left corner: column from easting 0, row (upwards) from northing 0. */
function gridOriginPx(grid: Grid): { px: number; py: number } {
  return { px: Math.round(grid.transform[0] / grid.gsd), py: Math.round(grid.transform[3] / grid.gsd) };
}

/** The shard grid of one zone grid: shard windows in the grid's pixels. */
export class ShardGrid {
  readonly zone: string;
  private readonly px: number;
  private readonly py: number;

  constructor(
    readonly grid: Grid,
    readonly size: number,
    readonly bandShards: number = DEFAULT_BAND_SHARDS,
  ) {
    checkShardSize(size);
    if (!Number.isInteger(bandShards) || bandShards < 1) throw new GeoDinoError('E_ARGUMENT', `--band-width: must be a whole number of shards, at least 1 (got ${bandShards})`, { details: { field: '--band-width' } });
    this.zone = zoneLabel(grid.crs);
    const o = gridOriginPx(grid);
    this.px = o.px;
    this.py = o.py;
  }

  /** The shard at (row, col). */
  shard(row: number, col: number): ShardRef {
    const S = this.size;
    return { id: shardId(this.zone, row, col), zone: this.zone, row, col, x: col * S - this.px, y: this.py - (row + 1) * S, width: S, height: S };
  }

  /** Shards overlapping a pixel window of the grid, top row first, west to east. */
  *overlapping(x: number, y: number, width: number, height: number): Generator<ShardRef> {
    const S = this.size;
    const c0 = Math.floor((this.px + x) / S);
    const c1 = Math.floor((this.px + x + width - 1) / S);
    const rTop = Math.floor((this.py - y - 1) / S);
    const rBottom = Math.floor((this.py - (y + height - 1) - 1) / S);
    for (let r = rTop; r >= rBottom; r--) for (let c = c0; c <= c1; c++) yield this.shard(r, c);
  }

  /** The processing band of a shard (bands are `bandShards` columns wide, from easting 0). */
  band(s: Pick<ShardRef, 'col'>): number {
    return Math.floor(s.col / this.bandShards);
  }

  /** Processing order: band by band (west to east), then rows north to south, then columns west to east. */
  compare(a: Pick<ShardRef, 'row' | 'col'>, b: Pick<ShardRef, 'row' | 'col'>): number {
    return this.band(a) - this.band(b) || b.row - a.row || a.col - b.col;
  }

  /** Every shard over the grid, in processing order. */
  *all(): Generator<ShardRef> {
    const S = this.size;
    const c0 = Math.floor(this.px / S);
    const c1 = Math.floor((this.px + this.grid.width - 1) / S);
    const rTop = Math.floor((this.py - 1) / S);
    const rBottom = Math.floor((this.py - this.grid.height) / S);
    for (let b = Math.floor(c0 / this.bandShards); b <= Math.floor(c1 / this.bandShards); b++) {
      const b0 = Math.max(c0, b * this.bandShards);
      const b1 = Math.min(c1, (b + 1) * this.bandShards - 1);
      for (let r = rTop; r >= rBottom; r--) for (let c = b0; c <= b1; c++) yield this.shard(r, c);
    }
  }

  /** The part of a shard inside the grid. */
  clip(s: ShardRef): { x: number; y: number; width: number; height: number } {
    const x0 = Math.max(0, s.x);
    const y0 = Math.max(0, s.y);
    const x1 = Math.min(this.grid.width, s.x + s.width);
    const y1 = Math.min(this.grid.height, s.y + s.height);
    return { x: x0, y: y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0) };
  }
}
