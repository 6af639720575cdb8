/**
 * The streaming COG writer against GDAL: files pass validate_cloud_optimized_geotiff.py (with
 * the full leader/trailer check), GDAL reads back exactly the values written, sees the CRS,
 * geotransform, nodata, band descriptions, colour interpretation and colour table, and our
 * overviews equal GDAL's own (gdaladdo) within a stated tolerance.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCogWriter, openRaster, parseCrs, transformBetween, WGS84, type CogWriterOptions } from '@geo-dino/tiling';
import { requireGdal } from '../../test/support/tools.js';
import { diff, gdal, gdalinfoJson, gdalLonLat, gdalPython, gdalRead, validateCog } from './support/gdal.js';

let dir: string;
beforeAll(() => {
  requireGdal();
  dir = mkdtempSync(join(tmpdir(), 'gd-cog-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Gen = (band: number, x: number, y: number) => number;

/** Write a raster generated pixel by pixel, block by block in row order; `skip` blocks stay sparse. */
async function writeRaster(path: string, opts: CogWriterOptions, gen: Gen, skip: (col: number, row: number) => boolean = () => false): Promise<number> {
  const w = await createCogWriter(path, opts);
  const B = w.blockSize;
  for (let row = 0; row < w.blocksDown; row++) {
    // Columns out of order within a row are allowed.
    const cols = [...Array(w.blocksAcross).keys()].reverse();
    for (const col of cols) {
      if (skip(col, row)) continue;
      const bands = Array.from({ length: opts.bands }, (_, b) => {
        const a = new Float64Array(B * B);
        for (let y = 0; y < B; y++) for (let x = 0; x < B; x++) a[y * B + x] = gen(b, col * B + x, row * B + y);
        return a;
      });
      await w.writeBlock(col, row, bands);
    }
  }
  return (await w.close()).bytes;
}

const floatGen: Gen = (b, x, y) => {
  if ((x - 300) ** 2 + (y - 200) ** 2 < 80 ** 2) return -9999; // a nodata hole
  return Math.fround(Math.sin(x / 37) * 20 + Math.cos(y / 23) * 10 + b * 100 + x * 1e-3);
};

