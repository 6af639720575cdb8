/**
 * Sharded runs: a run whose planned pixels fall in more than one shard of the global shard grid
 * (`@geo-dino/tiling` shards.ts) is predicted and written shard by shard.
 *
 * Per zone, shards are processed in order (north to south, west to east). The predictor predicts,
 * for each shard, the tiles that no earlier shard of the run touched (a tile straddling a shard
 * border is predicted once, at the first shard it touches); the assembler follows it through a
 * `TileFeed`, blends each shard's window from the stored tiles (tiles shifted into the window, so
 * a shard's pixels equal the same pixels of an unsharded run) and writes the shard's directory:
 *
 * ```
 * shards/<id>/chm.tif            COG, float32: canopy height, uncertainty (m)
 * shards/<id>/landcover.tif      when a land-cover head ran
 * shards/<id>/imagery.tif        the model's input mosaic (RGBA, 8-bit), for imagery.pmtiles
 * shards/<id>/provenance.geojson
 * shards/<id>/item.json          STAC Item (in the run's collection.json)
 * ```
 *
 * A written shard is recorded in the state's ledger (`shards/<id>.json`: every file's size and
 * sha256) and is never recomputed by `--resume`; a shard whose files no longer match the ledger
 * is recomputed. A stored tile is deleted as soon as every planned shard it touches is recorded,
 * so the tile store holds the tiles of the shard being written and those along the border with
 * the next row of shards, not the run's.
 *
 * When every shard is written, the run-level files follow: collection.json (STAC Collection of the
 * shard Items with the run's statistics), shards.geojson (the tile index, one footprint per shard
 * with its `location`, as gdaltindex writes), chm-<zone>.vrt (each zone as one raster for
 * GDAL/QGIS/rasterio), provenance.geojson (every shard's, concatenated), run.json and the web
 * layers (one PMTiles per layer over every shard and zone).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { GEO_DINO_VERSION, GeoDinoError, ensureDir, fileExists, openAtomic, readJsonFile, silentLogger, throwIfAborted, writeJsonAtomic, type Logger, type Progress } from '@geo-dino/core';
import { writeCollection, writeOutputItem, type OutputAsset } from '@geo-dino/stac';
import { crsLabel, pixelToCrs, transformBetween, WGS84, type ShardRef, type TileLayout } from '@geo-dino/tiling';
import { blendWindow, gridCode, mappedFootprint, onnxruntimeVersion, tileReader, windowPlan } from './assemble.js';
import { BandAccumulator, chmAssetBands, type BandStats } from './layers.js';
import { classMapAssets } from './extra-heads.js';
import type { TileFeed } from './feed.js';
import { layoutOf, planShards, shardGridOf, shardIsPlanned, shardTileIds, tileShards } from './plan.js';
import { predictTiles } from './predict.js';
import { TileStore } from './tile-store.js';
import type { ModelRunner } from '@geo-dino/model';
import type { ProvenanceFeature } from './provenance.js';
import { tileServiceProperties } from './sources.js';
import { NODATA, type ChmPlan, type RunPlan } from './types.js';

export const SHARD_DIR = 'shards';
export const SHARD_IMAGERY_FILE = 'imagery.tif';

/** A shard's entry in the state's ledger: written, checksummed. */
export interface ShardRecord {
  id: string;
  zone: string;
  row: number;
  col: number;
  /** The shard's window in its zone grid, clipped to the grid. */
  window: { x: number; y: number; width: number; height: number };
  files: { name: string; bytes: number; sha256: string }[];
  validPixels: number;
  /** Per band: n, sum, sumSq, min, max (the run's statistics are summed from these). */
  bands: Record<string, { n: number; sum: number; sumSq: number; min: number; max: number }>;
  scenes: number[];
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * The ledger of written shards (`<state>/shards/<id>.json`). `remote`: names of shard files that
 * stay in object storage (a distributed run into a bucket without web layers): not expected in
 * `outDir`, checked when the run is published.
 */
export class ShardLedger {
  constructor(
    readonly dir: string,
    readonly outDir: string,
    readonly remote?: (name: string) => boolean,
  ) {}

