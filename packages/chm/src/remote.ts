/**
 * `--out s3://bucket/prefix`: the run is computed in a local staging directory exactly as a local
 * run (same state, same `--resume`), then published with @geo-dino/storage's
 * `publishDirectory` (uploads verified, `manifest.json` written last). A run in object storage is
 * complete exactly when its manifest exists; the manifest carries the request hash, so re-running
 * the same command is a no-op and a different request is refused without `--force`.
 *
 * Staging directory: `$GEO_DINO_HOME/staging/s3/<bucket>/<prefix>` (its state directory beside
 * it). It is removed once the run is published (kept with `keepState`). An interruption while
 * publishing leaves the finished local run: running the command again publishes what is missing.
 *
 * Distributed (`distribute`, `--queue`): the workers share the run's state through the bucket
 * (remote-shards.ts); the recorded shards are collected into the staging directory — without web
 * layers only their small files, the rasters being copied on the server into the run's prefix and
 * published as `remoteFiles` from the ledger (the local state is kept until then) — and the
 * state prefix is removed once the run is published.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GeoDinoError, geoDinoHome, silentLogger } from '@geo-dino/core';
import { MANIFEST_NAME, deleteObject, parseS3Url, publishDirectory, readManifest, type RunManifest } from '@geo-dino/storage';
import { requestHashOf, resolveModel } from './plan.js';
import { collectRemoteShards, publishRunPlan, remoteStateRootFor, removeRemoteState } from './remote-shards.js';
import { SHARD_DIR, ShardLedger } from './sharded.js';
import { stateDirFor } from './run.js';
import type { ChmRunOptions, ChmRunResult } from './run.js';

/** Where a run bound for object storage is computed. */
export function stagingDirFor(remote: string, env: NodeJS.ProcessEnv = process.env): string {
  const { bucket, key } = parseS3Url(remote, '--out');
  const parts = key.split('/').filter((p) => p && p !== '.' && p !== '..');
  return join(geoDinoHome(env), 'staging', 's3', bucket, ...parts);
}

function fromManifest(out: string, m: RunManifest): ChmRunResult {
  const run = (m['run'] as Record<string, unknown> | undefined) ?? {};
  const tiles = (run['tiles'] as ChmRunResult['tiles'] | undefined) ?? { total: 0, predicted: 0, resumed: 0, empty: 0 };
  return {
    out,
    upToDate: true,
    demo: run['demo'] === true,
    run,
    files: m.files.map((f) => ({ name: f.path, bytes: f['file:size'] })),
    tiles,
    provider: ((run['execution'] as { provider?: string } | undefined)?.provider) ?? null,
  };
}

