"""Synthetic RGB scenes and a static STAC catalog for the monitoring tests (GDAL + numpy).

usage: make_scenes.py <dir> <json-spec>
spec: {"epsg": 32636, "origin": [x0, y0], "gsd": 0.6, "size": [W, H], "seed": 3,
       "scenes": [{"id": "s2024", "datetime": "2024-06-01T08:00:00Z", "clear": [[x0, y0, x1, y1], ...]}, ...],
       "aoi_inset_m": 30}
writes <dir>/<id>.tif (COG, 3-band uint8), <dir>/items/<id>.json, <dir>/catalog.json (links to all
items), <dir>/aoi.geojson (the footprint shrunk by aoi_inset_m); prints {"catalog": path, "aoi": path}.
Scenes are "forest": dark-green crowns on lighter ground; "clear" rectangles (metres relative to the
origin, x right, y down) are bare soil in that scene. A scene with "extent": [x0, y0, x1, y1] (metres
relative to the origin, whole pixels) covers only that part of the area (same forest there).
"""
import json
import os
import sys

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()


def forest(W, H, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    canopy = np.zeros((H, W), dtype=np.float64)
    for _ in range(int(W * H / 120)):
        cx, cy = rng.uniform(0, W), rng.uniform(0, H)
        r = rng.uniform(3, 9)
        x0, x1 = int(max(0, cx - r)), int(min(W, cx + r + 1))
        y0, y1 = int(max(0, cy - r)), int(min(H, cy + r + 1))
        d2 = (xx[y0:y1, x0:x1] - cx) ** 2 + (yy[y0:y1, x0:x1] - cy) ** 2
        canopy[y0:y1, x0:x1] = np.maximum(canopy[y0:y1, x0:x1], np.clip(1 - d2 / (r * r), 0, 1))
    noise = rng.normal(0, 6, (H, W))
    r = 120 - 80 * canopy + noise
    g = 140 - 60 * canopy + noise
    b = 90 - 50 * canopy + noise
    return np.stack([r, g, b])


def write_cog(path, rgb, gt, epsg):
    mem = gdal.GetDriverByName("MEM").Create("", rgb.shape[2], rgb.shape[1], 3, gdal.GDT_Byte)
    mem.SetGeoTransform(gt)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    mem.SetProjection(srs.ExportToWkt())
    for i in range(3):
        mem.GetRasterBand(i + 1).WriteArray(np.clip(rgb[i], 0, 255).astype(np.uint8))
        mem.GetRasterBand(i + 1).SetColorInterpretation([gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand][i])
    gdal.GetDriverByName("COG").CreateCopy(path, mem, options=["COMPRESS=DEFLATE", "BLOCKSIZE=256"])


def main(out, spec):
    os.makedirs(os.path.join(out, "items"), exist_ok=True)
    W, H = spec["size"]
    g = spec["gsd"]
    x0, y0 = spec["origin"]
    epsg = spec["epsg"]
    gt = (x0, g, 0, y0, 0, -g)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    tr = osr.CoordinateTransformation(srs, wgs)

    def ring(inset, box=None):
        bx0, by0, bx1, by1 = box if box else (0, 0, W * g, H * g)
        pts = [(x0 + bx0 + inset, y0 - by0 - inset), (x0 + bx1 - inset, y0 - by0 - inset), (x0 + bx1 - inset, y0 - by1 + inset), (x0 + bx0 + inset, y0 - by1 + inset)]
        ll = [list(tr.TransformPoint(px, py)[:2]) for px, py in pts]
        ll = [ll[0], ll[3], ll[2], ll[1]]  # counter-clockwise
        return ll + [ll[0]]

    footprint = ring(0)
    base = forest(W, H, spec.get("seed", 3))
    links = []
    for sc in spec["scenes"]:
        rgb = base.copy()
        for (a, b, c, d) in sc.get("clear", []):
            c0, c1 = int(round(a / g)), int(round(c / g))
            r0, r1 = int(round(b / g)), int(round(d / g))
            rgb[0, r0:r1, c0:c1] = 170
            rgb[1, r0:r1, c0:c1] = 140
            rgb[2, r0:r1, c0:c1] = 100
        path = os.path.join(out, f"{sc['id']}.tif")
        fp = footprint
        if "extent" in sc:
            a, b, c, d = sc["extent"]
            c0, c1 = int(round(a / g)), int(round(c / g))
            r0, r1 = int(round(b / g)), int(round(d / g))
            write_cog(path, rgb[:, r0:r1, c0:c1], (x0 + c0 * g, g, 0, y0 - r0 * g, 0, -g), epsg)
            fp = ring(0, (c0 * g, r0 * g, c1 * g, r1 * g))
        else:
            write_cog(path, rgb, gt, epsg)
        lons = [p[0] for p in fp]
        lats = [p[1] for p in fp]
        item = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "stac_extensions": ["https://stac-extensions.github.io/projection/v1.1.0/schema.json"],
            "id": sc["id"],
            "geometry": {"type": "Polygon", "coordinates": [fp]},
            "bbox": [min(lons), min(lats), max(lons), max(lats)],
            "properties": {"datetime": sc["datetime"], "gsd": g, "proj:epsg": epsg, "eo:cloud_cover": sc.get("cloud", 0)},
            "links": [{"rel": "root", "href": "../catalog.json", "type": "application/json"}],
            "assets": {
                "visual": {"href": f"../{sc['id']}.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized", "roles": ["visual"]}
            },
        }
        with open(os.path.join(out, "items", f"{sc['id']}.json"), "w") as f:
            json.dump(item, f, indent=1)
        links.append({"rel": "item", "href": f"./items/{sc['id']}.json", "type": "application/geo+json"})
    catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": "test-imagery", "description": "synthetic scenes",
               "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}] + links}
    with open(os.path.join(out, "catalog.json"), "w") as f:
        json.dump(catalog, f, indent=1)
    aoi = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "test forest"},
           "geometry": {"type": "Polygon", "coordinates": [ring(spec.get("aoi_inset_m", 30))]}}]}
    with open(os.path.join(out, "aoi.geojson"), "w") as f:
        json.dump(aoi, f)
    print(json.dumps({"catalog": os.path.join(out, "catalog.json"), "aoi": os.path.join(out, "aoi.geojson")}))


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
