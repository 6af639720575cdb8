/**
 * CRSs against GDAL/PROJ: every built-in EPSG definition projects the centre of its area of use
 * (given in its own geographic CRS) to the same metres as PROJ does for the EPSG code, within
 * 1 mm — so the bundled table and proj4's projection code agree with the EPSG registry. Datum
 * shifts to WGS 84 are Helmert approximations (documented) and are not part of this check.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import proj4 from 'proj4';
import { EPSG_TABLE, crsFromEpsg, parseCrs, transformBetween, utmCrsFor, WGS84 } from '@geo-dino/tiling';
import { requireGdal } from '../../test/support/tools.js';
import { gdalPython } from './support/gdal.js';

beforeAll(() => requireGdal());

const ELLIPSOID_OF: Record<string, string> = { WGS84: '+ellps=WGS84', NAD83: '+ellps=GRS80' };

/** The projection of a definition without its datum shift, and its own geographic CRS. */
function datumFree(def: string): { projected: string; geographic: string } {
  let d = def.replace(/\+towgs84=\S+/g, '').replace(/\+nadgrids=\S+/g, '');
  d = d.replace(/\+datum=(\w+)/, (_, n: string) => ELLIPSOID_OF[n] ?? '+ellps=WGS84');
  const shape = /\+ellps=\S+/.exec(d)?.[0] ?? [/\+a=\S+/.exec(d)?.[0], /\+b=\S+/.exec(d)?.[0]].filter(Boolean).join(' ');
  return { projected: d.replace(/\s+/g, ' ').trim(), geographic: `+proj=longlat ${shape || '+ellps=WGS84'} +no_defs` };
}

describe('built-in EPSG definitions vs PROJ', () => {
  it('every table entry and a sample of UTM zones project like PROJ does (≤ 1 mm)', () => {
    const codes = [...Object.keys(EPSG_TABLE).map(Number), 32601, 32633, 32660, 32701, 32737, 32760];
    const out = gdalPython(
      String.raw`
import sys, json
from osgeo import osr
res = {}
for code in json.loads(sys.argv[1]):
    s = osr.SpatialReference(); s.ImportFromEPSG(code)
    a = s.GetAreaOfUse()
    lon = (a.west_lon_degree + a.east_lon_degree) / 2 if a.west_lon_degree <= a.east_lon_degree else ((a.west_lon_degree + a.east_lon_degree + 360) / 2 + 180) % 360 - 180
    lat = (a.south_lat_degree + a.north_lat_degree) / 2
    if s.IsGeographic():
        res[code] = [lon, lat, lon, lat]
        continue
    g = s.CloneGeogCS()
    g.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER); s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x, y, _ = osr.CoordinateTransformation(g, s).TransformPoint(lon, lat)
    res[code] = [lon, lat, x, y]
print(json.dumps(res))
`,
      [JSON.stringify(codes)],
    );
    const ref = JSON.parse(out) as Record<string, [number, number, number, number]>;
    const failures: string[] = [];
    for (const code of codes) {
      const crs = crsFromEpsg(code);
      const [lon, lat, x, y] = ref[code]!;
      if (crs.geographic) continue;
      const { projected, geographic } = datumFree(crs.definition!);
      const [ox, oy] = proj4(geographic, projected).forward([lon, lat]) as [number, number];
      const err = Math.hypot(ox - x, oy - y);
      if (!(err <= 0.001)) failures.push(`EPSG:${code} ${crs.name}: ${err.toFixed(4)} m off at [${lon}, ${lat}]`);
    }
    expect(failures).toEqual([]);
    expect(codes.length).toBeGreaterThan(160);
  });

  it('WGS 84 → UTM and Web Mercator, with datums, equal PROJ to the millimetre', () => {
    const pts: [number, number, number][] = [
      [36.82, -1.29, 32737],
      [15.2, 45.8, 32633],
      [-122.4, 37.8, 32610],
      [128.66, 37.67, 3857],
    ];
    const out = gdalPython(
      String.raw`
import sys, json
from osgeo import osr
res = []
w = osr.SpatialReference(); w.ImportFromEPSG(4326); w.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
for lon, lat, code in json.loads(sys.argv[1]):
    s = osr.SpatialReference(); s.ImportFromEPSG(code); s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x, y, _ = osr.CoordinateTransformation(w, s).TransformPoint(lon, lat)
    res.append([x, y])
print(json.dumps(res))
`,
      [JSON.stringify(pts)],
    );
    (JSON.parse(out) as [number, number][]).forEach(([x, y], i) => {
      const [lon, lat, code] = pts[i]!;
      const [ox, oy] = transformBetween(WGS84, crsFromEpsg(code)).forward(lon, lat);
      expect(Math.hypot(ox - x, oy - y), `EPSG:${code}`).toBeLessThan(0.001);
    });
  });
});

describe('parseCrs', () => {
  it('EPSG codes, URNs, PROJ strings and WKT; UTM zones from lon/lat', () => {
    expect(parseCrs('EPSG:32633').epsg).toBe(32633);
    expect(parseCrs('epsg:3857').name).toBe('WGS 84 / Pseudo-Mercator');
    expect(parseCrs('urn:ogc:def:crs:EPSG::4326').geographic).toBe(true);
    expect(parseCrs('900913').epsg).toBe(3857);
    expect(parseCrs('+proj=utm +zone=33 +datum=WGS84 +units=m +no_defs').epsg).toBe(32633);
    const wkt = gdalPython('from osgeo import osr\ns = osr.SpatialReference(); s.ImportFromEPSG(5070); print(s.ExportToWkt())').trim();
    expect(parseCrs(wkt).epsg).toBe(5070);
    const custom = parseCrs('+proj=tmerc +lat_0=0 +lon_0=37 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 +units=m +no_defs');
    expect(custom.epsg).toBeNull();
    expect(utmCrsFor(36.8, -1.3).epsg).toBe(32737);
    expect(utmCrsFor(-179.9, 10).epsg).toBe(32601);
    expect(utmCrsFor(179.9, -17).epsg).toBe(32760);
    expect(utmCrsFor(180, 5).epsg).toBe(32601);
  });

  it('unknown codes and garbage are E_BAD_CRS naming the source', () => {
    expect(() => parseCrs('EPSG:99999', '--crs')).toThrow(/--crs: EPSG:99999 is not among the CRSs built into geo-dino/);
    expect(() => parseCrs('hello', '--crs')).toThrow(/--crs: not a CRS: "hello"/);
    expect(() => parseCrs('+proj=nonsense +x=1', '--crs')).toThrow(/--crs: proj4 cannot use this CRS definition/);
  });
});
