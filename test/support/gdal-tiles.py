#!/usr/bin/env python3
"""Oracle for web tiles: GDAL warps a raster onto Web Mercator tiles (256 px, XYZ).

  gdal-tiles.py <raster> <out dir> <resampling> <bands, e.g. 1 or 1,2,3> <z/x/y> [<z/x/y> ...]

For each tile writes <out>/<z>-<x>-<y>.bin: float32 [band][row][col] followed by one float32
plane of validity (1 valid, 0 not), little-endian.
"""
import math
import os
import sys

import numpy as np
from osgeo import gdal

gdal.UseExceptions()
src, out, resampling, bands = sys.argv[1], sys.argv[2], sys.argv[3], [int(b) for b in sys.argv[4].split(',')]
S = math.pi * 6378137.0
os.makedirs(out, exist_ok=True)
for t in sys.argv[5:]:
    z, x, y = (int(v) for v in t.split('/'))
    span = 2 * S / 2 ** z
    minx, maxy = -S + x * span, S - y * span
    ds = gdal.Warp('/vsimem/tile.tif', src, format='GTiff', dstSRS='EPSG:3857', outputBounds=(minx, maxy - span, minx + span, maxy),
                   width=256, height=256, resampleAlg=resampling, dstAlpha=True, outputType=gdal.GDT_Float32)
    arr = ds.ReadAsArray().astype('<f4')  # (bands + alpha) x 256 x 256
    n = ds.RasterCount
    planes = [arr[b - 1] for b in bands] + [(arr[n - 1] > 0).astype('<f4')]
    np.stack(planes).tofile(os.path.join(out, f'{z}-{x}-{y}.bin'))
    ds = None
    gdal.Unlink('/vsimem/tile.tif')
