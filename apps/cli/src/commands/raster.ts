/**
 * `geo-dino raster info | warp`: inspect a GeoTIFF/COG (local or http(s)), and mosaic + warp
 * scenes into an RGBA COG on the model's grid. A thin layer over @geo-dino/tiling.
 */
import { resolve } from 'node:path';
import { GeoDinoError, cliValues, flagName, isRemoteUrl, parseWith, z } from '@geo-dino/core';
import { crsLabel, footprintFromBounds, isTileServiceHref, openRaster, parseCrs, parseResampling, RESAMPLING_NAMES, warpToCog, type RasterInfo, type Stretch, type WarpToCogResult } from '@geo-dino/tiling';
import type { CommandModule } from '../app.js';
import { addTileServiceOptions, tileServiceParams } from '../context.js';
import { BBOX_HELP, aoiFromOptions, bboxField } from '../aoi-option.js';

/** `raster info --json`: bands are numbered from 1, as GDAL, the text output and `tiles --band` do. */
export interface RasterInfoReport extends Omit<RasterInfo, 'crs' | 'bands' | 'alphaBand'> {
  crs: { epsg: number | null; name: string; label: string; proj: string | null } | null;
  /** `band`: 1-based band number. */
  bands: (Omit<RasterInfo['bands'][number], 'index'> & { band: number })[];
  /** 1-based number of the alpha band, when there is one. */
  alphaBand: number | null;
  /** Lon/lat bounds [west, south, east, north] of the raster's extent, when georeferenced. */
  lonLatBounds: [number, number, number, number] | null;
}

const fmt = (v: number, d = 6): string => (Number.isInteger(v) ? String(v) : v.toFixed(d).replace(/0+$/, '').replace(/\.$/, ''));

function humanInfo(r: RasterInfoReport): string {
  const gt = r.geoTransform;
  const lines = [
    ['file', `${r.source} (${(r.fileBytes / 1e6).toFixed(2)} MB${r.bigTiff ? ', BigTIFF' : ''})`],
    ['size', `${r.width} × ${r.height}, ${r.bandCount} band${r.bandCount > 1 ? 's' : ''}, ${r.dtype}`],
    ['bands', r.bands.map((b) => `${b.band} ${b.colorInterp}${b.description ? ` (${b.description})` : ''}`).join(', ')],
    ['crs', r.crs ? r.crs.label : 'none'],
    ['geotransform', gt ? `[${gt.map((v) => fmt(v, 9)).join(', ')}]${r.rotated ? '  (rotated)' : ''}` : 'none'],
    ['pixel size', gt ? `${fmt(Math.hypot(gt[1], gt[4]))} × ${fmt(Math.hypot(gt[2], gt[5]))}` : '-'],
    ['lon/lat bounds', r.lonLatBounds ? r.lonLatBounds.map((v) => v.toFixed(6)).join(', ') : '-'],
    ['nodata', r.nodata === null ? 'none' : String(r.nodata)],
    ['validity', r.mask === 'internal' ? 'GDAL internal mask' : r.mask === 'alpha' ? `alpha band ${r.alphaBand}` : r.mask === 'nodata' ? `nodata value ${r.nodata}` : 'all pixels valid'],
    ['overviews', r.levels.length > 1 ? r.levels.slice(1).map((l) => `${l.width}×${l.height}${l.hasMask ? '+mask' : ''}`).join(', ') : 'none'],
    ['layout', `${r.tiled ? `tiled ${r.blockWidth}×${r.blockHeight}` : `strips of ${r.blockHeight} rows`}, ${r.interleave}-interleaved`],
    ['compression', `${r.compression}${r.predictor > 1 ? `, predictor ${r.predictor}` : ''}, photometric ${r.photometric}`],
  ];
  if (r.colorTable) lines.push(['colour table', `${r.colorTable.length} entries`]);
  const meta = Object.entries(r.metadata);
  if (meta.length) lines.push(['metadata', meta.map(([k, v]) => `${k}=${v.length > 60 ? v.slice(0, 57) + '...' : v}`).join('; ')]);
  for (const p of r.problems) lines.push(['problem', p]);
  const w = Math.max(...lines.map(([k]) => k!.length));
  return lines.map(([k, v]) => `${k!.padEnd(w)}  ${v}`).join('\n');
}

const warpSchema = z.object({
  out: z.string({ error: 'is required (the COG to write)' }).min(1, 'is required (the COG to write)'),
  aoi: z.string().min(1).optional(),
  bbox: bboxField,
  crs: z.string().min(1).optional(),
  gsd: cliValues.positiveNumber.optional(),
  resampling: z.string().min(1).optional(),
  blockSize: z.coerce
    .number()
    .int('must be an integer')
    .refine((v) => v >= 64 && v <= 4096 && v % 32 === 0, 'must be a multiple of 32 between 64 and 4096')
    .optional(),
  stretch: z.string().min(1).optional(),
});

function parseStretch(spec: string): Stretch {
  const [kind, args = ''] = spec.split(':');
  const nums = args ? args.split(',').map((v) => Number(v.trim())) : [];
  const bad = (why: string): GeoDinoError => new GeoDinoError('E_ARGUMENT', `--stretch: ${why} (got ${JSON.stringify(spec)}; use percentile[:low,high], linear:min,max or bits:n)`);
  if (!nums.every(Number.isFinite)) throw bad('numbers expected');
  if (kind === 'percentile') {
    if (nums.length === 0) return { kind: 'percentile' };
    if (nums.length !== 2) throw bad('percentile takes two numbers');
    return { kind: 'percentile', low: nums[0]!, high: nums[1]! };
  }
  if (kind === 'linear') {
    if (nums.length !== 2) throw bad('linear takes min,max');
    return { kind: 'linear', min: nums[0]!, max: nums[1]! };
  }
  if (kind === 'bits') {
    if (nums.length !== 1) throw bad('bits takes one number');
    return { kind: 'bits', bits: nums[0]! };
  }
  throw bad(`unknown stretch ${JSON.stringify(kind)}`);
}

