#!/usr/bin/env python3
"""GDAL/numpy oracles for the server and viewer tests.

  gdal-oracle.py points <raster> <col,row> ...   → [{col,row,lon,lat,values:[b1,b2..] or null}]
      lon/lat of each pixel centre, and the band values (null where nodata).
  gdal-oracle.py lonlat <raster> <lon,lat> ...   → [{lon,lat,col,row,values}] pixel containing each point.
  gdal-oracle.py stats <raster> <polygon.geojson> → statistics of band 1 (and band 2) over the pixels whose
      centres are inside the polygon (gdal.RasterizeLayer, no ALL_TOUCHED), as numpy computes them.
  gdal-oracle.py classes <raster> <polygon.geojson> → {inside, pixel_area, counts: {value: pixels}}: the values of
      band 1 (not nodata) counted over the same pixels — a class map's per-class pixels inside the polygon.
"""
import json
import sys

import numpy as np
from osgeo import gdal, ogr, osr

gdal.UseExceptions()
mode, path = sys.argv[1], sys.argv[2]
ds = gdal.Open(path)
gt = ds.GetGeoTransform()
srs = osr.SpatialReference(wkt=ds.GetProjection())
srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
ll = osr.SpatialReference()
ll.ImportFromEPSG(4326)
ll.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
to_ll = osr.CoordinateTransformation(srs, ll)
from_ll = osr.CoordinateTransformation(ll, srs)
bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]


def values(col, row):
    out = []
    for b in bands:
        v = float(b.ReadAsArray(col, row, 1, 1)[0, 0])
        nd = b.GetNoDataValue()
        out.append(None if (nd is not None and v == nd) or v != v else v)
    return None if all(v is None for v in out) else out


def inside_polygon(path):
    """Pixels of the raster whose centres are inside the GeoJSON polygon at `path`."""
    geo = json.load(open(path))
    geom = geo['geometry'] if geo.get('type') == 'Feature' else geo
    g = ogr.CreateGeometryFromJson(json.dumps(geom))
    g.AssignSpatialReference(ll)
    g.Segmentize(1e-4)  # edges straight in lon/lat, as geo-dino reads GeoJSON
    g.TransformTo(srs)
    mem = gdal.GetDriverByName('MEM').Create('', ds.RasterXSize, ds.RasterYSize, 1, gdal.GDT_Byte)
    mem.SetGeoTransform(gt)
    mem.SetProjection(ds.GetProjection())
    vds = ogr.GetDriverByName('Memory').CreateDataSource('')
    lyr = vds.CreateLayer('p', srs=srs)
    f = ogr.Feature(lyr.GetLayerDefn())
    f.SetGeometry(g)
    lyr.CreateFeature(f)
    gdal.RasterizeLayer(mem, [1], lyr, burn_values=[1])
    return mem.ReadAsArray() == 1


if mode == 'points':
    res = []
    for a in sys.argv[3:]:
        col, row = (int(v) for v in a.split(','))
        x = gt[0] + (col + 0.5) * gt[1] + (row + 0.5) * gt[2]
        y = gt[3] + (col + 0.5) * gt[4] + (row + 0.5) * gt[5]
        lon, lat, _ = to_ll.TransformPoint(x, y)
        res.append({'col': col, 'row': row, 'lon': lon, 'lat': lat, 'values': values(col, row)})
    print(json.dumps(res))
elif mode == 'lonlat':
    res = []
    for a in sys.argv[3:]:
        lon, lat = (float(v) for v in a.split(','))
        x, y, _ = from_ll.TransformPoint(lon, lat)
        col = int(np.floor((x - gt[0]) / gt[1]))
        row = int(np.floor((y - gt[3]) / gt[5]))
        ok = 0 <= col < ds.RasterXSize and 0 <= row < ds.RasterYSize
        res.append({'lon': lon, 'lat': lat, 'col': col, 'row': row, 'values': values(col, row) if ok else None})
    print(json.dumps(res))
elif mode == 'classes':
    inside = inside_polygon(sys.argv[3])
    c = bands[0].ReadAsArray()
    nd = bands[0].GetNoDataValue()
    vals, counts = np.unique(c[inside & (c != nd)] if nd is not None else c[inside], return_counts=True)
    print(json.dumps({'inside': int(inside.sum()), 'pixel_area': abs(gt[1] * gt[5] - gt[2] * gt[4]),
                      'counts': {str(int(v)): int(n) for v, n in zip(vals, counts)}}))
elif mode == 'stats':
    inside = inside_polygon(sys.argv[3])
    h = bands[0].ReadAsArray()
    nd = bands[0].GetNoDataValue()
    valid = inside & (h != nd) & np.isfinite(h)
    v = h[valid].astype(np.float64)
    out = {'inside': int(inside.sum()), 'valid': int(valid.sum())}
    if v.size:
        out.update({'mean': float(v.mean()), 'median': float(np.median(v)), 'min': float(v.min()), 'max': float(v.max()),
                    'std': float(v.std()), 'gt2m': float((v > 2).mean()), 'gt5m': float((v > 5).mean())})
        if len(bands) > 1:
            u = bands[1].ReadAsArray()[valid].astype(np.float64)
            out['uncertainty'] = float(u.mean())
    print(json.dumps(out))
