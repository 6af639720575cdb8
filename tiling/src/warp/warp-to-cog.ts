/**
 * `warpToCog`: mosaic and warp scenes onto a grid and write an RGBA COG, through the same tile
 * stream and COG writer the `chm` pipeline uses (what `geo-dino raster warp` runs).
 *
 * The grid comes from the AOI (or, without one, from the union of the scenes' bounds) with
 * `gridForAoi`'s defaults (UTM of the centroid, 0.6 m) unless a CRS / GSD is given. Tiles are
 * the writer's 512-pixel blocks (no overlap), so each tile is written as one block; tiles without
 * valid pixels stay sparse. Output: bands red, green, blue (uint8; 16-bit scenes stretched, see
 * raster/rgb.ts) and alpha (255 = valid imagery inside the AOI, 0 elsewhere).
 */
import { GeoDinoError, silentLogger, silentProgress, throwIfAborted, type Logger, type Progress } from '@geo-dino/core';
import { aoiFromBbox, type Aoi } from '@geo-dino/geometry';
import { crsLabel, type Crs } from '../crs/crs.js';
import { gridForAoi, gridLonLatBbox } from '../grid/grid.js';
import { isTileServiceHref, redactTileUrl } from '../tiles/template.js';
import { openTileService, type OpenTileServiceOptions, type TileServiceParams } from '../tiles/service.js';
import { openRaster, type OpenRasterOptions, type RasterSource } from '../raster/source.js';
import { footprintFromBounds } from '../raster/footprint.js';
import { createCogWriter } from '../cog/writer.js';
import type { Stretch } from '../raster/rgb.js';
import { tileStream, NO_SOURCE, type TileSource } from './tile-stream.js';
import type { Resampling } from './warp.js';

export interface WarpToCogOptions {
  /** Limit to this AOI (default: the union of the scenes' bounds). */
  aoi?: Aoi;
  crs?: Crs | string;
  gsd?: number;
  resampling?: Resampling;
  /** Tile/block size of the output (default 512). */
  blockSize?: number;
  stretch?: Stretch;
  open?: Omit<OpenRasterOptions, 'log' | 'signal'>;
  /** Tile services (`xyz:`/`wmts:` sources): level, layer, …, and their HTTP options; read over the grid. */
  tiles?: TileServiceParams & Pick<OpenTileServiceOptions, 'headers' | 'http' | 'diskCache' | 'env'>;
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
}

export interface WarpToCogResult {
  path: string;
  bytes: number;
  width: number;
  height: number;
  crs: string;
  epsg: number | null;
  gsd: number;
  transform: number[];
  tilesWritten: number;
  tilesTotal: number;
  validPixels: number;
  /** Per source (in priority order): pixels it supplied. */
  sources: { source: string; pixels: number }[];
}

