/**
 * `npm run bench -- stats-latency [--size=4096] [--requests=300] [--run=<dir>]`: does `geo-dino serve` keep
 * answering while polygon statistics run? `/api/config` latency (p50, p99) is measured while four
 * clients keep sending worst-case `POST /api/stats` requests, against the same latency with the
 * server idle, in the same run (target: p99 under 100 ms while busy).
 *
 * Worst case within the server's default caps: a valid comb of 20,000 vertices whose teeth span
 * the raster's full height side by side (every edge overlaps every other along y, and every raster
 * row crosses every tooth), covering the whole raster; and the 19,990-vertex zigzag inside
 * five nested GeometryCollections. Two of the four are admitted at a time (the server's
 * concurrency), the others are refused 503 before their body is read and sent again at once.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '@geo-dino/server';
import { footprintFromBounds, openRaster } from '@geo-dino/tiling';
import type { BenchModule, BenchReport } from './report.js';
import { makeBenchRun } from './pmtiles.js';

function arg(args: readonly string[], name: string, fallback: number): number {
  const a = args.find((x) => x.startsWith(`${name}=`));
  const v = a ? Number(a.slice(name.length + 1)) : fallback;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** 20,000 vertices: teeth spanning [s, n] side by side from w to e. */
function comb([w, s, e, n]: [number, number, number, number], vertices: number): unknown {
  const teeth = Math.floor((vertices - 3) / 4);
  const dx = (e - w) / teeth;
  const ring: number[][] = [];
  for (let i = 0; i < teeth; i++) {
    const x = w + i * dx;
    ring.push([x, s], [x + dx * 0.25, n], [x + dx * 0.5, n], [x + dx * 0.75, s]);
  }
  ring.push([e, s - (n - s) * 0.01], [w, s - (n - s) * 0.01], [w, s]);
  return { type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [ring] } };
}

/** The zigzag (19,990 vertices, every edge overlapping in x) inside five GeometryCollections. */
function nestedZigzag([w, s, e, n]: [number, number, number, number]): unknown {
  const k = 19_987;
  const ring: number[][] = [];
  for (let i = 0; i < k; i++) ring.push([i % 2 ? e : w + (e - w) * 0.5, s + ((n - s) * i) / k]);
  ring.push([w, n], [w, s], ring[0]!);
  let g: unknown = { type: 'Polygon', coordinates: [ring] };
  for (let i = 0; i < 5; i++) g = { type: 'GeometryCollection', geometries: [g] };
  return { type: 'Feature', properties: {}, geometry: g };
}