/** Run `chm` into object storage (see the module comment); `runLocal` is runChm. */
export async function runChmToObjectStore(options: ChmRunOptions, runLocal: (o: ChmRunOptions) => Promise<ChmRunResult>): Promise<ChmRunResult> {
  const log = options.log ?? silentLogger();
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const out = options.out;
  const { key } = parseS3Url(out, '--out');
  if (!key.replace(/\/+$/, '')) {
    throw new GeoDinoError('E_ARGUMENT', `--out ${out}: give a prefix for the run (s3://bucket/some/prefix), not the bucket's root`, { details: { field: '--out' } });
  }
  const common = { log, env, cwd, ...(options.signal ? { signal: options.signal } : {}) };
  const md = await resolveModel(options.model, common);
  const requestHash = await requestHashOf(options, md, common);
  const storeOpts = { log, env, ...(options.signal ? { signal: options.signal } : {}) };

  const existing = await readManifest(out, storeOpts);
  if (existing && !options.force) {
    if (existing['requestHash'] === requestHash) {
      log.info({ out }, 'this run is already published; nothing to do (pass --force to recompute)');
      return fromManifest(out, existing);
    }
    throw new GeoDinoError(
      'E_ARGUMENT',
      `--out ${out}: already holds a different run (request ${String(existing['requestHash'] ?? '?').slice(0, 12)}); choose another --out, or pass --force to replace it`,
      { details: { field: '--out', url: out } },
    );
  }

  const local = stagingDirFor(out, env);
  log.info({ out, staging: local }, 'computing the run in a local staging directory, then publishing it');
  // Distributed (--queue): the workers' shared state is a prefix beside the run in the bucket
  // (remote-shards.ts); their shards are collected into the staging directory.
  const distribute = options.distribute;
  const stateRoot = distribute ? remoteStateRootFor(out) : null;
  const sources = new Map<string, { url: string; sha256: string; bytes: number }>();
  // Without web layers the coordinator never reads the shard rasters: they stay in object storage
  // (copied on the server into the run's prefix) and the publish lists them from the ledger.
  const keepRemote = distribute && options.webTiles === false ? (name: string): boolean => /\.tiff?$/i.test(name) : null;
  const localState = stateDirFor(local);
  if (keepRemote && existing) {
    // --force: shard files land under the prefix before the publish; take the old run down first.
    await deleteObject(`${out.replace(/\/+$/, '')}/${MANIFEST_NAME}`, storeOpts);
  }
  const result = await runLocal({
    ...options,
    out: local,
    // The STAC documents' `self` links: where the run is published (unless --stac-base-url says otherwise).
    stacBaseUrl: options.stacBaseUrl ?? out.replace(/\/+$/, ''),
    ...(keepRemote ? { remoteShardFiles: keepRemote, keepState: true } : {}),
    ...(distribute && stateRoot
      ? {
          distribute: async (job: Parameters<typeof distribute>[0]) => {
            const remote = await publishRunPlan(job.planPath, stateRoot, storeOpts);
            log.info({ state: remote.stateDir }, 'run state for the workers in object storage');
            await distribute({ ...job, planPath: remote.planUrl, stateDir: remote.stateDir });
            await collectRemoteShards(remote.stateDir, job.shards, new ShardLedger(join(job.stateDir, 'shards'), join(job.stateDir, 'out'), keepRemote ?? undefined), {
              ...storeOpts,
              sources,
              ...(keepRemote ? { keep: { out, match: keepRemote } } : {}),
            });
          },
        }
      : {}),
  });
  const remoteFiles: string[] = [];
  if (keepRemote) {
    const ledger = new ShardLedger(join(localState, 'shards'), join(localState, 'out'));
    for (const name of (await readdir(ledger.dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort()) {
      const r = await ledger.read(name.slice(0, -'.json'.length));
      for (const f of r?.files ?? []) if (keepRemote(f.name)) remoteFiles.push(`${SHARD_DIR}/${r!.id}/${f.name}`);
    }
  }
  const published = await publishDirectory(local, out, {
    ...storeOpts,
    ...(options.progress ? { progress: options.progress } : {}),
    ...(sources.size ? { sources } : {}),
    ...(remoteFiles.length ? { remoteFiles } : {}),
    manifestExtra: {
      requestHash,
      run: {
        status: result.run['status'] ?? null,
        demo: result.demo,
        tiles: result.tiles,
        execution: result.run['execution'] ?? null,
        outputs: result.run['outputs'] ?? null,
      },
    },
  });
  if (!options.keepState) {
    if (keepRemote) await rm(localState, { recursive: true, force: true }).catch((err: unknown) => log.warn({ state: localState, err }, 'could not remove the run state'));
    await rm(local, { recursive: true, force: true }).catch((err: unknown) => log.warn({ staging: local, err }, 'could not remove the staging directory'));
    if (stateRoot) await removeRemoteState(stateRoot, storeOpts).catch((err: unknown) => log.warn({ state: stateRoot, err }, 'could not remove the run state in object storage'));
  }
  return { ...result, out, files: published.files.map((f) => ({ name: f.path, bytes: f['file:size'] })) };
}
