/**
 * A raster made of non-overlapping pieces on one pixel grid: the shards of a zone of a national
 * run, read as one raster (what GDAL does with the run's `chm-<zone>.vrt`).
 *
 * `openVrtMosaic(path)` reads the subset of GDAL's VRT format that geo-dino writes (one
 * `VRTDataset` with `SRS`, `GeoTransform`, bands of `ComplexSource`/`SimpleSource` elements whose
 * `SrcRect` and `DstRect` have the same size, file names relative to the VRT and inside its
 * directory); anything else is refused with the element named. Pieces are opened when a read
 * first needs them, at most `maxOpen` at a time (least recently used closed first), so a zone of
 * thousands of shards costs a few open files.
 *
 * Levels: overview k of the mosaic is overview k of every piece, placed at DstRect / 2^k; only
 * levels where every piece's offset divides exactly are offered.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { GeoDinoError, silentLogger, type Logger } from '@geo-dino/core';
import { parseCrs } from '../crs/crs.js';
import { allocate, type LevelInfo, type PixelWindow, type RasterData, type RasterInfo, type TypedArray } from './types.js';
import { openRaster, type RasterSource, type ReadOptions } from './source.js';

export interface MosaicPiece {
  path: string;
  x: number;
  y: number;
  width: number;
  height: number;
}


function bad(path: string, what: string): GeoDinoError {
  return new GeoDinoError('E_BAD_RASTER', `${path}: ${what}`, { details: { path } });
}

const attr = (el: string, name: string): string | null => new RegExp(`\\b${name}="([^"]*)"`).exec(el)?.[1] ?? null;
const num = (path: string, el: string, name: string): number => {
  const v = Number(attr(el, name));
  if (!Number.isInteger(v) || v < 0) throw bad(path, `${name} of ${el.slice(0, 40)}… must be a non-negative integer`);
  return v;
};

/** Parse a geo-dino VRT into its grid and pieces (band 1's sources; every band uses the same files). */
export async function parseVrt(path: string): Promise<{ width: number; height: number; srs: string; transform: [number, number, number, number, number, number]; pieces: MosaicPiece[] }> {
  const text = await readFile(path, 'utf8').catch((err: unknown) => {
    throw new GeoDinoError('E_NOT_FOUND', `${path}: cannot read (${(err as Error).message})`, { details: { path } });
  });
  if (text.length > 256 * 1024 * 1024) throw bad(path, 'larger than 256 MiB');
  const ds = /<VRTDataset\b[^>]*>/.exec(text)?.[0];
  if (!ds) throw bad(path, 'not a GDAL VRT (no VRTDataset element)');
  const width = num(path, ds, 'rasterXSize');
  const height = num(path, ds, 'rasterYSize');
  const srs = /<SRS\b[^>]*>([^<]*)<\/SRS>/.exec(text)?.[1]?.trim() ?? '';
  const gt = /<GeoTransform>([^<]*)<\/GeoTransform>/.exec(text)?.[1]?.split(',').map((v) => Number(v.trim()));
  if (!gt || gt.length !== 6 || gt.some((v) => !Number.isFinite(v))) throw bad(path, 'GeoTransform missing or not 6 numbers');
  const band1 = /<VRTRasterBand\b[^>]*band="1"[^>]*>([\s\S]*?)<\/VRTRasterBand>/.exec(text)?.[1];
  if (band1 === undefined) throw bad(path, 'no VRTRasterBand band="1"');
  const root = resolve(dirname(path));
  const pieces: MosaicPiece[] = [];
  for (const m of band1.matchAll(/<(ComplexSource|SimpleSource)>([\s\S]*?)<\/\1>/g)) {
    const body = m[2]!;
    const fileEl = /<SourceFilename\b([^>]*)>([^<]*)<\/SourceFilename>/.exec(body);
    if (!fileEl || attr(fileEl[1]!, 'relativeToVRT') !== '1') throw bad(path, 'every SourceFilename must be relative to the VRT (relativeToVRT="1")');
    const file = resolve(root, fileEl[2]!.trim());
    if (!file.startsWith(root + sep)) throw bad(path, `source ${fileEl[2]} lies outside the VRT's directory`);
    const src = /<SrcRect\b[^>]*\/>/.exec(body)?.[0];
    const dst = /<DstRect\b[^>]*\/>/.exec(body)?.[0];
    if (!src || !dst) throw bad(path, `source ${fileEl[2]}: SrcRect and DstRect are required`);
    const w = num(path, dst, 'xSize');
    const h = num(path, dst, 'ySize');
    if (num(path, src, 'xOff') !== 0 || num(path, src, 'yOff') !== 0 || num(path, src, 'xSize') !== w || num(path, src, 'ySize') !== h) {
      throw bad(path, `source ${fileEl[2]}: only whole, unscaled sources are supported (SrcRect 0,0 and the DstRect's size)`);
    }
    pieces.push({ path: file, x: num(path, dst, 'xOff'), y: num(path, dst, 'yOff'), width: w, height: h });
  }
  if (!pieces.length) throw bad(path, 'band 1 has no sources');
  return { width, height, srs, transform: gt as [number, number, number, number, number, number], pieces };
}

/** Open a geo-dino VRT (a zone of a sharded run) as one raster. */
export async function openVrtMosaic(path: string, options: { log?: Logger; signal?: AbortSignal; maxOpen?: number } = {}): Promise<RasterSource> {
  const v = await parseVrt(path);
  return openMosaic(path, v.pieces, { width: v.width, height: v.height, transform: v.transform, srs: v.srs }, options);
}

