/**
 * Alerts: when a run finds canopy loss, one alert per run lists its changes. It is
 *
 * 1. written to the store under an idempotency key derived from the region, the two runs compared
 *    and the changes found — in the same step that decides to raise it, before any delivery, so
 *    a resumed or repeated run finds the key and raises nothing again;
 * 2. logged (one warning line with the region, run, count and area);
 * 3. POSTed to the region's webhook, signed (see webhook.ts), with retries and backoff inside a
 *    delivery round; a round that fails leaves the alert pending and schedules the next round
 *    with exponential backoff (1 min, 2 min, 4 min … up to 6 h), up to `maxRounds`, after which
 *    it is marked failed. Rounds are claimed with a lease, so two processes never deliver the
 *    same alert at once.
 */
import { createHash } from 'node:crypto';
import { GeoDinoError, silentLogger, toGeoDinoError, type Logger, type RetryOptions } from '@geo-dino/core';
import { systemClock, type Clock } from './schedule.js';
import type { AlertRecord, ChangeRecord, MonitorStore, Region, RunRecord } from './store.js';
import { postWebhook } from './webhook.js';

export const CANOPY_LOSS_EVENT = 'canopy-loss';

export interface CanopyLossPayload {
  type: typeof CANOPY_LOSS_EVENT;
  /** The idempotency key (also sent as X-GeoDino-Delivery). */
  id: string;
  region: string;
  run: { id: string; previous: string; acquired_start: string | null; acquired_end: string | null };
  thresholds: { loss_m: number; min_area_m2: number };
  total_area_m2: number;
  changes: {
    id: string;
    area_m2: number;
    mean_loss_m: number;
    max_loss_m: number;
    pixels: number;
    centroid: [number, number];
    bbox: [number, number, number, number];
  }[];
  files: { change_geojson: string; loss_raster: string };
  /** Sharded regions: the shards where loss was found, each against its own previous result. */
  shards?: ShardChangeSummary[];
  created: string;
}

export interface ShardChangeSummary {
  id: string;
  /** The run whose result for this shard it was compared with. */
  previous_run: string | null;
  changes: number;
  changed_area_m2: number;
  loss_raster: string;
}

/** The idempotency key of the alert for `changes` found by `run` against `previous`. */
export function alertKey(region: string, runId: string, previousRunId: string, changes: readonly Pick<ChangeRecord, 'changeId'>[]): string {
  const h = createHash('sha256');
  h.update(`${CANOPY_LOSS_EVENT}\n${region}\n${runId}\n${previousRunId}\n`);
  for (const id of changes.map((c) => c.changeId).sort()) h.update(id + '\n');
  return `${region}-${runId}-${h.digest('hex').slice(0, 24)}`;
}

export interface AlertOptions {
  clock?: Clock;
  log?: Logger;
  signal?: AbortSignal;
  /** HTTP retries inside one delivery round (core's RetryOptions; default 4 retries, 250 ms backoff). */
  http?: RetryOptions;
  /** Delivery rounds before an alert is marked failed (default 10). */
  maxRounds?: number;
  /** First wait between rounds (default 60 s); doubles each round, at most 6 h. */
  roundBackoffMs?: number;
}

/**
 * Raise the canopy-loss alert of a run (no changes: nothing). Returns the alert and whether it
 * was raised now (false: it had been raised before — nothing is logged or sent again).
 */
