/**
 * GDAL as the oracle: read windows, masks and metadata with GDAL's Python bindings
 * (`/usr/bin/python3` with `osgeo`), and run GDAL command-line tools.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GDAL_PYTHON } from '../../../test/support/tools.js';

export type Arr = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

const READ_PY = String.raw`
import sys, json
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
a = json.loads(sys.argv[1])
ds = gdal.Open(a['path'])
x, y, w, h = a['window']
lvl = a.get('level', 0)
bands = a.get('bands') or list(range(ds.RasterCount))
out = open(a['out'], 'wb')
dtypes = []
mask = np.zeros((h, w), dtype=np.uint8)
for b in bands:
    band = ds.GetRasterBand(b + 1)
    if lvl > 0:
        band = band.GetOverview(lvl - 1)
    arr = band.ReadAsArray(x, y, w, h)
    dtypes.append(str(arr.dtype))
    out.write(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder('<')).tobytes())
    if band.GetColorInterpretation() == gdal.GCI_AlphaBand:
        continue
    m = band.GetMaskBand().ReadAsArray(x, y, w, h)
    mask |= (m > 0).astype(np.uint8)
out.write(mask.tobytes())
out.close()
print(json.dumps({'dtypes': dtypes}))
`;

const CTORS: Record<string, new (b: ArrayBuffer, o: number, n: number) => Arr> = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

const SIZES: Record<string, number> = { uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, float64: 8 };

export interface GdalWindow {
  bands: Arr[];
  /** OR of GDAL's per-band masks: 1 where any band is valid. */
  valid: Uint8Array;
  dtypes: string[];
}

/** Read a window (within the raster) with GDAL. */
export function gdalRead(path: string, window: [number, number, number, number], options: { level?: number; bands?: number[] } = {}): GdalWindow {
  const dir = mkdtempSync(join(tmpdir(), 'gd-gdal-'));
  try {
    const out = join(dir, 'out.bin');
    const res = execFileSync(GDAL_PYTHON, ['-c', READ_PY, JSON.stringify({ path, window, out, level: options.level ?? 0, bands: options.bands ?? null })], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    const { dtypes } = JSON.parse(res) as { dtypes: string[] };
    const raw = readFileSync(out);
    const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
    const n = window[2] * window[3];
    let off = 0;
    const bands = dtypes.map((dt) => {
      const C = CTORS[dt]!;
      const a = new C(buf, off, n);
      off += n * SIZES[dt]!;
      return a;
    });
    return { bands, valid: new Uint8Array(buf, off, n), dtypes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Run a Python snippet with GDAL; returns stdout. */
export function gdalPython(code: string, args: string[] = []): string {
  return execFileSync(GDAL_PYTHON, ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
}

/** Run a GDAL command-line tool; throws with its stderr on failure. */
export function gdal(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

export function gdalinfoJson(path: string): Record<string, unknown> {
  return JSON.parse(gdal('gdalinfo', ['-json', path])) as Record<string, unknown>;
}

export function validateCog(path: string): { ok: boolean; output: string } {
  const code = String.raw`
import sys
from osgeo_utils.samples import validate_cloud_optimized_geotiff as v
warnings, errors, details = v.validate(sys.argv[1], full_check=True)
print('ERRORS' if errors else 'OK')
for e in errors: print('error:', e)
for w in warnings: print('warning:', w)
`;
  const out = gdalPython(code, [path]);
  return { ok: out.startsWith('OK'), output: out };
}

/**
 * Lon/lat (EPSG:4326, lon first) of points of a raster, transformed by GDAL/PROJ from the
 * raster's own CRS. Points are CRS coordinates, or pixel coordinates with `pixels: true`.
 */
export function gdalLonLat(path: string, points: readonly (readonly [number, number])[], options: { pixels?: boolean } = {}): [number, number][] {
  const code = String.raw`
import sys, json
from osgeo import gdal, osr
gdal.UseExceptions()
ds = gdal.Open(sys.argv[1])
gt = ds.GetGeoTransform()
s = osr.SpatialReference(wkt=ds.GetProjection())
t = osr.SpatialReference(); t.ImportFromEPSG(4326); t.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
ct = osr.CoordinateTransformation(s, t)
res = []
for px, py in json.loads(sys.argv[2]):
    if sys.argv[3] == 'pixels':
        px, py = gt[0] + px * gt[1] + py * gt[2], gt[3] + px * gt[4] + py * gt[5]
    lon, lat, _ = ct.TransformPoint(px, py)
    res.append([lon, lat])
print(json.dumps(res))
`;
  return JSON.parse(gdalPython(code, [path, JSON.stringify(points), options.pixels ? 'pixels' : 'crs'])) as [number, number][];
}

/** Exact equality report: count of differing samples and the first difference. */
export function diff(a: ArrayLike<number>, b: ArrayLike<number>, mask?: ArrayLike<number>): { count: number; first: string | null; maxAbs: number } {
  let count = 0;
  let first: string | null = null;
  let maxAbs = 0;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (mask && !mask[i]) continue;
    const x = a[i]!;
    const y = b[i]!;
    if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue;
    count++;
    maxAbs = Math.max(maxAbs, Math.abs(x - y));
    if (first === null) first = `at ${i}: ${x} vs ${y}`;
  }
  return { count, first, maxAbs };
}
