/**
 * `geo-dino monitor add|list|run|history|start|remove`: scheduled regional monitoring. A thin
 * layer over @geo-dino/monitor: flags are validated here, the store lives in `$GEO_DINO_HOME`.
 */
import { rm } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { GeoDinoError, cliValues, flagName, geoDinoHome, parseWith, redactUrl, toGeoDinoError, z } from '@geo-dino/core';
import {
  MonitorStore,
  addRegion,
  openMonitorStore,
  checkRedis,
  createExecutor,
  describeRegions,
  monitorPaths,
  parseQueueUrl,
  regionHistory,
  runDaemon,
  runRegionNow,
  type ExecutorOptions,
  type HistoryEntry,
  type LandcoverStats,
  type RegionSummary,
  type RunRecord,
} from '@geo-dino/monitor';
import type { CliApp, CommandModule } from '../app.js';
import type { CommandContext } from '../context.js';
import { table } from '../context.js';
import { defaultModel } from './chm.js';
import { BBOX_HELP, aoiFromOptions, bboxField } from '../aoi-option.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

const addSchema = z.object({
  aoi: z.string().min(1).optional(),
  bbox: bboxField,
  schedule: z.string({ error: 'is required (a cron expression, e.g. "0 3 * * 1" for Mondays 03:00)' }).min(1),
  timezone: z.string().min(1).default('UTC'),
  imagery: z.string({ error: 'is required (a STAC API URL or a static STAC catalog)' }).min(1),
  model: z.string().min(1).optional(),
  landcover: z.string().min(1).optional(),
  collections: cliValues.list.optional(),
  maxCloud: z.coerce.number().min(0, 'must be between 0 and 100').max(100, 'must be between 0 and 100').optional(),
  lossThresholdM: cliValues.positiveNumber.default(5),
  minAreaM2: z.coerce.number().refine(Number.isFinite, 'must be a number').refine((v) => v >= 0, 'must be ≥ 0').default(500),
  webhook: z.string().min(1).optional(),
  webhookSecret: z.string().optional(),
  allowPrivateWebhook: z.boolean().default(false),
  shardSize: cliValues.positiveInt.refine((v) => v % 512 === 0, 'must be a multiple of the 512-pixel block size').optional(),
});

const execSchema = z.object({
  queue: z.string().min(1).optional(),
  queueName: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, - and _ only').optional(),
  batchTiles: cliValues.positiveInt.max(1000, 'must be at most 1000').optional(),
  device: z.enum(['auto', 'cpu', 'cuda', 'webgpu'], { error: 'must be auto, cpu, cuda or webgpu' }).default('auto'),
  threads: cliValues.positiveInt.optional(),
  batch: cliValues.positiveInt.max(64, 'must be at most 64').optional(),
  webTiles: z.boolean().default(true),
  keepState: z.boolean().default(false),
});

const startSchema = execSchema.extend({
  once: z.boolean().default(false),
  maxSleepS: cliValues.positiveNumber.default(60),
});

const historySchema = z.object({ limit: cliValues.positiveInt.optional() });

function openStore(ctx: CommandContext): { store: MonitorStore; paths: ReturnType<typeof monitorPaths> } {
  const paths = monitorPaths(geoDinoHome(ctx.io.env));
  return { store: openMonitorStore(paths), paths };
}

async function executorOptions(ctx: CommandContext, o: z.output<typeof execSchema>, store: MonitorStore, paths: ReturnType<typeof monitorPaths>): Promise<ExecutorOptions> {
  let queue: ExecutorOptions['queue'] = null;
  if (o.queue) {
    parseQueueUrl(o.queue);
    // Fail now, clearly, rather than hang on a Redis that is not there.
    await checkRedis(o.queue, { log: ctx.log });
    queue = { url: o.queue, ...(o.queueName ? { name: o.queueName } : {}), ...(o.batchTiles ? { batchTiles: o.batchTiles } : {}) };
  }
  return {
    store,
    paths,
    log: ctx.log,
    progress: ctx.progress,
    env: ctx.io.env,
    queue,
    device: o.device,
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...(o.batch !== undefined ? { batch: o.batch } : {}),
    webTiles: o.webTiles,
    keepWork: o.keepState,
  };
}

function addExecOptions(cmd: Command): Command {
  return cmd
    .option('--queue <redis-url>', 'distributed mode: put the tiles on this Redis (BullMQ) for `geo-dino worker`s, e.g. redis://10.0.0.5:6379')
    .option('--queue-name <name>', 'BullMQ queue name (default geo-dino-tiles)')
    .option('--batch-tiles <n>', 'tiles per queued job (default 4)')
    .option('--device <auto|cpu|cuda|webgpu>', 'execution provider for local runs', 'auto')
    .option('--threads <n>', 'CPU intra-op threads (default: cores − 1)')
    .option('--batch <n>', 'tiles per model call (default: 1 on CPU, 4 on GPU)')
    .option('--no-web-tiles', 'skip the PMTiles web layers of each run')
    .option('--keep-state', "keep each succeeded run's work directory (plan, tile store)");
}

