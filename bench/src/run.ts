/**
 * `npm run bench [-- name ...] [-- --json]`: run benchmarks and print each with its reference.
 * With no name, runs every benchmark that needs no extra setup.
 */
import { formatReport, ratioOf, type BenchModule } from './report.js';
import { httpBench } from './http.js';
import { tilerBench } from './tiler.js';
import { modelBench } from './model.js';
import { pmtilesBench } from './pmtiles.js';
import { polygonizeBench } from './polygonize.js';
import { serveBench } from './serve.js';
import { chmBench } from './chm.js';
import { s3Bench } from './s3.js';
import { statsLatencyBench } from './stats-latency.js';
import { stripBench } from './strip.js';
import { tileServiceBench } from './tileservice.js';
import { shardsBench } from './shards.js';
import { monitorShardsBench } from './monitor-shards.js';
import { publishBench } from './publish.js';
import { seamsBench } from './seams.js';

const BENCHMARKS: Record<string, BenchModule> = {
  chm: chmBench,
  http: httpBench,
  model: modelBench,
  'monitor-shards': monitorShardsBench,
  pmtiles: pmtilesBench,
  publish: publishBench,
  polygonize: polygonizeBench,
  s3: s3Bench,
  seams: seamsBench,
  serve: serveBench,
  shards: shardsBench,
  'stats-latency': statsLatencyBench,
  strip: stripBench,
  tiler: tilerBench,
  tileservice: tileServiceBench,
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const names = args.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !(n in BENCHMARKS));
  if (unknown.length) {
    process.stderr.write(`unknown benchmark: ${unknown.join(', ')}; available: ${Object.keys(BENCHMARKS).join(', ')}\n`);
    process.exitCode = 2;
    return;
  }
  const chosen = names.length ? names : Object.keys(BENCHMARKS).filter((n) => !BENCHMARKS[n]!.explicitOnly);
  const rest = args.filter((a) => !names.includes(a) && a !== '--json');
  for (const name of chosen) {
    const bench = BENCHMARKS[name]!;
    process.stderr.write(`running ${name}: ${bench.description}\n`);
    const report = await bench.run(rest);
    if (json) process.stdout.write(JSON.stringify({ ...report, rows: report.rows.map((r) => ({ ...r, ratio: ratioOf(r) })) }) + '\n');
    else process.stdout.write(formatReport(report) + '\n');
  }
}

await main();
