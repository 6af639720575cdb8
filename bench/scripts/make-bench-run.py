#!/usr/bin/env python3
"""Benchmark input for `npm run bench -- pmtiles` / `serve`: a synthetic run directory of a given
size in WGS 84 / UTM 33N at 0.6 m (chm.tif float32 height + uncertainty with nodata, imagery.tif RGB),
written as COGs by GDAL. Deterministic (seeded).

  make-bench-run.py <out dir> [size px, default 4096]
"""
import os
import sys

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()
out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
srs = osr.SpatialReference()
srs.ImportFromEPSG(32633)
gt = (500000.0, 0.6, 0.0, 5200020.0, 0.0, -0.6)
yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
h = 18 + 10 * np.sin(xx / 97.0) * np.cos(yy / 131.0) + 6 * np.sin((xx + yy) / 37.0) + rng.normal(0, 2.0, (n, n)).astype(np.float32)
h = np.clip(h, 0, 60).astype(np.float32)
h[(xx - n * 0.3) ** 2 + (yy - n * 0.6) ** 2 < (n * 0.08) ** 2] = -9999.0  # a lake without data
u = np.where(h == -9999.0, -9999.0, 0.5 + 0.05 * h).astype(np.float32)
mem = gdal.GetDriverByName('MEM').Create('', n, n, 2, gdal.GDT_Float32)
mem.SetGeoTransform(gt)
mem.SetProjection(srs.ExportToWkt())
for i, a in enumerate((h, u), start=1):
    mem.GetRasterBand(i).WriteArray(a)
    mem.GetRasterBand(i).SetNoDataValue(-9999.0)
gdal.Translate(os.path.join(out, 'chm.tif'), mem, format='COG', creationOptions=['COMPRESS=DEFLATE', 'PREDICTOR=YES', 'BLOCKSIZE=512'])
mem = None
img = gdal.GetDriverByName('MEM').Create('', n, n, 3, gdal.GDT_Byte)
img.SetGeoTransform(gt)
img.SetProjection(srs.ExportToWkt())
base = np.clip(h, 0, 60) / 60.0
for i, (lo, hi) in enumerate(((90, 30), (110, 80), (70, 25))):
    band = lo + (hi - lo) * base + rng.normal(0, 8, (n, n))
    img.GetRasterBand(i + 1).WriteArray(np.clip(band, 0, 255).astype(np.uint8))
gdal.Translate(os.path.join(out, 'imagery.tif'), img, format='COG', creationOptions=['COMPRESS=DEFLATE', 'BLOCKSIZE=512'])
print(out)
