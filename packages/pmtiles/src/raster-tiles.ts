/**
 * A geo-dino raster (COG) → a PMTiles archive of one layer: canopy height, uncertainty, imagery or
 * land cover.
 */
import { basename } from 'node:path';
import {
  GEO_DINO_VERSION,
  GeoDinoError,
  silentLogger,
  type Logger,
  type Progress,
} from '@geo-dino/core';
import { crsLabel, openRaster, type RasterInfo, type RasterSource } from '@geo-dino/tiling';
import {
  parseHexColor,
  valueEncodingFor,
  describeValueEncoding,
  isValueEncoding,
  type GeoDinoTilesetInfo,
  type LandCoverClass,
  type LayerName,
  type TileEncoding,
} from './encoding.js';
import { TileType } from './header.js';
import { encodeTileImage } from './image.js';
import { zoomForPixelSize } from './mercator.js';
import { buildPyramid } from './pyramid.js';
import { createTileRenderer, footprintOf } from './render.js';
import { RasterMosaic } from './mosaic.js';
import type { TileKind } from './tiles.js';
import { PMTilesWriter, type PMTilesSummary } from './writer.js';

export const LAYER_NAMES: readonly LayerName[] = ['height', 'uncertainty', 'imagery', 'landcover'];

export interface RasterTilesOptions {
  /** Which layer the raster is; detected from the file when omitted. */
  layer?: LayerName;
  /** 1-based band of a value or class layer (default: height 1, uncertainty 2, land cover 1). */
  band?: number;
  /** Finest zoom (default: from the source's pixel size). */
  maxZoom?: number;
  /** Coarsest zoom (default 0). */
  minZoom?: number;
  /** Land-cover classes (default: from the raster's colour table, named "class N"). */
  classes?: LandCoverClass[];
  /** Mark the layer as coming from the demo model. */
  demo?: boolean;
  name?: string;
  description?: string;
  attribution?: string;
  datetime?: string | null;
  /** WebP quality of imagery tiles (default 85). */
  webpQuality?: number;
  /** Tiles encoded at once (default 4). */
  concurrency?: number;
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
}

export interface RasterTilesSummary extends PMTilesSummary {
  layer: LayerName;
  info: GeoDinoTilesetInfo;
  /** Values outside the encodable range, clamped (value layers). */
  clampedValues: number;
}

const DEFAULT_ATTRIBUTION: Record<LayerName, string> = {
  height: 'Canopy height: geo-dino with Meta DINOv3 + CHMv2',
  uncertainty: 'Canopy height uncertainty: geo-dino with Meta DINOv3 + CHMv2',
  imagery: 'Imagery: see the run\u2019s STAC item for sources',
  landcover: 'Land cover: geo-dino',
};

const DEFAULT_NAME: Record<LayerName, string> = {
  height: 'Canopy height',
  uncertainty: 'Canopy height uncertainty',
  imagery: 'Imagery',
  landcover: 'Land cover',
};

/** The layer a raster most likely is. */
export function detectLayer(info: RasterInfo, name: string): LayerName {
  if (info.dtype === 'float32' || info.dtype === 'float64') return 'height';
  if (info.dtype === 'uint8') {
    if (info.colorTable || info.bands[0]?.colorInterp === 'palette' || /landcover|land_cover|classes/i.test(name)) return 'landcover';
    return 'imagery';
  }
  throw new GeoDinoError(
    'E_UNSUPPORTED_RASTER',
    `${name}: cannot tell which layer a ${info.dtype} raster is (geo-dino writes float32 canopy height, uint8 imagery and uint8 land cover); pass --layer`,
  );
}

