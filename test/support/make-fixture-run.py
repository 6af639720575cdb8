#!/usr/bin/env python3
"""Make a geo-dino run directory (the run-directory contract of DEVELOPERS.md) with GDAL, for the
PMTiles, server and viewer tests, until a cheap `geo-dino chm --model demo` run can replace it.

  make-fixture-run.py <shared cogeo.tif> <out dir> [--offset M] [--date ISO] [--tag NAME]

- imagery.tif: cogeo.tif (real 0.6 m RGB forest imagery, EPSG:3857, with a mask) warped to
  WGS 84 / UTM 52N at 0.6 m and cropped to 600x440 px; uint8 RGB with an internal mask, COG.
- chm.tif: float32 COG, band 1 "height" (m) derived from the imagery (darker and greener = taller,
  plus a smooth wave) + offset, band 2 "uncertainty" = 0.4 + 0.08 * height; nodata -9999 where the
  imagery is masked and in a 50x36 px hole. A 20x20 px block is exactly 0 m, one exactly 7.25 m.
- landcover.tif: uint8 classes from height (1 bare < 0.5 m, 2 low < 2 m, 3 shrub < 5 m, 4 forest),
  255 = nodata, with a colour table.
- provenance.geojson: two scenes splitting the area west/east, a 30 m transition zone across their
  seamline; item.json; run.json (demo: true).

Prints a JSON summary (paths, the UTM geotransform, lon/lat bounds) on stdout.
"""
import json
import math
import os
import sys

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

src, out = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
offset = float(args[args.index('--offset') + 1]) if '--offset' in args else 0.0
date = args[args.index('--date') + 1] if '--date' in args else '2024-05-01T02:30:00Z'
tag = args[args.index('--tag') + 1] if '--tag' in args else 'a'
os.makedirs(out, exist_ok=True)

W, H, RES = 600, 440, 0.6
# Centre of cogeo.tif in UTM 52N, rounded to whole metres; origin = top-left.
srs_utm = osr.SpatialReference()
srs_utm.ImportFromEPSG(32652)
srs_ll = osr.SpatialReference()
srs_ll.ImportFromEPSG(4326)
srs_ll.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
srs_utm.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
info = gdal.Info(src, format='json')
lon_c, lat_c = info['wgs84Extent']['coordinates'][0][0]
lon_c2, lat_c2 = info['wgs84Extent']['coordinates'][0][2]
cx, cy, _ = osr.CoordinateTransformation(srs_ll, srs_utm).TransformPoint((lon_c + lon_c2) / 2, (lat_c + lat_c2) / 2)
x0 = math.floor(cx - W * RES / 2)
y0 = math.floor(cy + H * RES / 2)
gt = (x0, RES, 0.0, y0, 0.0, -RES)

warped = gdal.Warp('/vsimem/rgb.tif', src, dstSRS='EPSG:32652', outputBounds=(x0, y0 - H * RES, x0 + W * RES, y0),
                   width=W, height=H, resampleAlg='bilinear', dstAlpha=True, format='GTiff')
rgba = warped.ReadAsArray().astype(np.float64)  # 4 x H x W
rgb = rgba[:3]
alpha = rgba[3] > 0
warped = None

# Height: a smooth function of the imagery and position.
yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
brightness = rgb.mean(axis=0) / 255.0
green = np.clip((rgb[1] - rgb[0]) / 255.0, 0, 1)
height = np.clip(38.0 * (1.0 - brightness) + 12.0 * green + 4.0 * np.sin(xx / 23.0) * np.cos(yy / 31.0) - 6.0, 0.0, 60.0) + offset
height[300:320, 80:100] = 0.0
height[60:80, 480:500] = 7.25 + offset
valid = alpha.copy()
valid[200:236, 250:300] = False
height = height.astype(np.float32)
unc = (0.4 + 0.08 * height).astype(np.float32)
height[~valid] = -9999.0
unc[~valid] = -9999.0

mem = gdal.GetDriverByName('MEM').Create('', W, H, 2, gdal.GDT_Float32)
mem.SetGeoTransform(gt)
mem.SetProjection(srs_utm.ExportToWkt())
for i, (arr, name) in enumerate(((height, 'height'), (unc, 'uncertainty')), start=1):
    b = mem.GetRasterBand(i)
    b.WriteArray(arr)
    b.SetNoDataValue(-9999.0)
    b.SetDescription(name)
gdal.Translate(os.path.join(out, 'chm.tif'), mem, format='COG',
               creationOptions=['COMPRESS=DEFLATE', 'PREDICTOR=YES', 'BLOCKSIZE=256', 'OVERVIEWS=AUTO', 'RESAMPLING=AVERAGE'])
mem = None

img = gdal.GetDriverByName('MEM').Create('', W, H, 3, gdal.GDT_Byte)
img.SetGeoTransform(gt)
img.SetProjection(srs_utm.ExportToWkt())
for i in range(3):
    img.GetRasterBand(i + 1).WriteArray(np.clip(np.round(rgb[i]), 0, 255).astype(np.uint8))
