/**
 * A real redis-server (apt) for the BullMQ tests: started on a free loopback port with its own
 * temporary directory, configured as geo-dino documents for production (noeviction, AOF), and
 * stopped by PID — also when a test fails or the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { requireTool } from '../../../../test/support/tools.js';

export interface RedisServer {
  url: string;
  port: number;
  pid: number;
  dir: string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export async function startRedis(options: { maxmemoryPolicy?: string; appendonly?: boolean } = {}): Promise<RedisServer> {
  requireTool('redis-server', ['--version']);
  const dir = mkdtempSync(join(tmpdir(), 'geo-dino-redis-'));
  const port = await freePort();
  const proc = spawn(
    'redis-server',
    [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--appendonly', options.appendonly === false ? 'no' : 'yes',
      '--appendfsync', 'everysec',
      '--maxmemory-policy', options.maxmemoryPolicy ?? 'noeviction',
      '--daemonize', 'no',
      '--logfile', join(dir, 'redis.log'),
    ],
    { stdio: 'ignore' },
  );
  running.add(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    running.delete(proc);
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `redis://127.0.0.1:${port}`;
  // Wait until it answers PING.
  for (let i = 0; ; i++) {
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    c.on('error', () => undefined);
    try {
      await c.connect();
      if ((await c.ping()) === 'PONG') {
        c.disconnect();
        break;
      }
    } catch {
      c.disconnect();
      if (i > 100 || proc.exitCode !== null) {
        await stop();
        throw new Error(`redis-server on port ${port} did not start (see ${join(dir, 'redis.log')})`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { url, port, pid: proc.pid!, dir, stop };
}
