import { affineCrsToPixel, utmZoneOf } from '@geo-dino/geometry/browser';
import type { WindowRaster } from './raster.js';

export interface PointValue {
  inside: boolean;
  col: number | null;
  row: number | null;
  /** Band values (null where the pixel is nodata or outside). */
  values: (number | null)[];
}

/** The pixel containing (lon, lat) and its values in `bands` (0-based). */
export async function valueAt(raster: WindowRaster, lon: number, lat: number, bands: number[]): Promise<PointValue> {
  const [x, y] = raster.projection.forward(lon, lat);
  const [c, r] = affineCrsToPixel(raster.geoTransform, x, y);
  const col = Math.floor(c);
  const row = Math.floor(r);
  const { width, height } = raster;
  const usable = bands.filter((b) => b < raster.bandCount);
  if (!Number.isFinite(c) || !Number.isFinite(r) || col < 0 || row < 0 || col >= width || row >= height) {
    return { inside: false, col: null, row: null, values: bands.map(() => null) };
  }
  const data = await raster.read({ x: col, y: row, width: 1, height: 1 }, { bands: usable });
  const valid = data.valid[0] === 1;
  return {
    inside: true,
    col,
    row,
    values: bands.map((b) => {
      const i = usable.indexOf(b);
      if (i < 0 || !valid) return null;
      const v = Number(data.bands[i]![0]);
      return Number.isFinite(v) ? v : null;
    }),
  };
}

/**
 * The raster of a run's heights for a place, among `names`: chm.tif, or for a sharded run the VRT
 * of the UTM zone (and hemisphere) of that place (`chm-37S.vrt`), else the first zone's.
 */
export function heightRasterNameFor(names: readonly string[], [lon, lat]: readonly [number, number]): string {
  if (names.length <= 1) return names[0] ?? 'chm.tif';
  const zone = utmZoneOf(lon, lat).label;
  return names.find((n) => n === `chm-${zone}.vrt`) ?? names[0]!;
}
