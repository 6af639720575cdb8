#!/usr/bin/env python3
"""Oracle for tile services: GDAL (its WMS/TMS and WMTS drivers) reads a georeferenced window of
a tile service.

  tile-oracle.py <GDAL dataset string> <x0> <y0> <x1> <y1> <width> <height> <out.bin>

(x0, y0) is the window's top-left corner and (x1, y1) its bottom-right corner in the service's
CRS; the window must fall on the dataset's pixel grid. Writes the 4 bands (uint8, band by band)
of width × height pixels, then prints the dataset's geotransform as JSON.
"""
import json
import sys

from osgeo import gdal

gdal.UseExceptions()
# No WMS/WMTS tile cache: it would land in the working directory and could serve stale tiles.
gdal.SetConfigOption('GDAL_ENABLE_WMS_CACHE', 'NO')
ds = gdal.Open(sys.argv[1])
x0, y0, x1, y1 = (float(v) for v in sys.argv[2:6])
w, h = int(sys.argv[6]), int(sys.argv[7])
gt = ds.GetGeoTransform()
xoff = (x0 - gt[0]) / gt[1]
yoff = (y0 - gt[3]) / gt[5]
if abs(xoff - round(xoff)) > 1e-6 or abs(yoff - round(yoff)) > 1e-6 or abs((x1 - x0) / w - gt[1]) > 1e-9 * abs(gt[1]) * 1e3:
    raise SystemExit(f'window not on the dataset grid: offsets {xoff} {yoff}, pixel {(x1 - x0) / w} vs {gt[1]}')
data = ds.ReadRaster(int(round(xoff)), int(round(yoff)), w, h, band_list=[1, 2, 3, 4])
with open(sys.argv[8], 'wb') as f:
    f.write(data)
print(json.dumps({'geotransform': gt, 'size': [ds.RasterXSize, ds.RasterYSize], 'bands': ds.RasterCount}))
