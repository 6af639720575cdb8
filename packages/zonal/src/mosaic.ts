/**
 * Several rasters on one grid (the shard COGs of a sharded run's UTM zone, as its VRT mosaics
 * them) read as one: a window is assembled from the parts it meets; pixels no part covers are
 * invalid. Parts are opened on first use.
 */
import type { Abortable, LonLatProjection, RasterGrid, Window, WindowData, WindowRaster } from './raster.js';

export interface MosaicPart {
  /** Offset and size of the part in the mosaic's pixel grid. */
  x: number;
  y: number;
  width: number;
  height: number;
  open(): Promise<WindowRaster>;
}

/** The mosaic's grid (the zone VRT's). */
export type MosaicGrid = RasterGrid;

export class MosaicRaster implements WindowRaster {
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly bandCount: number;
  readonly geoTransform: readonly number[];
  readonly geographic: boolean;
  readonly metresPerUnit: number;
  readonly projection: LonLatProjection;
  private readonly opened = new Map<MosaicPart, Promise<WindowRaster>>();

  constructor(
    grid: MosaicGrid,
    private readonly parts: readonly MosaicPart[],
  ) {
    this.name = grid.name;
    this.width = grid.width;
    this.height = grid.height;
    this.bandCount = grid.bandCount;
    this.geoTransform = grid.geoTransform;
    this.geographic = grid.geographic;
    this.metresPerUnit = grid.metresPerUnit;
    this.projection = grid.projection;
  }

  private part(p: MosaicPart): Promise<WindowRaster> {
    let r = this.opened.get(p);
    if (!r) {
      r = p.open();
      r.catch(() => this.opened.delete(p));
      this.opened.set(p, r);
    }
    return r;
  }

  async read(w: Window, options: { bands: number[]; signal?: Abortable }): Promise<WindowData> {
    const n = w.width * w.height;
    const bands = options.bands.map(() => new Float64Array(n).fill(NaN));
    const valid = new Uint8Array(n);
    for (const p of this.parts) {
      const x0 = Math.max(w.x, p.x);
      const y0 = Math.max(w.y, p.y);
      const x1 = Math.min(w.x + w.width, p.x + p.width);
      const y1 = Math.min(w.y + w.height, p.y + p.height);
      if (x1 <= x0 || y1 <= y0) continue;
      const raster = await this.part(p);
      const sub = { x: x0 - p.x, y: y0 - p.y, width: x1 - x0, height: y1 - y0 };
      const d = await raster.read(sub, options);
      for (let yy = 0; yy < sub.height; yy++) {
        for (let xx = 0; xx < sub.width; xx++) {
          const si = yy * sub.width + xx;
          if (!d.valid[si]) continue;
          const di = (y0 - w.y + yy) * w.width + (x0 - w.x + xx);
          valid[di] = 1;
          for (let b = 0; b < bands.length; b++) bands[b]![di] = Number(d.bands[b]![si]);
        }
      }
    }
    return { bands, valid };
  }
}
