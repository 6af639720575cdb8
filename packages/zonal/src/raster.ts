/**
 * What the statistics need from a raster: its size, geotransform, projection to and from lon/lat,
 * and windowed reads of bands with a validity mask. The server adapts the tiler's guarded reader to
 * it, the viewer's static mode adapts geotiff.js (over HTTP Range) — the computation is one.
 */

/** Just what is checked between units of work (an AbortSignal fits). */
export interface Abortable {
  readonly aborted: boolean;
}

/** lon/lat (WGS 84) ↔ the raster's CRS; [NaN, NaN] where undefined. */
export interface LonLatProjection {
  forward(lon: number, lat: number): [number, number];
  inverse(x: number, y: number): [number, number];
}

export interface Window {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface WindowData {
  /** One array per requested band, row-major. */
  bands: ArrayLike<number>[];
  /** 1 where the pixel is valid (inside the raster, not nodata, not masked), else 0. */
  valid: ArrayLike<number>;
}

/** Where a raster's pixels are: everything of a WindowRaster but the reading. */
export interface RasterGrid {
  /** Names the raster in messages (a file name, never an absolute path). */
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly bandCount: number;
  /** GDAL geotransform [x0, a, b, y0, d, e]. */
  readonly geoTransform: readonly number[];
  /** Longitude/latitude CRS (pixel areas then scale with the cosine of the latitude). */
  readonly geographic: boolean;
  /** Metres per CRS unit (1 for metres). */
  readonly metresPerUnit: number;
  readonly projection: LonLatProjection;
}

export interface WindowRaster extends RasterGrid {
  /** Bands `bands` (0-based) of a window inside the raster. */
  read(window: Window, options: { bands: number[]; signal?: Abortable }): Promise<WindowData>;
}
