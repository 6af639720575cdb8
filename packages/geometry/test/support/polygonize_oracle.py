"""Oracle for StreamingPolygonizer: GDAL's Polygonize (4-connected) and OGR/GEOS measures.

Input (a JSON file): width, height, labels (row-major), background (or null) and `ours`:
{label: MultiPolygon coordinates in pixel corners, x right, y down}. The raster is written to a
MEM dataset with the identity geotransform (pixel coordinates, y down) and polygonised by GDAL.
Per label it prints: GDAL's polygon count, area and hole count, and for ours: validity (GEOS),
area, polygon and hole counts, and the area of the symmetric difference with GDAL's polygons.
"""
import array
import json
import sys

from osgeo import gdal, ogr

gdal.UseExceptions()
ogr.UseExceptions()

d = json.load(open(sys.argv[1]))
w, h = d["width"], d["height"]
bg = d["background"]
ds = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Int32)
ds.SetGeoTransform((0, 1, 0, 0, 0, 1))
band = ds.GetRasterBand(1)
band.WriteRaster(0, 0, w, h, array.array("i", d["labels"]).tobytes())
mask = None
if bg is not None:
    mds = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Byte)
    mband = mds.GetRasterBand(1)
    mband.WriteRaster(0, 0, w, h, bytes(0 if v == bg else 1 for v in d["labels"]))
    mask = mband
vds = ogr.GetDriverByName("Memory").CreateDataSource("")
layer = vds.CreateLayer("p")
layer.CreateField(ogr.FieldDefn("label", ogr.OFTInteger))
gdal.Polygonize(band, mask, layer, 0, [], callback=None)

gdal_by = {}
for f in layer:
    g = f.GetGeometryRef().Clone()
    gdal_by.setdefault(str(f.GetField("label")), []).append(g)

out = {}
labels = set(gdal_by) | set(d["ours"])
for l in labels:
    gs = gdal_by.get(l, [])
    gu = ogr.Geometry(ogr.wkbMultiPolygon)
    for g in gs:
        gu.AddGeometry(g)
    gu = gu.UnionCascaded()
    mine = ogr.CreateGeometryFromJson(json.dumps({"type": "MultiPolygon", "coordinates": d["ours"].get(l, [])}))
    out[l] = {
        "gdal_count": len(gs),
        "gdal_area": sum(g.GetArea() for g in gs),
        "gdal_holes": sum(g.GetGeometryCount() - 1 for g in gs),
        "gdal_valid": all(g.IsValid() for g in gs),
        "ours_valid": mine.IsValid(),
        "ours_area": mine.GetArea(),
        "ours_count": mine.GetGeometryCount(),
        "ours_holes": sum(mine.GetGeometryRef(i).GetGeometryCount() - 1 for i in range(mine.GetGeometryCount())),
        "symdiff": mine.SymDifference(gu).GetArea() if len(gs) else mine.GetArea(),
    }
print(json.dumps(out))