function humanWarp(r: WarpToCogResult): string {
  return [
    `wrote ${r.path} (${(r.bytes / 1e6).toFixed(2)} MB)`,
    `grid   ${r.width} × ${r.height} px at ${fmt(r.gsd)} in ${r.crs}`,
    `tiles  ${r.tilesWritten} written of ${r.tilesTotal} touching the area; ${r.validPixels} valid pixels`,
    ...r.sources.map((s, i) => `source ${i + 1}  ${s.source}: ${s.pixels} px`),
  ].join('\n');
}

export const rasterCommand: CommandModule = {
  register(program, app) {
    const raster = program.command('raster').description('inspect GeoTIFF/COG rasters and warp imagery onto the model grid');
    raster
      .command('info')
      .description('size, bands and colour interpretation, data type, CRS, geotransform, nodata/mask, overviews, tiling, compression')
      .argument('<file|url>', 'a GeoTIFF/COG path or http(s) URL')
      .action(async (input: string) => {
        const ctx = app.context();
        const target = isRemoteUrl(input) ? input : resolve(ctx.io.cwd, input);
        const src = await openRaster(target, { log: ctx.log, signal: ctx.signal });
        try {
          const info = src.info;
          let lonLatBounds: RasterInfoReport['lonLatBounds'] = null;
          if (info.geoTransform && info.crs?.definition) {
            try {
              lonLatBounds = footprintFromBounds(src).bbox;
            } catch (err) {
              ctx.log.debug({ err }, 'no lon/lat bounds');
            }
          }
          const report: RasterInfoReport = {
            ...info,
            source: isRemoteUrl(input) ? info.source : input,
            bands: info.bands.map(({ index, ...b }) => ({ band: index + 1, ...b })),
            alphaBand: info.alphaBand === null ? null : info.alphaBand + 1,
            crs: info.crs ? { epsg: info.crs.epsg, name: info.crs.name, label: crsLabel(info.crs), proj: info.crs.definition } : null,
            lonLatBounds,
          };
          ctx.result(report, () => humanInfo(report));
          if (info.problems.length) {
            throw new GeoDinoError('E_BAD_RASTER', `${report.source}: damaged: ${info.problems.join('; ')}`, { details: { file: report.source, problems: info.problems } });
          }
        } finally {
          await src.close();
        }
      });
    addTileServiceOptions(raster.command('warp'))
      .description('mosaic scenes (first = highest priority), warp them onto a grid and write an RGBA COG (the tiler the chm pipeline uses)')
      .argument('<src...>', 'GeoTIFF/COG paths or http(s) URLs, xyz:<tile URL template> or wmts:<GetCapabilities URL>, highest priority first')
      .option('-o, --out <cog>', 'the COG to write (required)')
      .option('--aoi <geojson>', 'limit to this AOI (Polygon/MultiPolygon GeoJSON, EPSG:4326)')
      .option('--bbox <minlon,minlat,maxlon,maxlat>', `limit to this box: ${BBOX_HELP}`)
      .option('--crs <crs>', 'target CRS: EPSG:n, a PROJ string or WKT (default: UTM zone of the area centroid)')
      .option('--gsd <m>', 'target pixel size in CRS units (default 0.6 m, the model’s GSD)')
      .option('--resampling <method>', `GDAL's names: ${RESAMPLING_NAMES} (default bilinear); others GDAL has (lanczos, cubicspline, ...) are refused`)
      .option('--block-size <px>', 'output tile size (default 512)')
      .option('--stretch <spec>', '16-bit → 8-bit: percentile[:low,high] (default 2,98), linear:min,max or bits:n')
      .action(async (srcs: string[], raw: Record<string, unknown>) => {
        const ctx = app.context();
        const opts = parseWith(warpSchema, raw, { fieldName: flagName });
        const aoi = await aoiFromOptions(opts, ctx.io.cwd);
        const crs = opts.crs ? parseCrs(opts.crs, '--crs') : undefined;
        const stretch = opts.stretch ? parseStretch(opts.stretch) : undefined;
        const result = await warpToCog(
          srcs.map((s) => (isRemoteUrl(s) || isTileServiceHref(s) ? s : resolve(ctx.io.cwd, s))),
          resolve(ctx.io.cwd, opts.out),
          {
            ...(aoi ? { aoi } : {}),
            ...(crs ? { crs } : {}),
            ...(opts.gsd !== undefined ? { gsd: opts.gsd } : {}),
            ...(opts.resampling ? { resampling: parseResampling(opts.resampling) } : {}),
            ...(opts.blockSize !== undefined ? { blockSize: opts.blockSize } : {}),
            ...(stretch ? { stretch } : {}),
            tiles: { ...(tileServiceParams(raw) ?? {}), env: ctx.io.env },
            log: ctx.log,
            progress: ctx.progress,
            signal: ctx.signal,
          },
        );
        ctx.result({ ...result, path: opts.out }, () => humanWarp({ ...result, path: opts.out }));
      });
  },
};
