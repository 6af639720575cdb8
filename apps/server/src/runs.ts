/**
 * Runs under the served directory: every directory (the root included, at most 4 levels down) that
 * holds a run's files — `run.json`, `chm.tif` or any `.pmtiles`. For each: its layers (PMTiles
 * header and metadata, read with the `pmtiles` reader), date, DEMO flag, bounds; runs covering the
 * same area are grouped so the viewer can offer a date picker and a compare.
 */
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { PMTiles, type RangeResponse, type Source } from 'pmtiles';
import { RUN_LAYER_FILES, type GeoDinoTilesetInfo, type LayerName } from '@geo-dino/pmtiles';
import type { LayerInfo, RunInfo } from './api-types.js';

export type { LayerInfo, RunInfo };
import type { Logger } from '@geo-dino/core';

const MAX_DEPTH = 4;
const MAX_DIRS = 5000;
const MAX_RUNS = 500;
const MAX_JSON_BYTES = 1 << 20;
const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/** A pmtiles Source over a local file. */
export class LocalSource implements Source {
  constructor(private readonly path: string) {}
  getKey(): string {
    return this.path;
  }
  async getBytes(offset: number, length: number): Promise<RangeResponse> {
    const fh = await open(this.path, 'r');
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return { data: buf.buffer.slice(buf.byteOffset, buf.byteOffset + bytesRead) as ArrayBuffer };
    } finally {
      await fh.close();
    }
  }
}

const TILE_TYPES: Record<number, LayerInfo['tileType']> = { 1: 'mvt', 2: 'png', 3: 'jpeg', 4: 'webp', 5: 'avif' };

function rec(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

async function readSmallJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    const st = await stat(path);
    if (!st.isFile() || st.size > MAX_JSON_BYTES) return null;
    const fh = await open(path, 'r');
    try {
      return rec(JSON.parse(await fh.readFile('utf8')));
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
}

function urlFor(runId: string, file: string): string {
  const rel = runId === '.' ? [file] : [...runId.split('/'), file];
  return '/data/' + rel.map(encodeURIComponent).join('/');
}

async function layerOf(dir: string, runId: string, file: string, log: Logger): Promise<LayerInfo | null> {
  const path = join(dir, file);
  try {
    const st = await stat(path);
    const archive = new PMTiles(new LocalSource(path));
    const h = await archive.getHeader();
    const meta = rec(await archive.getMetadata());
    const gd = rec(meta['geo_dino']);
    const known = (Object.keys(RUN_LAYER_FILES) as LayerName[]).find((k) => RUN_LAYER_FILES[k] === file);
    const declared = typeof gd['layer'] === 'string' ? (gd['layer'] as LayerName) : null;
    const layer = declared ?? known ?? null;
    return {
      id: known ?? file.replace(/\.pmtiles$/, ''),
      layer,
      file,
      url: urlFor(runId, file),
      bytes: st.size,
      tileType: TILE_TYPES[h.tileType] ?? 'unknown',
      minzoom: h.minZoom,
      maxzoom: h.maxZoom,
      bounds: [h.minLon, h.minLat, h.maxLon, h.maxLat],
      center: [h.centerLon, h.centerLat, h.centerZoom],
      name: typeof meta['name'] === 'string' ? meta['name'] : null,
      attribution: typeof meta['attribution'] === 'string' ? meta['attribution'] : null,
      geoDino: Object.keys(gd).length ? (gd as unknown as GeoDinoTilesetInfo) : null,
    };
  } catch (err) {
    log.warn({ file: path, err }, 'skipping an unreadable PMTiles archive');
    return null;
  }
}

function union(a: [number, number, number, number] | null, b: [number, number, number, number]): [number, number, number, number] {
  return a ? [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])] : b;
}

function iou(a: [number, number, number, number], b: [number, number, number, number]): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const area = (r: typeof a): number => (r[2] - r[0]) * (r[3] - r[1]);
  return inter / (area(a) + area(b) - inter);
}