function fmtNum(v: number | null | undefined, digits: number, unit = ''): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(digits)}${unit}`;
}

/** `tree_cover 61.2 %, water 20.0 %, …`: the classes by share, largest first. */
function landcoverLine(lc: LandcoverStats | null | undefined, top = Infinity): string {
  if (!lc) return '–';
  const cls = [...lc.classes].sort((a, b) => b.percent - a.percent);
  const shown = cls.slice(0, top).map((c) => `${c.name} ${fmtNum(c.percent, 1, ' %')}`);
  return shown.join(', ') + (cls.length > top ? ', …' : '');
}

function runLine(r: RunRecord | Omit<RunRecord, 'seq'>): string {
  return `run ${r.id} (${r.region}): ${r.status}${r.errorMessage ? ` — ${r.errorMessage}` : ''}`;
}

function listHuman(rows: RegionSummary[]): string {
  if (!rows.length) return 'no regions yet: add one with `geo-dino monitor add <name> --aoi <file> --schedule "<cron>" --imagery <stac>`';
  return table(
    ['region', 'schedule', 'next run', 'last run', 'mean height', 'cover >2 m', 'land cover', 'webhook'],
    rows.map((r) => [
      r.enabled ? r.name : `${r.name} (paused)`,
      `${r.schedule}${r.timezone !== 'UTC' ? ` ${r.timezone}` : ''}`,
      r.active ? `running (${r.active.id})` : r.due ? 'due now' : (r.nextRun ?? 'never'),
      r.lastRun ? `${r.lastRun.id} ${r.lastRun.status}` : '–',
      fmtNum(r.lastSucceeded?.meanHeightM, 1, ' m'),
      fmtNum(r.lastSucceeded?.cover2mPercent, 1, ' %'),
      r.landcover ? basename(r.landcover) : '–',
      r.webhook ? 'yes' : 'no',
    ]),
  );
}

function historyHuman(name: string, runs: HistoryEntry[]): string {
  if (!runs.length) return `region ${name}: no runs yet (\`geo-dino monitor run ${name}\` runs one now)`;
  const rows = runs.map((h) => [
    h.run.id,
    h.run.trigger,
    h.run.status,
    h.run.acquiredEnd ? h.run.acquiredEnd.slice(0, 10) : '–',
    fmtNum(h.statistics?.meanHeightM, 2, ' m'),
    fmtNum(h.statistics?.cover2mPercent, 1, ' %'),
    fmtNum(h.statistics?.cover5mPercent, 1, ' %'),
    landcoverLine(h.landcover, 3),
    h.run.previousRun ? `${h.changes.length} (${fmtNum(h.changedAreaM2, 0, ' m²')})` : h.run.status === 'succeeded' ? 'baseline' : '–',
    h.shards.length ? String(h.shards.length) : '–',
    h.alerts.map((a) => a.status).join(', ') || '–',
    h.run.errorMessage ?? '',
  ]);
  return table(['run', 'trigger', 'status', 'imagery', 'mean height', 'cover >2 m', 'cover >5 m', 'land cover', 'changes', 'shards', 'alert', 'note'], rows);
}

async function withStore<T>(ctx: CommandContext, fn: (store: MonitorStore, paths: ReturnType<typeof monitorPaths>) => Promise<T>): Promise<T> {
  const { store, paths } = openStore(ctx);
  try {
    return await fn(store, paths);
  } finally {
    store.close();
  }
}

