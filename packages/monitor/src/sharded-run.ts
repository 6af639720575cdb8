/**
 * Monitoring at regional scale (issue 13): a region on the global shard grid.
 *
 * A region is monitored shard by shard when it was added with a shard size (`--shard-size`), when
 * its plan has more than one shard, or once it has per-shard history. Such a run (executor.ts
 * plans it):
 *
 * 1. plans the whole region with all its imagery (newest scene first) and recomputes only the
 *    shards that the scenes newer than the last succeeded run touch (the scenes' extents ∩ the
 *    shards holding AOI pixels), plus any shard that has no result yet (the first run: all);
 * 2. writes those shards with the chm package's `runPlannedShards` (the shard loop of
 *    `geo-dino chm`: each shard equals the same shard of a full run) into the run's work
 *    directory: `shards/<id>/…`, the run's tile index, zone VRTs, collection.json, run.json;
 * 3. per recomputed shard: zonal statistics over the AOI, and change against the previous
 *    succeeded result for that shard (`detectChange`: `shards/<id>/loss.tif`,
 *    `shards/<id>/change.geojson`); the run's `change.geojson` gathers every shard's polygons and
 *    `loss-<zone>.vrt` mosaics the shards' loss rasters;
 * 4. the run's statistics are those of the region's current map (every shard's latest result,
 *    combined from the per-shard statistics kept in the store);
 * 5. the run directory is moved into place, each recomputed shard recorded in the store's
 *    per-shard history (`shard_results`: run, path, sha256, bounds, change figures), and the
 *    region's current map rewritten: `regions/<name>/current/` (`writeCurrentMap`: tile index,
 *    one VRT per zone and web layers over each shard's latest result, run.json).
 *
 * Shards not recomputed are not touched: their files stay in the run that wrote them.
 */
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { GeoDinoError, ensureDir, fileExists, readJsonFile, silentLogger, writeJsonAtomic, type Logger, type Progress } from '@geo-dino/core';
import { distributeShards, redactRedisUrl } from './queue.js';
import { writeShardedRunTiles } from '@geo-dino/pmtiles';
import { bboxOf, loadAoi, union, type MultiPolygonCoords } from '@geo-dino/geometry';
import { EXTENSIONS, MEDIA_TYPES, STAC_VERSION, type StacAsset, type StacItem } from '@geo-dino/stac';
import { LANDCOVER_FILE, SHARD_DIR, extraHeadsOf, listFiles, runPlannedShards, windowFootprint, writeTileIndex, writeZoneVrt, type ChmPlan, type RunPlan, type ShardRecord } from '@geo-dino/chm';
import { detectChange } from './change.js';
import { checksummedAsset, phaseContext, regionRunProperties, runSummary, type ExecutorOptions } from './executor.js';
import { combineLandcoverStats, combineZonalStats, landcoverStats, zonalStats } from './stats.js';
import type { ChangeRecord, LandcoverStats, MonitorStore, Region, RunRecord, RunStats, ShardResult } from './store.js';

/** The shards a sharded run recomputes (in its work directory, written before plan.json). */
export const SELECTION_FILE = 'selection.json';

type NewShardResult = Omit<ShardResult, 'runSeq' | 'run'>;

function srsOf(zone: RunPlan): string {
  return zone.grid.crs.epsg !== null ? `EPSG:${zone.grid.crs.epsg}` : (zone.grid.crs.definition ?? '');
}

/** A shard's bounds in its zone's CRS [minX, minY, maxX, maxY]. */
function boundsOf(zone: RunPlan, w: ShardRecord['window']): [number, number, number, number] {
  const t = zone.grid.transform;
  return [t[0] + w.x * t[1], t[3] + (w.y + w.height) * t[5], t[0] + (w.x + w.width) * t[1], t[3] + w.y * t[5]];
}

