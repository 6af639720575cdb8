/**
 * A worker thread of the probe pool: one tile's gradient or confusion matrix (probe.ts), on
 * buffers transferred from the main thread. Pure computation, no I/O.
 */
import { parentPort } from 'node:worker_threads';
import { tileConfusion, tileGradient } from './probe.js';
import type { ProbeJob, ProbeReply } from './probe-pool.js';

const port = parentPort;
if (!port) throw new Error('probe-worker.js must run in a worker thread');

port.on('message', (job: ProbeJob) => {
  try {
    const head = { K: job.K, C: job.C, W: job.W, b: job.b };
    if (job.kind === 'gradient') {
      const gW = new Float64Array(job.K * job.C);
      const gb = new Float64Array(job.K);
      const pass = tileGradient(head, job.tile, job.classWeights!, gW, gb);
      const reply: ProbeReply = { seq: job.seq, pass, gW, gb };
      port.postMessage(reply, [gW.buffer, gb.buffer]);
    } else {
      const confusion = new Float64Array(job.K * job.K);
      const pass = tileConfusion(head, job.tile, confusion);
      const reply: ProbeReply = { seq: job.seq, pass, confusion };
      port.postMessage(reply, [confusion.buffer]);
    }
  } catch (err) {
    const reply: ProbeReply = { seq: job.seq, error: err instanceof Error ? err.message : String(err) };
    port.postMessage(reply);
  }
});
