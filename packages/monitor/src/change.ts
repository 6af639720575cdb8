/**
 * Change detection between two canopy-height rasters of a region.
 *
 * On the grid of the newer raster (`after`), block by block: loss = before − after (metres,
 * positive where canopy got lower) where both are valid and the pixel centre lies in the AOI.
 * The loss raster is written as a COG with the tiler's streaming writer (float32, nodata −9999);
 * pixels whose loss is at least `thresholdM` form the loss mask, which is polygonised in bounded
 * memory (`StreamingPolygonizer` of `@geo-dino/geometry`, 4-connectivity). Components covering
 * at least `minAreaM2` are the changes: written to a GeoJSON FeatureCollection (lon/lat, RFC 7946 ring orientation) with
 * their area (m², summed from the grid's pixel areas), mean and maximum loss and pixel count.
 *
 * The older raster is read onto the newer one's grid: a window read when the grids share pixel
 * boundaries (the default for runs of one region: the same AOI gives the same grid), bilinear
 * resampling otherwise.
 */
import { createHash } from 'node:crypto';
import { GeoDinoError, openAtomic, type AtomicFile, silentLogger, silentProgress, throwIfAborted, type Logger, type Progress } from '@geo-dino/core';
import { orientRfc7946, StreamingPolygonizer, type Aoi, type LabelRun, type PolygonizedRegion } from '@geo-dino/geometry';
import { createCogWriter, openRaster, type CogWriter, type Grid, type PixelWindow, type RasterSource } from '@geo-dino/tiling';
import { AoiMask, gridOf, gridReader, pixelAreaOfRow, pixelToLonLat } from './raster-grid.js';
import type { ChangeRecord } from './store.js';

export const LOSS_NODATA = -9999;

/** A run of loss-mask pixels with the loss summed, its maximum and the pixels' area (m²). */
type LossRun = LabelRun & { sum: number; max: number; area: number };

export interface ChangeOptions {
  /** Loss (m) a pixel must reach to count (default 5). */
  thresholdM?: number;
  /** Smallest change area reported (m², default 500). */
  minAreaM2?: number;
  /** Only pixels whose centre is in this AOI are compared. */
  aoi?: Aoi;
  /** Where to write the loss COG (optional). */
  lossPath?: string;
  /** Where to write the change polygons (optional). */
  geojsonPath?: string;
  /** Extra properties put on every feature (e.g. region, run ids). */
  properties?: Record<string, string | number | null>;
  /** Block size of the loss COG and of processing (default 512). */
  blockSize?: number;
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
}

export interface ChangeFeatureProperties {
  id: string;
  area_m2: number;
  mean_loss_m: number;
  max_loss_m: number;
  pixels: number;
}

export interface ChangeResult {
  changes: ChangeRecord[];
  /** Area compared: both rasters valid, inside the AOI (m²). */
  comparedAreaM2: number;
  /** All pixels at or above the threshold, before the minimum-area filter (m²). */
  lossAreaM2: number;
  /** Area of the reported changes (m²). */
  changedAreaM2: number;
  /** Components found below the minimum area (not reported). */
  smallComponents: number;
  /** True when the older raster was read as window copies (grids share pixel boundaries). */
  aligned: boolean;
  grid: { crs: string; transform: number[]; width: number; height: number };
}

/** A change's id: stable for the same pixels of the same grid. */
export function changeId(c: Pick<PolygonizedRegion, 'bbox' | 'pixels'>): string {
  return 'chg-' + createHash('sha256').update(`${c.bbox.join(',')},${c.pixels}`).digest('hex').slice(0, 16);
}

function check(name: string, v: number, min: number): void {
  if (!Number.isFinite(v) || v < min) throw new GeoDinoError('E_ARGUMENT', `${name} must be a number ≥ ${min} (got ${v})`, { details: { [name]: v } });
}

