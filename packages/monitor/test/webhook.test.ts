/**
 * Alerts and webhook delivery against a local HTTP receiver: the signature verifies (checked by
 * recomputing the HMAC independently, and with verifyWebhookSignature), 500s are retried with
 * backoff, and each change is delivered exactly once — also when the run that found it is
 * repeated or the delivery loop runs again.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '@geo-dino/core';
import { alertKey, deliverDueAlerts, raiseCanopyLossAlert, type CanopyLossPayload } from '../src/alerts.js';
import { ManualClock } from '../src/schedule.js';
import { MonitorStore, type ChangeRecord, type Region, type RunRecord } from '../src/store.js';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { signWebhook, verifyWebhookSignature, checkWebhookUrl, newWebhookSecret, standardWebhookHeaders, verifyStandardWebhook } from '../src/webhook.js';
import { close, regionInput, webhookReceiver, type Received } from './support/helpers.js';

let hook: Awaited<ReturnType<typeof webhookReceiver>>;
let received: Received[];
let url: string;
let dir: string;
let store: MonitorStore;
let clock: ManualClock;

const SECRET = 'test-secret-0123456789';
const FAST = { retries: 3, backoffMs: 5, maxBackoffMs: 20, random: () => 0.5 };

beforeEach(async () => {
  hook = await webhookReceiver();
  received = hook.received;
  url = hook.url;
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-hook-'));
  store = MonitorStore.open(join(dir, 'geo-dino.sqlite'));
  clock = new ManualClock('2025-03-01T00:00:00Z');
});

afterEach(async () => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
  await close(hook.server);
});

/** Answer the next requests with these statuses (then 200). */
function answer(...statuses: number[]): void {
  hook.plan.push(...statuses);
}

function setup(webhook: string | null): { region: Region; prev: RunRecord; run: RunRecord } {
  const region = store.addRegion(
    regionInput('forest', '0 3 * * *', {
      aoiPath: '/x/aoi.geojson',
      aoiBbox: [36, 0, 36.01, 0.01],
      imagery: 'https://stac.example',
      webhookUrl: webhook,
      webhookSecret: webhook ? SECRET : null,
      // The receiver is on loopback: an on-premise receiver (--allow-private-webhook).
      webhookAllowPrivate: webhook !== null,
    }),
    clock.now(),
  );
  const prev = store.createRun({ region: 'forest', trigger: 'manual', slot: null, owner: 'h:1', dir: () => '/x/prev' }, clock.now())!;
  store.updateRun(prev.seq, { status: 'succeeded' });
  clock.advance(86400_000);
  const run = store.createRun({ region: 'forest', trigger: 'schedule', slot: clock.now().toISOString(), owner: 'h:1', dir: () => '/x/run' }, clock.now())!;
  return { region, prev, run };
}

const CHANGES: ChangeRecord[] = [
  { changeId: 'chg-aaaa', areaM2: 711.36, meanLossM: 19.5, maxLossM: 21.3, pixels: 1976, centroid: [36.001, 0.002], bbox: [36.0009, 0.0019, 36.0011, 0.0021] },
  { changeId: 'chg-bbbb', areaM2: 3456, meanLossM: 19.9, maxLossM: 22, pixels: 9600, centroid: [36.004, 0.005], bbox: [36.0035, 0.0045, 36.0045, 0.0055] },
];
const FILES = { changeGeojson: '/x/run/change.geojson', lossRaster: '/x/run/loss.tif' };

