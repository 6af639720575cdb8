/**
 * Helpers of the monitoring end-to-end tests: long-running CLI processes (coordinators, workers)
 * whose JSON log lines are collected as they come, rasters compared by GDAL, a region's one run.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { expect } from 'vitest';
import type { MonitorStore, RunRecord } from '@geo-dino/monitor';
import { CLI_BIN } from '../support/shared-data.js';
import { GDAL_PYTHON } from '../support/tools.js';

export interface Proc {
  proc: ChildProcessWithoutNullStreams;
  lines: Record<string, unknown>[];
  stdout: () => string;
  exited: Promise<number | null>;
}

/** Every process `startCli` started, for the tests' afterAll to kill what is still running. */
export const children: ChildProcessWithoutNullStreams[] = [];

/** Start `geo-dino <args>`; `onLine` sees each JSON log line of stderr as it arrives. */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv, onLine?: (line: Record<string, unknown>, p: Proc) => void, options: { cwd?: string } = {}): Proc {
  const proc = spawn(process.execPath, [CLI_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'], ...(options.cwd ? { cwd: options.cwd } : {}) });
  children.push(proc);
  let out = '';
  let buf = '';
  const p: Proc = { proc, lines: [], stdout: () => out, exited: new Promise((r) => proc.on('close', (code) => r(code))) };
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        p.lines.push(rec);
        onLine?.(rec, p);
      } catch {
        /* not a log line */
      }
    }
  });
  proc.stdin.end();
  return p;
}

/** Kill (SIGKILL) the started processes that are still running. */
export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** Every band of two rasters, compared by GDAL: number of differing pixels, size, same geotransform. */
export function rasterDiff(a: string, b: string): { differing: number; size: number[]; gt: boolean } {
  const script = `
import json, sys, numpy as np
from osgeo import gdal
gdal.UseExceptions()
a = gdal.Open(sys.argv[1]); b = gdal.Open(sys.argv[2])
assert a.RasterCount == b.RasterCount
d = 0
for i in range(1, a.RasterCount + 1):
    x = a.GetRasterBand(i).ReadAsArray(); y = b.GetRasterBand(i).ReadAsArray()
    d += int((x != y).sum())
print(json.dumps({"differing": d, "size": [a.RasterXSize, a.RasterYSize, a.RasterCount], "gt": list(a.GetGeoTransform()) == list(b.GetGeoTransform())}))
`;
  return JSON.parse(execFileSync(GDAL_PYTHON, ['-c', script, a, b], { encoding: 'utf8' })) as { differing: number; size: number[]; gt: boolean };
}

/** The one run a region has (the test fails if it has another number). */
export function onlyRun(store: MonitorStore, region: string): RunRecord {
  const runs = store.runs(region);
  expect(runs).toHaveLength(1);
  return runs[0]!;
}