  pathOf(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  async record(r: ShardRecord): Promise<void> {
    await ensureDir(this.dir);
    await writeJsonAtomic(this.pathOf(r.id), r);
  }

  async read(id: string): Promise<ShardRecord | null> {
    const p = this.pathOf(id);
    if (!(await fileExists(p))) return null;
    try {
      return (await readJsonFile(p)) as ShardRecord;
    } catch {
      return null;
    }
  }

  /**
   * The shard's record when its files are all present with the recorded sizes and checksums;
   * otherwise null (the ledger entry and the shard's files are removed, so it is recomputed).
   */
  async verified(id: string, log: Logger): Promise<ShardRecord | null> {
    const r = await this.read(id);
    if (!r) return null;
    const dir = join(this.outDir, SHARD_DIR, id);
    for (const f of r.files) {
      const p = join(dir, f.name);
      const st = await stat(p).catch(() => null);
      if (!st && this.remote?.(f.name)) continue;
      const ok = st?.isFile() && st.size === f.bytes && (await sha256File(p)) === f.sha256;
      if (!ok) {
        log.warn({ shard: id, file: p }, `shard ${id}: ${f.name} is missing or does not match its checksum; recomputing the shard`);
        await unlink(this.pathOf(id)).catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
        return null;
      }
    }
    return r;
  }
}

function toStats(b: ShardRecord['bands'][string] | undefined, total: number): BandStats | null {
  if (!b) return null;
  const acc = new BandAccumulator();
  acc.n = b.n;
  acc.sum = b.sum;
  acc.sumSq = b.sumSq;
  acc.min = b.min;
  acc.max = b.max;
  return acc.stats(total);
}

/** The lon/lat polygon of a pixel window of a zone grid (edges densified). */
export function windowFootprint(zone: RunPlan, w: { x: number; y: number; width: number; height: number }): [number, number][] {
  const t = transformBetween(zone.grid.crs, WGS84, 'shard');
  const ring: [number, number][] = [];
  const n = 8;
  const corners: [number, number][] = [
    [w.x, w.y],
    [w.x + w.width, w.y],
    [w.x + w.width, w.y + w.height],
    [w.x, w.y + w.height],
  ];
  for (let k = 0; k < 4; k++) {
    const [ax, ay] = corners[k]!;
    const [bx, by] = corners[(k + 1) % 4]!;
    for (let i = 0; i < n; i++) {
      const [x, y] = pixelToCrs(zone.grid, ax + ((bx - ax) * i) / n, ay + ((by - ay) * i) / n);
      const [lon, lat] = t.forward(x, y);
      ring.push([Number(lon.toFixed(9)), Number(lat.toFixed(9))]);
    }
  }
  ring.push(ring[0]!);
  return ring;
}

export interface ShardWriteOptions {
  chunkWidth?: number;
  webTiles: boolean;
  log: Logger;
  signal?: AbortSignal;
}

/** Blend one shard and write its directory; returns its ledger record (not yet recorded). */
export async function writeShard(zone: RunPlan, shard: ShardRef, store: TileStore, feed: TileFeed | undefined, outDir: string, options: ShardWriteOptions & { dir?: string }): Promise<ShardRecord> {
  const win = shardGridOf(zone).clip(shard);
  const dir = options.dir ?? join(outDir, SHARD_DIR, shard.id);
  await rm(dir, { recursive: true, force: true });
  await ensureDir(dir);
  const readTile = tileReader(zone, store, { ...(feed ? { feed } : {}), ...(options.chunkWidth !== undefined ? { chunkWidth: options.chunkWidth } : {}) });
  const r = await blendWindow(zone, win, dir, readTile, {
    ...(options.chunkWidth !== undefined ? { chunkWidth: options.chunkWidth } : {}),
    imagery: options.webTiles,
    log: options.log,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (r.mosaic) await rename(r.mosaic.path, join(dir, SHARD_IMAGERY_FILE));
  const sub = windowPlan(zone, win);
  const features = r.provenance.features.map((f) => ({ ...f, properties: { ...f.properties, shard: shard.id } }));
  await writeJsonAtomic(join(dir, 'provenance.geojson'), { ...r.provenance, features });
  const bandNames = r.bandNames;
  const total = win.width * win.height;
  const footprint = r.validPixels ? mappedFootprint(sub, features.map((f) => f.geometry.coordinates)) : [[windowFootprint(zone, win)]];
  const assets: OutputAsset[] = [
    {
      key: 'chm',
      path: join(dir, 'chm.tif'),
      roles: ['data'],
      title: zone.demo ? `Canopy height and uncertainty, shard ${shard.id} (DEMO model, not real heights)` : `Canopy height and uncertainty, shard ${shard.id}`,
      bands: chmAssetBands(bandNames, (i) => r.stats[i]!.stats(total)),
    },
    ...classMapAssets(r.classMaps, zone.demo),
    { key: 'provenance', path: join(dir, 'provenance.geojson'), roles: ['metadata'], title: 'Source scene and acquisition time of every part of the shard' },
  ];
  const t = sub.grid.transform;
  await writeOutputItem({
    id: `${shard.id}`,
    itemPath: join(dir, 'item.json'),
    geometry: footprint.length === 1 ? { type: 'Polygon', coordinates: footprint[0]! } : { type: 'MultiPolygon', coordinates: footprint },
    grid: { ...gridCode(sub), shape: [win.height, win.width], transform: [t[1], t[2], t[0], t[4], t[5], t[3]] },
    assets,
    sources: [],
    model: { name: zone.model.name, weightsSha256: zone.model.weightsSha256 },
    demo: zone.demo,
    ...(onnxruntimeVersion() ? { software: { 'onnxruntime-node': onnxruntimeVersion()! } } : {}),
    title: `${zone.demo ? 'DEMO canopy height' : 'Canopy height'}, shard ${shard.id}`,
    properties: { 'geo-dino:config_hash': zone.configHash, 'geo-dino:resampling': zone.tiling.resampling, 'geo-dino:shard': shard.id, 'geo-dino:zone': shard.zone, gsd: zone.grid.gsd * zone.grid.crs.metresPerUnit, ...tileServiceProperties(zone) },
  });
  const files: ShardRecord['files'] = [];
  for (const name of (await readdir(dir)).sort()) {
    const p = join(dir, name);
    files.push({ name, bytes: (await stat(p)).size, sha256: await sha256File(p) });
  }
  const bands: ShardRecord['bands'] = {};
  bandNames.forEach((n, i) => {
    const a = r.stats[i]!;
    bands[n] = { n: a.n, sum: a.sum, sumSq: a.sumSq, min: a.min, max: a.max };
  });
  return {
    id: shard.id,
    zone: shard.zone,
    row: shard.row,
    col: shard.col,
    window: win,
    files,
    validPixels: r.validPixels,
    bands,
    scenes: [...new Set(r.provenance.features.map((f) => f.properties.priority))],
  };
}

/**
 * The tiles to predict for a shard: those of its window not stored now whose first to-do shard of
 * the same processing band is this one (a tile straddling two bands is predicted for each).
 */
export function* tilesFirstNeededBy(zone: RunPlan, layout: TileLayout, shard: ShardRef, todo: ReadonlySet<string>, isStored: (id: number) => boolean): Generator<number> {
  const grid = shardGridOf(zone);
  const band = grid.band(shard);
  for (const id of shardTileIds(zone, layout, shard)) {
    if (isStored(id)) continue;
    const first = tileShards(zone, layout, id)
      .filter((s) => todo.has(s.id) && grid.band(s) === band)
      .sort((a, b) => grid.compare(a, b))[0];
    if (first?.id === shard.id) yield id;
  }
}

/**
 * Delete the tiles whose every planned shard is written; with `band`, those whose every planned
 * shard of that band is written (the next band predicts its own copy).
 */
export async function releaseTiles(
  zone: RunPlan,
  layout: TileLayout,
  ids: Iterable<number>,
  planned: ReadonlySet<string>,
  written: ReadonlySet<string>,
  store: TileStore,
  feed?: TileFeed,
  band?: number,
): Promise<number> {
  const grid = shardGridOf(zone);
  let n = 0;
  for (const id of ids) {
    if (tileShards(zone, layout, id).every((s) => !planned.has(s.id) || written.has(s.id) || (band !== undefined && grid.band(s) !== band))) {
      await store.remove(id);
      feed?.forget(id);
      n++;
    }
  }
  return n;
}

/** The planned shards of a zone (ids, in order). */
export function plannedShards(zone: RunPlan, layout: TileLayout = layoutOf(zone)): ShardRef[] {
  return [...planShards(zone, layout)];
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Append-only text file writer (the tile index, VRTs and provenance are streamed, not built in memory). */
async function streamFile(path: string, write: (put: (s: string) => Promise<void>) => Promise<void>): Promise<void> {
  const file = await openAtomic(path);
  let buf = '';
  const put = async (s: string): Promise<void> => {
    buf += s;
    if (buf.length > 1 << 20) {
      await file.write(buf);
      buf = '';
    }
  };
  try {
    await write(put);
    await file.write(buf);
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err;
  }
}

/** One shard in a tile index: its properties (`location` first, as gdaltindex writes it) and its lon/lat outline. */
export interface TileIndexEntry {
  properties: { location: string } & Record<string, string | number | null>;
  ring: [number, number][];
}

/** Write a tile index (GeoJSON FeatureCollection, one polygon per shard), streamed. */
export async function writeTileIndex(path: string, entries: Iterable<TileIndexEntry>): Promise<void> {
  await streamFile(path, async (put) => {
    await put('{"type":"FeatureCollection","name":"shards","features":[\n');
    let first = true;
    for (const e of entries) {
      await put((first ? '' : ',\n') + JSON.stringify({ type: 'Feature', properties: e.properties, geometry: { type: 'Polygon', coordinates: [e.ring] } }));
      first = false;
    }
    await put('\n]}\n');
  });
}

/** A zone VRT's raster: size, geotransform, SRS (`EPSG:n` or a definition), band names (height[, uncertainty]). */
export interface ZoneVrtGrid {
  width: number;
  height: number;
  transform: readonly number[];
  srs: string;
  bands: readonly string[];
}

/**
 * Write a GDAL VRT mosaicking shard COGs (`location` relative to the VRT, `window` their place in
 * the VRT's pixel grid), streamed: QGIS/GDAL/rasterio open the zone as one raster.
 */
export async function writeZoneVrt(path: string, grid: ZoneVrtGrid, shards: readonly { location: string; window: { x: number; y: number; width: number; height: number } }[]): Promise<void> {
  await streamFile(path, async (put) => {
    await put(`<VRTDataset rasterXSize="${grid.width}" rasterYSize="${grid.height}">\n  <SRS dataAxisToSRSAxisMapping="1,2">${esc(grid.srs)}</SRS>\n  <GeoTransform>${grid.transform.map((v) => v.toPrecision(17)).join(', ')}</GeoTransform>\n`);
    for (let b = 0; b < grid.bands.length; b++) {
      await put(`  <VRTRasterBand dataType="Float32" band="${b + 1}">\n    <NoDataValue>${NODATA}</NoDataValue>\n    <UnitType>m</UnitType>\n    <Description>${grid.bands[b] === 'height' ? 'canopy_height' : esc(grid.bands[b]!)}</Description>\n`);
      for (const { location, window: w } of shards) {
        await put(
          `    <ComplexSource>\n      <SourceFilename relativeToVRT="1">${esc(location)}</SourceFilename>\n      <SourceBand>${b + 1}</SourceBand>\n      <SourceProperties RasterXSize="${w.width}" RasterYSize="${w.height}" DataType="Float32" BlockXSize="512" BlockYSize="512" />\n      <SrcRect xOff="0" yOff="0" xSize="${w.width}" ySize="${w.height}" />\n      <DstRect xOff="${w.x}" yOff="${w.y}" xSize="${w.width}" ySize="${w.height}" />\n      <NODATA>${NODATA}</NODATA>\n    </ComplexSource>\n`,
        );
      }
      await put('  </VRTRasterBand>\n');
    }
    await put('</VRTDataset>\n');
  });
}

export interface ShardedOutputs {
  files: string[];
  /** The shard directories, relative to the run directory, in order. */
  shardDirs: string[];
  validPixels: number;
  stats: { height: BandStats | null; uncertainty: BandStats | null };
  shards: number;
  zones: { zone: string; vrt: string; shards: number }[];
}

/** Write the run-level files of a sharded run into `outDir` (see the module comment). */
export async function writeShardedIndex(plan: ChmPlan, outDir: string, ledger: ShardLedger, options: { log?: Logger; progress?: Progress; signal?: AbortSignal; stacBaseUrl?: string } = {}): Promise<ShardedOutputs> {
  const log = options.log ?? silentLogger();
  const records: { zone: RunPlan; r: ShardRecord }[] = [];
  for (const zone of plan.zones) {
    for (const s of plannedShards(zone)) {
      throwIfAborted(options.signal);
      const r = await ledger.read(s.id);
      if (r) records.push({ zone, r });
    }
  }
  // Tile index: one footprint per shard, `location` as gdaltindex writes it.
  await writeTileIndex(
    join(outDir, 'shards.geojson'),
    records.map(({ zone, r }) => ({
      properties: { location: `${SHARD_DIR}/${r.id}/chm.tif`, id: r.id, zone: r.zone, crs: crsLabel(zone.grid.crs), row: r.row, col: r.col, width: r.window.width, height: r.window.height, valid_pixels: r.validPixels, item: `${SHARD_DIR}/${r.id}/item.json` },
      ring: windowFootprint(zone, r.window),
    })),
  );
  // Provenance: every shard's features.
  await streamFile(join(outDir, 'provenance.geojson'), async (put) => {
    await put('{"type":"FeatureCollection","features":[\n');
    let first = true;
    let zones = 0;
    for (const { r } of records) {
      const fc = (await readJsonFile(join(outDir, SHARD_DIR, r.id, 'provenance.geojson'))) as { features: ProvenanceFeature[]; transition_zones?: unknown[] };
      zones += fc.transition_zones?.length ?? 0;
      for (const f of fc.features) {
        await put((first ? '' : ',\n') + JSON.stringify(f));
        first = false;
      }
    }
    // Transition zones across scene seamlines (scene-feather.ts), each shard's, tagged with it.
    if (zones) {
      await put('\n],"transition_zones":[\n');
      first = true;
      for (const { r } of records) {
        const fc = (await readJsonFile(join(outDir, SHARD_DIR, r.id, 'provenance.geojson'))) as { transition_zones?: { properties: Record<string, unknown> }[] };
        for (const z of fc.transition_zones ?? []) {
          await put((first ? '' : ',\n') + JSON.stringify({ ...z, properties: { ...z.properties, shard: r.id } }));
          first = false;
        }
      }
    }
    await put('\n]}\n');
  });
  // One VRT per zone: the zone's shards as one raster.
  const zones: ShardedOutputs['zones'] = [];
  for (const zone of plan.zones) {
    const mine = records.filter((x) => x.zone === zone);
    if (!mine.length) continue;
    const name = `chm-${zone.shards.zone}.vrt`;
    const bandNames = zone.heads[0]!.planes.filter((p) => p === 'height' || p === 'uncertainty');
    const srs = zone.grid.crs.epsg !== null ? `EPSG:${zone.grid.crs.epsg}` : (zone.grid.crs.definition ?? '');
    await writeZoneVrt(
      join(outDir, name),
      { width: zone.grid.width, height: zone.grid.height, transform: zone.grid.transform, srs, bands: bandNames },
      mine.map(({ r }) => ({ location: `${SHARD_DIR}/${r.id}/chm.tif`, window: r.window })),
    );
    zones.push({ zone: zone.shards.zone, vrt: name, shards: mine.length });
  }
  // Statistics of the whole run from the shards' sums.
  const sum = (band: string): ShardRecord['bands'][string] | undefined => {
    const parts = records.map((x) => x.r.bands[band]).filter((b): b is ShardRecord['bands'][string] => !!b && b.n > 0);
    if (!parts.length) return undefined;
    return parts.reduce((a, b) => ({ n: a.n + b.n, sum: a.sum + b.sum, sumSq: a.sumSq + b.sumSq, min: Math.min(a.min, b.min), max: Math.max(a.max, b.max) }));
  };
  const total = records.reduce((n, x) => n + x.r.window.width * x.r.window.height, 0);
  const validPixels = records.reduce((n, x) => n + x.r.validPixels, 0);
  const stats = { height: toStats(sum('height'), total), uncertainty: toStats(sum('uncertainty'), total) };
  // The STAC Collection of the shard Items.
  const id = `geo-dino-chm-${plan.configHash.slice(0, 16)}`;
  await writeCollection(
    join(outDir, 'collection.json'),
    {
      id,
      title: plan.demo ? 'DEMO canopy height (random-weight model), sharded' : 'Canopy height, sharded',
      description: `Canopy height and uncertainty (m) of ${plan.aoi.source}, ${records.length} shards of ${plan.shardSize}² pixels in ${zones.length} UTM zone(s); geo-dino ${GEO_DINO_VERSION}.`,
      extra: {
        summaries: {
          'geo-dino:zones': zones.map((z) => z.zone),
          ...(stats.height ? { canopy_height: { minimum: stats.height.minimum, maximum: stats.height.maximum, mean: stats.height.mean, stddev: stats.height.stddev, count: stats.height.count } } : {}),
        },
        'geo-dino:shards': records.length,
        'geo-dino:shard_size': plan.shardSize,
        'geo-dino:demo': plan.demo,
      },
    },
    records.map((x) => join(outDir, SHARD_DIR, x.r.id, 'item.json')),
    options.stacBaseUrl ? { baseUrl: options.stacBaseUrl } : {},
  );
  log.info({ shards: records.length, zones: zones.map((z) => z.zone) }, 'run index written');
  return { shardDirs: records.map((x) => `${SHARD_DIR}/${x.r.id}`), files: ['shards.geojson', 'provenance.geojson', 'collection.json', ...zones.map((z) => z.vrt)], validPixels, stats, shards: records.length, zones };
}

/** A shard of a plan to write on a worker (`geo-dino worker`): which zone, which shard. */
export interface ShardTask {
  zone: number;
  shard: string;
  row: number;
  col: number;
}

/**
 * Write one shard of a run whose state directory is shared with other processes (distributed
 * runs): predict the tiles of its window that no other process stored yet, blend it in a private
 * temporary folder, move that into place and record it in the ledger (the commit point: a shard
 * with a record is never written again); then delete the tiles whose every planned shard is
 * recorded. Safe to run twice for the same shard (a job redelivered after its worker died):
 * tiles are written atomically with the same bytes, and the second writer finds the record.
 */
export async function processShard(
  plan: ChmPlan,
  task: ShardTask,
  runner: ModelRunner,
  stateDir: string,
  options: { batch?: number; chunkWidth?: number; webTiles?: boolean; log?: Logger; signal?: AbortSignal; env?: NodeJS.ProcessEnv; headers?: Record<string, string> } = {},
): Promise<{ written: boolean; predicted: number }> {
  const log = options.log ?? silentLogger();
  const zone = plan.zones[task.zone];
  if (!zone) throw new GeoDinoError('E_ARGUMENT', `shard ${task.shard}: the plan has no zone ${task.zone}`);
  const grid = shardGridOf(zone);
  const shard = grid.shard(task.row, task.col);
  if (shard.id !== task.shard) throw new GeoDinoError('E_ARGUMENT', `shard ${task.shard}: row ${task.row} and column ${task.col} are shard ${shard.id}`);
  const outDir = join(stateDir, 'out');
  const ledger = new ShardLedger(join(stateDir, 'shards'), outDir);
  if (await ledger.read(shard.id)) return { written: false, predicted: 0 };
  const layout = layoutOf(zone);
  const store = await TileStore.open(join(stateDir, 'tiles', zone.shards.zone), zone.configHash, { keepTemporaries: true });
  const ids = [...shardTileIds(zone, layout, shard)];
  const missing: number[] = [];
  for (const id of ids) if (!(await fileExists(store.pathOf(id)))) missing.push(id);
  if (missing.length) {
    await predictTiles(zone, missing, runner, store, {
      log,
      ...(options.batch !== undefined ? { batch: options.batch } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(options.headers ? { headers: options.headers } : {}),
    });
  }
  const final = join(outDir, SHARD_DIR, shard.id);
  const tmp = join(outDir, SHARD_DIR, `.${shard.id}.${process.pid}.${Date.now().toString(36)}.tmp`);
  const rec = await writeShard(zone, shard, store, undefined, outDir, {
    dir: tmp,
    webTiles: options.webTiles !== false,
    log,
    ...(options.chunkWidth !== undefined ? { chunkWidth: options.chunkWidth } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  }).catch(async (err: unknown) => {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  });
  if (await ledger.read(shard.id)) {
    // Another process recorded it meanwhile: keep its files.
    await rm(tmp, { recursive: true, force: true });
    return { written: false, predicted: missing.length };
  }
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await ledger.record(rec);
  // Release the tiles whose every planned shard is recorded (by this or any other process).
  const planned = new Set<string>();
  const written = new Set<string>();
  for (const id of ids) {
    for (const s of tileShards(zone, layout, id)) {
      if (planned.has(s.id) || written.has(s.id)) continue;
      if (shardIsPlanned(zone, layout, s)) planned.add(s.id);
      if (await fileExists(ledger.pathOf(s.id))) written.add(s.id);
    }
  }
  await releaseTiles(zone, layout, ids, planned, written, store);
  return { written: true, predicted: missing.length };
}