describe('webhook signatures', () => {
  it('signWebhook is HMAC-SHA256 over "<t>.<body>"; verify accepts it and rejects tampering, other secrets and old timestamps', () => {
    const body = '{"a":1}';
    const header = signWebhook(SECRET, body, 1700000000);
    const independent = createHmac('sha256', SECRET).update('1700000000.{"a":1}').digest('hex');
    expect(header).toBe(`t=1700000000,v1=${independent}`);
    expect(verifyWebhookSignature(SECRET, body, header, { now: 1700000100 })).toBe(true);
    expect(verifyWebhookSignature(SECRET, '{"a":2}', header, { now: 1700000100 })).toBe(false);
    expect(verifyWebhookSignature('other', body, header, { now: 1700000100 })).toBe(false);
    expect(verifyWebhookSignature(SECRET, body, header, { now: 1700000000 + 301 })).toBe(false);
    expect(verifyWebhookSignature(SECRET, body, undefined)).toBe(false);
    expect(verifyWebhookSignature(SECRET, body, 'garbage', { now: 1700000000 })).toBe(false);
  });

  it('Standard Webhooks: a generated whsec_ secret signs what the standardwebhooks library verifies; tampering and old messages fail', () => {
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const body = '{"event":"canopy-loss","n":1}';
    const now = Math.floor(Date.now() / 1000);
    const headers = standardWebhookHeaders(secret, 'alert-1', body, now);
    const std = new StandardWebhook(secret);
    expect(std.verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => std.verify(body.replace('1', '2'), headers)).toThrow();
    expect(verifyStandardWebhook(secret, body, headers, { now })).toBe(true);
    expect(verifyStandardWebhook(secret, body, { ...headers, 'webhook-id': 'alert-2' }, { now })).toBe(false);
    expect(verifyStandardWebhook(secret, body, headers, { now: now + 301 })).toBe(false);
    // Signed by the library, verified by geo-dino.
    const theirs = std.sign('msg-9', new Date(now * 1000), body);
    expect(verifyStandardWebhook(secret, body, { 'webhook-id': 'msg-9', 'webhook-timestamp': String(now), 'webhook-signature': theirs }, { now })).toBe(true);
  });

  it('webhook URLs must be http(s)', () => {
    expect(() => checkWebhookUrl('ftp://x')).toThrow(/must be an http/);
    expect(() => checkWebhookUrl('not a url')).toThrow(/is not a URL/);
    expect(checkWebhookUrl('https://example.com/h')).toBe('https://example.com/h');
  });
});

