/**
 * A zone of a sharded run opens as one raster: `openRaster` on a GDAL VRT of non-overlapping
 * pieces (what `gdalbuildvrt` writes, and what geo-dino writes as `chm-<zone>.vrt`). Pixels and
 * validity of windows across pieces, at full resolution and at an overview, equal GDAL's reads
 * of the same VRT; VRTs outside the supported subset are refused with the element named.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRaster } from '@geo-dino/tiling';
import { requireGdal } from '../../test/support/tools.js';
import { diff, gdalPython, gdalRead } from './support/gdal.js';

let dir: string;
beforeAll(() => {
  requireGdal();
  dir = mkdtempSync(join(tmpdir(), 'gd-vrt-'));
  gdalPython(
    `import sys, numpy as np
from osgeo import gdal
d = sys.argv[1]
rng = np.random.default_rng(7)
for i, x0 in enumerate([500000.0, 500000.0 + 0.6 * 1024]):
    ds = gdal.GetDriverByName('GTiff').Create(f'{d}/p{i}.tif', 1024, 768, 2, gdal.GDT_Float32, ['TILED=YES', 'COMPRESS=DEFLATE'])
    ds.SetGeoTransform((x0, 0.6, 0, 100000.0, 0, -0.6)); ds.SetProjection('EPSG:32637')
    for b in (1, 2):
        a = (rng.random((768, 1024)) * 40).astype('float32')
        a[100:140, 200:260] = -9999
        ds.GetRasterBand(b).WriteArray(a); ds.GetRasterBand(b).SetNoDataValue(-9999)
    ds.BuildOverviews('NEAREST', [2, 4])
    ds = None
gdal.BuildVRT(f'{d}/zone.vrt', [f'{d}/p0.tif', f'{d}/p1.tif'])
`,
    [dir],
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('VRT mosaics', () => {
  it('reads windows across pieces as GDAL reads the VRT, at full resolution and at an overview', async () => {
    const src = await openRaster(join(dir, 'zone.vrt'));
    try {
      expect([src.info.width, src.info.height, src.info.bandCount]).toEqual([2048, 768, 2]);
      expect(src.info.crs?.epsg).toBe(32637);
      expect(src.info.levels.length).toBeGreaterThanOrEqual(2);
      for (const [level, win] of [
        [0, [900, 50, 300, 200]],
        [0, [0, 0, 2048, 768]],
        [1, [480, 10, 100, 90]],
      ] as const) {
        const ours = await src.read({ x: win[0], y: win[1], width: win[2], height: win[3] }, { level });
        const ref = gdalRead(join(dir, 'zone.vrt'), [...win], { level });
        for (let b = 0; b < 2; b++) expect(diff(ours.bands[b]!, ref.bands[b]!, ref.valid).count, `level ${level} band ${b + 1}`).toBe(0);
        expect(diff(ours.valid, ref.valid).count, `level ${level} validity`).toBe(0);
      }
    } finally {
      await src.close();
    }
  });

  it('refuses sources outside its folder and scaled sources, naming the problem', async () => {
    const text = readFileSync(join(dir, 'zone.vrt'), 'utf8');
    const outside = join(dir, 'outside.vrt');
    writeFileSync(outside, text.replace('>p0.tif<', '>../p0.tif<'));
    await expect(openRaster(outside)).rejects.toThrow(/outside\.vrt: source \.\.\/p0\.tif lies outside the VRT's directory/);
    const scaled = join(dir, 'scaled.vrt');
    writeFileSync(scaled, text.replace('<SrcRect xOff="0" yOff="0" xSize="1024" ySize="768" />', '<SrcRect xOff="0" yOff="0" xSize="512" ySize="384" />'));
    await expect(openRaster(scaled)).rejects.toThrow(/scaled\.vrt: source p0\.tif: only whole, unscaled sources/);
    const notVrt = join(dir, 'bad.vrt');
    writeFileSync(notVrt, '<html></html>');
    await expect(openRaster(notVrt)).rejects.toMatchObject({ code: 'E_BAD_RASTER' });
  });
});