describe('COG writer', () => {
  it('band units, statistics and overview resampling: what gdalinfo and QGIS read', async () => {
    const path = join(dir, 'units-stats.tif');
    const opts: CogWriterOptions = {
      width: 700,
      height: 500,
      bands: 2,
      dtype: 'float32',
      blockSize: 256,
      nodata: -9999,
      crs: 'EPSG:32637',
      transform: [500000, 0.6, 0, 9800000, 0, -0.6],
      bandUnits: ['m', 'm'],
      statistics: true,
      overviewResampling: 'average',
    };
    await writeRaster(path, opts, floatGen, (c, r) => c === 2 && r === 1);
    const info = gdalinfoJson(path) as { metadata: Record<string, Record<string, string>>; bands: { unit?: string; metadata: Record<string, Record<string, string>> }[] };
    expect(info.bands.map((b) => b.unit)).toEqual(['m', 'm']);
    expect(info.metadata['']!['OVERVIEW_RESAMPLING']).toBe('AVERAGE');
    // GDAL's own exact statistics of the file (computed by GDAL, not read from our metadata).
    const ref = JSON.parse(
      gdalPython(
        String.raw`
import sys, json, shutil
from osgeo import gdal
gdal.UseExceptions()
src = gdal.Open(sys.argv[1])
mem = gdal.GetDriverByName('MEM').CreateCopy('', src)
out = []
for i in range(1, mem.RasterCount + 1):
    b = mem.GetRasterBand(i)
    for k in list(b.GetMetadata().keys()):
        if k.startswith('STATISTICS_'): b.SetMetadataItem(k, None)
    mn, mx, mean, sd = b.ComputeStatistics(False)
    st = src.GetRasterBand(i).GetStatistics(False, False)
    out.append({'gdal': [mn, mx, mean, sd], 'stored': st, 'valid': float(src.GetRasterBand(i).GetMetadataItem('STATISTICS_VALID_PERCENT'))})
print(json.dumps({'bands': out}))
`,
        [path],
      ),
    ) as { bands: { gdal: number[]; stored: number[]; valid: number }[] };
    for (const b of ref.bands) {
      b.stored.forEach((v, i) => expect(v, `statistic ${i}`).toBeCloseTo(b.gdal[i]!, 4));
    }
    // Valid share: the nodata hole and the sparse block are not counted.
    let valid = 0;
    for (let y = 0; y < 500; y++) for (let x = 0; x < 700; x++) if (!(x >= 512 && x < 700 && y >= 256) && floatGen(0, x, y) !== -9999) valid++;
    expect(ref.bands[0]!.valid).toBeCloseTo((100 * valid) / (700 * 500), 6);
  });

  it('float32, 2 bands, nodata, sparse blocks: validates; GDAL reads back every value exactly', async () => {
    const path = join(dir, 'chm.tif');
    const opts: CogWriterOptions = {
      width: 1000,
      height: 700,
      bands: 2,
      dtype: 'float32',
      blockSize: 256,
      nodata: -9999,
      crs: 'EPSG:32633',
      transform: [500000, 0.6, 0, 4000000, 0, -0.6],
      bandDescriptions: ['canopy height (m)', 'uncertainty (m)'],
      metadata: { model: 'CHMv2 test' },
    };
    await writeRaster(path, opts, floatGen, (c, r) => c === 3 && r === 0);
    const v = validateCog(path);
    expect(v.ok, v.output).toBe(true);
    expect(v.output).not.toMatch(/warning/);
    const ref = gdalRead(path, [0, 0, 1000, 700]);
    for (let b = 0; b < 2; b++) {
      const expected = new Float32Array(1000 * 700);
      for (let y = 0; y < 700; y++) for (let x = 0; x < 1000; x++) expected[y * 1000 + x] = x >= 768 && y < 256 ? -9999 : floatGen(b, x, y);
      const d = diff(ref.bands[b]!, expected);
      expect(d.count, `band ${b + 1}: ${d.first}`).toBe(0);
    }
    const info = gdalinfoJson(path) as {
      geoTransform: number[];
      coordinateSystem: { wkt: string };
      metadata: Record<string, Record<string, string>>;
      bands: { description?: string; noDataValue: number; type: string; block: number[]; overviews: { size: number[] }[] }[];
    };
    expect(info.geoTransform).toEqual([500000, 0.6, 0, 4000000, 0, -0.6]);
    expect(info.coordinateSystem.wkt).toMatch(/ID\["EPSG",32633\]\]$/);
    expect(info.bands.map((b) => b.description)).toEqual(['canopy height (m)', 'uncertainty (m)']);
    expect(info.bands.map((b) => b.noDataValue)).toEqual([-9999, -9999]);
    expect(info.bands[0]!.type).toBe('Float32');
    expect(info.bands[0]!.block).toEqual([256, 256]);
    expect(info.bands[0]!.overviews.map((o) => o.size)).toEqual([
      [500, 350],
      [250, 175],
    ]);
    expect(info.metadata['']?.['model']).toBe('CHMv2 test');
    expect(info.metadata['IMAGE_STRUCTURE']?.['COMPRESSION']).toBe('DEFLATE');
    expect(info.metadata['IMAGE_STRUCTURE']?.['PREDICTOR']).toBe('3');
    // Our reader reads it back too (the reader for COGs geo-dino wrote).
    const src = await openRaster(path);
    try {
      const ours = await src.read({ x: 0, y: 0, width: 1000, height: 700 });
      expect(diff(ours.bands[0]!, ref.bands[0]!).count).toBe(0);
      expect(diff(ours.valid, ref.valid).count).toBe(0);
      expect(src.info.bands.map((b) => b.description)).toEqual(['canopy height (m)', 'uncertainty (m)']);
    } finally {
      await src.close();
    }
  });

  it('overviews (average, nodata ignored) equal GDAL gdaladdo -r average within 1e-4', async () => {
    const path = join(dir, 'avg.tif');
    await writeRaster(
      path,
      { width: 1030, height: 520, bands: 1, dtype: 'float32', blockSize: 256, nodata: -9999, crs: 'EPSG:32633', transform: [500000, 1, 0, 4000000, 0, -1] },
      floatGen,
    );
    // GDAL's own overviews of the same full-resolution data.
    const plain = join(dir, 'avg-plain.tif');
    gdal('gdal_translate', ['-q', '-of', 'GTiff', '-co', 'TILED=YES', path, plain]);
    gdal('gdaladdo', ['-q', '-r', 'average', plain, '2']);
    const ours = gdalRead(path, [0, 0, 515, 260], { level: 1 });
    const ref = gdalRead(plain, [0, 0, 515, 260], { level: 1 });
    const d = diff(ours.bands[0]!, ref.bands[0]!);
    expect(d.maxAbs, d.first ?? '').toBeLessThan(1e-4);
    expect(diff(ours.valid, ref.valid).count).toBe(0);
  });

  it('every overview level, over many block rows with sparse blocks and sparse groups, equals an independent 2×2 reduction; only all-sparse groups stay sparse', async () => {
    // Small blocks, so each level has several block rows and the writer's spilled quarters are
    // reused many times. The reference reduces the full-resolution data (sparse = fill) level by
    // level with the documented rule, in float64, storing each level in the data type.
    const sparse = (c: number, r: number): boolean => (c >= 4 && c < 8 && r >= 4 && r < 8) || (c + 2 * r) % 9 === 0;
    const cases: { name: string; opts: CogWriterOptions; gen: Gen }[] = [
      {
        name: 'float32 average, nodata',
        opts: { width: 1000, height: 900, bands: 2, dtype: 'float32', blockSize: 64, nodata: -9999, crs: 'EPSG:32633', transform: [500000, 1, 0, 4000000, 0, -1] },
        gen: floatGen,
      },
      {
        name: 'uint8 RGBA average, alpha',
        opts: { width: 700, height: 1000, bands: 4, dtype: 'uint8', blockSize: 64, crs: 'EPSG:32633', transform: [500000, 1, 0, 4000000, 0, -1], colorInterp: ['red', 'green', 'blue', 'alpha'] },
        gen: (b, x, y) => (b === 3 ? ((x * 7 + y * 3) % 5 < 2 ? 0 : 255) : (x * (b + 3) + y * 5 + ((x * y) >> 4)) & 255),
      },
      {
        name: 'uint8 mode, nodata',
        opts: { width: 900, height: 700, bands: 1, dtype: 'uint8', blockSize: 64, nodata: 0, crs: 'EPSG:32633', transform: [500000, 1, 0, 4000000, 0, -1], overviewResampling: 'mode' },
        gen: (_b, x, y) => ((x >> 2) * 5 + (y >> 1) * 3 + ((x ^ y) & 1)) % 6,
      },
    ];
    for (const { name, opts, gen } of cases) {
      const path = join(dir, `levels-${opts.dtype}-${opts.bands}.tif`);
      await writeRaster(path, opts, gen, sparse);
      const v = validateCog(path);
      expect(v.ok, `${name}: ${v.output}`).toBe(true);
      if (opts.overviewResampling === 'mode') {
        // Half the cells are ties here: the first level equals gdaladdo's.
        const plain = join(dir, 'levels-mode-plain.tif');
        gdal('gdal_translate', ['-q', '-of', 'GTiff', '-co', 'TILED=YES', path, plain]);
        gdal('gdaladdo', ['-q', '-r', 'mode', plain, '2']);
        const win: [number, number, number, number] = [0, 0, Math.ceil(opts.width / 2), Math.ceil(opts.height / 2)];
        const d = diff(gdalRead(path, win, { level: 1 }).bands[0]!, gdalRead(plain, win, { level: 1 }).bands[0]!);
        expect(d.count, `${name} vs gdaladdo: ${d.first}`).toBe(0);
      }
      const B = opts.blockSize!;
      const fill = opts.nodata ?? 0;
      const alpha = opts.colorInterp?.indexOf('alpha') ?? -1;
      const store = (x: number): number => (opts.dtype === 'float32' ? Math.fround(x) : x);
      // Which blocks of each level GDAL finds stored (TIFF BLOCK_OFFSET_x_y; none for sparse ones).
      const present = JSON.parse(
        gdalPython(
          String.raw`
import sys, json
from osgeo import gdal
ds = gdal.Open(sys.argv[1])
band = ds.GetRasterBand(1)
out = []
for b in [band] + [band.GetOverview(i) for i in range(band.GetOverviewCount())]:
    bx, by = b.GetBlockSize()
    nx, ny = (b.XSize + bx - 1) // bx, (b.YSize + by - 1) // by
    out.append([[b.GetMetadataItem('BLOCK_OFFSET_%d_%d' % (x, y), 'TIFF') is not None for x in range(nx)] for y in range(ny)])
print(json.dumps(out))
`,
          [path],
        ),
      ) as boolean[][][];
      // Level 0 as written (sparse blocks read as the fill value).
      let w = opts.width;
      let h = opts.height;
      let data = Array.from({ length: opts.bands }, (_, b) => {
        const a = new Float64Array(w * h);
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) a[y * w + x] = sparse(Math.floor(x / B), Math.floor(y / B)) ? fill : store(gen(b, x, y));
        return a;
      });
      for (let level = 0; ; level++) {
        const ours = gdalRead(path, [0, 0, w, h], { level });
        for (let b = 0; b < opts.bands; b++) {
          const d = diff(ours.bands[b]!, data[b]!);
          expect(d.count, `${name}, level ${level}, band ${b + 1}: ${d.first}`).toBe(0);
        }
        // Sparse blocks: those whose full-resolution blocks were all skipped, and only those.
        const f = 2 ** level;
        present[level]!.forEach((row, by) =>
          row.forEach((stored, bx) => {
            let any = false;
            for (let r = by * f; r < Math.min((by + 1) * f, Math.ceil(opts.height / B)); r++) for (let c = bx * f; c < Math.min((bx + 1) * f, Math.ceil(opts.width / B)); c++) any ||= !sparse(c, r);
            expect(stored, `${name}, level ${level}, block (${bx}, ${by})`).toBe(any);
          }),
        );
        if (w <= B && h <= B) {
          expect(present.length, name).toBe(level + 1);
          break;
        }
        // The next level: each 2×2 cell (clipped at the edges) by the documented rule.
        const nw = Math.ceil(w / 2);
        const nh = Math.ceil(h / 2);
        const next = data.map(() => new Float64Array(nw * nh));
        for (let y = 0; y < nh; y++) {
          for (let x = 0; x < nw; x++) {
            const cell: number[] = [];
            for (let yy = 2 * y; yy < Math.min(2 * y + 2, h); yy++) for (let xx = 2 * x; xx < Math.min(2 * x + 2, w); xx++) cell.push(yy * w + xx);
            const valid = (i: number, b: number): boolean => {
              const v = data[b]![i]!;
              return !Number.isNaN(v) && v !== opts.nodata && (alpha < 0 || data[alpha]![i]! > 0);
            };
            for (let b = 0; b < opts.bands; b++) {
              let out: number;
              if (b === alpha) out = Math.max(...cell.map((i) => data[b]![i]!));
              else {
                const vals = cell.filter((i) => valid(i, b)).map((i) => data[b]![i]!);
                if (!vals.length) out = fill;
                else if (opts.overviewResampling === 'mode') {
                  // Most frequent; of tied values, the one that reached the count first in row
                  // order (gdaladdo's rule: checked against it below).
                  const counts = new Map<number, number>();
                  let best = 0;
                  out = fill;
                  for (const v of vals) {
                    const c = (counts.get(v) ?? 0) + 1;
                    counts.set(v, c);
                    if (c > best) [best, out] = [c, v];
                  }
                } else {
                  const mean = vals.reduce((s, v) => s + v, 0) / vals.length;
                  out = opts.dtype === 'float32' ? Math.fround(mean) : Math.floor(mean + 0.5);
                }
              }
              next[b]![y * nw + x] = out;
            }
          }
        }
        data = next;
        w = nw;
        h = nh;
      }
    }
  });

  it('uint8 land cover with a colour table and mode overviews: palette read by GDAL, mode equals gdaladdo -r mode', async () => {
    const path = join(dir, 'landcover.tif');
    const colors = [
      [0, 0, 0, 0],
      [0, 100, 0, 255],
      [255, 187, 34, 255],
      [0, 100, 200, 255],
    ];
    // Each 2×2 cell has a clear majority class, so the mode is unambiguous.
    const gen: Gen = (_b, x, y) => {
      const cls = 1 + ((Math.floor(x / 2) * 7 + Math.floor(y / 2) * 3) % 3);
      return x % 2 === 1 && y % 2 === 1 ? 1 + (cls % 3) : cls;
    };
    await writeRaster(
      path,
      {
        width: 600,
        height: 600,
        bands: 1,
        dtype: 'uint8',
        blockSize: 256,
        nodata: 0,
        crs: 'EPSG:32736',
        transform: [300000, 0.6, 0, 9000000, 0, -0.6],
        colorTable: colors,
        overviewResampling: 'mode',
        bandDescriptions: ['land cover'],
      },
      gen,
    );
    expect(validateCog(path).ok).toBe(true);
    const info = gdalinfoJson(path) as { bands: { colorInterpretation: string; colorTable: { entries: number[][] } }[] };
    expect(info.bands[0]!.colorInterpretation).toBe('Palette');
    expect(info.bands[0]!.colorTable.entries.slice(0, 4)).toEqual(colors);
    const full = gdalRead(path, [0, 0, 600, 600]);
    const expected = new Uint8Array(600 * 600).map((_, i) => gen(0, i % 600, Math.floor(i / 600)));
    expect(diff(full.bands[0]!, expected).count).toBe(0);
    const plain = join(dir, 'lc-plain.tif');
    gdal('gdal_translate', ['-q', '-of', 'GTiff', '-co', 'TILED=YES', path, plain]);
    gdal('gdaladdo', ['-q', '-r', 'mode', plain, '2']);
    const ours = gdalRead(path, [0, 0, 300, 300], { level: 1 });
    const ref = gdalRead(plain, [0, 0, 300, 300], { level: 1 });
    expect(diff(ours.bands[0]!, ref.bands[0]!).count).toBe(0);
  });

  it('uint8 RGBA: Photometric RGB with an alpha band; uint16 and int16 round-trip exactly', async () => {
    const path = join(dir, 'rgba.tif');
    const gen: Gen = (b, x, y) => (b === 3 ? (x > 100 ? 255 : 0) : (x * (b + 1) + y * 3) & 255);
    await writeRaster(path, { width: 300, height: 200, bands: 4, dtype: 'uint8', blockSize: 128, crs: 'EPSG:3857', transform: [0, 1, 0, 0, 0, -1], colorInterp: ['red', 'green', 'blue', 'alpha'] }, gen);
    expect(validateCog(path).ok).toBe(true);
    const info = gdalinfoJson(path) as { bands: { colorInterpretation: string }[] };
    expect(info.bands.map((b) => b.colorInterpretation)).toEqual(['Red', 'Green', 'Blue', 'Alpha']);
    const ref = gdalRead(path, [0, 0, 300, 200]);
    for (let b = 0; b < 4; b++) expect(diff(ref.bands[b]!, new Uint8Array(300 * 200).map((_, i) => gen(b, i % 300, Math.floor(i / 300)))).count).toBe(0);

    for (const [dtype, g] of [
      ['uint16', (_b: number, x: number, y: number) => (x * 131 + y * 977) % 65536],
      ['int16', (_b: number, x: number, y: number) => ((x * 131 + y * 977) % 65536) - 32768],
      ['int32', (_b: number, x: number, y: number) => x * 100003 - y * 7919],
      ['float64', (_b: number, x: number, y: number) => x / 3 - y * Math.PI],
    ] as const) {
      const p = join(dir, `${dtype}.tif`);
      await writeRaster(p, { width: 530, height: 270, bands: 1, dtype, blockSize: 256, crs: 'EPSG:4326', transform: [10, 1e-5, 0, 50, 0, -1e-5] }, g);
      expect(validateCog(p).ok, dtype).toBe(true);
      const r = gdalRead(p, [0, 0, 530, 270]);
      const exp = Array.from({ length: 530 * 270 }, (_, i) => g(0, i % 530, Math.floor(i / 530)));
      expect(diff(r.bands[0]!, exp).count, dtype).toBe(0);
    }
  });

  it('BigTIFF layout validates and reads back', async () => {
    const path = join(dir, 'big.tif');
    await writeRaster(path, { width: 700, height: 600, bands: 1, dtype: 'float32', blockSize: 256, nodata: -9999, crs: 'EPSG:32633', transform: [0, 1, 0, 0, 0, -1], bigTiff: true }, floatGen);
    const v = validateCog(path);
    expect(v.ok, v.output).toBe(true);
    const r = gdalRead(path, [0, 0, 700, 600]);
    expect(diff(r.bands[0]!, Array.from({ length: 700 * 600 }, (_, i) => floatGen(0, i % 700, Math.floor(i / 700)))).count).toBe(0);
    const src = await openRaster(path);
    expect(src.info.bigTiff).toBe(true);
    await src.close();
  });

  it('a CRS without an EPSG code is written as user-defined keys that GDAL transforms the same way', async () => {
    const def = '+proj=aea +lat_0=-32 +lon_0=-60 +lat_1=-5 +lat_2=-42 +x_0=0 +y_0=0 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs';
    const crs = parseCrs(def, 'test');
    expect(crs.epsg).toBeNull();
    const path = join(dir, 'custom.tif');
    await writeRaster(path, { width: 64, height: 64, bands: 1, dtype: 'uint8', blockSize: 64, crs, transform: [100000, 10, 0, 200000, 0, -10] }, () => 1);
    const t = transformBetween(crs, WGS84);
    const pts: [number, number][] = [
      [100000, 200000],
      [-500000, 800000],
    ];
    gdalLonLat(path, pts).forEach(([lon, lat], i) => {
      const [ol, oa] = t.forward(...pts[i]!);
      expect(ol).toBeCloseTo(lon, 7);
      expect(oa).toBeCloseTo(lat, 7);
    });
  });

  it('rows out of order, a block written twice, wrong sizes: clear errors; abort leaves nothing', async () => {
    const path = join(dir, 'sub', 'bad.tif');
    rmSync(join(dir, 'sub'), { recursive: true, force: true });
    gdal('mkdir', ['-p', join(dir, 'sub')]);
    const w = await createCogWriter(path, { width: 600, height: 600, bands: 1, dtype: 'float32', blockSize: 256, crs: 'EPSG:32633', transform: [0, 1, 0, 0, 0, -1] });
    const blk = [new Float32Array(256 * 256)];
    await w.writeBlock(0, 1, blk);
    await expect(w.writeBlock(0, 0, blk)).rejects.toThrow(/rows must be written in order/);
    await expect(w.writeBlock(0, 1, blk)).rejects.toThrow(/written twice/);
    await expect(w.writeBlock(1, 1, [new Float32Array(10)])).rejects.toThrow(/must be 1 arrays of 256×256 samples/);
    await expect(w.writeBlock(5, 1, blk)).rejects.toThrow(/outside the 3×3 block grid/);
    await w.abort();
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(join(dir, 'sub'))).toEqual([]);
  });

  it('cancellation while overview rows are being built: E_CANCELLED from writeBlock and close; nothing left behind', async () => {
    for (const at of ['write', 'close'] as const) {
      const sub = join(dir, `cancel-${at}`);
      rmSync(sub, { recursive: true, force: true });
      gdal('mkdir', ['-p', sub]);
      const ac = new AbortController();
      const w = await createCogWriter(join(sub, 'c.tif'), { width: 2000, height: 2000, bands: 1, dtype: 'float32', blockSize: 64, crs: 'EPSG:32633', transform: [0, 1, 0, 0, 0, -1], signal: ac.signal });
      const blk = [new Float32Array(64 * 64).fill(1)];
      // Enough rows for several overview rows to be queued or running.
      for (let row = 0; row < 12; row++) for (let col = 0; col < w.blocksAcross; col++) await w.writeBlock(col, row, blk);
      ac.abort();
      if (at === 'write') await expect(w.writeBlock(0, 12, blk)).rejects.toMatchObject({ code: 'E_CANCELLED' });
      else await expect(w.close()).rejects.toMatchObject({ code: 'E_CANCELLED' });
      await w.abort();
      expect(readdirSync(sub)).toEqual([]);
    }
  });

  it('an unwritable directory is E_WRITE naming the path', async () => {
    await expect(createCogWriter('/proc/no-such-dir/x.tif', { width: 10, height: 10, bands: 1, dtype: 'uint8', crs: 'EPSG:4326', transform: [0, 1, 0, 0, 0, -1] })).rejects.toMatchObject({
      code: 'E_WRITE',
      message: expect.stringContaining('/proc/no-such-dir/x.tif'),
    });
  });
});