/** Steps 2–6 of a sharded region's run (module comment). */
export async function shardedPhases(run: RunRecord, region: Region, work: string, o: ExecutorOptions & { signal?: AbortSignal }, setPhase: (p: string) => void, plan: ChmPlan, selected: readonly string[]): Promise<void> {
  const { clock, log, progress, store, signal, env } = phaseContext(o);
  const runDir = run.dir;
  const previous = store.previousSucceeded(region.name, run.seq);

  // 2. Predict and write the selected shards.
  setPhase('predict');
  const model = region.model ?? 'demo';
  const queue = o.queue;
  if (queue) store.updateRun(run.seq, { queue: redactRedisUrl(queue.url) });
  const res = await runPlannedShards(plan, selected, {
    model,
    // Distributed: one job per shard (`geo-dino worker`), written by the workers into the work directory.
    ...(queue
      ? {
          distribute: (j) =>
            distributeShards(queue, {
              run: `${region.name}-${run.id}`,
              planPath: j.planPath,
              stateDir: j.stateDir,
              model,
              shards: j.shards,
              log: j.log,
              progress: j.progress,
              ...(queue.attempts !== undefined ? { attempts: queue.attempts } : {}),
              ...(queue.pollMs !== undefined ? { pollMs: queue.pollMs } : {}),
              ...(queue.redisOutageMs !== undefined ? { redisOutageMs: queue.redisOutageMs } : {}),
              ...(j.signal ? { signal: j.signal } : {}),
            }),
        }
      : {}),
    stateDir: work,
    ...(o.device ? { device: o.device } : {}),
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...(o.workers !== undefined ? { workers: o.workers } : {}),
    ...(o.batch !== undefined ? { batch: o.batch } : {}),
    ...(o.webTiles !== undefined ? { webTiles: o.webTiles } : {}),
    log,
    progress,
    env,
    ...(signal ? { signal } : {}),
    runInfo: {
      region: region.name,
      monitor: { region: region.name, run: run.id, trigger: run.trigger, slot: run.slot, previous_run: previous?.id ?? null, newer_than: store.runBySeq(run.seq).newerThan, shards_recomputed: selected.length, shards_planned: plan.shards },
    },
  });
  const out = res.outDir;

  // 3. Per shard: statistics, change against the shard's previous result.
  setPhase('change');
  const aoi = await loadAoi(region.aoiPath);
  const before = new Map(store.latestShardResults(region.name, run.seq).map((r) => [r.shardId, r]));
  const regionDir = o.paths.region(region.name);
  const rows: NewShardResult[] = [];
  const changes: ChangeRecord[] = [];
  const features: unknown[] = [];
  const lossByZone = new Map<RunPlan, ShardRecord[]>();
  let compared = 0;
  const sums = { compared: 0, loss: 0, changed: 0 };
  for (const rec of res.shards) {
    const zone = plan.zones.find((z) => z.shards.zone === rec.zone);
    if (!zone) throw new GeoDinoError('E_INTERNAL', `shard ${rec.id}: zone ${rec.zone} is not in the plan`);
    const dir = join(out, SHARD_DIR, rec.id);
    const chmPath = join(dir, 'chm.tif');
    const stats = await zonalStats(chmPath, aoi, { ...(signal ? { signal } : {}) });
    const lcHead = extraHeadsOf(zone).find((h) => h.kind === 'land-cover');
    const landcover = lcHead ? await landcoverStats(join(dir, LANDCOVER_FILE), aoi, lcHead.spec, { ...(signal ? { signal } : {}) }) : null;
    const prev = before.get(rec.id) ?? null;
    const prevPath = prev ? join(regionDir, prev.path) : null;
    let change: Awaited<ReturnType<typeof detectChange>> | null = null;
    if (prev && prevPath && (await fileExists(prevPath))) {
      change = await detectChange(prevPath, chmPath, {
        thresholdM: region.lossThresholdM,
        minAreaM2: region.minAreaM2,
        aoi,
        lossPath: join(dir, 'loss.tif'),
        geojsonPath: join(dir, 'change.geojson'),
        properties: { region: region.name, run: run.id, previous_run: prev.run, shard: rec.id },
        log,
        ...(signal ? { signal } : {}),
      });
      compared++;
      sums.compared += change.comparedAreaM2;
      sums.loss += change.lossAreaM2;
      sums.changed += change.changedAreaM2;
      changes.push(...change.changes);
      features.push(...((await readJsonFile(join(dir, 'change.geojson'))) as { features: unknown[] }).features);
      lossByZone.set(zone, [...(lossByZone.get(zone) ?? []), rec]);
    } else if (prev) {
      log.warn({ region: region.name, shard: rec.id, path: prevPath }, `shard ${rec.id}: its previous result is gone; this run is its new baseline`);
    }
    const chm = rec.files.find((f) => f.name === 'chm.tif');
    if (!chm) throw new GeoDinoError('E_INTERNAL', `shard ${rec.id}: no chm.tif in its ledger record`);
    rows.push({
      region: region.name,
      shardId: rec.id,
      zone: rec.zone,
      path: `runs/${run.id}/${SHARD_DIR}/${rec.id}/chm.tif`,
      sha256: chm.sha256,
      crs: srsOf(zone),
      bounds: boundsOf(zone, rec.window),
      gsd: zone.grid.gsd,
      validPixels: rec.validPixels,
      status: 'computed',
      previousRunSeq: change && prev ? prev.runSeq : null,
      changes: change ? change.changes.length : null,
      lossAreaM2: change ? change.lossAreaM2 : null,
      changedAreaM2: change ? change.changedAreaM2 : null,
      meta: { footprint: windowFootprint(zone, rec.window), bands: zone.heads[0]!.planes.filter((p) => p === 'height' || p === 'uncertainty'), window: { width: rec.window.width, height: rec.window.height }, stats, landcover },
      createdAt: clock.now().toISOString(),
    });
  }
  const withChange = compared > 0;
  if (withChange) {
    await writeJsonAtomic(join(out, 'change.geojson'), { type: 'FeatureCollection', features });
    for (const [zone, recs] of lossByZone) {
      await writeZoneVrt(
        join(out, `loss-${zone.shards.zone}.vrt`),
        { width: zone.grid.width, height: zone.grid.height, transform: zone.grid.transform, srs: srsOf(zone), bands: ['loss'] },
        recs.map((r) => ({ location: `${SHARD_DIR}/${r.id}/loss.tif`, window: r.window })),
      );
    }
  }
  store.setChanges(run.seq, changes);

  // 4. Statistics of the region's current map: every shard's latest result.
  setPhase('statistics');
  const current = currentMap(before, rows, run);
  const stats: RunStats = combineZonalStats(
    current.map((r) => r.meta.stats).filter((x): x is RunStats => x !== null),
    aoi.areaM2,
  );
  store.setStats(run.seq, stats);
  // Land cover of the current map, from the shards that have it (a region with a land-cover head).
  const landcover = combineLandcoverStats(current.map((r) => r.meta.landcover ?? null).filter((x): x is LandcoverStats => x !== null));
  store.setLandcoverStats(run.seq, landcover);
  store.updateRun(run.seq, { previousRun: withChange && previous ? previous.id : null });
  const fresh = store.runBySeq(run.seq);
  const summary = runSummary(region, fresh, stats, landcover, withChange ? { comparedAreaM2: sums.compared, lossAreaM2: sums.loss, changedAreaM2: sums.changed, count: changes.length } : null, {
    planned: plan.shards,
    recomputed: rows.length,
    results: rows.map((r) => ({ id: r.shardId, previous_run: r.previousRunSeq !== null ? store.runBySeq(r.previousRunSeq).id : null, changes: r.changes, loss_area_m2: r.lossAreaM2, changed_area_m2: r.changedAreaM2 })),
  });
  await writeJsonAtomic(join(out, 'stats.json'), summary);

  // 5. The run's STAC Item (for the region's collection), run.json lists the monitoring files; the
  // run directory goes into place; the shards are recorded; the current map is rewritten.
  setPhase('publish');
  await writeRunItem(out, region, fresh, stats, rows, withChange, plan.demo);
  const runJson = (await readJsonFile(join(out, 'run.json'))) as Record<string, unknown>;
  runJson['outputs'] = [...(await listFiles(out)).map((f) => f.name).filter((n) => n !== 'run.json'), 'run.json'];
  await writeJsonAtomic(join(out, 'run.json'), runJson);
  // The rows wait in the work directory: a run interrupted after the rename records them when resumed.
  await writeJsonAtomic(join(work, SHARD_RESULTS_FILE), { demo: plan.demo, rows });
  await ensureDir(dirname(runDir));
  try {
    await rename(out, runDir);
  } catch (err) {
    throw new GeoDinoError('E_WRITE', `${runDir}: cannot move the finished run into place: ${(err as Error).message}`, { cause: err });
  }
  await recordShards(run, region, work, o);
}

