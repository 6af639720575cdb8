/**
 * Training labels, aligned by geo-dino to the grid the imagery is rendered on.
 *
 * - **Categorical rasters** (GeoTIFF/COG, local or http(s); e.g. ESA WorldCover 10 m): any CRS the
 *   tiler knows; warped onto the grid with the tiler's transforms. When the labels are as coarse
 *   as the grid or coarser (WorldCover at 10 m onto 0.6 m), each grid pixel takes the label under
 *   its centre (nearest). When they are finer (more than 1.5 label pixels per grid pixel), each
 *   grid pixel takes the **mode** of the label pixels under it (the warper's `mode`, as
 *   `gdalwarp -r mode`: ties to the class that reached the count first, row by row), so thin
 *   features do not alias. Overviews are never read (averaged classes mean nothing). Invalid
 *   label pixels (mask, alpha, nodata) are "no label".
 * - **GeoJSON polygons** with a class property (a number = the class value, or a string = a class
 *   name): rasterised onto the grid by pixel centre (even-odd rule, like `gdal_rasterize`); a later
 *   feature overwrites an earlier one where they overlap. Coordinates are WGS 84 (RFC 7946); a
 *   legacy `crs` member naming another CRS is honoured by reprojecting.
 *
 * Rendering works on windows (tiles), so memory does not grow with the labels' extent.
 */
import { GeoDinoError, readJsonFile, silentLogger, throwIfAborted, type Logger } from '@geo-dino/core';
import { bboxOf, bboxPolygon, mapPositions, parseAoi, type Bbox, type MultiPolygonCoords } from '@geo-dino/geometry';
import {
  PolygonRaster,
  WGS84,
  crsLabel,
  footprintFromBounds,
  interpolateMesh,
  lonLatToPixels,
  meshFor,
  openRaster,
  parseCrs,
  prepareWarpSource,
  resample,
  transformBetween,
  windowFromMesh,
  type Grid,
  type PixelWindow,
  type RasterSource,
  type WarpSource,
} from '@geo-dino/tiling';
import { defaultColor, hexColor, type LandcoverClass } from './classes.js';

/** A pixel without a label. */
export const NO_LABEL = -1;

/** Label pixels read at once for the mode of finer labels (bounds memory whatever the ratio). */
const MODE_READ_PIXELS = 1 << 22;

export interface LabelSource {
  readonly kind: 'raster' | 'polygons';
  /** The file (as given, resolved). */
  readonly path: string;
  /** Lon/lat extent of the labels (a polygon: the raster's bounds or the polygons' bbox). */
  readonly extent: MultiPolygonCoords;
  /** Colours the file itself gives (a raster's colour table), by value. */
  readonly colors: ReadonlyMap<number, string>;
  /** Tie the labels to a grid; `render` needs it. */
  bind(grid: Grid): void;
  /** How label values reach the grid (for logs and the report). */
  readonly method: string;
  /** Label values (NO_LABEL where none) of a window of the bound grid, row-major. */
  render(win: PixelWindow, signal?: AbortSignal): Promise<Int32Array>;
  close(): Promise<void>;
}

export interface OpenLabelsOptions {
  /** Polygons: the property holding the class (default `class`). */
  classProperty?: string;
  /** Rasters: 1-based band (default 1). */
  band?: number;
  /**
   * Polygons with string classes: the table to find their values in. Without it, names get values
   * 1..n in sorted order (see {@link PolygonLabels.derivedClasses}).
   */
  classes?: readonly LandcoverClass[];
  log?: Logger;
  signal?: AbortSignal;
}