function timedGet(agent: Agent, port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request({ host: '127.0.0.1', port, path, agent, headers: { Host: `127.0.0.1:${port}` } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * The four clients, in a child process (so that their own work does not run on the server's event
 * loop): each POSTs its body again as soon as it is answered (after 20 ms when refused 503), until
 * stdin closes; then prints the counts of answers by status.
 */
const LOAD_CLIENTS = `
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
const [port, ...files] = process.argv.slice(1);
const bodies = files.map((f) => readFileSync(f));
let stop = false;
process.stdin.on('data', () => {}).on('end', () => (stop = true));
const counts = {};
const post = (body) => new Promise((resolve) => {
  const req = request({ host: '127.0.0.1', port: Number(port), path: '/api/stats?run=.', method: 'POST',
    headers: { Host: '127.0.0.1:' + port, 'Content-Type': 'application/json', 'Content-Length': body.length, Connection: 'close' } }, (res) => {
    res.resume();
    res.on('end', () => resolve(res.statusCode));
    res.on('error', () => resolve(0));
  });
  req.on('error', () => resolve(0));
  req.end(body);
});
await Promise.all([0, 1, 2, 3].map(async (i) => {
  while (!stop) {
    const s = await post(bodies[i % bodies.length]);
    counts[s] = (counts[s] ?? 0) + 1;
    if (s !== 200) await new Promise((r) => setTimeout(r, 20));
  }
}));
process.stdout.write(JSON.stringify(counts));
`;

async function latencies(port: number, n: number): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const out: number[] = [];
  for (let i = 0; i < 10; i++) await timedGet(agent, port, '/api/config');
  for (let i = 0; i < n; i++) {
    out.push(await timedGet(agent, port, '/api/config'));
    await new Promise((r) => setTimeout(r, 5));
  }
  agent.destroy();
  return out.sort((a, b) => a - b);
}

export const statsLatencyBench: BenchModule = {
  description: 'geo-dino serve: /api/config latency while four worst-case /api/stats requests run vs idle (same run)',
  async run(args): Promise<BenchReport> {
    const size = arg(args, '--size', 4096);
    const n = arg(args, '--requests', 300);
    // --run=<dir>: a run directory made earlier by make-bench-run.py (machines without GDAL).
    const given = args.find((a) => a.startsWith('--run='))?.slice(6);
    const dir = given ?? mkdtempSync(join(tmpdir(), 'gd-bench-stats-'));
    try {
      if (!given) makeBenchRun(dir, size);
      const raster = await openRaster(join(dir, 'chm.tif'));
      const bbox = footprintFromBounds(raster).bbox;
      await raster.close();
      const inset: [number, number, number, number] = [bbox[0] + (bbox[2] - bbox[0]) * 0.01, bbox[1] + (bbox[3] - bbox[1]) * 0.02, bbox[2] - (bbox[2] - bbox[0]) * 0.01, bbox[3] - (bbox[3] - bbox[1]) * 0.01];
      const bodies = [JSON.stringify(comb(inset, 20_000)), JSON.stringify(nestedZigzag(inset))];
      const server = await startServer({ root: dir, port: 0 });
      try {
        const idleDelay = monitorEventLoopDelay({ resolution: 10 });
        idleDelay.enable();
        const idle = await latencies(server.port, n);
        idleDelay.disable();
        const files = bodies.map((b, i) => {
          const f = join(dir, `stats-body-${i}.json`);
          writeFileSync(f, b);
          return f;
        });
        const child = spawn(process.execPath, ['--input-type=module', '-e', LOAD_CLIENTS, String(server.port), ...files], { stdio: ['pipe', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        const exited = new Promise<void>((r) => child.on('exit', () => r()));
        // Let the first statistics start before measuring.
        await new Promise((r) => setTimeout(r, 500));
        const t0 = performance.now();
        const loopDelay = monitorEventLoopDelay({ resolution: 10 });
        loopDelay.enable();
        const busy = await latencies(server.port, n);
        loopDelay.disable();
        const busySeconds = (performance.now() - t0) / 1000;
        child.stdin.end();
        await exited;
        const counts = JSON.parse(out || '{}') as Record<string, number>;
        return {
          name: 'stats-latency',
          context: {
            sizePx: size,
            requests: n,
            busySeconds: Number(busySeconds.toFixed(1)),
            statsAnswers: counts,
            statsBodiesKiB: bodies.map((b) => Math.round(b.length / 1024)),
            cores: availableParallelism(),
            // The server's event loop (this process) while busy: what our code blocked.
            eventLoopDelayP99Ms: Number((loopDelay.percentile(99) / 1e6).toFixed(1)),
            eventLoopDelayMaxMs: Number((loopDelay.max / 1e6).toFixed(1)),
            idleEventLoopDelayP99Ms: Number((idleDelay.percentile(99) / 1e6).toFixed(1)),
            idleEventLoopDelayMaxMs: Number((idleDelay.max / 1e6).toFixed(1)),
          },
          rows: [
            { metric: '/api/config p50 while 4 worst-case /api/stats run', value: pct(busy, 0.5), unit: 'ms', reference: { name: 'p50 idle', value: pct(idle, 0.5) }, better: 'lower' },
            {
              metric: '/api/config p99 while 4 worst-case /api/stats run',
              value: pct(busy, 0.99),
              unit: 'ms',
              reference: { name: 'p99 idle', value: pct(idle, 0.99) },
              better: 'lower',
              note: `target: p99 < 100 ms while busy (${pct(busy, 0.99) < 100 ? 'met' : 'NOT met'})`,
            },
            { metric: '/api/config max while busy', value: busy[busy.length - 1]!, unit: 'ms', reference: { name: 'max idle', value: idle[idle.length - 1]! }, better: 'lower' },
          ],
        };
      } finally {
        await server.close();
      }
    } finally {
      if (!given) rmSync(dir, { recursive: true, force: true });
    }
  },
};
