/**
 * `npm run bench -- polygonize [-- --size=2048]`: megapixels per second of the geometry package's
 * `StreamingPolygonizer` (the raster → polygon routine behind footprints, provenance and change
 * polygons) against GDAL's `gdal.Polygonize` (4-connected, into an in-memory OGR layer) on the
 * same label raster, in the same run. The raster is synthetic and deterministic: a smooth random
 * field cut into three classes plus 5 % salt-and-pepper pixels, written once as raw int32 so both
 * read the same labels; only the polygonisation is timed (best of two). Also printed: the largest
 * number of regions open at once (the polygonizer's memory) and the region counts of both, which
 * must agree.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamingPolygonizer } from '@geo-dino/geometry';
import { Rng } from '@geo-dino/model';
import type { BenchModule, BenchReport } from './report.js';

const GDAL_PYTHON = process.env['GEO_DINO_GDAL_PYTHON'] ?? '/usr/bin/python3';

const REFERENCE = String.raw`
import json, sys, time
import numpy as np
from osgeo import gdal, ogr
gdal.UseExceptions()
path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
a = np.fromfile(path, dtype=np.int32).reshape(h, w)
ds = gdal.GetDriverByName('MEM').Create('', w, h, 1, gdal.GDT_Int32)
ds.GetRasterBand(1).WriteArray(a)
mds = gdal.GetDriverByName('MEM').Create('', w, h, 1, gdal.GDT_Byte)
mds.GetRasterBand(1).WriteArray((a != 0).astype(np.uint8))
best = None
for _ in range(2):
    vds = ogr.GetDriverByName('Memory').CreateDataSource('')
    lyr = vds.CreateLayer('p')
    lyr.CreateField(ogr.FieldDefn('v', ogr.OFTInteger))
    t0 = time.perf_counter()
    gdal.Polygonize(ds.GetRasterBand(1), mds.GetRasterBand(1), lyr, 0)
    dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
    n = lyr.GetFeatureCount()
print(json.dumps({'seconds': best, 'regions': n}))
`;

/** Labels 0 (background), 1, 2: a bilinear random field on a 64-px lattice, 5 % noise. */
function labels(w: number, h: number): Int32Array {
  const rand = new Rng(13);
  const r = (): number => rand.uniform();
  const S = 64;
  const gw = Math.ceil(w / S) + 2;
  const gh = Math.ceil(h / S) + 2;
  const g = Float64Array.from({ length: gw * gh }, () => r());
  const out = new Int32Array(w * h);
  for (let y = 0; y < h; y++) {
    const fy = y / S;
    const y0 = Math.floor(fy);
    const ty = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = x / S;
      const x0 = Math.floor(fx);
      const tx = fx - x0;
      const v = (g[y0 * gw + x0]! * (1 - tx) + g[y0 * gw + x0 + 1]! * tx) * (1 - ty) + (g[(y0 + 1) * gw + x0]! * (1 - tx) + g[(y0 + 1) * gw + x0 + 1]! * tx) * ty;
      out[y * w + x] = r() < 0.05 ? Math.floor(r() * 3) : v < 0.4 ? 0 : v < 0.6 ? 1 : 2;
    }
  }
  return out;
}

export const polygonizeBench: BenchModule = {
  description: 'raster → polygons: StreamingPolygonizer vs GDAL Polygonize (same label raster)',
  async run(args): Promise<BenchReport> {
    const sizeArg = args.find((a) => a.startsWith('--size='));
    const size = sizeArg ? Number(sizeArg.slice('--size='.length)) : 2048;
    if (!Number.isInteger(size) || size < 16) throw new Error(`--size=: a whole number of pixels ≥ 16 (got ${sizeArg})`);
    const w = size;
    const h = size;
    const dir = mkdtempSync(join(tmpdir(), 'geo-dino-bench-polygonize-'));
    try {
      const file = join(dir, 'labels.i32');
      writeFileSync(file, labels(w, h));
      const buf = readFileSync(file);
      const data = new Int32Array(buf.buffer, buf.byteOffset, w * h);
      let best = Infinity;
      let regions = 0;
      let peakOpen = 0;
      for (let run = 0; run < 2; run++) {
        const t0 = performance.now();
        const p = new StreamingPolygonizer({ background: 0 });
        let n = 0;
        for (let y = 0; y < h; y++) {
          n += p.addRow(data.subarray(y * w, (y + 1) * w)).length;
          if (p.openRegions > peakOpen) peakOpen = p.openRegions;
        }
        n += p.finish().length;
        best = Math.min(best, (performance.now() - t0) / 1000);
        regions = n;
      }
      const ref = JSON.parse(execFileSync(GDAL_PYTHON, ['-c', REFERENCE, file, String(w), String(h)], { encoding: 'utf8', maxBuffer: 1 << 24 }).trim().split('\n').pop()!) as { seconds: number; regions: number };
      const mpix = (w * h) / 1e6;
      return {
        name: 'polygonize',
        context: { width: w, height: h, regions, gdal_regions: ref.regions, peak_open_regions: peakOpen },
        rows: [
          {
            metric: `StreamingPolygonizer, ${w}×${h} labels (3 classes + noise)`,
            value: mpix / best,
            unit: 'Mpx/s',
            reference: { name: 'gdal.Polygonize (4-connected, Memory layer)', value: mpix / ref.seconds },
            better: 'higher',
            note: regions === ref.regions ? 'same region count as GDAL' : `region counts differ: ${regions} vs GDAL ${ref.regions}`,
          },
        ],
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
