/**
 * `geo-dino landcover train|info`: a thin layer over @geo-dino/landcover. Inference is
 * `geo-dino chm --landcover <head-dir>` (one backbone pass for canopy height and land cover).
 */
import { resolve } from 'node:path';
import { GeoDinoError, cliValues, flagName, parseWith, z } from '@geo-dino/core';
import { loadLandcoverHead, trainLandcover, type HeadDir, type TrainResult } from '@geo-dino/landcover';
import { BBOX_HELP, aoiFromOptions, bboxField } from '../aoi-option.js';
import type { CommandModule } from '../app.js';
import { addTileServiceOptions, parseHeaders, table, tileServiceParams } from '../context.js';

const repeat = (v: string, prev: string[] = []): string[] => [...prev, v];

const layersValue = z
  .string()
  .min(1)
  .transform((v, ctx) => {
    if (v === 'last' || v === 'all') return v;
    const parts = v.split(',').map((s) => s.trim());
    if (parts.every((p) => /^\d+$/.test(p))) return parts.map(Number);
    ctx.addIssue({ code: 'custom', message: 'must be last, all, or comma-separated feature indexes (0 = first selected layer)' });
    return z.NEVER;
  });

const trainSchema = z.object({
  imagery: z.array(z.string().min(1)).min(1, 'is required'),
  labels: z.string().min(1, 'is required'),
  model: z.string().min(1, 'is required'),
  out: z.string().min(1, 'is required'),
  classes: z.string().min(1).optional(),
  classProperty: z.string().min(1).optional(),
  labelBand: cliValues.positiveInt.optional(),
  ignoreValues: cliValues.list
    .transform((l) => l.map(Number))
    .refine((l) => l.every((v) => Number.isInteger(v)), 'must be integers')
    .optional(),
  aoi: z.string().min(1).optional(),
  bbox: bboxField,
  seed: cliValues.nonNegativeInt.default(0),
  epochs: cliValues.positiveInt.max(10000, 'must be at most 10000').optional(),
  learningRate: cliValues.positiveNumber.optional(),
  l2: z.coerce.number().min(0, 'must be >= 0').optional(),
  classWeights: z.enum(['balanced', 'sqrt', 'none'], { error: 'must be balanced, sqrt or none' }).default('balanced'),
  valFraction: z.coerce.number().gt(0, 'must be between 0 and 1').lt(1, 'must be between 0 and 1').optional(),
  layers: layersValue.default('last'),
  tileSize: cliValues.positiveInt.refine((v) => v % 32 === 0 && v >= 64 && v <= 4096, 'must be a multiple of 32 between 64 and 4096').optional(),
  gsd: cliValues.positiveNumber.optional(),
  crs: z.string().min(1).optional(),
  batchTiles: cliValues.positiveInt.max(1024, 'must be at most 1024').optional(),
  batch: cliValues.positiveInt.max(64, 'must be at most 64').optional(),
  device: z.enum(['auto', 'cpu', 'cuda', 'webgpu'], { error: 'must be auto, cpu, cuda or webgpu' }).default('auto'),
  threads: cliValues.positiveInt.max(256, 'must be at most 256').optional(),
  probeWorkers: cliValues.positiveInt.max(64, 'must be at most 64').optional(),
  name: z.string().min(1).optional(),
  force: z.boolean().default(false),
  collections: cliValues.list.optional(),
  datetime: z.string().min(1).optional(),
  maxCloud: z.coerce.number().min(0, 'must be between 0 and 100').max(100, 'must be between 0 and 100').optional(),
  sign: z.enum(['auto', 'none', 'planetary-computer'], { error: 'must be auto, none or planetary-computer' }).default('auto'),
  header: z.array(z.string()).default([]),
});

const f3 = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : v.toFixed(3));
const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : `${(100 * v).toFixed(1)} %`);

function trainSummary(r: TrainResult): Record<string, unknown> {
  const v = r.report.validation;
  return {
    out: r.out,
    files: r.files,
    demo: r.meta.demo,
    classes: r.meta.classes,
    nodata: r.meta.nodata,
    validation: { overallAccuracy: v.overallAccuracy, meanIou: v.meanIou, pixels: v.pixels, perClass: v.classes.map((c) => ({ value: c.value, name: c.name, iou: c.iou, support: c.support })) },
    baseline: { class: r.report.baseline.class, overallAccuracy: r.report.baseline.metrics.overallAccuracy, meanIou: r.report.baseline.metrics.meanIou },
    train: { overallAccuracy: r.report.train.overallAccuracy, meanIou: r.report.train.meanIou },
    tiles: r.meta.training['tiles'],
    timings: r.report.timings,
  };
}

