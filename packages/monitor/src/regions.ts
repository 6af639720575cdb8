/**
 * Regions: adding one (every input checked before anything is written), listing them with their
 * next run, and a region's run history with statistics, changes and alerts.
 */
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { GeoDinoError, ensureDir, fileExists, isRemoteUrl, redactUrl, silentLogger, writeJsonAtomic, type Logger } from '@geo-dino/core';
import { loadAoi, type Aoi } from '@geo-dino/geometry';
import { plannedExtraHeads, resolveModel } from '@geo-dino/chm';
import { loadLandcoverHead } from '@geo-dino/landcover';
import { detectImagerySource } from '@geo-dino/stac';
import { checkShardSize, isTileServiceHref, redactTileUrl } from '@geo-dino/tiling';
import type { MonitorPaths } from './paths.js';
import { assertRegionName } from './paths.js';
import { parseSchedule, systemClock, type Clock } from './schedule.js';
import { regionDirectoriesOnDisk, type AlertRecord, type ChangeRecord, type LandcoverStats, type MonitorStore, type Region, type RunRecord, type RunStats } from './store.js';
import { checkWebhookTarget, newWebhookSecret } from './webhook.js';

export interface AddRegionInput {
  name: string;
  /** AOI GeoJSON file, or an AOI (e.g. from `--bbox`). */
  aoi: string | Aoi;
  schedule: string;
  timezone?: string;
  /** STAC API URL or static catalog (path or URL). */
  imagery: string;
  /** Model directory or `demo`. */
  model: string;
  /** A land-cover head directory (`geo-dino landcover train`): land cover from the same backbone pass (needs a split model). */
  landcover?: string | null;
  collections?: string[];
  maxCloud?: number;
  lossThresholdM?: number;
  minAreaM2?: number;
  webhook?: string;
  /** Shared secret for the webhook signature (default: 32 random bytes, hex). */
  webhookSecret?: string;
  /** Allow a webhook on a private, loopback or link-local address (an on-premise receiver). */
  allowPrivateWebhook?: boolean;
  /** Monitor shard by shard with shards of this edge (pixels, a multiple of 512). */
  shardSize?: number;
}

export interface AddRegionOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  log?: Logger;
  signal?: AbortSignal;
  /** Check that the imagery source answers and is STAC (default true). */
  checkImagery?: boolean;
}