/** A categorical raster or GeoJSON polygons, chosen by the file's content type / extension. */
export async function openLabels(path: string, options: OpenLabelsOptions = {}): Promise<LabelSource> {
  if (/\.(geo)?json$/i.test(path.split(/[?#]/)[0]!)) return PolygonLabels.open(path, options);
  return RasterLabels.open(path, options);
}

// ------------------------------------------------------------------------------------------
// Rasters

export class RasterLabels implements LabelSource {
  readonly kind = 'raster';
  private warp: WarpSource | null = null;
  private grid: Grid | null = null;
  /** Label pixels per grid pixel (linear) when the labels are finer than the grid, else 1. */
  private ratio = 1;
  readonly colors: Map<number, string>;
  readonly extent: MultiPolygonCoords;

  private constructor(
    readonly path: string,
    private readonly raster: RasterSource,
    private readonly band: number,
    private readonly log: Logger,
  ) {
    this.colors = new Map();
    const ct = raster.info.colorTable;
    if (ct) ct.forEach((rgba, v) => this.colors.set(v, hexColor(rgba)));
    this.extent = footprintFromBounds(raster).geometry;
  }

  static async open(path: string, options: OpenLabelsOptions = {}): Promise<RasterLabels> {
    const log = options.log ?? silentLogger();
    const raster = await openRaster(path, { log, ...(options.signal ? { signal: options.signal } : {}) });
    try {
      const info = raster.info;
      const band = (options.band ?? 1) - 1;
      if (!Number.isInteger(band) || band < 0 || band >= info.bandCount) {
        throw new GeoDinoError('E_BAD_LABELS', `${info.source}: --label-band ${band + 1}: the raster has ${info.bandCount} band(s)`, { details: { path, field: '--label-band' } });
      }
      if (info.bandCount > 1 && options.band === undefined) {
        log.warn({ labels: info.source, bands: info.bandCount }, 'the label raster has several bands; band 1 holds the classes (choose another with --label-band)');
      }
      if (!info.geoTransform || !info.crs) {
        throw new GeoDinoError('E_BAD_LABELS', `${info.source}: the label raster has no ${info.crs ? 'georeferencing' : 'CRS'}; it cannot be aligned with the imagery`, { details: { path } });
      }
      return new RasterLabels(path, raster, band, log);
    } catch (err) {
      await raster.close();
      throw err;
    }
  }

  get method(): string {
    return this.ratio > 1 ? `mode of the label pixels under each pixel (labels ${this.ratio.toFixed(2)}× finer than the grid; gdalwarp -r mode)` : 'nearest (label under each pixel centre)';
  }

  bind(grid: Grid): void {
    const warp = prepareWarpSource(this.raster, grid, { overviews: 'none' });
    this.warp = warp;
    this.grid = grid;
    this.ratio = warp.ratio > 1.5 ? warp.ratio : 1;
    this.log.debug({ labels: this.path, crs: crsLabel(this.raster.info.crs!), ratio: Number(warp.ratio.toFixed(3)), method: this.method }, 'labels bound to the grid');
  }

  /** Label values of the pixels of `win` (nearest, or mode for finer labels); NO_LABEL where none. */
  private async sample(win: PixelWindow, resampling: 'nearest' | 'mode', signal?: AbortSignal): Promise<Int32Array> {
    const warp = this.warp!;
    const grid = this.grid!;
    const out = new Int32Array(win.width * win.height).fill(NO_LABEL);
    const fp = warp.footprint;
    if (!fp || fp[0] >= win.x + win.width || fp[2] <= win.x || fp[1] >= win.y + win.height || fp[3] <= win.y) return out;
    const mesh = meshFor(warp, grid, win);
    const src = windowFromMesh(mesh, warp, resampling);
    if (!src) return out;
    const data = await this.raster.read(src, { level: 0, bands: [this.band], ...(signal ? { signal } : {}) });
    const vals = new Float32Array(out.length);
    const ok = new Uint8Array(out.length);
    resample(interpolateMesh(mesh), warp, src, data.bands, data.valid, resampling, [vals], ok);
    for (let i = 0; i < out.length; i++) {
      if (!ok[i]) continue;
      const v = vals[i]!;
      if (!Number.isInteger(v)) {
        throw new GeoDinoError('E_BAD_LABELS', `${this.raster.info.source}: label value ${v} is not an integer class value (a categorical raster is expected)`, { details: { path: this.path, value: v } });
      }
      out[i] = v;
    }
    return out;
  }

  async render(win: PixelWindow, signal?: AbortSignal): Promise<Int32Array> {
    if (!this.warp || !this.grid) throw new GeoDinoError('E_INTERNAL', 'labels: render before bind');
    if (this.ratio === 1) return this.sample(win, 'nearest', signal);
    // Finer labels: the mode over each pixel's footprint, a band of rows at a time (bounded memory).
    const rowsPer = Math.max(1, Math.floor(MODE_READ_PIXELS / (win.width * this.ratio * this.ratio * 1.5)));
    if (rowsPer >= win.height) return this.sample(win, 'mode', signal);
    const out = new Int32Array(win.width * win.height);
    for (let r0 = 0; r0 < win.height; r0 += rowsPer) {
      throwIfAborted(signal);
      const rows = Math.min(rowsPer, win.height - r0);
      out.set(await this.sample({ x: win.x, y: win.y + r0, width: win.width, height: rows }, 'mode', signal), r0 * win.width);
    }
    return out;
  }

  close(): Promise<void> {
    return this.raster.close();
  }
}

// ------------------------------------------------------------------------------------------
// Polygons

interface LabelFeature {
  /** The class as given (number or string). */
  raw: number | string;
  value: number;
  geometry: MultiPolygonCoords;
  bbox: Bbox;
  /** Bound to a grid: */
  raster?: PolygonRaster;
  pixelBox?: [number, number, number, number];
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The CRS a legacy GeoJSON `crs` member names, or null for WGS 84 / CRS84. */
function legacyCrs(json: Record<string, unknown>, path: string): ReturnType<typeof parseCrs> | null {
  const crs = json['crs'];
  if (!isObj(crs)) return null;
  const props = crs['properties'];
  const name = isObj(props) && typeof props['name'] === 'string' ? props['name'] : null;
  if (!name) throw new GeoDinoError('E_BAD_LABELS', `${path}: crs: only named CRSs ({"type": "name", "properties": {"name": "EPSG:…"}}) are supported`, { details: { path } });
  if (/crs84$|^epsg:4326$|epsg::4326$/i.test(name)) return null;
  return parseCrs(name.replace(/^urn:ogc:def:crs:epsg:[\d.]*:/i, 'EPSG:'), `${path}: crs`);
}

export class PolygonLabels implements LabelSource {
  readonly kind = 'polygons';
  readonly colors = new Map<number, string>();
  readonly method = 'polygons rasterised by pixel centre (later features overwrite earlier ones)';
  readonly extent: MultiPolygonCoords;

  private constructor(
    readonly path: string,
    private readonly features: LabelFeature[],
    /** Classes made up for string names when no table was given. */
    readonly derivedClasses: LandcoverClass[] | null,
  ) {
    let box: Bbox = features[0]!.bbox;
    for (const f of features) box = [Math.min(box[0], f.bbox[0]), Math.min(box[1], f.bbox[1]), Math.max(box[2], f.bbox[2]), Math.max(box[3], f.bbox[3])];
    this.extent = bboxPolygon(box);
  }

  static async open(path: string, options: OpenLabelsOptions = {}): Promise<PolygonLabels> {
    const prop = options.classProperty ?? 'class';
    const json = await readJsonFile(path).catch((err: unknown) => {
      if (err instanceof GeoDinoError && err.code === 'E_BAD_JSON') throw new GeoDinoError('E_BAD_LABELS', err.message, { cause: err, details: { path } });
      throw err;
    });
    if (!isObj(json)) throw new GeoDinoError('E_BAD_LABELS', `${path}: expected a GeoJSON FeatureCollection of polygons`, { details: { path } });
    const list: unknown[] = json['type'] === 'FeatureCollection' && Array.isArray(json['features']) ? (json['features'] as unknown[]) : json['type'] === 'Feature' ? [json] : [];
    if (!list.length) throw new GeoDinoError('E_BAD_LABELS', `${path}: expected a GeoJSON FeatureCollection (or Feature) of polygons with a "${prop}" property; found no features`, { details: { path } });
    const crs = legacyCrs(json, path);
    const toLonLat = crs ? transformBetween(crs, WGS84, path) : null;

    const raws: { raw: number | string; geometry: MultiPolygonCoords; bbox: Bbox }[] = [];
    list.forEach((f, i) => {
      const where = json['type'] === 'Feature' ? path : `${path}: features[${i}]`;
      if (!isObj(f)) throw new GeoDinoError('E_BAD_LABELS', `${where}: not a GeoJSON Feature`, { details: { path, feature: i } });
      const props = isObj(f['properties']) ? f['properties'] : {};
      const raw = props[prop];
      if (typeof raw !== 'number' && (typeof raw !== 'string' || raw.trim() === '')) {
        const keys = Object.keys(props);
        throw new GeoDinoError(
          'E_BAD_LABELS',
          `${where}.properties: no "${prop}" class (a number or a class name)${keys.length ? `; it has ${keys.slice(0, 8).join(', ')} (choose one with --class-property)` : ''}`,
          { details: { path, feature: i, field: '--class-property' } },
        );
      }
      const g = f['geometry'];
      if (!isObj(g) || (g['type'] !== 'Polygon' && g['type'] !== 'MultiPolygon')) {
        throw new GeoDinoError('E_BAD_LABELS', `${where}.geometry: must be a Polygon or MultiPolygon (got ${isObj(g) ? String(g['type']) : 'null'})`, { details: { path, feature: i } });
      }
      let geom: unknown = g;
      if (toLonLat) {
        const coords = g['type'] === 'Polygon' ? [g['coordinates']] : g['coordinates'];
        const mp = mapPositions(coords as MultiPolygonCoords, ([x, y]) => toLonLat.forward(x, y));
        geom = { type: 'MultiPolygon', coordinates: mp };
      }
      let aoi;
      try {
        aoi = parseAoi(geom, `${where}.geometry`);
      } catch (err) {
        throw new GeoDinoError('E_BAD_LABELS', err instanceof Error ? err.message : String(err), { cause: err, details: { path, feature: i } });
      }
      raws.push({ raw: typeof raw === 'string' ? raw.trim() : raw, geometry: aoi.geometry, bbox: bboxOf(aoi.geometry) });
    });

    // Class values: numbers are values; names are looked up in the table, or numbered 1..n.
    const names = [...new Set(raws.map((r) => r.raw).filter((r): r is string => typeof r === 'string'))].sort();
    let derived: LandcoverClass[] | null = null;
    const byName = new Map<string, number>();
    if (names.length) {
      if (options.classes) {
        const table = options.classes;
        const missing: string[] = [];
        for (const n of names) {
          const lc = n.toLowerCase();
          const c = table.find((x) => x.name === n) ?? table.find((x) => x.name.toLowerCase() === lc || x.title?.toLowerCase() === lc);
          if (c) byName.set(n, c.value);
          else missing.push(n);
        }
        if (missing.length) {
          throw new GeoDinoError('E_BAD_LABELS', `${path}: class name(s) ${missing.map((m) => JSON.stringify(m)).join(', ')} are not in the class table (it has ${table.map((c) => c.name).join(', ')})`, {
            details: { path, missing },
          });
        }
      } else {
        if (raws.some((r) => typeof r.raw === 'number')) {
          throw new GeoDinoError('E_BAD_LABELS', `${path}: the "${prop}" property mixes numbers and names; give a class table (--classes) to map the names to values`, { details: { path } });
        }
        if (names.length > 255) throw new GeoDinoError('E_BAD_LABELS', `${path}: ${names.length} class names; at most 255 fit a uint8 map`, { details: { path } });
        derived = names.map((n, i) => {
          const slug = n.replace(/[^0-9A-Za-z_-]+/g, '_').replace(/^_+|_+$/g, '') || `class_${i + 1}`;
          return { value: i + 1, name: slug, title: n, color: defaultColor(i) };
        });
        names.forEach((n, i) => byName.set(n, i + 1));
      }
    }
    const features: LabelFeature[] = raws.map((r, i) => {
      const value = typeof r.raw === 'number' ? r.raw : byName.get(r.raw)!;
      if (!Number.isInteger(value) || value < 0 || value > 255) {
        throw new GeoDinoError('E_BAD_LABELS', `${path}: features[${i}].properties.${prop}: class value ${JSON.stringify(r.raw)} must be an integer 0-255`, { details: { path, feature: i } });
      }
      return { raw: r.raw, value, geometry: r.geometry, bbox: r.bbox };
    });
    return new PolygonLabels(path, features, derived);
  }

  bind(grid: Grid): void {
    for (const f of this.features) {
      const px = lonLatToPixels(f.geometry, grid);
      f.raster = new PolygonRaster(px);
      f.pixelBox = [f.raster.minX, f.raster.minY, f.raster.maxX, f.raster.maxY];
    }
  }

  async render(win: PixelWindow, signal?: AbortSignal): Promise<Int32Array> {
    throwIfAborted(signal);
    const out = new Int32Array(win.width * win.height).fill(NO_LABEL);
    const mask = new Uint8Array(out.length);
    for (const f of this.features) {
      if (!f.raster) throw new GeoDinoError('E_INTERNAL', 'labels: render before bind');
      const b = f.pixelBox!;
      if (!(b[0] < win.x + win.width && b[2] > win.x && b[1] < win.y + win.height && b[3] > win.y)) continue;
      mask.fill(0);
      f.raster.fill(mask, win.x, win.y, win.width, win.height);
      for (let i = 0; i < out.length; i++) if (mask[i]) out[i] = f.value;
    }
    return out;
  }

  async close(): Promise<void> {
    /* nothing open */
  }
}
