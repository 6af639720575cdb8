/**
 * `geo-dino publish <run-dir>... --out <site>`: a self-contained static site of runs, served by any
 * static host or bucket that answers HTTP Range requests.
 *
 *   index.html, assets/          the viewer (the same build `geo-dino serve` serves)
 *   site.json                    { mode: 'static', version, basemap, runs: 'runs.json', lonLat }
 *   runs.json                    the runs as /api/runs describes them, with relative layer URLs and
 *                                `static` (the rasters' grids and COGs, provenance) for the browser
 *   catalog.json                 STAC Catalog linking each run's item.json / collection.json
 *   data/<run>/                  the run's files (PMTiles, COGs, VRTs, shards/, JSON), copied, or
 *                                with `link` a relative symbolic link to the run directory
 *
 * Written into a staging directory beside `out` and renamed into place when complete; an existing
 * site at `out` is replaced only then. Values and statistics are computed in the browser by
 * @geo-dino/zonal, the module behind the server's /api/point and /api/stats.
 */
import { copyFile, lstat, mkdir, readdir, readFile, rename, rm, stat, symlink } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { ensureDir, fsError, GEO_DINO_VERSION, GeoDinoError, isGeoDinoError, silentLogger, throwIfAborted, writeJsonAtomic, type Logger } from '@geo-dino/core';
import { writeCatalog } from '@geo-dino/stac';
import { crsLabel, openRaster, sameCrs, WGS84, type RasterSource } from '@geo-dino/tiling';
import type { RunInfo, SiteConfig, StaticRaster, StaticRunFiles } from './api-types.js';
import { describeRun, localRunFiles, sortAndGroup } from './runs.js';
import { defaultViewerDir } from './server.js';

export interface PublishOptions {
  /** Run directories (each as `geo-dino chm --out` writes it, simple or sharded). */
  runs: string[];
  /** The site directory to write (replaced when it is an earlier published site). */
  out: string;
  /** Link `data/<run>` to the run directories (relative symbolic links) instead of copying. */
  link?: boolean;
  /** A MapLibre style URL for a basemap (none by default). */
  basemap?: string | null;
  /** The viewer's build (default: @geo-dino/viewer's dist). */
  viewerDir?: string;
  log?: Logger;
  signal?: AbortSignal;
}

export interface PublishResult {
  out: string;
  runs: { id: string; dir: string; layers: string[]; rasters: string[] }[];
  files: number;
  bytes: number;
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
/** What a run directory contributes to the site (anything else, e.g. logs, stays behind). */
const RUN_FILE = /\.(pmtiles|tif|tiff|vrt|json|geojson)$/i;

function siteId(dir: string, taken: Set<string>): string {
  const base = basename(dir).replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9_]+/, '') || 'run';
  let id = base;
  for (let i = 2; taken.has(id); i++) id = `${base}-${i}`;
  taken.add(id);
  return id;
}

function hrefOf(id: string, ...rel: string[]): string {
  return ['data', id, ...rel].map(encodeURIComponent).join('/');
}