/** Add a region: validates the name, schedule, AOI, imagery, model, land-cover head and webhook, copies the AOI into the region directory, records it. */
export async function addRegion(store: MonitorStore, paths: MonitorPaths, input: AddRegionInput, o: AddRegionOptions = {}): Promise<{ region: Region; nextRun: string | null }> {
  const cwd = o.cwd ?? process.cwd();
  const log = o.log ?? silentLogger();
  const clock = o.clock ?? systemClock;
  assertRegionName(input.name);
  if (store.findRegion(input.name)) {
    throw new GeoDinoError('E_ARGUMENT', `region ${JSON.stringify(input.name)} already exists (see \`geo-dino monitor list\`; remove it first to redefine it)`, { details: { region: input.name } });
  }
  // A directory left by a region of the same name (a lost store, a removed record) is never
  // written over.
  const regionDir = paths.region(input.name);
  const leftover = regionDirectoriesOnDisk(paths).includes(input.name);
  if (leftover) {
    throw new GeoDinoError(
      'E_ARGUMENT',
      `region ${JSON.stringify(input.name)}: ${regionDir} already holds a region's files (its AOI, runs) that the store does not know; move it aside or choose another name`,
      { details: { region: input.name, directory: regionDir } },
    );
  }
  const timezone = input.timezone ?? 'UTC';
  const schedule = parseSchedule(input.schedule, timezone);
  // Cheap checks first; then the ones that read files, the network, the model.
  const webhookUrl = input.webhook ? await checkWebhookTarget(input.webhook, { allowPrivate: input.allowPrivateWebhook ?? false }) : null;
  if (input.webhookSecret !== undefined && input.webhookSecret.length < 16) {
    throw new GeoDinoError('E_ARGUMENT', '--webhook-secret: must be at least 16 characters', { details: { field: '--webhook-secret' } });
  }
  const threshold = input.lossThresholdM ?? 5;
  const minArea = input.minAreaM2 ?? 500;
  if (!(threshold > 0)) throw new GeoDinoError('E_ARGUMENT', `--loss-threshold-m: must be > 0 (got ${threshold})`, { details: { field: '--loss-threshold-m' } });
  const shardSize = input.shardSize !== undefined ? checkShardSize(input.shardSize) : null;
  if (!(minArea >= 0)) throw new GeoDinoError('E_ARGUMENT', `--min-area-m2: must be ≥ 0 (got ${minArea})`, { details: { field: '--min-area-m2' } });

  const aoiPath = typeof input.aoi === 'string' ? resolve(cwd, input.aoi) : input.aoi.source;
  const aoi = typeof input.aoi === 'string' ? await loadAoi(aoiPath) : input.aoi;
  if (isTileServiceHref(input.imagery)) {
    throw new GeoDinoError(
      'E_ARGUMENT',
      `--imagery ${redactTileUrl(input.imagery)}: a tile service carries no acquisition date, so monitoring cannot tell new imagery from old; give a STAC API or a static STAC catalog (dated scenes)`,
      { details: { field: '--imagery' } },
    );
  }
  const imagery = isRemoteUrl(input.imagery) ? input.imagery : resolve(cwd, input.imagery);
  if (o.checkImagery !== false) {
    const src = await detectImagerySource(imagery, { cwd, log, ...(o.signal ? { signal: o.signal } : {}) });
    if (src.kind === 'raster') {
      throw new GeoDinoError(
        'E_ARGUMENT',
        `--imagery ${input.imagery}: is a single raster; monitoring needs a STAC API or a static STAC catalog, searched at each run for scenes newer than the last`,
        { details: { field: '--imagery' } },
      );
    }
  }
  const model = input.model === 'demo' ? 'demo' : resolve(cwd, input.model);
  const md = await resolveModel(model, { log, cwd, ...(o.env ? { env: o.env } : {}) });
  if (md.meta.demo) log.warn({ model: md.meta.name }, 'this region uses the demo model: random weights, its heights and alerts are NOT real');
  // The head, checked as `geo-dino chm --landcover` checks it when planning: a split model, the
  // backbone the head was trained on. The region keeps the head directory's path (like the model's).
  let landcover: string | null = null;
  if (input.landcover) {
    const head = await loadLandcoverHead(resolve(cwd, input.landcover));
    plannedExtraHeads({ extraHeads: [head.spec] }, md);
    landcover = head.dir;
  }

  // Everything checked: write the AOI copy, then the record (removing the copy if that fails).
  const existed = await fileExists(regionDir);
  const aoiCopy = paths.aoi(input.name);
  try {
    await ensureDir(regionDir);
    await writeJsonAtomic(aoiCopy, {
      type: 'FeatureCollection',
      features: [{ type: 'Feature', properties: { ...aoi.properties, 'geo-dino:source': aoiPath }, geometry: { type: 'MultiPolygon', coordinates: aoi.geometry } }],
    });
    const region = store.addRegion(
      {
        name: input.name,
        aoiPath: aoiCopy,
        aoiAreaM2: aoi.areaM2,
        aoiBbox: aoi.bbox,
        schedule: schedule.pattern,
        timezone,
        imagery,
        model,
        landcover,
        collections: input.collections?.length ? input.collections : null,
        maxCloud: input.maxCloud ?? null,
        lossThresholdM: threshold,
        minAreaM2: minArea,
        webhookUrl,
        webhookSecret: webhookUrl ? (input.webhookSecret ?? newWebhookSecret()) : null,
        webhookAllowPrivate: webhookUrl !== null && (input.allowPrivateWebhook ?? false),
        shardSize,
      },
      clock.now(),
    );
    const next = schedule.next(new Date(region.createdAt));
    return { region, nextRun: next ? next.toISOString() : null };
  } catch (err) {
    if (!existed) await rm(regionDir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

export interface RegionSummary {
  name: string;
  enabled: boolean;
  schedule: string;
  timezone: string;
  imagery: string;
  model: string | null;
  /** The land-cover head directory, when the region maps land cover. */
  landcover: string | null;
  lossThresholdM: number;
  minAreaM2: number;
  webhook: string | null;
  /** Shard edge (pixels) of a region monitored shard by shard (`--shard-size`), else null. */
  shardSize: number | null;
  aoiAreaKm2: number;
  /** The next slot (may be in the past: due). */
  nextRun: string | null;
  due: boolean;
  active: { id: string; status: string; phase: string | null; owner: string | null } | null;
  lastRun: { id: string; status: string; finishedAt: string | null; error: string | null } | null;
  lastSucceeded: { id: string; acquiredEnd: string | null; meanHeightM: number | null; cover2mPercent: number | null } | null;
  runs: number;
}

export function describeRegions(store: MonitorStore, now: Date): RegionSummary[] {
  return store.regions().map((r) => {
    let next: Date | null = null;
    try {
      next = parseSchedule(r.schedule, r.timezone).next(new Date(r.lastSlot ?? r.createdAt));
    } catch {
      next = null;
    }
    const runs = store.runs(r.name);
    const last = runs[0] ?? null;
    const ok = runs.find((x) => x.status === 'succeeded') ?? null;
    const active = store.activeRun(r.name);
    const stats = ok ? store.stats(ok.seq) : null;
    return {
      name: r.name,
      enabled: r.enabled,
      schedule: r.schedule,
      timezone: r.timezone,
      imagery: r.imagery,
      model: r.model,
      landcover: r.landcover,
      lossThresholdM: r.lossThresholdM,
      minAreaM2: r.minAreaM2,
      webhook: r.webhookUrl === null ? null : redactUrl(r.webhookUrl),
      shardSize: r.shardSize,
      aoiAreaKm2: r.aoiAreaM2 / 1e6,
      nextRun: next ? next.toISOString() : null,
      due: next !== null && next.getTime() <= now.getTime(),
      active: active ? { id: active.id, status: active.status, phase: active.phase, owner: active.owner } : null,
      lastRun: last ? { id: last.id, status: last.status, finishedAt: last.finishedAt, error: last.errorMessage } : null,
      lastSucceeded: ok ? { id: ok.id, acquiredEnd: ok.acquiredEnd, meanHeightM: stats?.meanHeightM ?? null, cover2mPercent: stats?.cover2mPercent ?? null } : null,
      runs: runs.length,
    };
  });
}

export interface HistoryEntry {
  run: Omit<RunRecord, 'seq'>;
  statistics: RunStats | null;
  /** Land cover inside the AOI (regions with a land-cover head). */
  landcover: LandcoverStats | null;
  changes: ChangeRecord[];
  changedAreaM2: number;
  alerts: Omit<AlertRecord, 'payload' | 'runSeq'>[];
  /** Regions on the shard grid: the shards this run recomputed, each with its comparison. */
  shards: { id: string; zone: string; path: string; sha256: string; previousRun: string | null; changes: number | null; changedAreaM2: number | null }[];
}

/** A region's runs, newest first, with what each found. */
export function regionHistory(store: MonitorStore, name: string, options: { limit?: number } = {}): { region: Omit<Region, 'webhookSecret'>; runs: HistoryEntry[] } {
  const { webhookSecret: _secret, ...stored } = store.region(name);
  void _secret;
  const region = { ...stored, webhookUrl: stored.webhookUrl === null ? null : redactUrl(stored.webhookUrl) };
  const runs = store.runs(name, options.limit !== undefined ? { limit: options.limit } : {}).map((r) => {
    const { seq, ...run } = r;
    const changes = store.changes(seq);
    return {
      run,
      statistics: store.stats(seq),
      landcover: store.landcoverStats(seq),
      changes,
      changedAreaM2: changes.reduce((s, c) => s + c.areaM2, 0),
      alerts: store.alerts({ runSeq: seq }).map(({ payload: _p, runSeq: _s, ...a }) => {
        void _p;
        void _s;
        return a;
      }),
      shards: store.shardResults(seq).map((r) => ({
        id: r.shardId,
        zone: r.zone,
        path: r.path,
        sha256: r.sha256,
        previousRun: r.previousRunSeq !== null ? store.runBySeq(r.previousRunSeq).id : null,
        changes: r.changes,
        changedAreaM2: r.changedAreaM2,
      })),
    };
  });
  return { region, runs };
}
