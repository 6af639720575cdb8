/**
 * The worker thread behind `POST /api/stats`: everything that costs CPU in proportion to the
 * polygon (JSON parsing, vertex counting, validity, merging, rasterising, reading pixels) runs
 * here, so the server's event loop keeps answering other requests while it works.
 */
import { parentPort } from 'node:worker_threads';
import { GeoDinoError, isGeoDinoError } from '@geo-dino/core';
import { countVertices, parseAoi } from '@geo-dino/geometry';
import { inlineDecoder } from '@geo-dino/tiling';
import { join } from 'node:path';
import { chmRasterNameFor, polygonStats, RasterPool } from './raster.js';
import type { StatsJob, StatsReply } from './stats-pool.js';

const rasters = new RasterPool(8, { decoder: inlineDecoder });

async function run(job: StatsJob): Promise<StatsReply> {
  try {
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(job.body).toString('utf8'));
    } catch {
      throw new GeoDinoError('E_BAD_JSON', 'the body is not valid JSON');
    }
    const aoi = parseAoi(json, 'polygon', { maxVertices: job.maxVertices, maxEdgePairs: job.maxEdgePairs });
    const vertices = countVertices(json);
    const path = join(job.dir, chmRasterNameFor(job.chmRasters, aoi.centroid));
    const stats = await polygonStats(await rasters.get(path), aoi, { maxPixels: job.maxPixels });
    return { id: job.id, ok: true, result: { polygon: { areaM2: aoi.areaM2, vertices, bbox: aoi.bbox }, stats } };
  } catch (err) {
    if (isGeoDinoError(err)) return { id: job.id, ok: false, error: { code: err.code, message: err.message, category: err.category } };
    return { id: job.id, ok: false, error: { code: 'E_INTERNAL', message: (err as Error).message, category: 'internal' } };
  }
}

parentPort?.on('message', (job: StatsJob) => {
  void run(job).then((reply) => parentPort!.postMessage(reply));
});