function staticCrs(source: RasterSource): StaticRaster['crs'] {
  const crs = source.info.crs;
  if (!crs || !crs.definition || !source.info.geoTransform) {
    throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${source.name}: no georeferencing the browser can transform`, { details: { file: source.name } });
  }
  return { label: crsLabel(crs), definition: crs.definition, geographic: crs.geographic, metresPerUnit: crs.metresPerUnit };
}

/** A single COG of the run as the browser reads it. */
async function cogRaster(dir: string, id: string, name: string): Promise<StaticRaster> {
  const source = await openRaster(join(dir, name));
  try {
    const { info } = source;
    return {
      name,
      width: info.width,
      height: info.height,
      bandCount: info.bandCount,
      geoTransform: [...info.geoTransform!],
      crs: staticCrs(source),
      parts: [{ href: hrefOf(id, name), x: 0, y: 0, width: info.width, height: info.height }],
    };
  } finally {
    await source.close();
  }
}

interface ShardFeature {
  properties?: { location?: unknown; zone?: unknown };
}

/**
 * A zone of a sharded run: the VRT's grid, and the shard COGs of that zone (found through the
 * tile index shards.geojson) with their windows in it.
 */
async function zoneRaster(dir: string, id: string, vrt: string, shards: ShardFeature[], signal?: AbortSignal): Promise<StaticRaster> {
  const zone = /^chm-(.+)\.vrt$/.exec(vrt)![1]!;
  const grid = await openRaster(join(dir, vrt));
  try {
    const { info } = grid;
    const gt = info.geoTransform!;
    const crs = staticCrs(grid);
    const parts: StaticRaster['parts'] = [];
    for (const f of shards) {
      throwIfAborted(signal);
      const loc = f.properties?.location;
      if (f.properties?.zone !== zone || typeof loc !== 'string') continue;
      const segs = loc.split('/');
      if (!segs.every((s) => NAME.test(s))) throw new GeoDinoError('E_BAD_JSON', `${join(dir, 'shards.geojson')}: location ${JSON.stringify(loc)} is not a file of the run`);
      const shard = await openRaster(join(dir, ...segs));
      try {
        const s = shard.info;
        if (!s.crs || !info.crs || !sameCrs(s.crs, info.crs) || !s.geoTransform) {
          throw new GeoDinoError('E_UNSUPPORTED_RASTER', `${loc}: not on the grid of ${vrt}`, { details: { file: loc } });
        }
        const x = Math.round((s.geoTransform[0] - gt[0]) / gt[1]);
        const y = Math.round((s.geoTransform[3] - gt[3]) / gt[5]);
        parts.push({ href: hrefOf(id, ...segs), x, y, width: s.width, height: s.height });
      } finally {
        await shard.close();
      }
    }
    return { name: vrt, width: info.width, height: info.height, bandCount: info.bandCount, geoTransform: [...gt], crs, parts };
  } finally {
    await grid.close();
  }
}

/** Copy the run's files (those the site serves), keeping its folders (shards/<id>/). */
async function copyRun(from: string, to: string, depth: number, signal: AbortSignal | undefined, counts: { files: number; bytes: number }): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const e of await readdir(from, { withFileTypes: true })) {
    throwIfAborted(signal);
    if (!NAME.test(e.name)) continue;
    const src = join(from, e.name);
    const st = await stat(src).catch(() => null);
    if (!st) continue;
    if (st.isDirectory() && depth < 3) await copyRun(src, join(to, e.name), depth + 1, signal, counts);
    else if (st.isFile() && RUN_FILE.test(e.name)) {
      await copyFile(src, join(to, e.name));
      counts.files++;
      counts.bytes += st.size;
    }
  }
}

async function copyTree(from: string, to: string, counts: { files: number; bytes: number }): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const e of await readdir(from, { withFileTypes: true })) {
    const src = join(from, e.name);
    if (e.isDirectory()) await copyTree(src, join(to, e.name), counts);
    else if (e.isFile()) {
      await copyFile(src, join(to, e.name));
      counts.files++;
      counts.bytes += (await stat(src)).size;
    }
  }
}

/** Describe a run directory for the site; E_NO_WEB_LAYERS when it has nothing the viewer can show. */
async function describeForSite(dir: string, id: string, log: Logger, signal?: AbortSignal): Promise<RunInfo> {
  let names: Set<string>;
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
    names = new Set((await readdir(dir)).filter((n) => NAME.test(n)));
  } catch {
    throw new GeoDinoError('E_FILE_NOT_FOUND', `${dir}: no such run directory`, { details: { path: dir } });
  }
  const info = await describeRun(id, names, localRunFiles(dir), log);
  if (!info.layers.length) {
    throw new GeoDinoError('E_NO_WEB_LAYERS', `${dir}: no web layers (no readable .pmtiles); make them with \`geo-dino chm\` (it writes chm.pmtiles) or \`geo-dino tiles\``, {
      details: { path: dir },
    });
  }
  for (const l of info.layers) l.url = hrefOf(id, l.file);
  const heights: StaticRaster[] = [];
  if (names.has('chm.tif')) heights.push(await cogRaster(dir, id, 'chm.tif'));
  else if (info.chmRasters?.length) {
    let index: { features?: ShardFeature[] };
    try {
      index = JSON.parse(await readFile(join(dir, 'shards.geojson'), 'utf8')) as { features?: ShardFeature[] };
    } catch (err) {
      throw new GeoDinoError('E_FILE_NOT_FOUND', `${join(dir, 'shards.geojson')}: the tile index of a sharded run is missing or not JSON`, { cause: err });
    }
    for (const vrt of info.chmRasters) heights.push(await zoneRaster(dir, id, vrt, Array.isArray(index.features) ? index.features : [], signal));
  }
  const files: StaticRunFiles = {
    heights,
    landcover: names.has('landcover.tif') ? await cogRaster(dir, id, 'landcover.tif') : null,
    provenance: names.has('provenance.geojson') ? hrefOf(id, 'provenance.geojson') : null,
  };
  info.static = files;
  return info;
}