describe('alerts', () => {
  it('retries on 500, signature verifies, exactly one delivery per change', async () => {
    const { region, prev, run } = setup(url);
    answer(500, 500);
    const first = raiseCanopyLossAlert(store, region, run, prev, CHANGES, FILES, { clock });
    expect(first.raised).toBe(true);
    expect(first.alert!.status).toBe('pending');
    const report = await deliverDueAlerts(store, { clock, http: FAST });
    expect(report).toEqual({ delivered: 1, retrying: 0, failed: 0 });
    expect(received.map((r) => r.status)).toEqual([500, 500, 200]);
    const ok = received[2]!;
    // The receiver's view: signature over the raw body, with the shared secret.
    const sig = String(ok.headers['x-geodino-signature']);
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig)!;
    expect(createHmac('sha256', SECRET).update(`${t}.${ok.body}`).digest('hex')).toBe(v1);
    expect(verifyWebhookSignature(SECRET, ok.body, sig, { now: Math.floor(clock.now().getTime() / 1000) })).toBe(true);
    // Standard Webhooks headers, checked by the reference TypeScript verifier (not ours).
    expect(ok.headers['webhook-id']).toBe(first.alert!.key);
    expect(ok.headers['webhook-timestamp']).toBe(t);
    const std = new StandardWebhook(SECRET, { format: 'raw' });
    vi.useFakeTimers({ now: Number(t) * 1000, toFake: ['Date'] });
    try {
      expect(std.verify(ok.body, { 'webhook-id': String(ok.headers['webhook-id']), 'webhook-timestamp': t!, 'webhook-signature': String(ok.headers['webhook-signature']) })).toEqual(JSON.parse(ok.body));
    } finally {
      vi.useRealTimers();
    }
    expect(ok.headers['x-geodino-event']).toBe('canopy-loss');
    expect(ok.headers['x-geodino-delivery']).toBe(first.alert!.key);
    expect(ok.headers['content-type']).toBe('application/json');
    // Every attempt carried the same body and delivery key.
    expect(new Set(received.map((r) => r.body)).size).toBe(1);
    expect(new Set(received.map((r) => r.headers['x-geodino-delivery'])).size).toBe(1);
    const payload = JSON.parse(ok.body) as CanopyLossPayload;
    expect(payload).toMatchObject({ type: 'canopy-loss', region: 'forest', run: { id: run.id, previous: prev.id }, thresholds: { loss_m: 5, min_area_m2: 500 } });
    expect(payload.changes.map((c) => c.id)).toEqual(['chg-aaaa', 'chg-bbbb']);
    expect(payload.total_area_m2).toBeCloseTo(711.36 + 3456, 2);
    const stored = store.alert(first.alert!.key)!;
    expect(stored).toMatchObject({ status: 'delivered', attempts: 3 });

    // The run is repeated (resumed after a crash): same changes, same key, nothing raised or sent.
    const again = raiseCanopyLossAlert(store, region, run, prev, [...CHANGES].reverse(), FILES, { clock });
    expect(again.raised).toBe(false);
    expect(await deliverDueAlerts(store, { clock, http: FAST })).toEqual({ delivered: 0, retrying: 0, failed: 0 });
    clock.advance(7 * 86400_000);
    await deliverDueAlerts(store, { clock, http: FAST });
    expect(received.filter((r) => r.status === 200)).toHaveLength(1);
    expect(store.alerts()).toHaveLength(1);
  });

  it('no change → no alert, nothing sent', async () => {
    const { region, prev, run } = setup(url);
    expect(raiseCanopyLossAlert(store, region, run, prev, [], FILES, { clock })).toEqual({ alert: null, raised: false });
    await deliverDueAlerts(store, { clock, http: FAST });
    expect(received).toHaveLength(0);
    expect(store.alerts()).toHaveLength(0);
  });

  it('a receiver that keeps failing: rounds back off, then the alert is marked failed', async () => {
    const { region, prev, run } = setup(url);
    answer(...new Array<number>(100).fill(503));
    const { alert } = raiseCanopyLossAlert(store, region, run, prev, CHANGES, FILES, { clock });
    const opts = { clock, http: FAST, maxRounds: 3, roundBackoffMs: 60_000 };
    expect(await deliverDueAlerts(store, opts)).toEqual({ delivered: 0, retrying: 1, failed: 0 });
    expect(received).toHaveLength(4);
    const a1 = store.alert(alert!.key)!;
    expect(a1).toMatchObject({ status: 'pending', attempts: 4 });
    expect(a1.lastError).toMatch(/503|failed after 4 attempts/);
    expect(a1.nextAttemptAt).toBe(new Date(clock.now().getTime() + 60_000).toISOString());
    // Not due yet: nothing sent.
    await deliverDueAlerts(store, opts);
    expect(received).toHaveLength(4);
    clock.advance(60_000);
    expect(await deliverDueAlerts(store, opts)).toEqual({ delivered: 0, retrying: 1, failed: 0 });
    expect(store.alert(alert!.key)!.nextAttemptAt).toBe(new Date(clock.now().getTime() + 120_000).toISOString());
    clock.advance(120_000);
    expect(await deliverDueAlerts(store, opts)).toEqual({ delivered: 0, retrying: 0, failed: 1 });
    expect(store.alert(alert!.key)!.status).toBe('failed');
    expect(received).toHaveLength(12);
  });

  it('a 4xx is not retried within a round', async () => {
    const { region, prev, run } = setup(url);
    answer(400);
    raiseCanopyLossAlert(store, region, run, prev, CHANGES, FILES, { clock });
    expect(await deliverDueAlerts(store, { clock, http: FAST })).toEqual({ delivered: 0, retrying: 1, failed: 0 });
    expect(received).toHaveLength(1);
  });

  it('without a webhook the alert is a log line, raised once', () => {
    const { region, prev, run } = setup(null);
    let out = '';
    const log = createLogger({ json: true, stream: new Writable({ write: (c: Buffer, _e, cb) => ((out += c.toString()), cb()) }) });
    const r = raiseCanopyLossAlert(store, region, run, prev, CHANGES, FILES, { clock, log });
    expect(r.alert!.status).toBe('logged');
    raiseCanopyLossAlert(store, region, run, prev, CHANGES, FILES, { clock, log });
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', region: 'forest', run: run.id, changes: 2, alert: r.alert!.key });
    expect(String(lines[0]!['msg'])).toMatch(/canopy loss in forest: 2 areas, 4167 m² lost/);
  });

  it('the key depends on the region, the runs and the set of changes, not their order', () => {
    const k = alertKey('forest', 'r2', 'r1', CHANGES);
    expect(alertKey('forest', 'r2', 'r1', [...CHANGES].reverse())).toBe(k);
    expect(alertKey('forest', 'r2', 'r0', CHANGES)).not.toBe(k);
    expect(alertKey('forest', 'r2', 'r1', CHANGES.slice(1))).not.toBe(k);
    expect(k).not.toContain(':');
  });
});