function registerAdd(monitor: Command, app: CliApp): void {
  monitor
    .command('add <name>')
    .description('watch a region: canopy height re-measured on a schedule from new imagery, loss reported')
    .option('--aoi <file.geojson>', 'the region (GeoJSON; copied into the region directory)')
    .option('--bbox <minlon,minlat,maxlon,maxlat>', `the region as a box: ${BBOX_HELP}`)
    .option('--schedule <cron>', 'when to look for new imagery: cron, 5 fields (or 6 with seconds), e.g. "0 3 * * 1"; @daily, @weekly')
    .option('--timezone <iana>', 'time zone of the schedule (default UTC)')
    .option('--imagery <stac>', 'STAC API URL or static STAC catalog to search for new scenes')
    .option('--model <dir|demo>', 'model directory (default $GEO_DINO_MODEL or the CHMv2 model in $GEO_DINO_HOME/models)')
    .option('--landcover <head-dir>', 'also map land cover with this head (geo-dino landcover train) on the same backbone pass: needs a split model (geo-dino model build --split); each run adds landcover.tif, landcover.pmtiles and per-class areas')
    .option('--collections <ids>', 'STAC collections to search (comma-separated)')
    .option('--max-cloud <percent>', 'maximum eo:cloud_cover of scenes')
    .option('--loss-threshold-m <m>', 'height loss (m) a pixel must reach to count as loss (default 5)')
    .option('--min-area-m2 <m2>', 'smallest loss area reported (default 500)')
    .option('--webhook <url>', 'POST alerts here (JSON, HMAC-SHA256 signed)')
    .option('--webhook-secret <secret>', 'signing secret (default: generated and shown once)')
    .option('--allow-private-webhook', 'allow a webhook on a private, loopback or link-local address (a receiver on your own network)')
    .option('--shard-size <px>', 'monitor the region shard by shard on the global shard grid with shards of this edge (a multiple of 512; as `geo-dino chm --shard-size`): a run recomputes only the shards new scenes touch (default: sharded when the region spans more than one default shard)')
    .action(async (name: string, raw: Record<string, unknown>) => {
      const ctx = app.context();
      const o = parseWith(addSchema, raw, { fieldName: flagName });
      const aoi = o.bbox ? await aoiFromOptions(o, ctx.io.cwd) : o.aoi;
      if (!aoi) throw new GeoDinoError('E_ARGUMENT', '--aoi: is required (a GeoJSON file), or give --bbox minlon,minlat,maxlon,maxlat', { details: { field: '--aoi' } });
      const model = o.model ?? (await defaultModel(ctx.io.env, ctx.io.cwd));
      await withStore(ctx, async (store, paths) => {
        const { region, nextRun } = await addRegion(
          store,
          paths,
          {
            name,
            aoi,
            schedule: o.schedule,
            timezone: o.timezone,
            imagery: o.imagery,
            model,
            ...(o.landcover ? { landcover: o.landcover } : {}),
            ...(o.collections ? { collections: o.collections } : {}),
            ...(o.maxCloud !== undefined ? { maxCloud: o.maxCloud } : {}),
            lossThresholdM: o.lossThresholdM,
            minAreaM2: o.minAreaM2,
            ...(o.webhook ? { webhook: o.webhook } : {}),
            ...(o.webhookSecret !== undefined ? { webhookSecret: o.webhookSecret } : {}),
            allowPrivateWebhook: o.allowPrivateWebhook,
            ...(o.shardSize !== undefined ? { shardSize: o.shardSize } : {}),
          },
          { cwd: ctx.io.cwd, env: ctx.io.env, log: ctx.log, signal: ctx.signal },
        );
        // The URL is shown without its password; the signing secret is shown this once.
        const result = { region: { ...region, webhookUrl: region.webhookUrl === null ? null : redactUrl(region.webhookUrl) }, nextRun, directory: paths.region(name) };
        ctx.result(result, () =>
          [
            `region ${region.name} added: ${(region.aoiAreaM2 / 1e6).toFixed(3)} km², schedule ${region.schedule} (${region.timezone}), next run ${nextRun ?? 'never'}`,
            `imagery   ${region.imagery}`,
            `model     ${region.model}`,
            ...(region.landcover ? [`landcover ${region.landcover}`] : []),
            `loss      ≥ ${region.lossThresholdM} m over ≥ ${region.minAreaM2} m²`,
            `outputs   ${paths.runs(name)}`,
            ...(region.webhookUrl
              ? [
                  `webhook   ${result.region.webhookUrl}`,
                  `secret    ${region.webhookSecret}`,
                  '          (shown once: verify X-GeoDino-Signature with it; see the README, "Webhook alerts")',
                ]
              : []),
            'start the scheduler with `geo-dino monitor start`, or run now with `geo-dino monitor run ' + region.name + '`',
          ].join('\n'),
        );
      });
    });
}