/**
 * The STAC Item of a sharded run (`item.json`, listed in the region's collection): its footprint is
 * the union of the shards it recomputed, its assets the run's tile index, shard collection,
 * statistics and (from the second run of a shard on) changes.
 */
async function writeRunItem(out: string, region: Region, run: RunRecord, stats: RunStats, rows: readonly NewShardResult[], withChange: boolean, demo: boolean): Promise<void> {
  const geometry = union(...rows.map((r) => [[r.meta.footprint]] as MultiPolygonCoords));
  const asset = (file: string, type: string, roles: string[], title: string): Promise<StacAsset> => checksummedAsset(out, file, type, roles, title);
  const item: StacItem = {
    type: 'Feature',
    stac_version: STAC_VERSION,
    stac_extensions: [EXTENSIONS.file],
    id: `${region.name}-${run.id}`,
    geometry: { type: 'MultiPolygon', coordinates: geometry },
    bbox: bboxOf(geometry),
    properties: {
      datetime: run.acquiredEnd ?? new Date().toISOString(),
      ...(run.acquiredStart && run.acquiredEnd && run.acquiredStart !== run.acquiredEnd ? { start_datetime: run.acquiredStart, end_datetime: run.acquiredEnd } : {}),
      title: `${demo ? 'DEMO canopy height' : 'Canopy height'}, region ${region.name}, run ${run.id}: ${rows.length} shard(s) recomputed`,
      ...regionRunProperties(region, run, stats),
      'geo-dino:shards_recomputed': rows.map((r) => r.shardId),
      'geo-dino:demo': demo,
    },
    links: [],
    assets: {
      shards: await asset('shards.geojson', MEDIA_TYPES.geojson, ['metadata'], 'Tile index of the shards this run recomputed'),
      collection: await asset('collection.json', MEDIA_TYPES.json, ['metadata'], 'STAC Collection of the shards this run recomputed'),
      stats: await asset('stats.json', MEDIA_TYPES.json, ['metadata'], 'Statistics of the current map and per-shard change summary'),
      ...(withChange ? { change: await asset('change.geojson', MEDIA_TYPES.geojson, ['data'], `Canopy loss of at least ${region.lossThresholdM} m over at least ${region.minAreaM2} m², per shard against its previous result`) } : {}),
    },
  };
  await writeJsonAtomic(join(out, 'item.json'), item);
}

