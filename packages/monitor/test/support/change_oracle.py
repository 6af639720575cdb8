"""GDAL side of the change-detection tests (run with /usr/bin/python3, which has osgeo).

make  <dir> <json-spec>  write before.tif / after.tif (float32, nodata -9999, UTM) from a spec:
      {"epsg": 32636, "origin": [x0, y0], "gsd": 0.6, "width": W, "height": H,
       "base": 20.0, "noise": 0.5, "seed": 1,
       "clear": [{"circle": [cx, cy, r_m], "to": 0.5}, {"rect": [x0, y0, x1, y1], "to": 1.0}, ...],   (metres, grid CRS)
       "grow":  [{"rect": [...], "by": 8.0}],
       "nodata_before": [{"rect": [...]}], "nodata_after": [...],
       "before_offset": [dx_px, dy_px],     (the before raster's grid shifted by whole pixels)
       "before_shift_m": [dx, dy]}          (the before raster written on a grid moved by dx, dy metres: not aligned)
      prints {"before": path, "after": path}
oracle <before> <after> <threshold> <min_area>
      loss mask computed with numpy on the after grid, polygonised by gdal.Polygonize (4-connected),
      areas from OGR in the grid CRS; prints {"polygons": [{"area": m2, "pixels": n, "mean_loss": m}], "loss_pixels": n}
"""
import json
import sys

import numpy as np
from osgeo import gdal, ogr, osr

gdal.UseExceptions()
NODATA = -9999.0


