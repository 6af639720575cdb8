/**
 * `geo-dino tiles`: web tiles (PMTiles v3) from a geo-dino raster, or every web layer of a run
 * directory. A thin layer over @geo-dino/pmtiles.
 */
import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { GeoDinoError, cliValues, flagName, parseWith, readJsonFile, z } from '@geo-dino/core';
import {
  LAYER_NAMES,
  RUN_LAYER_FILES,
  writeRasterTiles,
  writeRunTiles,
  type LandCoverClass,
  type RasterTilesSummary,
} from '@geo-dino/pmtiles';
import type { CommandModule } from '../app.js';
import { table } from '../context.js';

const zoom = z.coerce.number().int('must be an integer').min(0, 'must be 0-24').max(24, 'must be 0-24');

const optionsSchema = z.object({
  out: z.string().min(1).optional(),
  layer: z.enum(LAYER_NAMES as [string, ...string[]], { error: `must be one of ${LAYER_NAMES.join(', ')}` }).optional(),
  band: cliValues.positiveInt.optional(),
  minZoom: zoom.optional(),
  maxZoom: zoom.optional(),
  classes: z.string().min(1).optional(),
  imagery: z.string().min(1).optional(),
  demo: z.boolean().optional(),
  name: z.string().min(1).optional(),
  attribution: z.string().optional(),
  quality: z.coerce.number().int('must be an integer').min(1, 'must be 1-100').max(100, 'must be 1-100').optional(),
});

const classSchema = z
  .array(
    z.object({
      value: z.number().int().min(0).max(255),
      name: z.string().min(1),
      color: z.string().regex(/^#[0-9a-fA-F]{6}$/, 'must be #rrggbb'),
    }),
  )
  .min(1, 'must list at least one class');

async function loadClasses(path: string): Promise<LandCoverClass[]> {
  const json = await readJsonFile(path);
  const list = Array.isArray(json) ? json : (json as { classes?: unknown } | null)?.classes;
  return parseWith(classSchema, list, { source: path, code: 'E_BAD_JSON' });
}

interface TilesReport {
  outputs: { file: string; layer: string; tiles: number; contents: number; bytes: number; minZoom: number; maxZoom: number; min: number | null; max: number | null }[];
}

function report(summaries: RasterTilesSummary[]): TilesReport {
  return {
    outputs: summaries.map((s) => ({
      file: s.path,
      layer: s.layer,
      tiles: s.addressedTiles,
      contents: s.tileContents,
      bytes: s.bytes,
      minZoom: s.minZoom,
      maxZoom: s.maxZoom,
      min: s.info.min,
      max: s.info.max,
    })),
  };
}

function human(r: TilesReport): string {
  return table(
    ['file', 'layer', 'zooms', 'tiles', 'unique', 'size', 'range'],
    r.outputs.map((o) => [
      o.file,
      o.layer,
      `${o.minZoom}-${o.maxZoom}`,
      String(o.tiles),
      String(o.contents),
      `${(o.bytes / 1e6).toFixed(2)} MB`,
      o.min !== null && o.max !== null ? `${o.min.toFixed(2)}..${o.max.toFixed(2)} m` : '',
    ]),
  );
}

export const tilesCommand: CommandModule = {
  register(program, app) {
    program
      .command('tiles')
      .description('write web tiles (PMTiles v3, Web Mercator) from a geo-dino raster, or all web layers of a run directory')
      .argument('<input>', 'a COG (chm.tif, landcover.tif, imagery) or a run directory')
      .option('-o, --out <file.pmtiles>', 'output archive (required for a raster; a run directory gets chm.pmtiles etc.)')
      .option('--layer <name>', `what the raster is: ${LAYER_NAMES.join(', ')} (default: detected)`)
      .option('--band <n>', 'band of a value or class layer (default: height 1, uncertainty 2)')
      .option('--min-zoom <z>', 'coarsest zoom (default 0)')
      .option('--max-zoom <z>', 'finest zoom (default: from the source pixel size)')
      .option('--classes <file.json>', 'land-cover classes: [{"value":1,"name":"forest","color":"#146428"}, ...]')
      .option('--imagery <cog>', 'run directory: also write imagery.pmtiles from this input imagery')
      .option('--demo', 'mark the layer as demo-model output (run directories: read from run.json)')
      .option('--name <text>', 'layer name in the metadata')
      .option('--attribution <text>', 'attribution in the metadata')
      .option('--quality <1-100>', 'WebP quality of imagery tiles (default 85)')
      .action(async (input: string, raw: Record<string, unknown>) => {
        const ctx = app.context();
        const opts = parseWith(optionsSchema, raw, { fieldName: flagName });
        const path = resolve(ctx.io.cwd, input);
        let isDir: boolean;
        try {
          isDir = (await stat(path)).isDirectory();
        } catch {
          throw new GeoDinoError('E_FILE_NOT_FOUND', `${input}: no such file or directory`, { details: { path } });
        }
        const classes = opts.classes ? await loadClasses(resolve(ctx.io.cwd, opts.classes)) : undefined;
        const common = {
          log: ctx.log,
          progress: ctx.progress,
          signal: ctx.signal,
          ...(opts.minZoom !== undefined ? { minZoom: opts.minZoom } : {}),
          ...(opts.maxZoom !== undefined ? { maxZoom: opts.maxZoom } : {}),
          ...(opts.demo ? { demo: true } : {}),
        };
        let summaries: RasterTilesSummary[];
        if (isDir) {
          if (opts.out || opts.layer || opts.band) {
            throw new GeoDinoError('E_ARGUMENT', `${input} is a run directory: its layers go to ${Object.values(RUN_LAYER_FILES).join(', ')}; --out, --layer and --band apply to a single raster`);
          }
          const r = await writeRunTiles(path, {
            ...common,
            ...(opts.imagery ? { imagery: resolve(ctx.io.cwd, opts.imagery) } : {}),
            ...(classes ? { landcoverClasses: classes } : {}),
          });
          summaries = Object.values(r).filter((s): s is RasterTilesSummary => s !== undefined);
        } else {
          if (!opts.out) throw new GeoDinoError('E_ARGUMENT', '--out: is required (the .pmtiles file to write)', { details: { field: '--out' } });
          if (!opts.out.endsWith('.pmtiles')) throw new GeoDinoError('E_ARGUMENT', `--out: must end in .pmtiles (got ${JSON.stringify(opts.out)})`);
          if (opts.imagery) throw new GeoDinoError('E_ARGUMENT', '--imagery: applies to a run directory; give the imagery COG as <input> with --layer imagery');
          const s = await writeRasterTiles(path, resolve(ctx.io.cwd, opts.out), {
            ...common,
            ...(opts.layer ? { layer: opts.layer as (typeof LAYER_NAMES)[number] } : {}),
            ...(opts.band !== undefined ? { band: opts.band } : {}),
            ...(classes ? { classes } : {}),
            ...(opts.name ? { name: opts.name } : {}),
            ...(opts.attribution !== undefined ? { attribution: opts.attribution } : {}),
            ...(opts.quality !== undefined ? { webpQuality: opts.quality } : {}),
          });
          summaries = [s];
        }
        const r = report(summaries);
        ctx.result(r, () => human({ outputs: r.outputs.map((o) => ({ ...o, file: isDir ? join(input, basename(o.file)) : o.file })) }));
      });
  },
};