function bandsFor(layer: LayerName, info: RasterInfo, name: string, band?: number): number[] {
  const check = (b: number): number => {
    if (!Number.isInteger(b) || b < 1 || b > info.bandCount) {
      throw new GeoDinoError('E_ARGUMENT', `${name}: band ${b} does not exist (the raster has ${info.bandCount} band${info.bandCount === 1 ? '' : 's'})`);
    }
    return b - 1;
  };
  if (layer === 'imagery') {
    if (info.dtype !== 'uint8') {
      throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${name}: imagery tiles need 8-bit bands, this raster is ${info.dtype} (convert it with gdal_translate -ot Byte -scale first)`);
    }
    const colour = info.bands.filter((b) => b.colorInterp !== 'alpha');
    const by = (ci: string): number | undefined => colour.find((b) => b.colorInterp === ci)?.index;
    const r = by('red');
    const g = by('green');
    const b = by('blue');
    if (r !== undefined && g !== undefined && b !== undefined) return [r, g, b];
    if (colour.length >= 3) return [colour[0]!.index, colour[1]!.index, colour[2]!.index];
    return [colour[0]?.index ?? 0];
  }
  if (band !== undefined) return [check(band)];
  if (layer === 'uncertainty') {
    if (info.bandCount < 2) throw new GeoDinoError('E_ARGUMENT', `${name}: has no band 2 (uncertainty); pass --band`);
    return [1];
  }
  return [0];
}

function classesFrom(info: RasterInfo): LandCoverClass[] {
  const table = info.colorTable;
  if (!table) return [];
  // Palettes are usually padded to 256 entries with black: keep entries up to the last coloured one.
  let last = -1;
  table.forEach(([r, g, b], i) => {
    if (i <= 255 && r + g + b > 0) last = i;
  });
  const out: LandCoverClass[] = [];
  for (let value = 0; value <= last; value++) {
    const [r, g, b, a] = table[value]!;
    if (a === 0) continue;
    out.push({ value, name: `class ${value}`, color: '#' + [r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('') });
  }
  return out;
}

function checkClasses(classes: LandCoverClass[], source: string): LandCoverClass[] {
  const seen = new Set<number>();
  for (const [i, c] of classes.entries()) {
    if (!Number.isInteger(c.value) || c.value < 0 || c.value > 255) throw new GeoDinoError('E_ARGUMENT', `${source}: classes[${i}].value must be an integer 0-255 (got ${c.value})`);
    if (seen.has(c.value)) throw new GeoDinoError('E_ARGUMENT', `${source}: classes[${i}]: value ${c.value} is listed twice`);
    if (!parseHexColor(c.color)) throw new GeoDinoError('E_ARGUMENT', `${source}: classes[${i}].color must be #rrggbb (got ${JSON.stringify(c.color)})`);
    seen.add(c.value);
  }
  return classes;
}

const KIND: Record<LayerName, TileKind> = { height: 'value', uncertainty: 'value', imagery: 'rgb', landcover: 'class' };

/**
 * Write `out` (a `.pmtiles` file) from a raster path, URL or open source. Nothing is left at `out`
 * unless it completes.
 */
export async function writeRasterTiles(src: string | RasterSource | RasterMosaic, out: string, opts: RasterTilesOptions = {}): Promise<RasterTilesSummary> {
  const log = opts.log ?? silentLogger();
  const mosaic = src instanceof RasterMosaic ? src : null;
  const source: Pick<RasterSource, 'info' | 'name'> = mosaic ?? (typeof src === 'string' ? await openRaster(src, { log, ...(opts.signal ? { signal: opts.signal } : {}) }) : (src as RasterSource));
  try {
    const { info } = source;
    const file = basename(source.name);
    const layer = opts.layer ?? detectLayer(info, file);
    const kind = KIND[layer];
    const bands = bandsFor(layer, info, source.name, opts.band);
    if (info.rotated) log.debug({ file }, 'rotated geotransform: tiles are resampled through the full affine transform');
    const fp = mosaic ? mosaic.footprint : footprintOf(source as RasterSource);
    const maxZoom = opts.maxZoom ?? zoomForPixelSize(fp.mercatorPixelSize);
    const minZoom = opts.minZoom ?? 0;
    if (!Number.isInteger(maxZoom) || maxZoom < 0 || maxZoom > 24) throw new GeoDinoError('E_ARGUMENT', `max zoom must be an integer 0-24 (got ${maxZoom})`);
    if (!Number.isInteger(minZoom) || minZoom < 0 || minZoom > maxZoom) {
      throw new GeoDinoError('E_ARGUMENT', `min zoom must be an integer from 0 to the max zoom ${maxZoom} (got ${minZoom})`);
    }
    const classes = kind === 'class' ? checkClasses(opts.classes ?? classesFrom(info), source.name) : undefined;
    log.info({ file, layer, minZoom, maxZoom, gsd_m: Number(fp.groundPixelSize.toFixed(3)) }, 'writing web tiles');

    const renderOpts = { kind, bands, ...(opts.signal ? { signal: opts.signal } : {}) };
    const renderer = mosaic ? mosaic.renderer(maxZoom, renderOpts) : createTileRenderer(source as RasterSource, maxZoom, renderOpts);
    // Value layers: Terrarium (-32768..32767 m in 1/256 m steps); values outside are clamped and counted.
    const encoding: TileEncoding = kind === 'value' ? valueEncodingFor() : kind === 'class' ? { type: 'class8', mask: 'alpha' } : { type: 'rgb', mask: 'alpha' };

    const writer = await PMTilesWriter.create(out, { tileType: kind === 'rgb' ? TileType.Webp : TileType.Png, ...(opts.signal ? { signal: opts.signal } : {}) });
    let clamped = 0;
    try {
      const pyramid = await buildPyramid({
        kind,
        minZoom,
        maxZoom,
        bounds: fp.mercator,
        render: (x, y) => renderer.render(x, y),
        encode: async (tile) => {
          const r = await encodeTileImage(tile, encoding, { ...(opts.webpQuality ? { webpQuality: opts.webpQuality } : {}) });
          clamped += r.clamped;
          return r.bytes;
        },
        writer,
        task: `${layer} tiles`,
        ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.progress ? { progress: opts.progress } : {}),
      });
      if (pyramid.tiles === 0) {
        throw new GeoDinoError('E_BAD_RASTER', `${source.name}: has no valid pixels (everything is nodata or masked); no tiles to write`);
      }
      if (clamped > 0) log.warn({ file, clamped, encoding }, 'values outside the tile encoding range were clamped');
      const hasRange = kind === 'value' && renderer.range.min <= renderer.range.max;
      const tilesetInfo: GeoDinoTilesetInfo = {
        version: GEO_DINO_VERSION,
        layer,
        units: kind === 'value' ? 'm' : null,
        encoding,
        min: hasRange ? renderer.range.min : null,
        max: hasRange ? renderer.range.max : null,
        ...(classes ? { classes } : {}),
        demo: opts.demo ?? false,
        source: {
          file,
          bands: bands.map((b) => b + 1),
          crs: info.crs ? crsLabel(info.crs) : 'unknown',
          gsd_m: Number(fp.groundPixelSize.toFixed(4)),
          width: info.width,
          height: info.height,
        },
        resampling: { max_zoom: kind === 'rgb' ? 'bilinear' : 'nearest', lower_zooms: kind === 'class' ? 'mode' : 'mean' },
        datetime: opts.datetime ?? null,
      };
      const attribution = opts.attribution ?? DEFAULT_ATTRIBUTION[layer];
      const [w, s, e, n] = fp.lonLat;
      const summary = await writer.finish({
        metadata: {
          name: opts.name ?? (opts.demo ? `${DEFAULT_NAME[layer]} (DEMO)` : DEFAULT_NAME[layer]),
          description:
            opts.description ??
            (kind === 'value'
              ? `${DEFAULT_NAME[layer]} in metres, ${isValueEncoding(encoding) ? describeValueEncoding(encoding) : ''}`
              : DEFAULT_NAME[layer]),
          attribution: opts.demo ? `DEMO MODEL OUTPUT, not a real prediction. ${attribution}` : attribution,
          type: 'overlay',
          format: kind === 'rgb' ? 'webp' : 'png',
          version: '1',
          // The elevation-style encoding, where MapLibre's raster-dem and other clients look for it.
          ...(isValueEncoding(encoding) ? { encoding: encoding.type } : {}),
          geo_dino: tilesetInfo,
        },
        bounds: [w, s, e, n],
        center: { lon: (w + e) / 2, lat: (s + n) / 2, zoom: Math.max(minZoom, maxZoom - 2) },
      });
      log.info({ file: basename(out), tiles: summary.addressedTiles, bytes: summary.bytes }, 'web tiles written');
      return { ...summary, layer, info: tilesetInfo, clampedValues: clamped };
    } catch (err) {
      await writer.abort();
      throw err;
    }
  } finally {
    if (typeof src === 'string') await (source as RasterSource).close();
  }
}
