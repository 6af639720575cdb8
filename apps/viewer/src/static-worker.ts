/**
 * The static site's value reader (a Web Worker): point values and AOI statistics from the
 * published COGs, read with geotiff.js over HTTP Range and computed by @geo-dino/zonal — the same
 * module behind `geo-dino serve`'s /api/point and /api/stats. Statistics run at full resolution up
 * to a pixel cap, above it on the finest overview under the cap (stated in the answer).
 */
import proj4 from 'proj4';
import { countVertices, parseAoi } from '@geo-dino/geometry/browser';
import { blendIn, heightRasterNameFor, MosaicRaster, polygonPixelCount, polygonStats, provenanceIndex, sceneIn, valueAt, type LonLatProjection, type ProvenanceIndex, type WindowRaster } from '@geo-dino/zonal';
import type { StaticRaster } from '@geo-dino/server/api-types';
import { Cog, cogLevelRaster, SiteFileError, type GridInfo } from './cog.js';
import type { WorkerReply, WorkerRequest } from './static-protocol.js';

const MAX_PROVENANCE_BYTES = 32 << 20;
const MAX_VERTICES = 20_000;
const MAX_EDGE_PAIRS = 5_000_000;

const cogs = new Map<string, Promise<Cog>>();
const projections = new Map<string, LonLatProjection>();
const provenance = new Map<string, Promise<ProvenanceIndex>>();

function projection(lonLat: string, definition: string): LonLatProjection {
  const key = `${lonLat}\u0000${definition}`;
  let p = projections.get(key);
  if (!p) {
    if (definition === lonLat) p = { forward: (x, y) => [x, y], inverse: (x, y) => [x, y] };
    else {
      const input = (d: string): string => (d.startsWith('{') ? (JSON.parse(d) as string) : d);
      const conv = proj4(input(lonLat), input(definition));
      const wrap = (f: (p: [number, number]) => number[]) => (x: number, y: number): [number, number] => {
        try {
          const r = f([x, y]);
          return Number.isFinite(r[0]) && Number.isFinite(r[1]) ? [r[0]!, r[1]!] : [NaN, NaN];
        } catch {
          return [NaN, NaN];
        }
      };
      p = { forward: wrap((q) => conv.forward(q)), inverse: wrap((q) => conv.inverse(q)) };
    }
    projections.set(key, p);
  }
  return p;
}

function openCog(base: string, href: string, expect: { width: number; height: number; bandCount: number }): Promise<Cog> {
  const url = new URL(href, base).href;
  let c = cogs.get(url);
  if (!c) {
    c = Cog.open(url, href, expect);
    c.catch(() => cogs.delete(url));
    cogs.set(url, c);
  }
  return c;
}

function gridOf(r: StaticRaster, lonLat: string): GridInfo {
  return { name: r.name, width: r.width, height: r.height, bandCount: r.bandCount, geoTransform: r.geoTransform, geographic: r.crs.geographic, metresPerUnit: r.crs.metresPerUnit, projection: projection(lonLat, r.crs.definition) };
}

/** The raster at overview `level` (0 = full resolution): one COG, or the shard COGs of a zone as a mosaic. */
async function rasterAt(base: string, r: StaticRaster, lonLat: string, level: number): Promise<WindowRaster> {
  const grid = gridOf(r, lonLat);
  const single = r.parts.length === 1 && r.parts[0]!.x === 0 && r.parts[0]!.y === 0 && r.parts[0]!.width === r.width && r.parts[0]!.height === r.height;
  if (single) {
    const cog = await openCog(base, r.parts[0]!.href, { width: r.width, height: r.height, bandCount: r.bandCount });
    if (level >= cog.levels.length) throw new SiteFileError('unsupported', r.parts[0]!.href, `${r.parts[0]!.href}: has no overview level ${level}`);
    return cogLevelRaster(cog, level, grid);
  }
  const f = 2 ** level;
  const gt = r.geoTransform;
  const mosaicGrid = level === 0 ? grid : { ...grid, width: Math.ceil(r.width / f), height: Math.ceil(r.height / f), geoTransform: [gt[0]!, gt[1]! * f, gt[2]! * f, gt[3]!, gt[4]! * f, gt[5]! * f] };
  return new MosaicRaster(
    mosaicGrid,
    r.parts.map((p) => ({
      x: Math.floor(p.x / f),
      y: Math.floor(p.y / f),
      width: Math.ceil(p.width / f),
      height: Math.ceil(p.height / f),
      open: async () => {
        const cog = await openCog(base, p.href, { width: p.width, height: p.height, bandCount: r.bandCount });
        const lv = Math.min(level, cog.levels.length - 1);
        const pgt = [gt[0]! + p.x * gt[1]!, gt[1]!, gt[2]!, gt[3]! + p.y * gt[5]!, gt[4]!, gt[5]!];
        return cogLevelRaster(cog, lv, { ...grid, width: p.width, height: p.height, geoTransform: pgt });
      },
    })),
  );
}