function trainHuman(r: TrainResult): string {
  const v = r.report.validation;
  const b = r.report.baseline.metrics;
  return [
    `land-cover head written: ${r.out}${r.meta.demo ? '   [DEMO backbone: random weights]' : ''}`,
    `validation  mIoU ${f3(v.meanIou)}, overall accuracy ${pct(v.overallAccuracy)} (${v.pixels} px on held-out tiles)`,
    `baseline    mIoU ${f3(b.meanIou)}, overall accuracy ${pct(b.overallAccuracy)} (always "${r.report.baseline.class}")`,
    '',
    table(
      ['value', 'class', 'IoU', 'support'],
      v.classes.map((c) => [String(c.value), c.name, f3(c.iou), String(c.support)]),
    ),
    '',
    `report: ${r.out}/report.md   use it: geo-dino chm --model <split-model> --landcover ${r.out} ...`,
  ].join('\n');
}

function infoHuman(h: HeadDir): string {
  const m = h.meta;
  const val = m.metrics['validation'] as { meanIou?: number | null; overallAccuracy?: number | null } | undefined;
  return [
    `${m.name}${m.demo ? '  [DEMO backbone]' : ''}: land-cover head, ${m.classes.length} classes, nodata ${m.nodata}`,
    `  directory   ${h.dir}`,
    `  graph       ${m.graph.file} (sha256 ${m.graph.sha256.slice(0, 12)}): ${m.graph.inputs.join(', ')} → ${m.graph.output}`,
    `  backbone    ${m.backbone.name} (weights ${m.backbone.weightsSha256.slice(0, 12)}), layers ${m.features.layers.join(', ')}, ${m.features.channels} channels`,
    `  validation  mIoU ${f3(val?.meanIou)}, overall accuracy ${pct(val?.overallAccuracy)}`,
    '',
    table(['value', 'class', 'colour', 'title'], m.classes.map((c) => [String(c.value), c.name, c.color, c.title ?? ''])),
  ].join('\n');
}