/** The shard results of a sharded run, kept in its work directory until recorded. */
export const SHARD_RESULTS_FILE = 'shard-results.json';

/**
 * Record a sharded run's shards (from its work directory) in the store's per-shard history and
 * rewrite the region's current map. Repeatable: a run resumed after its directory went into place
 * calls it again (no-op without the file: not a sharded run).
 */
export async function recordShards(run: RunRecord, region: Region, work: string, o: ExecutorOptions & { signal?: AbortSignal }): Promise<void> {
  const path = join(work, SHARD_RESULTS_FILE);
  if (!(await fileExists(path))) return;
  const log = o.log ?? silentLogger();
  const { demo, rows } = (await readJsonFile(path)) as { demo: boolean; rows: NewShardResult[] };
  o.store.setShardResults(run.seq, rows);
  const current = currentMap(new Map(o.store.latestShardResults(region.name, run.seq).map((r) => [r.shardId, r])), rows, run);
  await writeCurrentMap(o.paths.region(region.name), current, { demo, ...(o.webTiles !== undefined ? { webTiles: o.webTiles } : {}), log, ...(o.progress ? { progress: o.progress } : {}), ...(o.signal ? { signal: o.signal } : {}) });
  log.info({ region: region.name, run: run.id, recomputed: rows.length, shards: current.length }, 'shards recorded; current map updated');
}

/** Every shard's latest result: the earlier runs' overridden by this run's. Ordered by shard id. */
function currentMap(before: ReadonlyMap<string, ShardResult>, rows: readonly NewShardResult[], run: RunRecord): ShardResult[] {
  const m = new Map(before);
  for (const r of rows) m.set(r.shardId, { ...r, runSeq: run.seq, run: run.id });
  return [...m.values()].sort((a, b) => (a.shardId < b.shardId ? -1 : a.shardId > b.shardId ? 1 : 0));
}

/** The region's current map: `regions/<name>/current/` (see {@link writeCurrentMap}). */
export const CURRENT_DIR = 'current';

export interface CurrentMapOptions {
  demo: boolean;
  /** Also the web layers (PMTiles over every shard's latest result; default true). */
  webTiles?: boolean;
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
}

