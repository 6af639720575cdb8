/**
 * The guarded reader against GDAL: every pixel and every validity flag of the real rasters in
 * ../shared/data/rasterio, and of GDAL-made variants covering each compression, predictor,
 * byte order, interleave, strip/tile layout and data type, must equal GDAL's reads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DecoderPool, openRaster, inlineDecoder, type RasterSource } from '@geo-dino/tiling';
import { sharedData } from '../../test/support/shared-data.js';
import { requireGdal } from '../../test/support/tools.js';
import { diff, gdal, gdalinfoJson, gdalLonLat, gdalPython, gdalRead } from './support/gdal.js';

const R = (f: string): string => sharedData('rasterio', f);
let dir: string;
const made: Record<string, string> = {};

function translate(name: string, src: string, args: string[]): void {
  const out = join(dir, name);
  gdal('gdal_translate', ['-q', ...args, src, out]);
  made[name] = out;
}

beforeAll(() => {
  requireGdal();
  dir = mkdtempSync(join(tmpdir(), 'gd-reader-'));
  const tiled = (bx = 256, by = bx): string[] => ['-co', 'TILED=YES', '-co', `BLOCKXSIZE=${bx}`, '-co', `BLOCKYSIZE=${by}`];
  translate('deflate_p2_u8.tif', R('RGB.byte.tif'), [...tiled(), '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=2']);
  translate('zstd_p2_u16.tif', R('RGBA.uint16.tif'), [...tiled(128), '-co', 'COMPRESS=ZSTD', '-co', 'PREDICTOR=2']);
  translate('lzw_p2_u16_band.tif', R('RGBA.uint16.tif'), [...tiled(), '-co', 'COMPRESS=LZW', '-co', 'PREDICTOR=2', '-co', 'INTERLEAVE=BAND']);
  translate('f32_p3_pixel.tif', R('RGB.byte.tif'), ['-ot', 'Float32', '-scale', '0', '255', '-1.5', '3.7', ...tiled(128), '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=3']);
  translate('f32_p3_band.tif', R('RGB.byte.tif'), ['-ot', 'Float32', '-scale', '0', '255', '-100', '100', ...tiled(128, 64), '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=3', '-co', 'INTERLEAVE=BAND']);
  translate('f64_p3.tif', R('RGB.byte.tif'), ['-b', '1', '-ot', 'Float64', '-scale', '0', '255', '-1', '1', ...tiled(), '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=3']);
  translate('big_endian_u16.tif', R('RGBA.uint16.tif'), [...tiled(), '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=2', '-co', 'ENDIANNESS=BIG']);
  translate('big_endian_f32_p3.tif', R('RGB.byte.tif'), ['-ot', 'Float32', '-scale', '0', '255', '0', '1', ...tiled(), '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=3', '-co', 'ENDIANNESS=BIG']);
  translate('big_endian_i16_strips.tif', R('RGB.byte.tif'), ['-ot', 'Int16', '-scale', '0', '255', '-1000', '1000', '-co', 'ENDIANNESS=BIG', '-co', 'BLOCKYSIZE=7']);
  translate('bigtiff.tif', R('RGB.byte.tif'), [...tiled(), '-co', 'COMPRESS=LZW', '-co', 'BIGTIFF=YES']);
  translate('jpeg_ycbcr.tif', R('RGB.byte.tif'), [...tiled(), '-co', 'COMPRESS=JPEG', '-co', 'PHOTOMETRIC=YCBCR']);
  translate('jpeg_rgb.tif', R('RGB.byte.tif'), [...tiled(), '-co', 'COMPRESS=JPEG', '-co', 'PHOTOMETRIC=RGB']);
  translate('jpeg_gray_strips.tif', R('shade.tif'), ['-co', 'COMPRESS=JPEG', '-co', 'BLOCKYSIZE=40']);
  translate('i16_deflate_p2.tif', R('RGB.byte.tif'), ['-ot', 'Int16', '-scale', '0', '255', '-1000', '1000', ...tiled(), '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=2']);
  translate('u32.tif', R('RGB.byte.tif'), ['-ot', 'UInt32', '-scale', '0', '255', '0', '4000000000', ...tiled(), '-co', 'COMPRESS=ZSTD', '-co', 'PREDICTOR=2']);
  translate('i32_strips.tif', R('RGB.byte.tif'), ['-ot', 'Int32', '-scale', '0', '255', '-2000000000', '2000000000', '-co', 'BLOCKYSIZE=5', '-co', 'COMPRESS=LZW', '-co', 'PREDICTOR=2']);
  translate('deflate_strips_partial.tif', R('RGB.byte.tif'), ['-co', 'BLOCKYSIZE=13', '-co', 'COMPRESS=DEFLATE']);
  translate('cog_alpha.tif', R('RGBA.byte.tif'), ['-of', 'COG', '-co', 'COMPRESS=DEFLATE', '-co', 'BLOCKSIZE=256']);
  translate('cog_mask_jpeg.tif', R('RGBA.byte.tif'), ['-b', '1', '-b', '2', '-b', '3', '-mask', '4', '-of', 'COG', '-co', 'COMPRESS=JPEG', '-co', 'BLOCKSIZE=256']);
  translate('packbits_tiled.tif', R('shade.tif'), ['-co', 'COMPRESS=PACKBITS', ...tiled(64)]);
  // A palette image.
  const pal = join(dir, 'palette.tif');
  gdalPython(
    String.raw`
import sys
from osgeo import gdal
import numpy as np
gdal.UseExceptions()
ds = gdal.GetDriverByName('GTiff').Create(sys.argv[1], 70, 50, 1, gdal.GDT_Byte, ['COMPRESS=DEFLATE'])
ds.SetGeoTransform([500000, 2, 0, 4000000, 0, -2])
ds.SetProjection('EPSG:32633')
ds.GetRasterBand(1).WriteArray((np.arange(70 * 50).reshape(50, 70) % 7).astype(np.uint8))
ct = gdal.ColorTable()
for i in range(7): ct.SetColorEntry(i, (i * 30, 255 - i * 30, i * 10, 255))
ds.GetRasterBand(1).SetColorTable(ct)
ds = None
`,
    [pal],
  );
  made['palette.tif'] = pal;
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function compareWindow(src: RasterSource, path: string, window: [number, number, number, number], level = 0): Promise<void> {
  const [x, y, w, h] = window;
  const ours = await src.read({ x, y, width: w, height: h }, { level });
  const ref = gdalRead(path, window, { level });
  expect(ours.bands.length, `${path} band count`).toBe(ref.bands.length);
  ours.bands.forEach((band, b) => {
    const d = diff(band, ref.bands[b]!);
    expect(d.count, `${path} level ${level} band ${b + 1} window ${window}: ${d.first}`).toBe(0);
  });
  const dm = diff(ours.valid, ref.valid);
  expect(dm.count, `${path} level ${level} validity window ${window}: ${dm.first}`).toBe(0);
}

const REAL = [
  'RGB.byte.tif',
  'RGBA.byte.tif',
  'RGBA.uint16.tif',
  'all-nodata.tif',
  'alpha.tif',
  'cogeo.tif',
  'float32.tif',
  'float_nan.tif',
  'rgb1_fake_nir_epsg3857.tif',
  'rgb_deflate.tif',
  'rgb_lzw.tif',
  'rotated.tif',
  'shade.tif',
  'test_esri_wkt.tif',
  'world.rgb.tif',
];

describe('reader vs GDAL: real rasters', () => {
  for (const f of REAL) {
    it(`${f}: whole image and an odd window equal GDAL's read`, async () => {
      const path = R(f);
      const src = await openRaster(path);
      try {
        const { width, height } = src.info;
        await compareWindow(src, path, [0, 0, width, height]);
        if (width > 20 && height > 20) await compareWindow(src, path, [7, 11, Math.min(301, width - 7), Math.min(257, height - 11)]);
      } finally {
        await src.close();
      }
    });
  }

  it('cogeo.tif: every overview level and its mask equal GDAL (YCbCr JPEG, 1-bit internal masks)', async () => {
    const path = R('cogeo.tif');
    const src = await openRaster(path);
    try {
      expect(src.info.levels.map((l) => l.width)).toEqual([1024, 512, 256, 128, 64, 32, 16]);
      expect(src.info.mask).toBe('internal');
      for (const lv of src.info.levels) await compareWindow(src, path, [0, 0, lv.width, lv.height], lv.level);
    } finally {
      await src.close();
    }
  });

  it('the same pixels come back through the main-thread decoder', async () => {
    const path = R('cogeo.tif');
    const src = await openRaster(path, { decoder: inlineDecoder });
    try {
      await compareWindow(src, path, [100, 200, 600, 700]);
    } finally {
      await src.close();
    }
  });

  it('a pool warmed up front starts all its workers, and they decode the same pixels', async () => {
    const pool = new DecoderPool(3);
    expect(pool.started).toBe(0);
    await pool.warm();
    expect(pool.started).toBe(3);
    await pool.warm(); // idempotent: no more workers
    expect(pool.started).toBe(3);
    const path = R('cogeo.tif');
    const src = await openRaster(path, { decoder: pool.decode });
    try {
      await compareWindow(src, path, [0, 0, 1024, 1024]);
      expect(pool.started).toBe(3);
    } finally {
      await src.close();
      await pool.close();
    }
    await expect(pool.warm()).rejects.toThrow(/closed/);
  });

  it('a window past the edges: outside pixels are invalid and filled with nodata, inside equal GDAL', async () => {
    const path = R('RGB.byte.tif');
    const src = await openRaster(path);
    try {
      const ours = await src.read({ x: -10, y: -5, width: 50, height: 40 });
      const ref = gdalRead(path, [0, 0, 40, 35]);
      for (let y = 0; y < 40; y++) {
        for (let x = 0; x < 50; x++) {
          const i = y * 50 + x;
          const inside = x >= 10 && y >= 5;
          if (!inside) {
            expect(ours.valid[i]).toBe(0);
            expect(ours.bands[0]![i]).toBe(0);
          } else {
            const j = (y - 5) * 40 + (x - 10);
            expect(ours.valid[i]).toBe(ref.valid[j]);
            expect(ours.bands[2]![i]).toBe(ref.bands[2]![j]);
          }
        }
      }
    } finally {
      await src.close();
    }
  });
});

describe('reader vs GDAL: every codec, predictor, byte order and layout', () => {
  const VARIANTS = [
    'deflate_p2_u8.tif',
    'zstd_p2_u16.tif',
    'lzw_p2_u16_band.tif',
    'f32_p3_pixel.tif',
    'f32_p3_band.tif',
    'f64_p3.tif',
    'big_endian_u16.tif',
    'big_endian_f32_p3.tif',
    'big_endian_i16_strips.tif',
    'bigtiff.tif',
    'jpeg_ycbcr.tif',
    'jpeg_rgb.tif',
    'jpeg_gray_strips.tif',
    'i16_deflate_p2.tif',
    'u32.tif',
    'i32_strips.tif',
    'deflate_strips_partial.tif',
    'cog_alpha.tif',
    'cog_mask_jpeg.tif',
    'packbits_tiled.tif',
    'palette.tif',
  ];
  for (const f of VARIANTS) {
    it(`${f} equals GDAL at every level`, async () => {
      const path = made[f]!;
      const src = await openRaster(path);
      try {
        for (const lv of src.info.levels) {
          await compareWindow(src, path, [0, 0, lv.width, lv.height], lv.level);
          if (lv.width > 40 && lv.height > 40) await compareWindow(src, path, [13, 17, lv.width - 20, lv.height - 30], lv.level);
        }
      } finally {
        await src.close();
      }
    });
  }
});

describe('info vs gdalinfo', () => {
  const FILES = () => [...REAL.map(R), made['cog_alpha.tif']!, made['cog_mask_jpeg.tif']!, made['palette.tif']!, made['bigtiff.tif']!, made['f32_p3_band.tif']!];
  it('size, bands, data type, colour interpretation, nodata, geotransform, EPSG, overviews, blocks, colour table', async () => {
    const GDAL_TYPES: Record<string, string> = {
      Byte: 'uint8',
      Int8: 'int8',
      UInt16: 'uint16',
      Int16: 'int16',
      UInt32: 'uint32',
      Int32: 'int32',
      Float32: 'float32',
      Float64: 'float64',
    };
    for (const path of FILES()) {
      const src = await openRaster(path);
      try {
        const info = src.info;
        const g = gdalinfoJson(path) as {
          size: [number, number];
          bands: { type: string; colorInterpretation: string; noDataValue?: number | string; block: [number, number]; overviews?: { size: [number, number] }[]; colorTable?: { entries: number[][] } }[];
          geoTransform?: number[];
          coordinateSystem?: { wkt: string };
          metadata?: { IMAGE_STRUCTURE?: { COMPRESSION?: string; INTERLEAVE?: string } };
        };
        expect([info.width, info.height], path).toEqual(g.size);
        expect(info.bandCount, path).toBe(g.bands.length);
        expect(info.dtype, path).toBe(GDAL_TYPES[g.bands[0]!.type]);
        expect(info.bands.map((b) => b.colorInterp), path).toEqual(g.bands.map((b) => b.colorInterpretation.toLowerCase()));
        const nd = g.bands[0]!.noDataValue;
        if (nd === undefined) expect(info.nodata, path).toBeNull();
        else if (nd === 'NaN') expect(Number.isNaN(info.nodata), path).toBe(true);
        else expect(info.nodata, path).toBe(nd);
        if (g.geoTransform) {
          expect(info.geoTransform, path).not.toBeNull();
          info.geoTransform!.forEach((v, i) => expect(v, `${path} gt[${i}]`).toBeCloseTo(g.geoTransform![i]!, 9));
        } else expect(info.geoTransform, path).toBeNull();
        const wkt = g.coordinateSystem?.wkt ?? '';
        const epsg = /ID\["EPSG",(\d+)\]\]$/.exec(wkt.replace(/\s+/g, ''))?.[1];
        if (epsg && /^PROJCRS|^GEOGCRS/.test(wkt)) expect(info.crs?.epsg, path).toBe(Number(epsg));
        expect(info.levels.slice(1).map((l) => [l.width, l.height]), path).toEqual((g.bands[0]!.overviews ?? []).map((o) => o.size));
        expect([info.blockWidth, info.blockHeight], path).toEqual(g.bands[0]!.block);
        if (g.bands[0]!.colorTable) expect(info.colorTable, path).toEqual(g.bands[0]!.colorTable.entries);
        const comp = g.metadata?.IMAGE_STRUCTURE?.COMPRESSION;
        if (comp) expect(comp.toLowerCase().replace('ycbcr ', ''), path).toBe(info.compression);
      } finally {
        await src.close();
      }
    }
  });

  it('test_esri_wkt.tif: the ESRI PE string gives a CRS that transforms like GDAL', async () => {
    const path = R('test_esri_wkt.tif');
    const src = await openRaster(path);
    try {
      expect(src.info.crs?.definition).not.toBeNull();
      const { transformBetween, WGS84 } = await import('@geo-dino/tiling');
      const t = transformBetween(src.info.crs!, WGS84);
      const [lon, lat] = t.forward(-14065, 2368525);
      const [[gx, gy]] = gdalLonLat(path, [[-14065, 2368525]]) as [[number, number]];
      expect(lon).toBeCloseTo(gx, 6);
      expect(lat).toBeCloseTo(gy, 6);
    } finally {
      await src.close();
    }
  });
});
