/**
 * Distributed sharded runs whose shared state lives in object storage (`geo-dino chm --queue
 * redis://… --out s3://bucket/prefix` with `geo-dino worker --queue redis://…` on any machine
 * that reaches Redis, the bucket and the imagery): no file system is shared.
 *
 * State prefix `s3://bucket/<parent>/.<name>.geo-dino-state/<plan>/` (`<plan>`: the first 16 hex
 * digits of the sha256 of the frozen plan, so two plans never share state; content-addressed, so
 * the plan object is written once with one content):
 *
 * ```
 * plan.json                              the coordinator's frozen plan (written if absent)
 * attempts/<shard>/<attempt>/<file>      one worker's files of one shard: unique keys per attempt
 * shards/<shard>.json                    the ledger record: written once, If-None-Match: *
 * ```
 *
 * A worker (`processShardRemote`) predicts every tile of its shard's window into a private scratch
 * folder (tiles on a shard border are predicted by each shard that needs them: nothing but the
 * shard's files travels), writes the shard there, uploads its files under a key prefix of its
 * own (Content-MD5, sha256 in the metadata), then writes the shard's ledger record — the commit
 * point — only if no record exists (S3's conditional write). A worker killed before that leaves
 * an attempt nobody points at; the job's next delivery writes another attempt. A worker that
 * loses the race (two deliveries of one job) deletes its attempt. So every key is written once.
 *
 * The coordinator (`collectRemoteShards`) reads each record, downloads the recorded attempt's
 * files (sha256 checked against the record) into its local staging directory and records them in
 * its local ledger; the run's index files, web layers and run.json are then written and the whole
 * run published (publishDirectory: manifest.json last) exactly as a single-machine run, the shard
 * files still equal to the workers' objects copied on the server rather than uploaded again. The
 * state prefix is deleted once the run is published.
 */