/** Open pieces on one grid as one raster (the first piece stands for the band layout). */
export async function openMosaic(
  name: string,
  pieces: readonly MosaicPiece[],
  grid: { width: number; height: number; transform: [number, number, number, number, number, number]; srs: string },
  options: { log?: Logger; signal?: AbortSignal; maxOpen?: number } = {},
): Promise<RasterSource> {
  const log = options.log ?? silentLogger();
  const maxOpen = options.maxOpen ?? 8;
  // Pieces opened once and shared by concurrent reads (the promise is stored before any await).
  const open = new Map<string, { src: Promise<RasterSource>; users: number }>();
  const first = await openRaster(pieces[0]!.path, { log, ...(options.signal ? { signal: options.signal } : {}) });
  open.set(pieces[0]!.path, { src: Promise.resolve(first), users: 0 });
  const fi = first.info;
  // Overview levels every piece can place exactly.
  const levels: LevelInfo[] = [{ ...fi.levels[0]!, level: 0, width: grid.width, height: grid.height, factorX: 1, factorY: 1 }];
  for (let k = 1; k < fi.levels.length; k++) {
    const f = 2 ** k;
    if (!pieces.every((p) => p.x % f === 0 && p.y % f === 0)) break;
    levels.push({ ...fi.levels[k]!, level: k, width: Math.ceil(grid.width / f), height: Math.ceil(grid.height / f), factorX: f, factorY: f });
  }
  const crs = grid.srs ? parseCrs(grid.srs, name) : fi.crs;
  const info: RasterInfo = { ...fi, source: name, width: grid.width, height: grid.height, geoTransform: grid.transform, crs, levels, metadata: { ...fi.metadata }, problems: [] };
  // Counters of the pieces read so far.
  const stats = { blocksDecoded: 0, bytesRead: 0 };

  const acquire = async (path: string): Promise<RasterSource> => {
    let o = open.get(path);
    if (o) {
      open.delete(path);
      open.set(path, o);
    } else {
      const src = openRaster(path, { log, ...(options.signal ? { signal: options.signal } : {}) });
      o = { src, users: 0 };
      open.set(path, o);
      src.catch(() => open.delete(path));
      for (const [p, x] of open) {
        if (open.size <= maxOpen) break;
        if (x.users === 0 && p !== path) {
          open.delete(p);
          await x.src.then((s) => s.close()).catch(() => undefined);
        }
      }
    }
    o.users++;
    try {
      return await o.src;
    } catch (err) {
      o.users--;
      throw err;
    }
  };
  const release = (path: string): void => {
    const o = open.get(path);
    if (o) o.users--;
  };

  const read = async (win: PixelWindow, ro: ReadOptions = {}): Promise<RasterData> => {
    const level = ro.level ?? 0;
    if (!levels[level]) throw new GeoDinoError('E_ARGUMENT', `${name}: no level ${level} (levels 0-${levels.length - 1})`);
    const f = 2 ** level;
    const bands = ro.bands ?? fi.bands.map((_, i) => i);
    const n = win.width * win.height;
    const fill = fi.nodata ?? 0;
    const out = bands.map(() => {
      const a = allocate(fi.dtype, n);
      a.fill(fill as never);
      return a;
    });
    const valid = new Uint8Array(n);
    for (const p of pieces) {
      const px = p.x / f;
      const py = p.y / f;
      const pw = Math.ceil(p.width / f);
      const ph = Math.ceil(p.height / f);
      const x0 = Math.max(win.x, px);
      const y0 = Math.max(win.y, py);
      const x1 = Math.min(win.x + win.width, px + pw);
      const y1 = Math.min(win.y + win.height, py + ph);
      if (x1 <= x0 || y1 <= y0) continue;
      const src = await acquire(p.path);
      let d: RasterData;
      try {
        if (src.info.dtype !== fi.dtype || src.info.bandCount !== fi.bandCount) throw bad(p.path, `is ${src.info.bandCount} × ${src.info.dtype}, not ${fi.bandCount} × ${fi.dtype} like ${pieces[0]!.path}`);
        const before = { b: src.stats.blocksDecoded, r: src.stats.bytesRead };
        d = await src.read({ x: x0 - px, y: y0 - py, width: x1 - x0, height: y1 - y0 }, { level, bands, ...(ro.signal ? { signal: ro.signal } : {}) });
        stats.blocksDecoded += src.stats.blocksDecoded - before.b;
        stats.bytesRead += src.stats.bytesRead - before.r;
      } finally {
        release(p.path);
      }
      const w = x1 - x0;
      for (let y = 0; y < y1 - y0; y++) {
        const o = (y + y0 - win.y) * win.width + (x0 - win.x);
        const s = y * w;
        for (let b = 0; b < bands.length; b++) (out[b] as TypedArray).set((d.bands[b] as TypedArray).subarray(s, s + w) as never, o);
        valid.set(d.valid.subarray(s, s + w), o);
      }
    }
    return { width: win.width, height: win.height, dtype: fi.dtype, bands: out, valid };
  };

  return {
    info,
    name,
    read,
    stats,
    async close() {
      const all = [...open.values()];
      open.clear();
      for (const o of all) await o.src.then((s) => s.close()).catch(() => undefined);
    },
  };
}
