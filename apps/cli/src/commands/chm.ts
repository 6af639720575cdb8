/**
 * `geo-dino chm`: from an AOI and imagery to a canopy-height run directory. A thin layer over
 * @geo-dino/chm's `runChm`: flags are validated here, the model is found here (the `--model`
 * flag, `$GEO_DINO_MODEL`, or the one CHMv2 model under `$GEO_DINO_HOME/models`), and the result
 * is printed as a table or JSON.
 */
import { basename, join, resolve } from 'node:path';
import { GeoDinoError, cliValues, flagName, geoDinoHome, homePaths, parseWith, z } from '@geo-dino/core';
import { type ChmRunOptions, peakRssBytes, planRun, probeTilesPerSecond, requestHashOf, resolveModel, runChm, summarizePlan, DEFAULT_CHUNK_WIDTH, DEFAULT_SCENE_FEATHER_M, type ChmRunResult, type PlanSummary } from '@geo-dino/chm';
import { openModelDir } from '@geo-dino/model';
import { loadLandcoverHead } from '@geo-dino/landcover';
import { checkRedis, distributeShards, parseQueueUrl } from '@geo-dino/monitor';
import { parseDevice } from '@geo-dino/runtime';
import { parseBaseUrl, parseDatetimeRange } from '@geo-dino/stac';
import { DEFAULT_SHARD_SIZE, RESAMPLING_NAMES, parseResampling } from '@geo-dino/tiling';
import { isS3Url, resolveS3Settings } from '@geo-dino/storage';
import type { CommandModule } from '../app.js';
import { addTileServiceOptions, parseHeaders, recordedCommand, table, tileServiceParams } from '../context.js';
import { isTileServiceHref } from '@geo-dino/tiling';
import { findModelDirs } from '../models.js';
import { BBOX_HELP, aoiFromOptions, bboxField } from '../aoi-option.js';

const optionsSchema = z.object({
  aoi: z.string().min(1).optional(),
  bbox: bboxField,
  imagery: z.array(z.string().min(1)).optional(),
  collections: cliValues.list.optional(),
  datetime: z.string().min(1).optional(),
  maxCloud: z.coerce.number().min(0, 'must be between 0 and 100').max(100, 'must be between 0 and 100').optional(),
  model: z.string().min(1).optional(),
  out: z.string().min(1).optional(),
  gsd: cliValues.positiveNumber.optional(),
  crs: z.string().min(1).optional(),
  tileSize: cliValues.positiveInt.refine((v) => v % 32 === 0 && v >= 64 && v <= 4096, 'must be a multiple of 32 between 64 and 4096').optional(),
  overlap: cliValues.nonNegativeInt.refine((v) => v % 2 === 0, 'must be even').optional(),
  batch: cliValues.positiveInt.max(64, 'must be at most 64').optional(),
  device: z.string().default('auto'),
  threads: cliValues.positiveInt.max(256, 'must be at most 256').optional(),
  resume: z.boolean().default(false),
  force: z.boolean().default(false),
  preferHttps: z.boolean().default(false),
  sign: z.enum(['auto', 'none', 'planetary-computer'], { error: 'must be auto, none or planetary-computer' }).default('auto'),
  header: z.array(z.string()).default([]),
  blend: z.enum(['raised-cosine', 'uniform'], { error: 'must be raised-cosine or uniform' }).default('raised-cosine'),
  harmonise: z.boolean().default(false),
  sceneFeather: z.coerce.number({ error: 'must be a width in metres' }).refine((v) => Number.isFinite(v), 'must be a width in metres').refine((v) => v >= 0, 'must be ≥ 0 (0 turns feathering off)').optional(),
  chunkWidth: cliValues.positiveInt.refine((v) => v % 512 === 0, 'must be a multiple of 512').optional(),
  webTiles: z.boolean().default(true),
  keepState: z.boolean().default(false),
  landcover: z.string().min(1).optional(),
  shardSize: cliValues.positiveInt.refine((v) => v % 512 === 0, 'must be a multiple of the 512-pixel block size').optional(),
  dryRun: z.boolean().default(false),
  bandWidth: cliValues.positiveInt.optional(),
  queue: z.string().min(1).optional(),
  queueName: z.string().min(1).optional(),
  rate: cliValues.positiveNumber.optional(),
  resampling: z.string().min(1).optional(),
  stacBaseUrl: z.string().min(1).optional(),
});

