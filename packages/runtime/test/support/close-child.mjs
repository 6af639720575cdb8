// Child process for close.test.ts: a session pool whose run is inside onnxruntime when the pool
// is closed, the run aborted, or the process exits. It runs in its own process because getting
// this wrong aborts the whole process (`terminate called after throwing an instance of
// 'Napi::Error'`), which the test runner must survive to report it.
// argv: mode, model (support/slow-model.ts; registered under six names, run as one chain), n.
// Prints `REPORT <json>` and exits by itself (no worker left) in modes close and abort; modes
// exit, throw and terminate end the process mid-run.
import { Worker } from 'node:worker_threads';
import { createSessionPool } from '@geo-dino/runtime';

const [mode, model, nText] = process.argv.slice(2);
const n = Number(nText);
const CHAIN = ['s1', 's2', 's3', 's4', 's5', 's6'];
const square = (size, diagonal) => {
  const data = new Float32Array(size * size);
  for (let i = 0; i < size; i++) data[i * size + i] = diagonal;
  return { x: { type: 'float32', dims: [size, size], data } };
};
const report = (r) => process.stdout.write(`REPORT ${JSON.stringify(r)}\n`);
const errorOf = (e) => ({ code: e?.code, message: String(e?.message ?? e) });

let ticks = 0;
const ticker = setInterval(() => ticks++, 1);

/**
 * The worker flags itself inside onnxruntime just before the call, a turn of its event loop
 * early; the call has surely started once this process has used 40 ms more CPU time (the main
 * thread idles meanwhile, and the worker's JavaScript before the call takes far less). CPU time,
 * not wall time: a loaded machine only makes this slower.
 */
const untilComputing = async (stop = () => false) => {
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const start = cpu();
  while (cpu() - start < 40) {
    if (stop()) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
  return true;
};

if (mode === 'terminate') {
  // The hazard itself, without the pool's care: the pool's worker terminated while its session
  // runs. onnxruntime-node 1.30 aborts the process when the run returns.
  const worker = new Worker(new URL('session-worker.js', import.meta.resolve('@geo-dino/runtime')));
  const control = new Int32Array(new SharedArrayBuffer(8));
  await new Promise((resolve, reject) => {
    worker.once('message', (m) => (m.type === 'ready' ? resolve() : reject(new Error(m.message))));
    worker.postMessage({ type: 'init', control: control.buffer, sessions: [{ name: 's1', path: model }], providers: ['cpu'], threads: 1, optimization: 'all' });
  });
  worker.postMessage({ type: 'run', id: 1, chain: ['s1'], feeds: [{ name: 'x', ...square(n, 1).x }] });
  while (Atomics.load(control, 0) !== 1) await new Promise((r) => setTimeout(r, 2));
  await untilComputing();
  process.stdout.write('terminating mid-run\n');
  await worker.terminate();
  process.stdout.write('terminated\n');
  setTimeout(() => {
    report({ survived: true });
    process.exit(0);
  }, 30_000);
} else {
  const pool = await createSessionPool(CHAIN.map((name) => ({ name, path: model })), { device: 'cpu', workers: 1, threads: 1 });
  /** Settle-state of a call, with how many workers were still inside onnxruntime when it settled. */
  const outcome = (p) =>
    p.then(
      (r) => ({ ok: true, worker: r.worker, executingAtSettle: pool.stats.executing }),
      (e) => ({ ok: false, ...errorOf(e), executingAtSettle: pool.stats.executing }),
    );
  let settled = false;
  /** Until the worker computes inside onnxruntime (false when the run ended first: the model is too fast). */
  const untilExecuting = async () => {
    while (pool.stats.executing === 0) {
      if (settled) return false;
      await new Promise((r) => setTimeout(r, 2));
    }
    return untilComputing(() => settled);
  };

  if (mode === 'close') {
    const running = outcome(pool.run(CHAIN, square(n, 1))).finally(() => (settled = true));
    const queued = outcome(pool.run(CHAIN, square(n, 1)));
    const midRun = await untilExecuting();
    const ticksBefore = ticks;
    const first = pool.close();
    const second = pool.close();
    const [run, queue] = await Promise.all([running, queued]);
    await Promise.all([first, second]);
    const ticksDuringClose = ticks - ticksBefore;
    await pool.close(); // once more, after it has resolved
    const afterClose = await outcome(pool.run(CHAIN, square(8, 2)));
    clearInterval(ticker);
    report({ midRun, run, queue, samePromise: first === second, ticksDuringClose, runs: pool.stats.runs, executingAfterClose: pool.stats.executing, afterClose });
    // No clearInterval/exit beyond this: the process must end by itself (no worker left).
  } else if (mode === 'abort') {
    const ac = new AbortController();
    const aborted = outcome(pool.run(CHAIN, square(n, 1), { signal: ac.signal })).finally(() => (settled = true));
    const midRun = await untilExecuting();
    ac.abort();
    const run = await aborted;
    // The same worker, once its abandoned session has returned: a whole chain of a small input.
    const next = await pool.run(CHAIN, square(8, 2));
    const y = next.outputs['y'].data;
    const ticksTotal = ticks;
    await pool.close();
    clearInterval(ticker);
    report({ midRun, run, runs: pool.stats.runs, next: { y00: y[0], y01: y[1], dims: next.outputs['y'].dims }, ticksTotal });
  } else if (mode === 'finish') {
    // finishIfStarted: the abort cancels the queued run only; the running one completes.
    const ac = new AbortController();
    const opts = { signal: ac.signal, finishIfStarted: true };
    const running = pool.run(CHAIN, square(n, 3), opts).finally(() => (settled = true));
    const queued = outcome(pool.run(CHAIN, square(n, 3), opts));
    const midRun = await untilExecuting();
    ac.abort();
    const queue = await queued;
    const r = await running;
    const y = r.outputs['y'].data;
    await pool.close();
    clearInterval(ticker);
    report({ midRun, queue, run: { y00: y[0], y01: y[1], yLast: y[n * n - 1], dims: r.outputs['y'].dims }, runs: pool.stats.runs });
  } else if (mode === 'exit' || mode === 'throw') {
    const running = outcome(pool.run(CHAIN, square(n, 1))).finally(() => (settled = true));
    void running;
    const midRun = await untilExecuting();
    report({ midRun });
    if (mode === 'exit') process.exit(3);
    throw new Error('uncaught mid-run');
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}