export const landcoverCommand: CommandModule = {
  register(program, app) {
    const lc = program.command('landcover').description('land-cover heads on frozen DINOv3 features: train one from labels, inspect one (run it with geo-dino chm --landcover)');

    addTileServiceOptions(lc.command('train'))
      .description('train a land-cover head (multinomial logistic regression on backbone features) from imagery and labels; writes the head (ONNX + class table) and an accuracy report')
      .requiredOption('--imagery <path|url|stac|xyz:|wmts:>', 'GeoTIFF/COG path or URL, STAC API URL, catalog/item JSON, xyz:<tile URL template> or wmts:<GetCapabilities URL> (repeatable; first = highest priority)', repeat)
      .requiredOption('--labels <raster|geojson>', 'categorical label raster (any CRS; e.g. ESA WorldCover) or GeoJSON polygons with a class property')
      .requiredOption('--model <dir>', 'split (or backbone) model directory whose features the head reads (geo-dino model build --split)')
      .requiredOption('--out <dir>', 'head directory to write')
      .option('--classes <table>', 'class table: worldcover, or a .json/.csv file (value, name, color[, title]); default: the classes in the labels')
      .option('--class-property <name>', 'GeoJSON labels: the property holding the class (number or name; default "class")')
      .option('--label-band <n>', 'raster labels: the band holding the classes (default 1)')
      .option('--ignore-values <list>', 'label values to treat as unlabelled (comma-separated)')
      .option('--aoi <file.geojson>', 'train only inside this area')
      .option('--bbox <minlon,minlat,maxlon,maxlat>', `train only inside this box: ${BBOX_HELP}`)
      .option('--seed <n>', 'seed of the split and the data order (same seed, same head)', '0')
      .option('--epochs <n>', 'passes over the training tiles (default 30)')
      .option('--learning-rate <x>', 'Adam step at the start of the cosine schedule (default 0.02)')
      .option('--l2 <x>', 'L2 penalty on the standardised weights (default 1e-4)')
      .option('--class-weights <mode>', 'rare-class weighting: balanced (default), sqrt, none', 'balanced')
      .option('--val-fraction <f>', 'share of labelled tiles held out for validation (default 0.2)')
      .option('--layers <which>', 'backbone features: last (default), all (the four, concatenated), or indexes like 2,3', 'last')
      .option('--tile-size <px>', 'tile size, a multiple of 32 (default 512, or the model\'s fixed size)')
      .option('--gsd <metres>', 'pixel size of the grid (default 0.6 m, as geo-dino chm)')
      .option('--crs <crs>', 'grid CRS (default: UTM zone of the labels)')
      .option('--batch-tiles <n>', 'tiles per optimisation step (default 4)')
      .option('--batch <n>', 'tiles per backbone call (default: 1 on CPU, 4 on GPU)')
      .option('--device <auto|cpu|cuda|webgpu>', 'execution provider for the backbone', 'auto')
      .option('--threads <n>', 'CPU intra-op threads (default: cores − 1)')
      .option('--probe-workers <n>', 'worker threads for training the probe (default: cores − 1, at most 8); never changes the result')
      .option('--name <name>', 'head name recorded in its metadata')
      .option('--force', 'replace --out if it exists')
      .option('--collections <ids>', 'STAC collections to search (comma-separated)')
      .option('--datetime <range>', 'STAC acquisition window')
      .option('--max-cloud <percent>', 'maximum eo:cloud_cover of STAC scenes')
      .option('--sign <mode>', 'sign asset URLs: auto, none, planetary-computer', 'auto')
      .option('--header <name:value>', 'HTTP header for STAC and imagery requests (repeatable)', repeat)
      .action(async (raw: Record<string, unknown>) => {
        const ctx = app.context();
        const o = parseWith(trainSchema, { imagery: [], ...raw }, { fieldName: flagName });
        if (o.model === 'demo') {
          throw new GeoDinoError(
            'E_ARGUMENT',
            '--model: the demo model is fused (one graph), so its features cannot be read; build a split copy: geo-dino model demo && geo-dino model build --from $GEO_DINO_HOME/models/demo/source --out <dir> --split',
            { details: { field: '--model' } },
          );
        }
        const bboxAoi = o.bbox ? await aoiFromOptions(o, ctx.io.cwd) : undefined;
        const tileService = tileServiceParams(raw);
        const r = await trainLandcover({
          imagery: o.imagery,
          ...(tileService ? { tileService } : {}),
          labels: o.labels,
          model: o.model,
          out: o.out,
          ...(o.classes ? { classes: o.classes } : {}),
          ...(o.classProperty ? { classProperty: o.classProperty } : {}),
          ...(o.labelBand !== undefined ? { labelBand: o.labelBand } : {}),
          ...(o.ignoreValues ? { ignoreValues: o.ignoreValues } : {}),
          ...(o.aoi ? { aoi: o.aoi } : bboxAoi ? { aoi: bboxAoi } : {}),
          seed: o.seed,
          ...(o.epochs !== undefined ? { epochs: o.epochs } : {}),
          ...(o.learningRate !== undefined ? { learningRate: o.learningRate } : {}),
          ...(o.l2 !== undefined ? { l2: o.l2 } : {}),
          classWeights: o.classWeights,
          ...(o.valFraction !== undefined ? { valFraction: o.valFraction } : {}),
          layers: o.layers,
          ...(o.tileSize !== undefined ? { tileSize: o.tileSize } : {}),
          ...(o.gsd !== undefined ? { gsd: o.gsd } : {}),
          ...(o.crs ? { crs: o.crs } : {}),
          ...(o.batchTiles !== undefined ? { batchTiles: o.batchTiles } : {}),
          ...(o.batch !== undefined ? { batch: o.batch } : {}),
          device: o.device,
          ...(o.threads !== undefined ? { threads: o.threads } : {}),
          ...(o.probeWorkers !== undefined ? { probeWorkers: o.probeWorkers } : {}),
          ...(o.name ? { name: o.name } : {}),
          force: o.force,
          ...(o.collections?.length ? { collections: o.collections } : {}),
          ...(o.datetime ? { datetime: o.datetime } : {}),
          ...(o.maxCloud !== undefined ? { maxCloud: o.maxCloud } : {}),
          sign: o.sign,
          ...(o.header.length ? { headers: parseHeaders(o.header) } : {}),
          log: ctx.log,
          progress: ctx.progress,
          signal: ctx.signal,
          env: ctx.io.env,
          cwd: ctx.io.cwd,
        });
        const s = trainSummary(r);
        ctx.result(s, () => trainHuman(r));
      });

    lc.command('info')
      .description('show a land-cover head: classes, the backbone it fits, validation metrics')
      .argument('<head-dir>', 'head directory (from geo-dino landcover train)')
      .action(async (dir: string) => {
        const ctx = app.context();
        const h = await loadLandcoverHead(resolve(ctx.io.cwd, dir));
        ctx.result({ dir: h.dir, ...h.meta }, () => infoHuman(h));
      });
  },
};