export const monitorCommand: CommandModule = {
  register(program, app) {
    const monitor = program.command('monitor').description('scheduled regional monitoring: regions, runs, change detection and alerts');
    registerAdd(monitor, app);

    monitor
      .command('list')
      .description('the monitored regions, their schedules, next and last runs')
      .action(async () => {
        const ctx = app.context();
        await withStore(ctx, async (store) => {
          const rows = describeRegions(store, new Date());
          ctx.result({ regions: rows }, () => listHuman(rows));
        });
      });

    addExecOptions(monitor.command('run <name>').description('run a region now (resumes its interrupted run if there is one)')).action(async (name: string, raw: Record<string, unknown>) => {
      const ctx = app.context();
      const o = parseWith(execSchema, raw, { fieldName: flagName });
      if (o.queue) parseQueueUrl(o.queue);
      await withStore(ctx, async (store, paths) => {
        store.region(name);
        const exec = createExecutor(await executorOptions(ctx, o, store, paths));
        const run = await runRegionNow(name, { store, paths, execute: exec, log: ctx.log, signal: ctx.signal });
        const entry = regionHistory(store, name).runs.find((h) => h.run.id === run.id);
        ctx.result({ run: entry ?? run }, () => {
          const lines = [runLine(run)];
          if (entry?.statistics) {
            const s = entry.statistics;
            lines.push(`mean height ${fmtNum(s.meanHeightM, 2, ' m')}, canopy cover >2 m ${fmtNum(s.cover2mPercent, 1, ' %')}, >5 m ${fmtNum(s.cover5mPercent, 1, ' %')}, ${fmtNum(s.validPercent, 1, ' %')} of the region imaged`);
          }
          if (entry?.landcover) lines.push(`land cover ${landcoverLine(entry.landcover)}`);
          if (entry?.run.previousRun) lines.push(`${entry.changes.length} loss area${entry.changes.length === 1 ? '' : 's'} since ${entry.run.previousRun} (${fmtNum(entry.changedAreaM2, 0, ' m²')})`);
          if (run.status === 'succeeded') lines.push(`outputs ${run.dir}`);
          return lines.join('\n');
        });
        if (run.status === 'failed') {
          const code = run.errorCode && run.errorCode.startsWith('E_') ? run.errorCode : 'E_INTERNAL';
          throw new GeoDinoError(code as GeoDinoError['code'], `run ${run.id} of ${name} failed: ${run.errorMessage ?? 'unknown reason'}`, { details: { region: name, run: run.id } });
        }
      });
    });

    monitor
      .command('history <name>')
      .description("a region's runs: status, imagery date, statistics, changes, alerts")
      .option('--limit <n>', 'the most recent n runs')
      .action(async (name: string, raw: Record<string, unknown>) => {
        const ctx = app.context();
        const o = parseWith(historySchema, raw, { fieldName: flagName });
        await withStore(ctx, async (store) => {
          const h = regionHistory(store, name, o.limit !== undefined ? { limit: o.limit } : {});
          ctx.result(h, () => historyHuman(name, h.runs));
        });
      });

    addExecOptions(
      monitor
        .command('start')
        .description('the scheduler: fires due runs (once per slot; once after downtime), resumes interrupted runs, retries alerts; until Ctrl-C / SIGTERM')
        .option('--once', 'one pass (resume, fire what is due, deliver alerts), then exit — for cron or systemd timers')
        .option('--max-sleep-s <s>', 'longest wait between checks (default 60)'),
    ).action(async (raw: Record<string, unknown>) => {
      const ctx = app.context();
      const o = parseWith(startSchema, raw, { fieldName: flagName });
      if (o.queue) parseQueueUrl(o.queue);
      await withStore(ctx, async (store, paths) => {
        const exec = createExecutor(await executorOptions(ctx, o, store, paths));
        try {
          const summary = await runDaemon({ store, paths, execute: exec, log: ctx.log, signal: ctx.signal, once: o.once, maxSleepMs: o.maxSleepS * 1000 });
          ctx.result(summary, () => `fired ${summary.fired.length} run(s), resumed ${summary.resumed.length}; ${summary.finished.map((f) => `${f.region}/${f.run} ${f.status}`).join(', ') || 'nothing finished'}`);
        } catch (err) {
          const e = toGeoDinoError(err);
          if (e.code === 'E_CANCELLED' && ctx.signal.aborted) {
            ctx.result({ stopped: true }, () => 'stopped');
            return;
          }
          throw e;
        }
      });
    });

    monitor
      .command('remove <name>')
      .description('stop monitoring a region (its run directories stay unless --delete-files)')
      .option('--delete-files', 'also delete the region directory (runs, collection, AOI copy)')
      .action(async (name: string, raw: { deleteFiles?: boolean }) => {
        const ctx = app.context();
        await withStore(ctx, async (store, paths) => {
          const active = store.activeRun(name);
          store.region(name);
          if (active) throw new GeoDinoError('E_ARGUMENT', `region ${name} has a run in progress (${active.id}); stop it first`, { details: { region: name } });
          store.removeRegion(name);
          if (raw.deleteFiles) {
            await rm(paths.region(name), { recursive: true, force: true });
          }
          ctx.result({ removed: name, filesDeleted: !!raw.deleteFiles }, () => `region ${name} removed${raw.deleteFiles ? ' with its files' : `; its files stay in ${paths.region(name)}`}`);
        });
      });
  },
};