/** Compare `beforePath` with `afterPath` (COGs/GeoTIFFs; band 1 is canopy height in metres). */
export async function detectChange(beforePath: string, afterPath: string, options: ChangeOptions = {}): Promise<ChangeResult> {
  const threshold = options.thresholdM ?? 5;
  const minArea = options.minAreaM2 ?? 0;
  check('thresholdM', threshold, 0);
  check('minAreaM2', minArea, 0);
  const log = options.log ?? silentLogger();
  const B = options.blockSize ?? 512;
  const after = await openRaster(afterPath, { log });
  let before: RasterSource | null = null;
  let cog: CogWriter | null = null;
  let out: AtomicFile | null = null;
  try {
    before = await openRaster(beforePath, { log });
    const grid = gridOf(after);
    const reader = gridReader(before, grid);
    const afterReader = gridReader(after, grid);
    const areaOfRow = pixelAreaOfRow(grid);
    const mask = options.aoi ? new AoiMask(options.aoi, grid) : null;
    const toLonLat = pixelToLonLat(grid);
    const { width: W, height: H } = grid;

    cog = options.lossPath
      ? await createCogWriter(options.lossPath, {
          width: W,
          height: H,
          bands: 1,
          dtype: 'float32',
          blockSize: B,
          nodata: LOSS_NODATA,
          crs: grid.crs,
          transform: grid.transform,
          bandDescriptions: ['height_loss'],
          bandMetadata: [{ UNITS: 'm', DESCRIPTION: 'canopy height before minus after, metres (positive = loss)' }],
          bandUnits: ['m'],
          statistics: true,
          metadata: { GEO_DINO_LOSS_THRESHOLD_M: String(threshold), GEO_DINO_BEFORE: beforePath, GEO_DINO_AFTER: afterPath },
          ...(options.signal ? { signal: options.signal } : {}),
        })
      : null;
    out = options.geojsonPath ? await openAtomic(options.geojsonPath) : null;

    const poly = new StreamingPolygonizer();
    const changes: ChangeRecord[] = [];
    let compared = 0;
    let lossArea = 0;
    let small = 0;
    let features = 0;
    if (out) await out.write('{"type":"FeatureCollection","features":[\n');

    const emit = async (comps: PolygonizedRegion[]): Promise<void> => {
      for (const c of comps) {
        if (c.area < minArea) {
          small++;
          continue;
        }
        const id = changeId(c);
        const coords = orientRfc7946(c.polygons.map((p) => p.map((ring) => ring.map(([x, y]) => toLonLat(x, y)))));
        const [clon, clat] = toLonLat(c.centroid[0], c.centroid[1]);
        const centroid: [number, number] = [round(clon, 7), round(clat, 7)];
        let minLon = Infinity;
        let minLat = Infinity;
        let maxLon = -Infinity;
        let maxLat = -Infinity;
        for (const p of coords)
          for (const [lon, lat] of p[0]!) {
            minLon = Math.min(minLon, lon);
            maxLon = Math.max(maxLon, lon);
            minLat = Math.min(minLat, lat);
            maxLat = Math.max(maxLat, lat);
          }
        const rec: ChangeRecord = {
          changeId: id,
          areaM2: c.area,
          meanLossM: c.sum / c.pixels,
          maxLossM: c.max,
          pixels: c.pixels,
          centroid,
          bbox: [minLon, minLat, maxLon, maxLat],
        };
        changes.push(rec);
        if (out) {
          const props: ChangeFeatureProperties & Record<string, unknown> = {
            ...(options.properties ?? {}),
            id,
            area_m2: round(c.area, 2),
            mean_loss_m: round(rec.meanLossM, 3),
            max_loss_m: round(c.max, 3),
            pixels: c.pixels,
          };
          const geometry = coords.length === 1 ? { type: 'Polygon', coordinates: coords[0] } : { type: 'MultiPolygon', coordinates: coords };
          await out.write((features++ ? ',\n' : '') + JSON.stringify({ type: 'Feature', id, properties: props, geometry }));
        }
      }
    };

    const blocksAcross = Math.ceil(W / B);
    const blocksDown = Math.ceil(H / B);
    const task = (options.progress ?? silentProgress).start('change detection', { total: blocksAcross * blocksDown, unit: 'blocks' });
    for (let by = 0; by < blocksDown; by++) {
      const y0 = by * B;
      const h = Math.min(B, H - y0);
      const rows: LossRun[][] = Array.from({ length: h }, () => []);
      for (let bx = 0; bx < blocksAcross; bx++) {
        throwIfAborted(options.signal);
        const x0 = bx * B;
        const w = Math.min(B, W - x0);
        const win: PixelWindow = { x: x0, y: y0, width: w, height: h };
        const [a, b] = await Promise.all([afterReader.read(win, options.signal), reader.read(win, options.signal)]);
        const inAoi = mask?.window(win) ?? null;
        const block: Float32Array | null = cog ? new Float32Array(B * B).fill(LOSS_NODATA) : null;
        for (let j = 0; j < h; j++) {
          const pa = areaOfRow(y0 + j);
          const runs = rows[j]!;
          let run: LossRun | null = runs.length && runs[runs.length - 1]!.x1 === x0 ? runs[runs.length - 1]! : null;
          for (let i = 0; i < w; i++) {
            const k = j * w + i;
            let lost = false;
            if (a.valid[k] && b.valid[k] && (!inAoi || inAoi[k])) {
              const loss = b.values[k]! - a.values[k]!;
              if (block) block[j * B + i] = loss;
              compared += pa;
              if (loss >= threshold) {
                lost = true;
                lossArea += pa;
                const x = x0 + i;
                if (run && run.x1 === x) {
                  run.x1++;
                  run.sum += loss;
                  run.max = Math.max(run.max, loss);
                  run.area += pa;
                } else {
                  run = { x0: x, x1: x + 1, sum: loss, max: loss, area: pa };
                  runs.push(run);
                }
              }
            }
            if (!lost) run = null;
          }
        }
        if (cog && block) await cog.writeBlock(bx, by, [block]);
        task.tick();
      }
      for (const r of rows) await emit(poly.addRuns(r));
    }
    await emit(poly.finish());
    task.finish();

    if (out) {
      await out.write('\n]}\n');
      await out.commit();
    }
    if (cog) await cog.close();
    changes.sort((p, q) => q.areaM2 - p.areaM2 || p.changeId.localeCompare(q.changeId));
    const changedArea = changes.reduce((s, c) => s + c.areaM2, 0);
    log.debug({ compared_m2: compared, loss_m2: lossArea, changes: changes.length, small, aligned: reader.aligned }, 'change detection done');
    return {
      changes,
      comparedAreaM2: compared,
      lossAreaM2: lossArea,
      changedAreaM2: changedArea,
      smallComponents: small,
      aligned: reader.aligned,
      grid: gridSummary(grid),
    };
  } catch (err) {
    await cog?.abort().catch(() => undefined);
    await out?.abort().catch(() => undefined);
    throw err;
  } finally {
    await after.close().catch(() => undefined);
    await before?.close().catch(() => undefined);
  }
}

function gridSummary(g: Grid): ChangeResult['grid'] {
  return { crs: g.crs.epsg !== null ? `EPSG:${g.crs.epsg}` : g.crs.name, transform: [...g.transform], width: g.width, height: g.height };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