/**
 * The region's current map, `regions/<name>/current/`, a sharded run directory over each shard's
 * latest result (files stay in the runs that wrote them, referenced as `../runs/<run>/shards/<id>/`):
 * `shards.geojson` (tile index: `location`, the run that wrote it, its sha256), one
 * `chm-<zone>.vrt` per zone, the web layers (PMTiles, unless `webTiles` is false) and run.json
 * (`"region"`, `"current": true`), so `geo-dino serve`, GDAL/QGIS and the viewer open it like a
 * run. Built beside it and swapped into place.
 */
export async function writeCurrentMap(regionDir: string, current: readonly ShardResult[], o: CurrentMapOptions): Promise<string> {
  const log = o.log ?? silentLogger();
  const final = join(regionDir, CURRENT_DIR);
  const tmp = join(regionDir, `.${CURRENT_DIR}.${process.pid}.${Date.now().toString(36)}.tmp`);
  const loc = (r: ShardResult): string => `../${r.path}`;
  try {
    await ensureDir(tmp);
    await writeTileIndex(
      join(tmp, 'shards.geojson'),
      current.map((r) => ({
        properties: { location: loc(r), id: r.shardId, zone: r.zone, crs: r.crs, run: r.run, sha256: r.sha256, valid_pixels: r.validPixels, updated: r.createdAt },
        ring: r.meta.footprint,
      })),
    );
    const zones = new Map<string, ShardResult[]>();
    for (const r of current) zones.set(r.zone, [...(zones.get(r.zone) ?? []), r]);
    const vrts: { zone: string; vrt: string; shards: number }[] = [];
    for (const [zone, rs] of zones) {
      const gsd = rs[0]!.gsd;
      const minX = Math.min(...rs.map((r) => r.bounds[0]));
      const maxY = Math.max(...rs.map((r) => r.bounds[3]));
      const maxX = Math.max(...rs.map((r) => r.bounds[2]));
      const minY = Math.min(...rs.map((r) => r.bounds[1]));
      const vrt = `chm-${zone}.vrt`;
      await writeZoneVrt(
        join(tmp, vrt),
        { width: Math.round((maxX - minX) / gsd), height: Math.round((maxY - minY) / gsd), transform: [minX, gsd, 0, maxY, 0, -gsd], srs: rs[0]!.crs, bands: rs[0]!.meta.bands },
        rs.map((r) => ({ location: loc(r), window: { x: Math.round((r.bounds[0] - minX) / gsd), y: Math.round((maxY - r.bounds[3]) / gsd), width: r.meta.window.width, height: r.meta.window.height } })),
      );
      vrts.push({ zone, vrt, shards: rs.length });
    }
    let webTiles: string[] = [];
    if (o.webTiles !== false && current.length) {
      const web = await writeShardedRunTiles(tmp, current.map((r) => `../${dirname(r.path)}`), {
        demo: o.demo,
        imagery: true,
        log,
        ...(o.progress ? { progress: o.progress } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
      webTiles = Object.values(web).filter((w) => w).map((w) => basename(w!.path));
    }
    const regionName = basename(regionDir);
    const run = {
      format: 'geo-dino-run',
      formatVersion: 1,
      kind: 'chm',
      status: 'complete',
      layout: 'sharded',
      region: regionName,
      current: true,
      created: new Date().toISOString(),
      demo: o.demo,
      ...(o.demo ? { warning: 'DEMO: random-weight model; heights are not real canopy heights' } : {}),
      shards: { count: current.length, index: 'shards.geojson', zones: vrts },
      runs: [...new Set(current.map((r) => r.run))].sort(),
      webTiles,
      outputs: ['shards.geojson', ...vrts.map((v) => v.vrt), ...webTiles, 'run.json'],
    };
    await writeJsonAtomic(join(tmp, 'run.json'), run);
    const old = `${final}.${process.pid}.old`;
    const had = await fileExists(final);
    if (had) await rename(final, old);
    await rename(tmp, final);
    if (had) await rm(old, { recursive: true, force: true });
    return final;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/** The region's current map from the store (every shard's latest succeeded result). */
export async function rewriteCurrentMap(store: MonitorStore, regionDir: string, region: string, o: CurrentMapOptions): Promise<number> {
  const current = store.latestShardResults(region);
  if (current.length) await writeCurrentMap(regionDir, current, o);
  return current.length;
}