async function provenanceOf(base: string, href: string): Promise<ProvenanceIndex> {
  const url = new URL(href, base).href;
  let idx = provenance.get(url);
  if (!idx) {
    idx = (async () => {
      const res = await fetch(url);
      if (res.status === 404) throw new SiteFileError('missing', href, `${href} is missing from the published site (HTTP 404)`);
      if (!res.ok) throw new SiteFileError('network', href, `${href}: HTTP ${res.status}`);
      if (Number(res.headers.get('content-length') ?? 0) > MAX_PROVENANCE_BYTES) return provenanceIndex(null);
      return provenanceIndex(await res.json());
    })();
    idx.catch(() => provenance.delete(url));
    provenance.set(url, idx);
  }
  return idx;
}

async function handle(req: WorkerRequest): Promise<WorkerReply> {
  const { base, lonLat, run } = req;
  if (req.type === 'point') {
    const { lon, lat } = req;
    const out: Extract<WorkerReply, { type: 'point' }>['result'] = { inside: false, pixel: null, height_m: null, uncertainty_m: null, scene: null };
    for (const [i, r] of run.heights.entries()) {
      // A sharded run: the first zone whose grid holds the point.
      const v = await valueAt(await rasterAt(base, r, lonLat, 0), lon, lat, [0, 1]);
      if (!v.inside && i < run.heights.length - 1) continue;
      out.inside = v.inside;
      out.pixel = v.inside && v.col !== null && v.row !== null ? { col: v.col, row: v.row } : null;
      out.height_m = v.values[0] ?? null;
      out.uncertainty_m = v.values[1] ?? null;
      break;
    }
    if (run.landcover) {
      const v = await valueAt(await rasterAt(base, run.landcover, lonLat, 0), lon, lat, [0]);
      const value = v.values[0] ?? null;
      out.landcover = value === null ? null : { value, name: req.classes.find((c) => c.value === value)?.name ?? null };
    }
    if (run.provenance) {
      const idx = await provenanceOf(base, run.provenance);
      out.scene = sceneIn(idx, lon, lat);
      out.blend = blendIn(idx, lon, lat);
    }
    return { id: req.id, type: 'point', result: out };
  }
  const aoi = parseAoi(req.geojson, 'polygon', { maxVertices: MAX_VERTICES, maxEdgePairs: MAX_EDGE_PAIRS });
  const vertices = countVertices(req.geojson);
  if (!run.heights.length) throw new Error('this run has no height raster');
  const name = heightRasterNameFor(run.heights.map((h) => h.name), aoi.centroid);
  const r = run.heights.find((h) => h.name === name)!;
  // Full resolution up to the cap; above it the finest overview (factor 2^level) under it.
  let level = 0;
  let raster = await rasterAt(base, r, lonLat, 0);
  const pixels = polygonPixelCount(raster, aoi);
  if (pixels > req.fullResPixels) {
    level = Math.ceil(Math.log2(Math.sqrt(pixels / req.fullResPixels)));
    for (;;) {
      try {
        raster = await rasterAt(base, r, lonLat, level);
        break;
      } catch (err) {
        // No such overview: the coarsest there is.
        if (!(err instanceof SiteFileError) || err.kind !== 'unsupported' || level === 0) throw err;
        level--;
      }
    }
  }
  const stats = await polygonStats(raster, aoi, { maxPixels: level === 0 ? req.fullResPixels : Math.max(req.fullResPixels, polygonPixelCount(raster, aoi)) });
  const gt = raster.geoTransform;
  return {
    id: req.id,
    type: 'stats',
    result: {
      polygon: { areaM2: aoi.areaM2, vertices, bbox: aoi.bbox },
      stats,
      resolution: { level, fullResolution: level === 0, pixelSizeM: Math.sqrt(Math.abs(gt[1]! * gt[5]! - gt[2]! * gt[4]!)) * raster.metresPerUnit, raster: r.name },
    },
  };
}

self.onmessage = (e: MessageEvent<WorkerRequest>): void => {
  const req = e.data;
  handle(req)
    .then((reply) => self.postMessage(reply))
    .catch((err: unknown) => {
      const kind = err instanceof SiteFileError ? err.kind : 'error';
      const file = err instanceof SiteFileError ? err.file : null;
      self.postMessage({ id: req.id, type: 'error', error: { kind, file, message: (err as Error)?.message ?? String(err), code: (err as { code?: string }).code ?? null } } satisfies WorkerReply);
    });
};
