/**
 * Closing the pool, aborting a run and exiting the process while a session is inside
 * onnxruntime (support/close-child.mjs, in a child process: done wrong, this aborts the whole
 * process with `terminate called after throwing an instance of 'Napi::Error'`, which must not
 * take the test runner with it). The model (support/slow-model.ts) is six sessions of y = x³ on a
 * 2048² input, run as one chain, so a run spends its time in onnxruntime; the child waits until
 * the pool says a worker is inside onnxruntime (`stats.executing`) before it acts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSlowModel } from './support/slow-model.js';

const CHILD = fileURLToPath(new URL('./support/close-child.mjs', import.meta.url));
const N = 2048;
const NATIVE_ABORT = /terminate called|Napi::Error/;

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  report: Record<string, any> | null;
}

let dir: string;
let model: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'geo-dino-close-'));
  model = await writeSlowModel(join(dir, 'slow.onnx'), 2);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

function child(mode: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CHILD, mode, model, String(N)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // A worker left alive keeps the child from ending by itself: that is a failure, not a hang.
    const guard = setTimeout(() => p.kill('SIGKILL'), 90_000);
    p.on('error', reject);
    p.on('close', (code, signal) => {
      clearTimeout(guard);
      const line = stdout.split('\n').find((l) => l.startsWith('REPORT '));
      resolve({ code, signal, stdout, stderr, report: line ? (JSON.parse(line.slice(7)) as Record<string, any>) : null });
    });
  });
}

/** Run a mode that must end normally: exit 0 once no worker is left, no native abort; its report. */
async function endsByItself(mode: string): Promise<Record<string, any>> {
  const r = await child(mode);
  expect(r.stderr).not.toMatch(NATIVE_ABORT);
  expect([r.code, r.signal], r.stderr).toEqual([0, null]);
  expect(r.report!['midRun'], 'the run had ended before the child acted: the model is too fast for this machine').toBe(true);
  return r.report!;
}

describe('a session inside onnxruntime', () => {
  it('close(): the running call and the queued one reject with E_CANCELLED, close() can be called again, the process ends by itself without a native abort', async () => {
    const rep = await endsByItself('close');
    // Rejected while the worker was still inside onnxruntime: the caller does not wait for it.
    expect(rep['run']).toMatchObject({ ok: false, code: 'E_CANCELLED', executingAtSettle: 1 });
    expect(rep['run'].message).toMatch(/session pool closed while this run \(s1 → s2 → s3 → s4 → s5 → s6\) was executing; its result is discarded/);
    expect(rep['queue']).toMatchObject({ ok: false, code: 'E_CANCELLED', message: 'session pool closed before this run started' });
    expect(rep['samePromise']).toBe(true);
    // Nothing completed (closed mid-run), no worker is left in onnxruntime, later runs are refused.
    expect(rep['runs']).toEqual({});
    expect(rep['executingAfterClose']).toBe(0);
    expect(rep['afterClose']).toMatchObject({ ok: false, code: 'E_INTERNAL', message: expect.stringMatching(/after close/) });
    // The event loop ran while close() waited for the session.
    expect(rep['ticksDuringClose']).toBeGreaterThan(0);
  });

  it('an aborted run rejects while its session still runs; the rest of its chain is skipped and the worker then serves the next run', async () => {
    const rep = await endsByItself('abort');
    expect(rep['run']).toMatchObject({ ok: false, code: 'E_CANCELLED', message: 'interrupted', executingAtSettle: 1 });
    // Each session completed once: for the next run only (the aborted chain never reached its end).
    expect(rep['runs']).toEqual({ s1: 1, s2: 1, s3: 1, s4: 1, s5: 1, s6: 1 });
    // The next run's own answer: (2·I)³ = 8·I on 8×8, whatever the abandoned run left behind.
    expect(rep['next']).toEqual({ y00: 8, y01: 0, dims: [8, 8] });
    expect(rep['ticksTotal']).toBeGreaterThan(0);
  });

  it('finishIfStarted: an abort cancels the queued run at once and lets the running one complete with its result', async () => {
    const rep = await endsByItself('finish');
    expect(rep['queue']).toMatchObject({ ok: false, code: 'E_CANCELLED', message: 'interrupted', executingAtSettle: 1 });
    // (3·I)³ = 27·I on the full 2048² input: the running run's own, complete answer.
    expect(rep['run']).toEqual({ y00: 27, y01: 0, yLast: 27, dims: [N, N] });
    expect(rep['runs']).toEqual({ s1: 1, s2: 1, s3: 1, s4: 1, s5: 1, s6: 1 });
  });

  it('process.exit() waits for the running session and exits with its code, without a native abort', async () => {
    const r = await child('exit');
    expect(r.report).toEqual({ midRun: true });
    expect(r.stderr).not.toMatch(NATIVE_ABORT);
    expect([r.code, r.signal], r.stderr).toEqual([3, null]);
  });

  it('an uncaught exception exits 1 with its own error, without a native abort', async () => {
    const r = await child('throw');
    expect(r.report).toEqual({ midRun: true });
    expect(r.stderr).toMatch(/Error: uncaught mid-run/);
    expect(r.stderr).not.toMatch(NATIVE_ABORT);
    expect([r.code, r.signal]).toEqual([1, null]);
  });

  // Why close() has no deadline after which it terminates the workers: with onnxruntime-node
  // 1.30, terminating a worker inside a session run aborts the process once the run returns. If
  // this starts failing, onnxruntime-node handles it now and a terminate deadline becomes possible.
  it('terminating a worker inside a session run aborts the process (the hazard the pool avoids)', async () => {
    const r = await child('terminate');
    expect(r.stdout).toContain('terminating mid-run');
    expect(r.report).toBeNull();
    expect(r.stderr).toMatch(/terminate called after throwing an instance of 'Napi::Error'/);
    expect(r.signal === 'SIGABRT' || r.code === 134, `code ${r.code}, signal ${r.signal}`).toBe(true);
  });
});
