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
import { diff, gdal, gdalinfoJson, gdalLonLat, gdalRead, validateCog } from './support/gdal.js';

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

  it('an unwritable directory is E_WRITE naming the path', async () => {
    await expect(createCogWriter('/proc/no-such-dir/x.tif', { width: 10, height: 10, bands: 1, dtype: 'uint8', crs: 'EPSG:4326', transform: [0, 1, 0, 0, 0, -1] })).rejects.toMatchObject({
      code: 'E_WRITE',
      message: expect.stringContaining('/proc/no-such-dir/x.tif'),
    });
  });
});