def shape_mask(xs, ys, shape):
    if "circle" in shape:
        cx, cy, r = shape["circle"]
        return (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r
    x0, y0, x1, y1 = shape["rect"]
    return (xs >= min(x0, x1)) & (xs < max(x0, x1)) & (ys >= min(y0, y1)) & (ys < max(y0, y1))


def write(path, arr, gt, epsg):
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(path, arr.shape[1], arr.shape[0], 1, gdal.GDT_Float32, ["TILED=YES", "COMPRESS=DEFLATE"])
    ds.SetGeoTransform(gt)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    b = ds.GetRasterBand(1)
    b.SetNoDataValue(NODATA)
    b.WriteArray(arr)
    ds = None


def make(out_dir, spec):
    W, H, g = spec["width"], spec["height"], spec["gsd"]
    x0, y0 = spec["origin"]
    rng = np.random.default_rng(spec.get("seed", 1))
    # Pixel-centre coordinates of the after grid.
    xs = x0 + (np.arange(W) + 0.5) * g
    ys = y0 - (np.arange(H) + 0.5) * g
    X, Y = np.meshgrid(xs, ys)
    before = spec.get("base", 20.0) + rng.normal(0, spec.get("noise", 0.5), (H, W))
    after = before + rng.normal(0, spec.get("noise", 0.5) * 0.2, (H, W))
    for c in spec.get("clear", []):
        after[shape_mask(X, Y, c)] = c.get("to", 0.5)
    for c in spec.get("grow", []):
        after[shape_mask(X, Y, c)] += c["by"]
    for c in spec.get("nodata_before", []):
        before[shape_mask(X, Y, c)] = NODATA
    for c in spec.get("nodata_after", []):
        after[shape_mask(X, Y, c)] = NODATA
    after_path = f"{out_dir}/after.tif"
    before_path = f"{out_dir}/before.tif"
    write(after_path, after.astype(np.float32), (x0, g, 0, y0, 0, -g), spec["epsg"])
    dx, dy = spec.get("before_offset", [0, 0])
    if dx or dy:
        # The before grid starts dx, dy pixels further right/down: shift the array accordingly
        # (pixels not covered by the after grid get a constant height).
        shifted = np.full((H, W), spec.get("base", 20.0), dtype=np.float64)
        shifted[: H - dy if dy else H, : W - dx if dx else W] = before[dy:, dx:]
        before = shifted
        write(before_path, before.astype(np.float32), (x0 + dx * g, g, 0, y0 - dy * g, 0, -g), spec["epsg"])
    else:
        sx, sy = spec.get("before_shift_m", [0, 0])
        write(before_path, before.astype(np.float32), (x0 + sx, g, 0, y0 + sy, 0, -g), spec["epsg"])
    print(json.dumps({"before": before_path, "after": after_path}))


def oracle(before_path, after_path, threshold, min_area):
    a = gdal.Open(after_path)
    gt = a.GetGeoTransform()
    W, H = a.RasterXSize, a.RasterYSize
    # Read "before" onto the after grid with gdalwarp (nearest: the grids are aligned in the tests).
    b = gdal.Warp("", before_path, format="MEM", outputBounds=(gt[0], gt[3] + H * gt[5], gt[0] + W * gt[1], gt[3]),
                  xRes=gt[1], yRes=-gt[5], resampleAlg="near", dstNodata=NODATA)
    av = a.GetRasterBand(1).ReadAsArray().astype(np.float64)
    bv = b.GetRasterBand(1).ReadAsArray().astype(np.float64)
    valid = (av != NODATA) & (bv != NODATA)
    loss = np.where(valid, bv - av, 0.0)
    mask = (valid & (loss >= threshold)).astype(np.uint8)
    mem = gdal.GetDriverByName("MEM").Create("", W, H, 1, gdal.GDT_Byte)
    mem.SetGeoTransform(gt)
    mem.SetProjection(a.GetProjection())
    mem.GetRasterBand(1).WriteArray(mask)
    # Label image for per-polygon pixel counts and mean loss.
    lab = gdal.GetDriverByName("MEM").Create("", W, H, 1, gdal.GDT_Int32)
    lab.SetGeoTransform(gt)
    lab.SetProjection(a.GetProjection())
    drv = ogr.GetDriverByName("Memory")
    ds = drv.CreateDataSource("m")
    srs = osr.SpatialReference()
    srs.ImportFromWkt(a.GetProjection())
    layer = ds.CreateLayer("p", srs=srs)
    layer.CreateField(ogr.FieldDefn("v", ogr.OFTInteger))
    gdal.Polygonize(mem.GetRasterBand(1), mem.GetRasterBand(1), layer, 0, [], callback=None)
    polys = []
    for i, f in enumerate(layer):
        geom = f.GetGeometryRef()
        area = geom.GetArea()
        if area < min_area:
            continue
        # Pixels whose centre is in the polygon.
        tmp = drv.CreateDataSource("t")
        tl = tmp.CreateLayer("t", srs=srs)
        feat = ogr.Feature(tl.GetLayerDefn())
        feat.SetGeometry(geom.Clone())
        tl.CreateFeature(feat)
        lab.GetRasterBand(1).Fill(0)
        gdal.RasterizeLayer(lab, [1], tl, burn_values=[1])
        inside = lab.GetRasterBand(1).ReadAsArray() == 1
        polys.append({"area": area, "pixels": int(inside.sum()), "mean_loss": float(loss[inside].mean()),
                      "max_loss": float(loss[inside].max())})
    polys.sort(key=lambda p: -p["area"])
    print(json.dumps({"polygons": polys, "loss_pixels": int(mask.sum()), "compared_pixels": int(valid.sum())}))


def loss_values(loss_path, before_path, after_path):
    """Max abs difference between loss.tif and before - after (where both valid), and nodata agreement."""
    l = gdal.Open(loss_path)
    lv = l.GetRasterBand(1).ReadAsArray().astype(np.float64)
    # Keep the datasets referenced while their bands are read (GDAL's Python bindings crash otherwise).
    ads = gdal.Open(after_path)
    bds = gdal.Open(before_path)
    av = ads.GetRasterBand(1).ReadAsArray().astype(np.float64)
    bv = bds.GetRasterBand(1).ReadAsArray().astype(np.float64)
    valid = (av != NODATA) & (bv != NODATA)
    diff = np.abs(lv[valid] - (bv - av)[valid])
    print(json.dumps({
        "max_diff": float(diff.max()) if diff.size else 0.0,
        "nodata_ok": bool(np.all(lv[~valid] == NODATA)),
        "nodata_value": l.GetRasterBand(1).GetNoDataValue(),
        "size": [l.RasterXSize, l.RasterYSize],
        "geotransform": list(l.GetGeoTransform()),
        "overviews": l.GetRasterBand(1).GetOverviewCount(),
    }))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2], json.loads(sys.argv[3]))
    elif cmd == "oracle":
        oracle(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
    elif cmd == "loss":
        loss_values(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown command {cmd}")