type Options = z.output<typeof optionsSchema>;

const HOW_TO_GET_WEIGHTS = [
  'get the released CHMv2 weights (gated on Hugging Face: accept the licence on the model page, then set HF_TOKEN):',
  '  geo-dino model pull facebook/dinov3-vitl16-chmv2-dpt-head --out ~/.geo-dino/models/chmv2-hf',
  '  geo-dino model build --from ~/.geo-dino/models/chmv2-hf --out ~/.geo-dino/models/chmv2',
  'then run again (or pass --model <dir>); to try the pipeline without weights: geo-dino chm --model demo',
].join('\n');

/** The model to use when --model is not given: $GEO_DINO_MODEL, else the one CHMv2 model installed. */
export async function defaultModel(env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
  const fromEnv = env['GEO_DINO_MODEL'];
  if (fromEnv) return resolve(cwd, fromEnv);
  const found = await findModelDirs(env, cwd);
  const usable: string[] = [];
  const unbuilt: string[] = [];
  for (const f of found) {
    if (f.kind === 'huggingface') {
      unbuilt.push(f.path);
      continue;
    }
    try {
      const md = await openModelDir(f.path);
      if (!md.meta.demo && md.chmHead()) usable.push(f.path);
    } catch {
      /* not usable */
    }
  }
  if (usable.length === 1) return usable[0]!;
  if (usable.length > 1) {
    throw new GeoDinoError('E_ARGUMENT', `--model: several CHMv2 models are installed (${usable.join(', ')}); choose one with --model <dir>`, { details: { field: '--model' } });
  }
  const hint = unbuilt.length ? `Hugging Face weights found at ${unbuilt[0]}: build them with geo-dino model build --from ${unbuilt[0]} --out <model-dir>\n` : '';
  throw new GeoDinoError(
    'E_MODEL_NOT_FOUND',
    `no canopy-height model: --model not given, $GEO_DINO_MODEL not set, none in ${homePaths(geoDinoHome(env)).models}\n${hint}${HOW_TO_GET_WEIGHTS}`,
    { details: { field: '--model' } },
  );
}

