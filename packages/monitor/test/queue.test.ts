/**
 * Redis checks against a real redis-server started on loopback: the settings BullMQ requires
 * (noeviction refused otherwise, AOF warned about), and Redis that cannot be reached — refused
 * connections and a server that accepts but never answers — give a clear error, not a hang.
 */
import { createServer, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunPlan } from '@geo-dino/chm';
import { checkRedis, distributeTiles, parseQueueUrl, redactRedisUrl, tileJobId } from '../src/queue.js';
import { freePort, startRedis, type RedisServer } from './support/redis.js';

const servers: RedisServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop();
});

describe('checkRedis', () => {
  it('accepts a Redis set up as documented (noeviction, AOF)', async () => {
    const r = await startRedis();
    servers.push(r);
    const c = await checkRedis(r.url);
    expect(c).toMatchObject({ maxmemoryPolicy: 'noeviction', aofEnabled: true, warnings: [] });
    expect(c.version).toMatch(/^\d+\.\d+/);
  });

  it('refuses an evicting Redis, naming the setting; warns when AOF is off', async () => {
    const lru = await startRedis({ maxmemoryPolicy: 'allkeys-lru' });
    servers.push(lru);
    await expect(checkRedis(lru.url)).rejects.toMatchObject({ code: 'E_UNAVAILABLE', message: expect.stringMatching(/maxmemory-policy is allkeys-lru; BullMQ needs noeviction/) });
    const noAof = await startRedis({ appendonly: false });
    servers.push(noAof);
    const c = await checkRedis(noAof.url);
    expect(c.aofEnabled).toBe(false);
    expect(c.warnings.join('\n')).toMatch(/AOF persistence is off/);
  });

  it('unreachable Redis: connection refused is a clear E_UNAVAILABLE', async () => {
    const port = await freePort();
    await expect(checkRedis(`redis://127.0.0.1:${port}`)).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringContaining(`redis://127.0.0.1:${port}: cannot connect to Redis: ECONNREFUSED`),
    });
  });

  it('a server that accepts and never answers: an error after the deadline, not a hang', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const a = silent.address();
    const port = typeof a === 'object' && a ? a.port : 0;
    try {
      await expect(checkRedis(`redis://127.0.0.1:${port}`, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('Redis lost while a coordinator waits for tiles: E_UNAVAILABLE after the allowed outage, not a hang', async () => {
    const r = await startRedis({ appendonly: false });
    const dir = mkdtempSync(join(tmpdir(), 'geo-dino-outage-'));
    try {
      // No workers: the coordinator queues its batches and waits; then Redis dies.
      const waiting = distributeTiles(
        { url: r.url, name: 'outage' },
        { region: 'r', run: 'x', planPath: join(dir, 'plan.json'), tilesDir: join(dir, 'tiles'), plan: { configHash: 'c0ffee' } as RunPlan, model: 'demo', batches: [[0, 1], [2]], pollMs: 100, redisOutageMs: 2000 },
      );
      waiting.catch(() => undefined);
      await new Promise((res) => setTimeout(res, 500));
      await r.stop();
      await expect(waiting).rejects.toMatchObject({ code: 'E_UNAVAILABLE', message: expect.stringMatching(/lost Redis for \d+ s while waiting for tiles/) });
    } finally {
      await r.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('queue URLs are checked; passwords never shown; job ids have no colon', () => {
    expect(() => parseQueueUrl('http://x:6379')).toThrow(/must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => parseQueueUrl('not a url')).toThrow(/is not a URL/);
    expect(parseQueueUrl('redis://h:6379/2')).toBe('redis://h:6379/2');
    expect(redactRedisUrl('redis://user:s3cret@h:6379')).toBe('redis://user:***@h:6379');
    expect(tileJobId('forest', '20250101T000000Z-2', 7)).toBe('forest.20250101T000000Z-2.7');
    expect(tileJobId('forest', '20250101T000000Z', 0)).not.toContain(':');
  });
});
