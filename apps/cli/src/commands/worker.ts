/**
 * `geo-dino worker --queue redis://…`: process the tile batches monitoring runs put on BullMQ and
 * the shards of `geo-dino chm --queue` runs (state in a shared directory or in object storage), on
 * this machine, until Ctrl-C / SIGTERM (then the current batch is finished first). A thin layer
 * over @geo-dino/monitor's `runTileWorker`.
 */
import { cliValues, flagName, parseWith, z } from '@geo-dino/core';
import { DEFAULT_LOCK_DURATION_MS, parseQueueUrl, runTileWorker } from '@geo-dino/monitor';
import { parseDevice } from '@geo-dino/runtime';
import type { CommandModule } from '../app.js';

const schema = z.object({
  queue: z.string({ error: 'is required (redis://host:port)' }).min(1),
  queueName: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, - and _ only').optional(),
  concurrency: cliValues.positiveInt.max(64, 'must be at most 64').default(1),
  lockDurationS: cliValues.positiveNumber.default(DEFAULT_LOCK_DURATION_MS / 1000),
  stalledIntervalS: cliValues.positiveNumber.default(30),
  model: z.string().min(1).optional(),
  device: z.string().default('auto'),
  threads: cliValues.positiveInt.optional(),
  batch: cliValues.positiveInt.max(64, 'must be at most 64').optional(),
});

export const workerCommand: CommandModule = {
  register(program, app) {
    program
      .command('worker')
      .description('process tile batches of distributed monitoring runs and shards of `chm --queue` runs (BullMQ on Redis) until stopped; with `chm --out s3://…` the run state is in the bucket')
      .option('--queue <redis-url>', 'the Redis the coordinator uses, e.g. redis://10.0.0.5:6379 (needs maxmemory-policy noeviction; AOF recommended)')
      .option('--queue-name <name>', 'BullMQ queue name (default geo-dino-tiles)')
      .option('--concurrency <n>', 'batches processed at once (default 1)')
      .option('--lock-duration-s <s>', `job lock; must exceed the slowest batch (default ${DEFAULT_LOCK_DURATION_MS / 1000})`)
      .option('--stalled-interval-s <s>', 'how often dead workers are looked for (default 30)')
      .option('--model <dir|demo>', "model directory on this machine (default: the path the region was added with); its weights must be the run's")
      .option('--device <auto|cpu|cuda|webgpu|cuda:0,cuda:1>', 'execution provider; cuda:0,cuda:1,… runs one session worker per GPU', 'auto')
      .option('--threads <n>', 'CPU intra-op threads (default: cores − 1)')
      .option('--batch <n>', 'tiles per model call (default: 1 on CPU, 4 on GPU)')
      .action(async (raw: Record<string, unknown>) => {
        const ctx = app.context();
        const o = parseWith(schema, raw, { fieldName: flagName });
        parseQueueUrl(o.queue);
        const totals = await runTileWorker({
          url: o.queue,
          ...(o.queueName ? { name: o.queueName } : {}),
          concurrency: o.concurrency,
          lockDurationMs: o.lockDurationS * 1000,
          stalledIntervalMs: o.stalledIntervalS * 1000,
          ...(o.model ? { model: o.model } : {}),
          ...parseDevice(o.device),
          ...(o.threads !== undefined ? { threads: o.threads } : {}),
          ...(o.batch !== undefined ? { batch: o.batch } : {}),
          env: ctx.io.env,
          log: ctx.log,
          signal: ctx.signal,
        });
        ctx.result(totals, () => `worker stopped after ${totals.jobs} batch(es), ${totals.tiles} tile(s) predicted`);
      });
  },
};