img.CreateMaskBand(gdal.GMF_PER_DATASET)
img.GetRasterBand(1).GetMaskBand().WriteArray((alpha * 255).astype(np.uint8))
gdal.Translate(os.path.join(out, 'imagery.tif'), img, format='COG',
               creationOptions=['COMPRESS=DEFLATE', 'BLOCKSIZE=256', 'OVERVIEWS=AUTO'])
img = None

classes = np.full((H, W), 255, dtype=np.uint8)
h = height
classes[valid & (h < 0.5)] = 1
classes[valid & (h >= 0.5) & (h < 2)] = 2
classes[valid & (h >= 2) & (h < 5)] = 3
classes[valid & (h >= 5)] = 4
lc = gdal.GetDriverByName('MEM').Create('', W, H, 1, gdal.GDT_Byte)
lc.SetGeoTransform(gt)
lc.SetProjection(srs_utm.ExportToWkt())
band = lc.GetRasterBand(1)
band.WriteArray(classes)
band.SetNoDataValue(255)
ct = gdal.ColorTable()
for v, c in {1: (215, 200, 160), 2: (190, 230, 120), 3: (110, 180, 70), 4: (20, 100, 40)}.items():
    ct.SetColorEntry(v, c + (255,))
band.SetColorTable(ct)
gdal.Translate(os.path.join(out, 'landcover.tif'), lc, format='COG', creationOptions=['COMPRESS=DEFLATE', 'BLOCKSIZE=256'])
lc = None

to_ll = osr.CoordinateTransformation(srs_utm, srs_ll)
def ll(x, y):
    p = to_ll.TransformPoint(x, y)
    return [p[0], p[1]]
xmid = x0 + W * RES / 2
ymin = y0 - H * RES
west = [ll(x0, y0), ll(xmid, y0), ll(xmid, ymin), ll(x0, ymin), ll(x0, y0)]
east = [ll(xmid, y0), ll(x0 + W * RES, y0), ll(x0 + W * RES, ymin), ll(xmid, ymin), ll(xmid, y0)]
day = date[:10]
prov = {
    'type': 'FeatureCollection',
    'features': [
        {'type': 'Feature', 'geometry': {'type': 'Polygon', 'coordinates': [west]},
         'properties': {'scene_id': f'FIXTURE_{tag}_WEST', 'datetime': date, 'href': 'https://example.invalid/west.tif', 'collection': 'fixture'}},
        {'type': 'Feature', 'geometry': {'type': 'Polygon', 'coordinates': [east]},
         'properties': {'scene_id': f'FIXTURE_{tag}_EAST<script>alert(1)</script>', 'datetime': day + 'T03:10:00Z', 'href': 'https://example.invalid/east.tif', 'collection': 'fixture'}},
    ],
}
# A transition zone across the west/east seamline (scene feathering): 30 m wide, centred on it.
zone = [ll(xmid - 15, y0), ll(xmid + 15, y0), ll(xmid + 15, ymin), ll(xmid - 15, ymin), ll(xmid - 15, y0)]
prov['transition_zones'] = [
    {'type': 'Feature', 'geometry': {'type': 'Polygon', 'coordinates': [zone]},
     'properties': {'kind': 'scene-transition', 'scene_ids': [f'FIXTURE_{tag}_WEST', f'FIXTURE_{tag}_EAST<script>alert(1)</script>'],
                    'width_m': 30, 'weights': 'raised cosine across the seamline'}},
]
with open(os.path.join(out, 'provenance.geojson'), 'w') as f:
    json.dump(prov, f)
corners = [ll(x0, y0), ll(x0 + W * RES, y0), ll(x0 + W * RES, ymin), ll(x0, ymin)]
lons = [c[0] for c in corners]
lats = [c[1] for c in corners]
bbox = [min(lons), min(lats), max(lons), max(lats)]
item = {
    'type': 'Feature', 'stac_version': '1.1.0', 'id': f'fixture-{tag}', 'bbox': bbox,
    'geometry': {'type': 'Polygon', 'coordinates': [corners + [corners[0]]]},
    'properties': {'datetime': date, 'proj:code': 'EPSG:32652'},
    'assets': {'chm': {'href': './chm.tif', 'type': 'image/tiff; application=geotiff; profile=cloud-optimized'}},
    'links': [],
}
with open(os.path.join(out, 'item.json'), 'w') as f:
    json.dump(item, f, indent=1)
run = {'command': 'fixture (test/support/make-fixture-run.py)', 'model': {'name': 'demo', 'demo': True},
       'created': date, 'aoi': 'fixture-forest'}
with open(os.path.join(out, 'run.json'), 'w') as f:
    json.dump(run, f, indent=1)

print(json.dumps({'dir': out, 'geotransform': gt, 'width': W, 'height': H, 'bbox': bbox, 'epsg': 32652}))
