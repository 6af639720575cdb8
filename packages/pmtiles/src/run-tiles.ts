/**
 * The web layers of a run directory (DEVELOPERS.md, "Output contract of a run directory"):
 *
 *   chm.tif band 1      → chm.pmtiles              (canopy height, Terrarium PNG)
 *   chm.tif band 2      → chm-uncertainty.pmtiles  (uncertainty, Terrarium PNG)
 *   input imagery       → imagery.pmtiles          (WebP), when the caller passes it (`geo-dino chm`
 *                                                  passes the mosaic the model saw, see packages/chm)
 *   landcover.tif       → landcover.pmtiles        (class8 PNG), when present
 *
 * The DEMO flag comes from run.json (`model.demo` or `demo`), the date from item.json.
 * Each archive is written under a temporary name and renamed when complete.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileExists, readJsonFile, silentLogger, type Logger, type Progress } from '@geo-dino/core';
import { openRaster, type RasterSource } from '@geo-dino/tiling';
import type { LandCoverClass, LayerName } from './encoding.js';
import { RasterMosaic } from './mosaic.js';
import { writeRasterTiles, type RasterTilesOptions, type RasterTilesSummary } from './raster-tiles.js';

/** File names of a run's web layers. */
export const RUN_LAYER_FILES: Readonly<Record<LayerName, string>> = {
  height: 'chm.pmtiles',
  uncertainty: 'chm-uncertainty.pmtiles',
  imagery: 'imagery.pmtiles',
  landcover: 'landcover.pmtiles',
};

export interface RunTilesOptions {
  /** The input imagery (path, URL or open raster) for imagery.pmtiles; skipped when omitted. */
  imagery?: string | RasterSource;
  /** Override run.json's demo flag. */
  demo?: boolean;
  /** Attribution/licence of the imagery (tile services), shown with imagery.pmtiles in the viewer. */
  imageryAttribution?: string;
  /** Land-cover class table (default: landcover.tif's colour table). */
  landcoverClasses?: LandCoverClass[];
  maxZoom?: number;
  minZoom?: number;
  concurrency?: number;
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
}

export type RunTilesResult = Partial<Record<LayerName, RasterTilesSummary>>;

function record(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** run.json's demo flag (`model.demo`, or a top-level `demo`). */
export async function readRunDemoFlag(runDir: string): Promise<boolean> {
  const path = join(runDir, 'run.json');
  if (!(await fileExists(path))) return false;
  const run = record(await readJsonFile(path));
  return record(run['model'])['demo'] === true || run['demo'] === true;
}

async function readItemDatetime(runDir: string): Promise<string | null> {
  const path = join(runDir, 'item.json');
  if (!(await fileExists(path))) return null;
  const dt = record(record(await readJsonFile(path))['properties'])['datetime'];
  return typeof dt === 'string' ? dt : null;
}

/** The options every layer of a run shares. */
function commonOptions(opts: Pick<RunTilesOptions, 'maxZoom' | 'minZoom' | 'concurrency' | 'progress' | 'signal'>, demo: boolean, datetime: string | null, log: Logger): RasterTilesOptions {
  return {
    demo,
    datetime,
    log,
    ...(opts.maxZoom !== undefined ? { maxZoom: opts.maxZoom } : {}),
    ...(opts.minZoom !== undefined ? { minZoom: opts.minZoom } : {}),
    ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
    ...(opts.progress ? { progress: opts.progress } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
}

/**
 * Write the web layers of a sharded run (`shards/<id>/chm.tif`, `imagery.tif`, `landcover.tif`):
 * one pyramid per layer over every shard and zone (`RasterMosaic`), in the run directory.
 */
export async function writeShardedRunTiles(runDir: string, shardDirs: readonly string[], opts: Omit<RunTilesOptions, 'imagery'> & { imagery?: boolean } = {}): Promise<RunTilesResult> {
  const log = opts.log ?? silentLogger();
  const demo = opts.demo ?? (await readRunDemoFlag(runDir));
  const common = commonOptions(opts, demo, null, log);
  const result: RunTilesResult = {};
  const layer = async (file: string, name: LayerName, out: string, extra: RasterTilesOptions = {}): Promise<void> => {
    const paths: string[] = [];
    for (const d of shardDirs) if (await fileExists(join(runDir, d, file))) paths.push(join(runDir, d, file));
    if (!paths.length) return;
    const mosaic = await RasterMosaic.open(paths, { name: `${runDir} (${paths.length} × ${file})`, log, ...(opts.signal ? { signal: opts.signal } : {}) });
    try {
      result[name] = await writeRasterTiles(mosaic, join(runDir, out), { ...common, ...extra, layer: name });
    } finally {
      await mosaic.close();
    }
  };
  await layer('chm.tif', 'height', RUN_LAYER_FILES.height, { band: 1 });
  await layer('chm.tif', 'uncertainty', RUN_LAYER_FILES.uncertainty, { band: 2 });
  if (opts.imagery !== false) await layer('imagery.tif', 'imagery', RUN_LAYER_FILES.imagery, opts.imageryAttribution ? { attribution: `Imagery: ${opts.imageryAttribution}` } : {});
  await layer('landcover.tif', 'landcover', RUN_LAYER_FILES.landcover, { band: 1, ...(opts.landcoverClasses ? { classes: opts.landcoverClasses } : {}) });
  return result;
}

/** Write the web layers of `runDir`. */
export async function writeRunTiles(runDir: string, opts: RunTilesOptions = {}): Promise<RunTilesResult> {
  const log = opts.log ?? silentLogger();
  const demo = opts.demo ?? (await readRunDemoFlag(runDir));
  const datetime = await readItemDatetime(runDir);
  const common = commonOptions(opts, demo, datetime, log);
  const result: RunTilesResult = {};
  // A sharded run (shards/<id>/chm.tif, no chm.tif at the top): one pyramid over every shard.
  if (!(await fileExists(join(runDir, 'chm.tif'))) && (await fileExists(join(runDir, 'shards')))) {
    const dirs = (await readdir(join(runDir, 'shards'), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => `shards/${d.name}`).sort();
    const { imagery: _imagery, ...rest } = opts;
    void _imagery;
    return writeShardedRunTiles(runDir, dirs, rest);
  }
  const chm = await openRaster(join(runDir, 'chm.tif'), { log, ...(opts.signal ? { signal: opts.signal } : {}) });
  try {
    result.height = await writeRasterTiles(chm, join(runDir, RUN_LAYER_FILES.height), { ...common, layer: 'height', band: 1 });
    if (chm.info.bandCount >= 2) {
      result.uncertainty = await writeRasterTiles(chm, join(runDir, RUN_LAYER_FILES.uncertainty), { ...common, layer: 'uncertainty', band: 2 });
    } else log.warn({ file: chm.name }, 'chm.tif has no uncertainty band; chm-uncertainty.pmtiles not written');
  } finally {
    await chm.close();
  }
  if (opts.imagery !== undefined) {
    result.imagery = await writeRasterTiles(opts.imagery, join(runDir, RUN_LAYER_FILES.imagery), {
      ...common,
      layer: 'imagery',
      ...(opts.imageryAttribution ? { attribution: `Imagery: ${opts.imageryAttribution}` } : {}),
    });
  }
  const landcover = join(runDir, 'landcover.tif');
  if (await fileExists(landcover)) {
    result.landcover = await writeRasterTiles(landcover, join(runDir, RUN_LAYER_FILES.landcover), {
      ...common,
      layer: 'landcover',
      band: 1,
      ...(opts.landcoverClasses ? { classes: opts.landcoverClasses } : {}),
    });
  }
  return result;
}