export async function warpToCog(sources: readonly string[], out: string, options: WarpToCogOptions = {}): Promise<WarpToCogResult> {
  if (sources.length === 0) throw new GeoDinoError('E_ARGUMENT', 'no source rasters given');
  const log = options.log ?? silentLogger();
  const progress = options.progress ?? silentProgress;
  // Tile services are opened once the grid is known (they are read over it); null until then.
  const opened: (RasterSource | null)[] = [];
  try {
    for (const s of sources) {
      throwIfAborted(options.signal);
      opened.push(isTileServiceHref(s) ? null : await openRaster(s, { ...(options.open ?? {}), log, ...(options.signal ? { signal: options.signal } : {}) }));
    }
    let aoi = options.aoi;
    if (!aoi) {
      const service = sources.find((s) => isTileServiceHref(s));
      if (service) throw new GeoDinoError('E_ARGUMENT', `--aoi or --bbox: required with a tile service (${redactTileUrl(service)}), which covers the world`, { details: { field: '--aoi' } });
      let bbox: [number, number, number, number] | null = null;
      for (const r of opened as RasterSource[]) {
        const b = footprintFromBounds(r).bbox;
        if (b[0] > b[2]) throw new GeoDinoError('E_ARGUMENT', `${r.name}: crosses the antimeridian; give --aoi or --bbox`);
        bbox = bbox ? [Math.min(bbox[0], b[0]), Math.min(bbox[1], b[1]), Math.max(bbox[2], b[2]), Math.max(bbox[3], b[3])] : b;
      }
      aoi = aoiFromBbox(bbox!, 'the scenes’ bounds');
    }
    const B = options.blockSize ?? 512;
    const layout = gridForAoi(aoi, {
      ...(options.crs !== undefined ? { crs: options.crs } : {}),
      ...(options.gsd !== undefined ? { gsd: options.gsd } : {}),
      tileSize: B,
      overlap: 0,
    });
    const grid = layout.grid;
    log.info({ width: grid.width, height: grid.height, crs: crsLabel(grid.crs), gsd: grid.gsd }, 'target grid');
    for (let i = 0; i < sources.length; i++) {
      if (opened[i]) continue;
      opened[i] = await openTileService(sources[i]!, {
        ...(options.tiles ?? {}),
        bbox: gridLonLatBbox(grid),
        gsd: grid.gsd * grid.crs.metresPerUnit,
        log,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    }
    const rasters = opened as RasterSource[];
    const tileSources: TileSource[] = rasters.map((r, i) => ({ id: redactTileUrl(sources[i]!), raster: r, ...(options.stretch ? { stretch: options.stretch } : {}) }));
    const writer = await createCogWriter(out, {
      width: grid.width,
      height: grid.height,
      bands: 4,
      dtype: 'uint8',
      blockSize: B,
      crs: grid.crs,
      transform: grid.transform,
      colorInterp: ['red', 'green', 'blue', 'alpha'],
      bandDescriptions: ['red', 'green', 'blue', 'valid'],
      overviewResampling: 'average',
      metadata: { GEO_DINO_SOURCES: sources.map(redactTileUrl).join(' '), GEO_DINO_RESAMPLING: options.resampling ?? 'bilinear' },
      log,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const perSource = new Float64Array(rasters.length);
    let written = 0;
    let validPixels = 0;
    const total = layout.countTouching();
    try {
      const T = B * B;
      for await (const tile of tileStream(layout, tileSources, {
        ...(options.resampling ? { resampling: options.resampling } : {}),
        log,
        progress,
        ...(options.signal ? { signal: options.signal } : {}),
      })) {
        const alpha = new Uint8Array(T);
        for (let i = 0; i < T; i++) {
          if (tile.valid[i]) {
            alpha[i] = 255;
            validPixels++;
            const s = tile.source[i]!;
            if (s !== NO_SOURCE) perSource[s]!++;
          }
        }
        // Outside the AOI: zero colour too, so the alpha band and the colour agree.
        const rgb = tile.rgb;
        const planes = [rgb.subarray(0, T), rgb.subarray(T, 2 * T), rgb.subarray(2 * T, 3 * T)].map((p) => p.map((v, i) => (alpha[i] ? v : 0)));
        await writer.writeBlock(tile.spec.col, tile.spec.row, [...planes, alpha]);
        written++;
      }
      if (written === 0) {
        throw new GeoDinoError('E_NO_OVERLAP', `no valid imagery of ${sources.length === 1 ? redactTileUrl(sources[0]!) : `the ${sources.length} sources`} inside ${aoi.source}; nothing written`, {
          details: { sources: sources.map(redactTileUrl), aoi: aoi.source },
        });
      }
      const { bytes } = await writer.close();
      return {
        path: out,
        bytes,
        width: grid.width,
        height: grid.height,
        crs: crsLabel(grid.crs),
        epsg: grid.crs.epsg,
        gsd: grid.gsd,
        transform: [...grid.transform],
        tilesWritten: written,
        tilesTotal: total,
        validPixels,
        sources: rasters.map((r, i) => ({ source: r.name, pixels: perSource[i]! })),
      };
    } catch (err) {
      await writer.abort();
      throw err;
    }
  } finally {
    await Promise.all(opened.map((r) => r?.close()));
  }
}