async function describeRun(root: string, dir: string, names: Set<string>, log: Logger): Promise<RunInfo> {
  const id = relative(root, dir).split(sep).join('/') || '.';
  const run = names.has('run.json') ? await readSmallJson(join(dir, 'run.json')) : null;
  const item = names.has('item.json') ? await readSmallJson(join(dir, 'item.json')) : null;
  const order = Object.values(RUN_LAYER_FILES);
  const pm = [...names].filter((n) => n.endsWith('.pmtiles')).sort((a, b) => {
    const ia = order.indexOf(a);
    const ib = order.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
  const layers: LayerInfo[] = [];
  for (const f of pm) {
    const l = await layerOf(dir, id, f, log);
    if (l) layers.push(l);
  }
  let bbox: RunInfo['bbox'] = null;
  for (const l of layers) bbox = union(bbox, l.bounds);
  const itemBbox = item?.['bbox'];
  if (!bbox && Array.isArray(itemBbox) && itemBbox.length === 4 && itemBbox.every((v) => typeof v === 'number')) {
    bbox = itemBbox as [number, number, number, number];
  }
  const props = rec(item?.['properties']);
  const datetime =
    (typeof props['datetime'] === 'string' ? props['datetime'] : null) ??
    (typeof run?.['created'] === 'string' ? (run['created'] as string) : null) ??
    layers.map((l) => l.geoDino?.datetime).find((d): d is string => typeof d === 'string') ??
    null;
  const model = rec(run?.['model']);
  const demo = model['demo'] === true || run?.['demo'] === true || layers.some((l) => l.geoDino?.demo === true);
  // The area: run.json's region or AOI name (`aoi` as a string, or `aoi.source` as geo-dino chm writes it).
  const aoiField = run?.['aoi'];
  const aoiSource = typeof aoiField === 'string' ? aoiField : typeof rec(aoiField)['source'] === 'string' ? (rec(aoiField)['source'] as string) : '';
  const aoi =
    typeof run?.['region'] === 'string'
      ? (run['region'] as string)
      : aoiSource
        ? aoiSource.split(/[\\/]/).pop()!.replace(/\.(geo)?json$/i, '')
        : '';
  return {
    id,
    name: id === '.' ? 'run' : id,
    datetime,
    demo,
    area: aoi,
    bbox,
    layers,
    chmRasters: names.has('chm.tif') ? ['chm.tif'] : [...names].filter((n) => /^chm-[A-Za-z0-9]+\.vrt$/.test(n)).sort(),
    files: {
      chm: names.has('chm.tif') || [...names].some((n) => /^chm-[A-Za-z0-9]+\.vrt$/.test(n)),
      landcover: names.has('landcover.tif'),
      provenance: names.has('provenance.geojson'),
      item: names.has('item.json'),
      run: names.has('run.json'),
    },
    model: typeof model['name'] === 'string' ? (model['name'] as string) : null,
  };
}

/** Give runs of the same area one group name: run.json's `aoi`/`region`, else overlapping bounds. */
export function groupRuns(runs: RunInfo[]): void {
  let next = 1;
  const named = new Map<string, string>();
  const groups: { id: string; bbox: [number, number, number, number] }[] = [];
  for (const r of runs) {
    if (r.area) {
      if (!named.has(r.area)) named.set(r.area, r.area);
      continue;
    }
    const g = r.bbox ? groups.find((g) => iou(g.bbox, r.bbox!) >= 0.5) : undefined;
    if (g) r.area = g.id;
    else {
      r.area = `area ${next++}`;
      if (r.bbox) groups.push({ id: r.area, bbox: r.bbox });
    }
  }
}

/** Scan `rootReal` (a real path) for runs. */
export async function discoverRuns(rootReal: string, log: Logger): Promise<RunInfo[]> {
  const runs: RunInfo[] = [];
  const queue: { dir: string; depth: number }[] = [{ dir: rootReal, depth: 0 }];
  let visited = 0;
  while (queue.length && visited < MAX_DIRS && runs.length < MAX_RUNS) {
    const { dir, depth } = queue.shift()!;
    visited++;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    const files = new Set<string>();
    const children: { dir: string; depth: number }[] = [];
    for (const e of entries) {
      if (!NAME.test(e.name)) continue;
      if (e.isFile()) files.add(e.name);
      else if (e.isDirectory() && depth < MAX_DEPTH && e.name !== 'node_modules') children.push({ dir: join(dir, e.name), depth: depth + 1 });
      else if (e.isSymbolicLink()) {
        // Follow links only when they stay inside the root.
        try {
          const real = await realpath(join(dir, e.name));
          if (!real.startsWith(rootReal + sep)) continue;
          const st = await stat(real);
          if (st.isFile()) files.add(e.name);
          else if (st.isDirectory() && depth < MAX_DEPTH) children.push({ dir: join(dir, e.name), depth: depth + 1 });
        } catch {
          continue;
        }
      }
    }
    const isRun = files.has('run.json') || files.has('chm.tif') || [...files].some((f) => f.endsWith('.pmtiles'));
    if (isRun) runs.push(await describeRun(rootReal, dir, files, log));
    // A run's own folders (the shards of a sharded run) are parts of it, not runs.
    if (!files.has('run.json')) queue.push(...children);
  }
  runs.sort((a, b) => (a.datetime ?? '').localeCompare(b.datetime ?? '') || a.id.localeCompare(b.id));
  groupRuns(runs);
  return runs;
}

/** The run directory of a discovered run (its id is never used to build a path). */
export function runDir(rootReal: string, run: RunInfo): string {
  return run.id === '.' ? rootReal : join(rootReal, ...run.id.split('/'));
}