export function raiseCanopyLossAlert(
  store: MonitorStore,
  region: Region,
  run: RunRecord,
  previous: RunRecord,
  changes: readonly ChangeRecord[],
  files: { changeGeojson: string; lossRaster: string },
  options: AlertOptions & { shards?: readonly ShardChangeSummary[] } = {},
): { alert: AlertRecord | null; raised: boolean } {
  if (changes.length === 0) return { alert: null, raised: false };
  const clock = options.clock ?? systemClock;
  const log = options.log ?? silentLogger();
  const key = alertKey(region.name, run.id, previous.id, changes);
  const now = clock.now();
  const payload: CanopyLossPayload = {
    type: CANOPY_LOSS_EVENT,
    id: key,
    region: region.name,
    run: { id: run.id, previous: previous.id, acquired_start: run.acquiredStart, acquired_end: run.acquiredEnd },
    thresholds: { loss_m: region.lossThresholdM, min_area_m2: region.minAreaM2 },
    total_area_m2: round2(changes.reduce((s, c) => s + c.areaM2, 0)),
    changes: changes.map((c) => ({
      id: c.changeId,
      area_m2: round2(c.areaM2),
      mean_loss_m: round2(c.meanLossM),
      max_loss_m: round2(c.maxLossM),
      pixels: c.pixels,
      centroid: c.centroid,
      bbox: c.bbox,
    })),
    files: { change_geojson: files.changeGeojson, loss_raster: files.lossRaster },
    ...(options.shards?.length ? { shards: options.shards.map((x) => ({ ...x, changed_area_m2: round2(x.changed_area_m2) })) } : {}),
    created: now.toISOString(),
  };
  const raised = store.insertAlert({
    key,
    runSeq: run.seq,
    region: region.name,
    kind: CANOPY_LOSS_EVENT,
    payload: JSON.stringify(payload),
    webhookUrl: region.webhookUrl,
    status: region.webhookUrl ? 'pending' : 'logged',
    nextAttemptAt: null,
    createdAt: now.toISOString(),
  });
  if (raised) {
    log.warn(
      { region: region.name, run: run.id, previous: previous.id, changes: changes.length, area_m2: payload.total_area_m2, alert: key, webhook: region.webhookUrl !== null },
      `canopy loss in ${region.name}: ${changes.length} area${changes.length === 1 ? '' : 's'}, ${Math.round(payload.total_area_m2)} m² lost since run ${previous.id}`,
    );
  }
  return { alert: store.alert(key), raised };
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

export interface DeliveryReport {
  delivered: number;
  retrying: number;
  failed: number;
}

/** Deliver every pending alert that is due (one round each). */
export async function deliverDueAlerts(store: MonitorStore, options: AlertOptions = {}): Promise<DeliveryReport> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? silentLogger();
  const maxRounds = options.maxRounds ?? 10;
  const perRound = (options.http?.retries ?? 4) + 1;
  const report: DeliveryReport = { delivered: 0, retrying: 0, failed: 0 };
  for (const alert of store.dueAlerts(clock.now())) {
    if (options.signal?.aborted) break;
    const start = clock.now();
    // A lease longer than one round can take; the outcome replaces it.
    if (!store.claimAlert(alert.key, start, new Date(start.getTime() + 30 * 60_000))) continue;
    const region = store.findRegion(alert.region);
    const url = alert.webhookUrl;
    const secret = region?.webhookSecret ?? null;
    try {
      if (!url || !secret) throw new GeoDinoError('E_ARGUMENT', `alert ${alert.key}: region ${alert.region} has no webhook URL or secret`);
      const res = await postWebhook(url, alert.payload, {
        ...options.http,
        ...(options.signal ? { signal: options.signal } : {}),
        secret,
        allowPrivate: region?.webhookAllowPrivate ?? false,
        key: alert.key,
        event: alert.kind,
        timestamp: Math.floor(clock.now().getTime() / 1000),
        onRetry: (info) => log.info({ alert: alert.key, url: info.url, attempt: info.attempt, reason: info.reason }, 'webhook delivery failed, retrying'),
      });
      store.recordAlertAttempt(alert.key, { delivered: true, attempts: res.attempts, error: null, nextAttemptAt: null, failed: false }, clock.now());
      log.info({ alert: alert.key, region: alert.region, status: res.status, attempts: res.attempts }, 'alert delivered');
      report.delivered++;
    } catch (err) {
      const e = toGeoDinoError(err);
      if (e.code === 'E_CANCELLED') {
        // Interrupted: give the alert back, untouched.
        store.recordAlertAttempt(alert.key, { delivered: false, attempts: 0, error: alert.lastError, nextAttemptAt: null, failed: false }, clock.now());
        throw e;
      }
      const attempts = typeof e.details['attempts'] === 'number' ? (e.details['attempts'] as number) : 1;
      const rounds = Math.ceil((alert.attempts + attempts) / perRound);
      const failed = rounds >= maxRounds;
      const wait = Math.min(6 * 3600_000, (options.roundBackoffMs ?? 60_000) * 2 ** Math.max(0, rounds - 1));
      const next = failed ? null : new Date(clock.now().getTime() + wait).toISOString();
      store.recordAlertAttempt(alert.key, { delivered: false, attempts, error: `${e.code}: ${e.message}`, nextAttemptAt: next, failed }, clock.now());
      log.warn({ alert: alert.key, region: alert.region, err: e, next_attempt: next }, failed ? 'alert delivery failed for good' : 'alert delivery failed; will retry');
      if (failed) report.failed++;
      else report.retrying++;
    }
  }
  return report;
}