import { randomBytes } from 'node:crypto';
import { readFile, readdir, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { GeoDinoError, ensureDir, fileExists, geoDinoHome, processAlive, readJsonFile, silentLogger, throwIfAborted, type Logger } from '@geo-dino/core';
import type { ModelRunner } from '@geo-dino/model';
import { copyObject, deletePrefix, downloadFile, isS3Url, parseS3Url, putObject, resolveS3Settings, s3GetJson, s3Head, s3Url, uploadFile, SHA256_METADATA } from '@geo-dino/storage';
import { createHash } from 'node:crypto';
import { layoutOf, shardGridOf, shardTileIds } from './plan.js';
import { predictTiles } from './predict.js';
import { SHARD_DIR, ShardLedger, processShard, writeShard, type ShardRecord, type ShardTask } from './sharded.js';
import { TileStore } from './tile-store.js';
import { RUN_PLAN_FORMAT, type ChmPlan } from './types.js';

interface RemoteOptions {
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  signal?: AbortSignal;
}

const opts = (o: RemoteOptions): { env?: NodeJS.ProcessEnv; log?: Logger; signal?: AbortSignal } => ({
  ...(o.env ? { env: o.env } : {}),
  ...(o.log ? { log: o.log } : {}),
  ...(o.signal ? { signal: o.signal } : {}),
});

/** `s3://b/runs/x` → `s3://b/runs/.x.geo-dino-state` (beside the run, as a local run's state). */
export function remoteStateRootFor(out: string): string {
  const { bucket, key } = parseS3Url(out, '--out');
  const parts = key.split('/').filter((p) => p);
  const name = parts.pop();
  if (!name) throw new GeoDinoError('E_ARGUMENT', `--out ${out}: give a prefix for the run (s3://bucket/some/prefix), not the bucket's root`, { details: { field: '--out' } });
  return s3Url(bucket, [...parts, `.${name}.geo-dino-state`].join('/'));
}

/** A ledger record in object storage: the shard's record and the attempt holding its files. */
export interface RemoteShardRecord extends ShardRecord {
  /** `s3://…/attempts/<shard>/<attempt>` */
  attempt: string;
  worker: string;
}

function ledgerUrl(stateDir: string, shard: string): string {
  return `${stateDir}/shards/${shard}.json`;
}

/** Whether a shard of a distributed run is recorded (its ledger entry exists), local or in S3. */
export async function shardRecorded(stateDir: string, shard: string, o: RemoteOptions = {}): Promise<boolean> {
  if (isS3Url(stateDir)) return (await s3Head(ledgerUrl(stateDir, shard), opts(o))) !== null;
  return fileExists(join(stateDir, 'shards', `${shard}.json`));
}

/**
 * A worker's first check of a job whose state is in object storage: the coordinator's bucket is
 * behind a custom endpoint (`runEndpoint`, sent with the job) but this worker has none, so it
 * would ask AWS for the bucket. One line saying what to set, instead of failed lookups.
 */
export function checkRunEndpoint(stateDir: string, runEndpoint: string | null | undefined, env?: NodeJS.ProcessEnv): void {
  if (!isS3Url(stateDir) || !runEndpoint) return;
  if (resolveS3Settings({}, env).endpoint) return;
  throw new GeoDinoError(
    'E_ARGUMENT',
    `${stateDir}: the run's bucket is at the S3 endpoint ${runEndpoint} (the coordinator's), but this worker has no --s3-endpoint, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL and would ask AWS; start the worker with --s3-endpoint <url> (the address of that service from this machine)`,
    { details: { field: '--s3-endpoint', url: stateDir } },
  );
}

/** Read a run plan a job names: a local path or an s3:// URL. */
export async function readRunPlan(path: string, o: RemoteOptions = {}): Promise<ChmPlan> {
  const plan = (isS3Url(path) ? await s3GetJson(path, opts(o)) : await readJsonFile(path)) as ChmPlan;
  if (plan?.format !== RUN_PLAN_FORMAT) throw new GeoDinoError('E_ARGUMENT', `${path}: not a geo-dino chm run plan`, { details: { path } });
  return plan;
}

/**
 * Put the frozen plan (a local file) into the state prefix, content-addressed; returns the state
 * prefix of this plan and the plan's URL.
 */
export async function publishRunPlan(planPath: string, stateRoot: string, o: RemoteOptions = {}): Promise<{ stateDir: string; planUrl: string }> {
  const bytes = await readFile(planPath);
  const sha = createHash('sha256').update(bytes).digest('hex');
  const stateDir = `${stateRoot}/${sha.slice(0, 16)}`;
  const planUrl = `${stateDir}/plan.json`;
  if (!(await putObject(planUrl, bytes, { ...opts(o), ifAbsent: true }))) {
    const info = await s3Head(planUrl, opts(o));
    if (info?.metadata[SHA256_METADATA] !== sha) {
      throw new GeoDinoError('E_WRITE', `${planUrl}: holds another plan than ${planPath} under the same content address; remove ${stateRoot}/ and start again`, { details: { url: planUrl } });
    }
  }
  return { stateDir, planUrl };
}

function hostTag(): string {
  return hostname().replace(/[^A-Za-z0-9_-]/g, '_');
}

/** Scratch folders of this host's workers that died (SIGKILL, crash) are removed. */
async function removeDeadScratch(root: string, log: Logger): Promise<void> {
  const names = await readdir(root).catch(() => [] as string[]);
  const mine = new RegExp(`\\.${hostTag()}-(\\d+)-[0-9a-z]+-[0-9a-f]{8}$`);
  for (const name of names) {
    const pid = Number(mine.exec(name)?.[1] ?? NaN);
    if (!Number.isInteger(pid) || pid === process.pid || processAlive(pid)) continue;
    log.info({ scratch: join(root, name) }, 'removing the scratch folder of a worker that died');
    await rm(join(root, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

export interface RemoteShardOptions extends RemoteOptions {
  batch?: number;
  chunkWidth?: number;
  webTiles?: boolean;
  headers?: Record<string, string>;
  /** Local scratch folder (default `$GEO_DINO_HOME/scratch`); the shard's work is removed after. */
  scratch?: string;
}

/**
 * Write one shard of a distributed run whose state is in object storage (see the module comment).
 * `written` is false when the shard was recorded already (before or while this worker wrote it).
 */
export async function processShardRemote(plan: ChmPlan, task: ShardTask, runner: ModelRunner, stateDir: string, o: RemoteShardOptions = {}): Promise<{ written: boolean; predicted: number }> {
  const log = o.log ?? silentLogger();
  const zone = plan.zones[task.zone];
  if (!zone) throw new GeoDinoError('E_ARGUMENT', `shard ${task.shard}: the plan has no zone ${task.zone}`);
  const shard = shardGridOf(zone).shard(task.row, task.col);
  if (shard.id !== task.shard) throw new GeoDinoError('E_ARGUMENT', `shard ${task.shard}: row ${task.row} and column ${task.col} are shard ${shard.id}`);
  const record = ledgerUrl(stateDir, shard.id);
  if (await shardRecorded(stateDir, shard.id, o)) return { written: false, predicted: 0 };

  const me = `${hostname()}:${process.pid}`;
  const attemptId = `${hostTag()}-${process.pid}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const root = o.scratch ?? join(o.env ? geoDinoHome(o.env) : tmpdir(), 'scratch');
  const scratch = join(root, `${basename(stateDir)}.${shard.id}.${attemptId}`);
  await removeDeadScratch(root, log);
  await ensureDir(scratch);
  try {
    const store = await TileStore.open(join(scratch, 'tiles'), zone.configHash);
    const ids = [...shardTileIds(zone, layoutOf(zone), shard)];
    await predictTiles(zone, ids, runner, store, {
      log,
      ...(o.batch !== undefined ? { batch: o.batch } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.env ? { env: o.env } : {}),
      ...(o.headers ? { headers: o.headers } : {}),
    });
    const dir = join(scratch, 'shard');
    const rec = await writeShard(zone, shard, store, undefined, scratch, {
      dir,
      webTiles: o.webTiles !== false,
      log,
      ...(o.chunkWidth !== undefined ? { chunkWidth: o.chunkWidth } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    // Recorded meanwhile by another delivery of this job: nothing to upload.
    if (await shardRecorded(stateDir, shard.id, o)) return { written: false, predicted: ids.length };
    const attempt = `${stateDir}/attempts/${shard.id}/${attemptId}`;
    for (const f of rec.files) {
      throwIfAborted(o.signal);
      const up = await uploadFile(join(dir, f.name), `${attempt}/${f.name}`, opts(o));
      if (up.sha256 !== f.sha256 || up.bytes !== f.bytes) {
        throw new GeoDinoError('E_WRITE', `${join(dir, f.name)}: changed while it was uploaded (sha256 ${up.sha256}, recorded ${f.sha256})`, { details: { path: join(dir, f.name) } });
      }
    }
    const remote: RemoteShardRecord = { ...rec, attempt, worker: me };
    const created = await putObject(record, Buffer.from(JSON.stringify(remote, null, 2) + '\n'), { ...opts(o), ifAbsent: true, contentType: 'application/json' });
    if (!created) {
      log.info({ shard: shard.id, record }, 'another worker recorded this shard first; discarding this attempt');
      await deletePrefix(attempt, opts(o)).catch((err: unknown) => log.warn({ url: attempt, err }, 'could not delete a discarded attempt; it goes with the run state'));
      return { written: false, predicted: ids.length };
    }
    return { written: true, predicted: ids.length };
  } finally {
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Coordinator side, after the workers: every shard's record read from the state prefix, its
 * attempt's files downloaded into `outDir/shards/<id>/` (sha256 checked) and recorded in the local
 * ledger, so the run is finished exactly as a single-machine sharded run. `sources` receives each
 * file's object (for `publishDirectory` to copy it on the server instead of uploading it again).
 * Files `keep` matches (the shard rasters of a run without web layers, which the coordinator never
 * reads) are not downloaded: they are copied on the server to their place in the run's prefix.
 */
export async function collectRemoteShards(
  stateDir: string,
  shards: readonly ShardTask[],
  ledger: ShardLedger,
  o: RemoteOptions & {
    sources?: Map<string, { url: string; sha256: string; bytes: number }>;
    /** Files that stay in object storage: copied on the server to `<out>/shards/<id>/<name>`, not downloaded. */
    keep?: { out: string; match: (name: string) => boolean };
  } = {},
): Promise<void> {
  const log = o.log ?? silentLogger();
  for (const t of shards) {
    throwIfAborted(o.signal);
    const url = ledgerUrl(stateDir, t.shard);
    const r = (await s3GetJson(url, opts(o))) as RemoteShardRecord;
    if (r?.id !== t.shard || !Array.isArray(r.files) || typeof r.attempt !== 'string' || !r.attempt.startsWith(`${stateDir}/attempts/${t.shard}/`)) {
      throw new GeoDinoError('E_BAD_JSON', `${url}: not the ledger record of shard ${t.shard}`, { details: { url } });
    }
    const dir = join(ledger.outDir, SHARD_DIR, t.shard);
    await rm(dir, { recursive: true, force: true });
    for (const f of r.files) {
      if (!/^[A-Za-z0-9._-]+$/.test(f.name) || f.name.startsWith('.')) throw new GeoDinoError('E_BAD_JSON', `${url}: file name ${JSON.stringify(f.name)} is not a shard file`, { details: { url } });
      if (o.keep?.match(f.name)) {
        await copyObject(`${r.attempt}/${f.name}`, `${o.keep.out.replace(/\/+$/, '')}/${SHARD_DIR}/${t.shard}/${f.name}`, { ...opts(o), sha256: f.sha256, bytes: f.bytes });
        continue;
      }
      await downloadFile(`${r.attempt}/${f.name}`, join(dir, f.name), { ...opts(o), sha256: f.sha256 });
      o.sources?.set(`${SHARD_DIR}/${t.shard}/${f.name}`, { url: `${r.attempt}/${f.name}`, sha256: f.sha256, bytes: f.bytes });
    }
    const { attempt: _a, worker, ...rec } = r;
    await ledger.record(rec);
    log.debug({ shard: t.shard, worker }, 'shard collected from object storage');
  }
}

/** Remove a run's state prefix (every plan under it) once the run is published. */
export async function removeRemoteState(stateRoot: string, o: RemoteOptions = {}): Promise<number> {
  return deletePrefix(stateRoot, opts(o));
}

/**
 * A worker's entry point for a shard job: the shared state is a local directory (every machine
 * sees it at the same path: sharded.ts `processShard`) or an s3:// prefix (`processShardRemote`).
 */
export async function processDistributedShard(plan: ChmPlan, task: ShardTask, runner: ModelRunner, stateDir: string, o: RemoteShardOptions = {}): Promise<{ written: boolean; predicted: number }> {
  if (isS3Url(stateDir)) return processShardRemote(plan, task, runner, stateDir, o);
  const { scratch: _s, ...local } = o;
  return processShard(plan, task, runner, stateDir, local);
}