function fmtBytes(n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(2)} GiB` : n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

export interface ChmReport {
  out: string;
  upToDate: boolean;
  demo: boolean;
  files: { name: string; bytes: number; path: string }[];
  tiles: ChmRunResult['tiles'];
  provider: string | null;
  grid: unknown;
  statistics: unknown;
  sources: unknown;
  timings: unknown;
  configHash: unknown;
  landcover: unknown;
  sceneFeather: unknown;
}

function report(r: ChmRunResult): ChmReport {
  return {
    out: r.out,
    upToDate: r.upToDate,
    demo: r.demo,
    files: r.files.map((f) => ({ ...f, path: isS3Url(r.out) ? `${r.out.replace(/\/+$/, '')}/${f.name}` : join(r.out, f.name) })),
    tiles: r.tiles,
    provider: r.provider,
    grid: r.run['grid'] ?? null,
    statistics: r.run['statistics'] ?? null,
    sources: r.run['sources'] ?? null,
    timings: r.run['timings'] ?? null,
    configHash: r.run['configHash'] ?? null,
    landcover: r.run['landcover'] ?? null,
    sceneFeather: r.run['sceneFeather'] ?? null,
  };
}

function human(r: ChmReport): string {
  const lines: string[] = [];
  lines.push(`${r.upToDate ? 'already complete (nothing to do)' : 'canopy height map written'}: ${r.out}${r.demo ? '   [DEMO: random-weight model, heights are NOT real canopy heights]' : ''}`);
  const g = r.grid as { width?: number; height?: number; gsd?: number; crs?: string } | null;
  const st = r.statistics as { height?: { minimum: number; maximum: number; mean: number; valid_percent: number } | null } | null;
  if (g) lines.push(`grid       ${g.width}×${g.height} px, ${g.gsd} m, ${g.crs}`);
  if (st?.height) lines.push(`height     ${st.height.minimum.toFixed(1)}–${st.height.maximum.toFixed(1)} m, mean ${st.height.mean.toFixed(2)} m, ${st.height.valid_percent.toFixed(1)}% of the grid valid`);
  const srcs = (r.sources as { id: string; datetime: string | null; pixels: number }[] | null) ?? [];
  if (srcs.length) lines.push(`scenes     ${srcs.length}: ${srcs.slice(0, 3).map((s) => `${s.id}${s.datetime ? ` (${s.datetime.slice(0, 10)})` : ''}`).join(', ')}${srcs.length > 3 ? ', …' : ''}`);
  const t = r.timings as { total_s?: number; tiles_per_s?: number | null } | null;
  lines.push(
    `tiles      ${r.tiles.total} (${r.tiles.predicted} predicted, ${r.tiles.resumed} from an earlier attempt, ${r.tiles.empty} without imagery)${r.provider ? ` on ${r.provider}` : ''}${t?.tiles_per_s ? `, ${t.tiles_per_s.toFixed(2)} tiles/s` : ''}${t?.total_s !== undefined ? `, ${t.total_s.toFixed(1)} s in all` : ''}`,
  );
  const sf = r.sceneFeather as { metres?: number; seams?: number; featheredTiles?: number; extraTileInferences?: number } | null;
  if (sf?.seams) lines.push(`seamlines  ${sf.seams} between scenes, ${sf.metres} m transition zones: ${sf.featheredTiles} tiles feathered, ${sf.extraTileInferences} extra tiles inferred`);
  const lc = r.landcover as { classes?: { name: string; percentage: number }[] } | null;
  if (lc?.classes) lines.push(`land cover ${lc.classes.map((c) => `${c.name} ${c.percentage.toFixed(1)}%`).join(', ')}`);
  lines.push('');
  lines.push(table(['file', 'size'], r.files.map((f) => [f.name, fmtBytes(f.bytes)])));
  return lines.join('\n');
}

function fmtDuration(s: number): string {
  if (s < 120) return `${s.toFixed(0)} s`;
  if (s < 2 * 3600) return `${(s / 60).toFixed(0)} min`;
  if (s < 3 * 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

function humanPlan(p: PlanSummary & { planSeconds: number }): string {
  const lines: string[] = [];
  lines.push(`plan of ${p.aoi.source}: ${p.aoi.areaKm2.toFixed(1)} km², ${p.layout} layout (shards of ${p.shardSize}² px), planned in ${p.planSeconds.toFixed(1)} s — nothing predicted (--dry-run)`);
  lines.push(table(['zone', 'crs', 'grid', 'AOI km²', 'scenes', 'shards', 'tiles'], p.zones.map((z) => [z.zone, z.crs, `${z.width}×${z.height}`, z.aoiKm2.toFixed(1), String(z.scenes), String(z.shards), String(z.tiles)])));
  lines.push(`total      ${p.shards} shards, ${p.tiles} tiles, ${p.outputKm2.toFixed(1)} km² of output (${p.outputPixels} px)`);
  lines.push(`output     chm COGs ≈ ${fmtBytes(p.outputBytes.estimate)} (${fmtBytes(p.outputBytes.uncompressed)} before compression)`);
  if (p.rate && p.estimatedSeconds !== null) lines.push(`time       ≈ ${fmtDuration(p.estimatedSeconds)} at ${p.rate.tilesPerSecond.toPrecision(3)} tiles/s (${p.rate.source === 'probe' ? 'measured on this machine just now' : '--rate'})`);
  if (p.needsForce) lines.push('note       more shards than a run accepts without --force');
  return lines.join('\n');
}

export const chmCommand: CommandModule = {
  register(program, app) {
    const cmd = program
      .command('chm')
      .description('canopy-height map of an AOI: imagery (files, URLs or STAC) → DINOv3 + CHMv2 → seamless COG with uncertainty, provenance, STAC Item and web tiles; resumable')
      .option('--aoi <file.geojson>', 'area of interest (default: the imagery extent; with --model demo alone, the demo scene)')
      .option('--bbox <minlon,minlat,maxlon,maxlat>', BBOX_HELP)
      .option(
        '--imagery <path|url|stac|xyz:|wmts:>',
        'GeoTIFF/COG path or URL, STAC API URL, catalog/collection/item JSON, xyz:<tile URL template> or wmts:<GetCapabilities URL> (repeatable; first = highest priority)',
        (v: string, prev: string[] = []) => [...prev, v],
      )
      .option('--collections <ids>', 'STAC collections to search (comma-separated)')
      .option('--datetime <range>', 'STAC acquisition window: 2023, 2023-06, 2023-01-01/2023-06-30, 2023-06/..; for tile services, the imagery date to record (default: date unknown)')
      .option('--max-cloud <percent>', 'maximum eo:cloud_cover of STAC scenes')
      .option('--model <dir|demo>', 'model directory (default $GEO_DINO_MODEL or the CHMv2 model in $GEO_DINO_HOME/models); "demo": random weights, outputs labelled DEMO')
      .option('--out <dir|s3://bucket/prefix>', 'run directory to create (default $GEO_DINO_HOME/runs/<aoi>-<hash>); s3://: computed in $GEO_DINO_HOME/staging, then published (manifest.json last)')
      .option('--gsd <metres>', "output pixel size (default: the model's, 0.6 m)")
      .option('--crs <crs>', 'output CRS, e.g. EPSG:32637 (default: UTM zone of the AOI)')
      .option('--tile-size <px>', 'model tile size, a multiple of 32 (default 512)')
      .option('--overlap <px>', 'pixels shared by neighbouring tiles, blended (default 64)')
      .option('--batch <n>', 'tiles per model call (default: 1 on CPU, 4 on GPU)')
      .option('--device <auto|cpu|cuda|webgpu|cuda:0,cuda:1>', 'execution provider: auto tries CUDA, then CPU; webgpu only when asked; cuda:0,cuda:1,… runs one session worker per GPU', 'auto')
      .option('--threads <n>', 'CPU intra-op threads (default: every core below 8, cores − 1 from 8)')
      .option('--resume', 'continue an interrupted run of the same arguments')
      .option('--force', 'replace --out if it holds another run (or recompute a finished one)')
      .option('--prefer-https', "read a STAC asset's https alternate (alternate-assets extension) instead of its s3:// href")
      .option('--sign <mode>', 'sign asset URLs: auto (Planetary Computer), none, planetary-computer', 'auto')
      .option('--header <name:value>', 'HTTP header for STAC and imagery requests (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
      .option('--resampling <method>', `imagery onto the output grid, GDAL's names: ${RESAMPLING_NAMES} (default bilinear; palette imagery always nearest)`)
      .option('--stac-base-url <url>', "where the run directory will be published (https://… or s3://…): STAC Items and the Collection get absolute self links (default: the --out URL for s3://, else none: every href relative)")
      .option('--blend <window>', 'tile blending: raised-cosine (default), uniform (plain averaging, for comparison)', 'raised-cosine')
      .option('--scene-feather <metres>', `width of the transition zone across seamlines between overlapping scenes, where tiles are predicted once per scene and blended (default ${DEFAULT_SCENE_FEATHER_M} m, at most the tile stride; 0: off, the plain priority mosaic)`)
      .option('--harmonise', "match each lower-priority scene's colours to its seamline neighbour (per-band moment matching fitted on their overlap; recorded in provenance.geojson); off by default")
      .option('--chunk-width <px>', `widest blending window (multiple of 512, default ${DEFAULT_CHUNK_WIDTH}); bounds memory, never changes the output`)
      .option('--no-web-tiles', 'skip the PMTiles web layers')
      .option('--keep-state', 'keep the tile store after success')
      .option('--shard-size <px>', `output shard edge in pixels, a multiple of 512 (default ${DEFAULT_SHARD_SIZE}: 4915.2 m at 0.6 m); shards are fixed cells of a global grid per UTM zone`)
      .option('--band-width <shards>', 'processing band width in shards (default 16): the state holds about one row of a band\'s tiles; tiles on band borders are predicted once per band; never changes the output')
      .option('--queue <redis-url>', 'distribute the shards of a sharded run to `geo-dino worker --queue <redis-url>` processes; with a local --out they must see its parent at the same path, with --out s3://… they share only the bucket (run state beside the run); this process writes the index files, web layers and run.json')
      .option('--queue-name <name>', 'BullMQ queue name (default geo-dino-tiles)')
      .option('--dry-run', 'print the plan (zones, shards, tiles, output size, time estimate) and stop; predicts nothing')
      .option('--rate <tiles/s>', 'with --dry-run: tiles per second for the time estimate (default: measured in a short probe of the model)')
      .option('--landcover <head-dir>', 'also map land cover with this head (geo-dino landcover train), from the same backbone pass: needs a split model (geo-dino model build --split); writes landcover.tif and landcover.pmtiles');
    addTileServiceOptions(cmd).action(async (raw: Record<string, unknown>) => {
        const ctx = app.context();
        const o: Options = parseWith(optionsSchema, raw, { fieldName: flagName });
        const dev = parseDevice(o.device);
        const resampling = o.resampling ? parseResampling(o.resampling) : undefined;
        const stacBaseUrl = o.stacBaseUrl ? parseBaseUrl(o.stacBaseUrl, '--stac-base-url') : undefined;
        const tileService = tileServiceParams(raw);
        if (o.datetime) parseDatetimeRange(o.datetime, '--datetime');
        if (o.overlap !== undefined && o.tileSize !== undefined && o.overlap >= o.tileSize / 2) {
          throw new GeoDinoError('E_ARGUMENT', `--overlap: must be below half the tile size (${o.tileSize / 2}) (got ${o.overlap})`, { details: { field: '--overlap' } });
        }
        const env = ctx.io.env;
        const cwd = ctx.io.cwd;
        // --bbox becomes an AOI here (both flags: one line, exit 2); an --aoi file stays a path (its hash names the run).
        const bboxAoi = o.bbox ? await aoiFromOptions(o, cwd) : undefined;
        const model = o.model ?? (await defaultModel(env, cwd));
        const request = {
          model,
          ...(o.aoi ? { aoi: o.aoi } : bboxAoi ? { aoi: bboxAoi } : {}),
          ...(o.imagery?.length ? { imagery: o.imagery } : {}),
          ...(o.collections?.length ? { collections: o.collections } : {}),
          ...(o.datetime ? { datetime: o.datetime } : {}),
          ...(o.maxCloud !== undefined ? { maxCloud: o.maxCloud } : {}),
          ...(o.gsd !== undefined ? { gsd: o.gsd } : {}),
          ...(o.crs ? { crs: o.crs } : {}),
          ...(o.tileSize !== undefined ? { tileSize: o.tileSize } : {}),
          ...(o.overlap !== undefined ? { overlap: o.overlap } : {}),
          sign: o.sign,
          ...(o.preferHttps ? { preferHttps: true } : {}),
          blend: o.blend,
          ...(resampling ? { resampling } : {}),
          ...(o.sceneFeather !== undefined ? { sceneFeather: o.sceneFeather } : {}),
          ...(o.harmonise ? { harmonise: true } : {}),
          ...(o.header.length ? { headers: parseHeaders(o.header) } : {}),
          ...(tileService ? { tileService } : {}),
          ...(o.landcover ? { extraHeads: [(await loadLandcoverHead(resolve(cwd, o.landcover))).spec] } : {}),
          ...(o.shardSize !== undefined ? { shardSize: o.shardSize } : {}),
          ...(o.bandWidth !== undefined ? { bandShards: o.bandWidth } : {}),
        };
        if (o.dryRun) {
          const t0 = performance.now();
          const md = await resolveModel(model, { env, cwd, log: ctx.log });
          const plan = await planRun(request, { env, cwd, log: ctx.log, progress: ctx.progress, signal: ctx.signal, modelDir: md, force: true });
          const planSeconds = (performance.now() - t0) / 1000;
          const rate = o.rate !== undefined ? { tilesPerSecond: o.rate, source: 'given' as const } : { tilesPerSecond: await probeTilesPerSecond(md, plan, { device: dev.device, ...(o.threads !== undefined ? { threads: o.threads } : {}), log: ctx.log }), source: 'probe' as const };
          const summary = { ...summarizePlan(plan, rate), planSeconds: Number(planSeconds.toFixed(3)), memory: { maxRssBytes: peakRssBytes() } };
          ctx.result(summary, () => humanPlan(summary));
          return;
        }
        let out = o.out;
        if (!out) {
          // Default: one directory per request, so running the same command twice is a no-op.
          const md = await resolveModel(model, { env, cwd, log: ctx.log });
          const hash = await requestHashOf(request, md, { env, cwd });
          const name = o.aoi ? basename(o.aoi).replace(/\.(geo)?json$/i, '') : o.bbox ? 'bbox' : o.imagery?.length ? (isTileServiceHref(o.imagery[0]!) ? 'tiles' : basename(o.imagery[0]!).replace(/\.(tiff?|json)$/i, '')) : 'demo';
          out = join(homePaths(geoDinoHome(env)).runs, `${name}-${hash.slice(0, 10)}`);
        }
        const queue = o.queue ? { url: parseQueueUrl(o.queue), ...(o.queueName ? { name: o.queueName } : {}) } : null;
        if (queue) await checkRedis(queue.url, { log: ctx.log });
        const result = await runChm({
          ...request,
          out,
          ...(queue
            ? {
                distribute: (j: Parameters<NonNullable<ChmRunOptions['distribute']>>[0]) =>
                  distributeShards(queue, { run: j.plan.requestHash.slice(0, 16), planPath: j.planPath, stateDir: j.stateDir, model: model === 'demo' ? 'demo' : resolve(cwd, model), shards: j.shards, webTiles: o.webTiles, ...(isS3Url(out) ? { s3Endpoint: resolveS3Settings({}, env).endpoint } : {}), log: j.log, progress: j.progress, ...(j.signal ? { signal: j.signal } : {}) }),
              }
            : {}),
          resume: o.resume,
          force: o.force,
          device: dev.device,
          ...(dev.deviceIds ? { deviceIds: dev.deviceIds } : {}),
          ...(o.batch !== undefined ? { batch: o.batch } : {}),
          ...(o.threads !== undefined ? { threads: o.threads } : {}),
          ...(o.chunkWidth !== undefined ? { chunkWidth: o.chunkWidth } : {}),
          webTiles: o.webTiles,
          keepState: o.keepState,
          ...(stacBaseUrl ? { stacBaseUrl } : {}),
          command: recordedCommand(process.argv.slice(2)),
          log: ctx.log,
          progress: ctx.progress,
          signal: ctx.signal,
          env,
          cwd,
        });
        const r = report(result);
        ctx.result(r, () => human(r));
      });
  },
};
