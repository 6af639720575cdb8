/**
 * Monitoring under hostile and careless input (issue 14): webhook targets checked against
 * non-public ranges in every spelling, at add time and again at delivery, redirects not followed;
 * schedules more frequent than hourly refused; a lost store not silently replaced and a region's
 * leftover files never written over; the store readable by its owner only.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isGeoDinoError } from '@geo-dino/core';
import { addRegion } from '../src/regions.js';
import { monitorPaths } from '../src/paths.js';
import { parseSchedule } from '../src/schedule.js';
import { MonitorStore, openMonitorStore } from '../src/store.js';
import { checkWebhookTarget, nonPublicAddress, postWebhook } from '../src/webhook.js';
import { close, regionInput, webhookReceiver } from './support/helpers.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-hard-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(isGeoDinoError(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('webhook targets', () => {
  // The same private addresses in the spellings a URL parser accepts.
  const refused: [string, RegExp][] = [
    ['http://10.0.0.1/hook', /10\.0\.0\.1, a private address/],
    ['http://169.254.169.254/latest/meta-data', /link-local \(cloud metadata\)/],
    ['http://0x0a000001/', /10\.0\.0\.1, a private address/],
    ['http://012.0.0.1/', /10\.0\.0\.1, a private address/],
    ['http://167772161/', /10\.0\.0\.1, a private address/],
    ['http://[::ffff:10.0.0.1]/', /private/],
    ['http://[::ffff:a9fe:a9fe]/', /link-local/],
    ['http://[64:ff9b::a00:1]/', /private/],
    ['http://[fd00:ec2::254]/', /unique local/],
    ['http://[fe80::1]/', /link-local/],
    ['http://[::1]:8080/', /loopback/],
    ['http://127.0.0.2/', /loopback/],
    ['http://100.64.1.1/', /carrier-grade NAT/],
    ['http://224.0.0.251/', /multicast/],
    ['http://0.0.0.0/', /unspecified/],
    ['http://localhost/', /loopback/],
  ];
  for (const [url, why] of refused) {
    it(`refuses ${url} at add time`, async () => {
      expect(await refusal(checkWebhookTarget(url))).toMatch(why);
    });
  }

  it('checks every address a name resolves to, and accepts public ones', async () => {
    expect(await refusal(checkWebhookTarget('https://hooks.example.com/x', { lookup: async () => ['93.184.216.34', '10.9.8.7'] }))).toMatch(/hooks\.example\.com \(10\.9\.8\.7\)/);
    expect(await checkWebhookTarget('https://hooks.example.com/x', { lookup: async () => ['93.184.216.34', '2606:2800:220:1::1'] })).toBe('https://hooks.example.com/x');
    expect(await checkWebhookTarget('http://93.184.216.34/x')).toBe('http://93.184.216.34/x');
    expect(await checkWebhookTarget('http://10.0.0.1/hook', { allowPrivate: true })).toBe('http://10.0.0.1/hook');
    expect(nonPublicAddress('8.8.8.8')).toBeNull();
    expect(nonPublicAddress('::ffff:8.8.8.8')).toBeNull();
  });

  it('checks again at delivery: a name that now resolves to loopback gets nothing', async () => {
    const hook = await webhookReceiver();
    try {
      const url = hook.url.replace('127.0.0.1', 'localhost');
      const message = await refusal(postWebhook(url, '{}', { secret: 's'.repeat(20), key: 'k', event: 'canopy-loss', retries: 0 }));
      expect(message).toMatch(/loopback/);
      expect(hook.received).toHaveLength(0);
      // Allowed explicitly, the same receiver gets it.
      expect((await postWebhook(url, '{}', { secret: 's'.repeat(20), key: 'k', event: 'canopy-loss', retries: 0, allowPrivate: true })).status).toBe(200);
      expect(hook.received).toHaveLength(1);
    } finally {
      await close(hook.server);
    }
  });

  it('does not follow redirects (the signed body is not sent on)', async () => {
    const target = await webhookReceiver();
    const redirector: Server = createServer((_req, res) => res.writeHead(307, { Location: target.url }).end());
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (redirector.address() as { port: number }).port;
      const message = await refusal(postWebhook(`http://127.0.0.1:${port}/hook`, '{"a":1}', { secret: 's'.repeat(20), key: 'k', event: 'canopy-loss', retries: 0, allowPrivate: true }));
      expect(message).toMatch(/HTTP 307: webhook redirects are not followed/);
      expect(target.received).toHaveLength(0);
    } finally {
      await close(redirector);
      await close(target.server);
    }
  });
});

describe('schedules', () => {
  it('refuses schedules that can fire more than once an hour, in 5 and 6 fields', () => {
    for (const p of ['* * * * *', '*/5 * * * *', '0,30 * * * *', '0-1 3 * * *', '* 0 3 * * *', '*/10 0 * * * *', '* * 1 1 *']) {
      expect(() => parseSchedule(p), p).toThrow(/fires more than once an hour/);
    }
    for (const p of ['0 * * * *', '@hourly', '@daily', '0 3 * * 1', '30 0 3 * * *', '0 */2 * * *']) {
      expect(parseSchedule(p).pattern, p).toBe(p);
    }
  });
});

describe('the store', () => {
  it('refuses to start over when the store is empty or missing but regions/ holds regions', () => {
    const paths = monitorPaths(dir);
    const s = openMonitorStore(paths);
    s.addRegion(regionInput('forest', '0 3 * * *'), new Date());
    s.close();
    mkdirSync(join(paths.region('forest'), 'runs'), { recursive: true });
    writeFileSync(paths.aoi('forest'), '{"keep":"me"}');
    for (const suffix of ['-wal', '-shm']) rmSync(paths.store + suffix, { force: true });
    truncateSync(paths.store, 0);
    expect(() => openMonitorStore(paths)).toThrow(expect.objectContaining({ code: 'E_STORE_LOST', message: expect.stringMatching(/empty \(0 bytes\).*1 region \(forest\)/) }));
    rmSync(paths.store);
    expect(() => openMonitorStore(paths)).toThrow(expect.objectContaining({ code: 'E_STORE_LOST', message: expect.stringMatching(/missing/) }));
    expect(readFileSync(paths.aoi('forest'), 'utf8')).toBe('{"keep":"me"}');
  });

  it('monitor add never writes over a region directory the store does not know', async () => {
    const paths = monitorPaths(dir);
    const store = openMonitorStore(paths);
    try {
      mkdirSync(paths.region('forest'), { recursive: true });
      writeFileSync(paths.aoi('forest'), '{"keep":"me"}');
      const aoi = join(dir, 'aoi.geojson');
      writeFileSync(aoi, JSON.stringify({ type: 'Polygon', coordinates: [[[36, 0], [36.01, 0], [36.01, 0.01], [36, 0.01], [36, 0]]] }));
      const message = await refusal(addRegion(store, paths, { name: 'forest', aoi, schedule: '0 3 * * *', imagery: 'https://stac.example', model: 'demo' }, { checkImagery: false }));
      expect(message).toMatch(/already holds a region's files/);
      expect(readFileSync(paths.aoi('forest'), 'utf8')).toBe('{"keep":"me"}');
      expect(store.findRegion('forest')).toBeNull();
    } finally {
      store.close();
    }
  });

  it('creates the store readable by its owner only, and tightens an existing one', () => {
    const path = join(dir, 'geo-dino.sqlite');
    MonitorStore.open(path).close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const other = join(dir, 'old.sqlite');
    writeFileSync(other, '', { mode: 0o644 });
    MonitorStore.open(other).close();
    expect(statSync(other).mode & 0o077).toBe(0);
  });
});