/** Write the static site (see the module comment). */
export async function publishSite(options: PublishOptions): Promise<PublishResult> {
  const log = options.log ?? silentLogger();
  const signal = options.signal;
  if (!options.runs.length) throw new GeoDinoError('E_ARGUMENT', 'publish: give at least one run directory');
  if (options.basemap) {
    let u: URL | null = null;
    try {
      u = new URL(options.basemap);
    } catch {
      u = null;
    }
    if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) throw new GeoDinoError('E_ARGUMENT', `--basemap: not the http(s) URL of a MapLibre style: ${JSON.stringify(options.basemap)}`);
  }
  const viewerDir = options.viewerDir ?? defaultViewerDir();
  if (!viewerDir || !(await stat(join(viewerDir, 'index.html')).catch(() => null))) {
    throw new GeoDinoError('E_FILE_NOT_FOUND', 'the viewer is not built (run `npm run build`)');
  }
  const out = resolve(options.out);
  const existing = await lstat(out).catch(() => null);
  if (existing) {
    const entries = existing.isDirectory() ? await readdir(out) : null;
    if (!entries || (entries.length && !entries.includes('site.json'))) {
      throw new GeoDinoError('E_ARGUMENT', `--out: ${options.out} exists and is not a site geo-dino published; give a new or empty directory`, { details: { path: options.out } });
    }
  }

  // Describe every run first: bad input fails before anything is written.
  const taken = new Set<string>();
  const dirs = options.runs.map((d) => resolve(d));
  const runs: RunInfo[] = [];
  const dirOf = new Map<string, string>();
  for (const dir of dirs) {
    throwIfAborted(signal);
    const id = siteId(dir, taken);
    dirOf.set(id, dir);
    runs.push(await describeForSite(dir, id, log, signal));
  }
  sortAndGroup(runs);

  await ensureDir(dirname(out));
  const staging = join(dirname(out), `.${basename(out)}.publish-${process.pid}-${Date.now()}`);
  const counts = { files: 0, bytes: 0 };
  try {
    await copyTree(viewerDir, staging, counts);
    await mkdir(join(staging, 'data'), { recursive: true });
    const items: string[] = [];
    const children: string[] = [];
    for (const run of runs) {
      throwIfAborted(signal);
      const dir = dirOf.get(run.id)!;
      const target = join(staging, 'data', run.id);
      if (options.link) await symlink(relative(join(staging, 'data'), dir), target, 'dir');
      else await copyRun(dir, target, 0, signal, counts);
      if (run.files.item) items.push(join(staging, 'data', run.id, 'item.json'));
      else if (await stat(join(dir, 'collection.json')).catch(() => null)) children.push(join(staging, 'data', run.id, 'collection.json'));
    }
    await writeJsonAtomic(join(staging, 'runs.json'), { runs });
    const site: SiteConfig = { mode: 'static', version: GEO_DINO_VERSION, basemap: options.basemap ?? null, runs: 'runs.json', lonLat: WGS84.definition! };
    await writeJsonAtomic(join(staging, 'site.json'), site);
    await writeCatalog(join(staging, 'catalog.json'), {
      id: 'geo-dino-site',
      title: 'geo-dino runs',
      description: `Canopy-height runs published by geo-dino ${GEO_DINO_VERSION}: ${runs.map((r) => r.id).join(', ')}`,
      items,
      children,
    });
    counts.files += 3;
    // Into place: an earlier site is moved aside only now, and removed once the new one is there.
    const old = existing ? `${staging}.old` : null;
    if (old) await rename(out, old);
    await rename(staging, out);
    if (old) await rm(old, { recursive: true, force: true });
  } catch (err) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    // A copy or rename that failed (disk full, permissions) is a write error naming the site.
    throw isGeoDinoError(err) ? err : fsError(err, options.out, 'write');
  }
  log.info({ out, runs: runs.length, files: counts.files }, 'published');
  return {
    out,
    runs: runs.map((r) => ({ id: r.id, dir: dirOf.get(r.id)!, layers: r.layers.map((l) => l.file), rasters: r.static?.heights.map((h) => h.name) ?? [] })),
    files: counts.files,
    bytes: counts.bytes,
  };
}
