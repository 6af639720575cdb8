#!/usr/bin/python3
"""Generate tiling/src/crs/epsg-table.ts: every EPSG (and ESRI) CRS that PROJ knows and proj4 can run.

Source: PROJ's own database (proj.db, as shipped with GDAL/PROJ), read through GDAL's osr and
SQLite. For each non-deprecated projected or geographic 2D CRS:

- the projection comes from PROJ's PROJ-string export (osr ExportToProj4);
- the datum shift to WGS 84 is the one PROJ itself uses: every Helmert transformation in proj.db
  from the CRS's datum to WGS 84 (plus PROJ's own export and a null shift) is tried, and the one
  that reproduces GDAL's default WGS 84 -> CRS transform at the centre of the CRS's area of use
  (to 1 mm) is kept. Where none does (PROJ uses a grid, or a chain of operations), the most
  accurate Helmert is kept and the row is flagged approximate ("~"), so geo-dino can say so;
- projections proj4 does not implement, and CRSs with south- or west-oriented axes, are left
  out (parseCrs then says so).

Run (regenerates the file; needs GDAL's Python bindings, e.g. Debian python3-gdal):
  /usr/bin/python3 tiling/scripts/make-epsg-table.py > tiling/src/crs/epsg-table.ts
Environment: PROJ_DB (default: osr's PROJ search path + /proj.db).
"""
import math
import os
import sqlite3
import sys

from osgeo import gdal, osr

gdal.UseExceptions()

SUPPORTED = {
    'aea', 'aeqd', 'bonne', 'cass', 'cea', 'eck6', 'eqc', 'eqdc', 'eqearth', 'etmerc', 'geos', 'gnom',
    'gstmerc', 'krovak', 'laea', 'lcc', 'longlat', 'merc', 'mill', 'moll', 'nzmg', 'omerc', 'ortho', 'poly',
    'robin', 'sinu', 'somerc', 'stere', 'sterea', 'tmerc', 'tpers', 'utm', 'vandg', 'qsc',
}
ROT_TO_ARCSEC = {'9104': 1.0, '9101': 180 / math.pi * 3600, '9109': 180 / math.pi * 3600 * 1e-6, '9113': 0.324, '1031': 1e-3}
SCALE_TO_PPM = {'9202': 1.0, '1028': 1e-3, None: 0.0}
TRANS_TO_M = {'9001': 1.0, '1025': 1e-3}


def proj_db_path():
    if os.environ.get('PROJ_DB'):
        return os.environ['PROJ_DB']
    for d in osr.GetPROJSearchPaths() or []:
        p = os.path.join(d, 'proj.db')
        if os.path.exists(p):
            return p
    return '/usr/share/proj/proj.db'


db = sqlite3.connect(proj_db_path())


def helmerts_for_datum(datum_auth, datum_code):
    """Helmert shifts (towgs84 strings, most accurate first) from a datum to WGS 84 in proj.db."""
    rows = db.execute(
        """select h.tx, h.ty, h.tz, h.translation_uom_code, h.rx, h.ry, h.rz, h.rotation_uom_code,
                  h.scale_difference, h.scale_difference_uom_code, h.method_code, h.accuracy
           from helmert_transformation h
           join geodetic_crs s on s.auth_name = h.source_crs_auth_name and s.code = h.source_crs_code
           join geodetic_crs t on t.auth_name = h.target_crs_auth_name and t.code = h.target_crs_code
           where h.deprecated = 0 and s.datum_auth_name = ? and s.datum_code = ?
             and t.datum_auth_name = 'EPSG' and t.datum_code = 6326
             and h.method_code in (9603, 9606, 9607, 1032, 1033, 1037, 1038)""",
        (datum_auth, datum_code),
    ).fetchall()
    out = []
    for tx, ty, tz, tu, rx, ry, rz, ru, sd, su, method, acc in sorted(rows, key=lambda r: (r[11] if r[11] is not None else 999)):
        tu, ru, su, method = (None if v is None else str(v) for v in (tu, ru, su, method))
        if tu not in TRANS_TO_M:
            continue
        t = [v * TRANS_TO_M[tu] for v in (tx, ty, tz)]
        if rx is None:
            out.append(','.join(fmt(v) for v in t))
            continue
        if ru not in ROT_TO_ARCSEC or su not in SCALE_TO_PPM:
            continue
        sign = -1.0 if method in ('9607', '1032', '1038') else 1.0  # coordinate frame -> position vector
        r = [sign * v * ROT_TO_ARCSEC[ru] for v in (rx, ry, rz)]
        out.append(','.join(fmt(v) for v in t + r + [(sd or 0.0) * SCALE_TO_PPM[su]]))
    return out


def fmt(v):
    s = repr(round(v, 10))
    return s[:-2] if s.endswith('.0') else s


def area_centre(srs):
    a = srs.GetAreaOfUse()
    if a is None:
        return None
    w, e, s, n = a.west_lon_degree, a.east_lon_degree, a.south_lat_degree, a.north_lat_degree
    lon = (w + e) / 2 if w <= e else ((w + e + 360) / 2 + 180) % 360 - 180
    return lon, (s + n) / 2


def strip_datum(proj):
    keep = [t for t in proj.split() if not t.startswith(('+datum=', '+towgs84=', '+nadgrids=', '+ellps=', '+a=', '+b=', '+rf=', '+R=', '+no_defs', '+wktext', '+type='))]
    return ' '.join(keep)


def shape_of(srs):
    a = srs.GetSemiMajor()
    rf = srs.GetInvFlattening()
    if abs(a - 6378137) < 1e-6 and abs(rf - 298.257223563) < 1e-9:
        return '+ellps=WGS84'
    if abs(a - 6378137) < 1e-6 and abs(rf - 298.257222101) < 1e-9:
        return '+ellps=GRS80'
    if rf == 0:
        return f'+a={fmt(a)} +b={fmt(a)}'
    return f'+a={fmt(a)} +rf={fmt(rf)}'


WGS84 = osr.SpatialReference()
WGS84.ImportFromEPSG(4326)
WGS84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)


def xy(src, dst, lon, lat):
    try:
        x, y, _ = osr.CoordinateTransformation(src, dst).TransformPoint(lon, lat)
        return (x, y) if math.isfinite(x) and math.isfinite(y) else None
    except Exception:
        return None


def from_proj(proj):
    s = osr.SpatialReference()
    s.ImportFromProj4(proj)
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return s


def row_for(auth, code, name, datum_auth, datum_code):
    srs = osr.SpatialReference()
    try:
        srs.SetFromUserInput(f'{auth}:{code}')
        proj = srs.ExportToProj4().strip()
    except Exception:
        return None
    if not proj.startswith('+proj='):
        return None
    kind = proj.split()[0][6:]
    if kind not in SUPPORTED or '+proj=' in proj[6:]:
        return None
    # South- or west-oriented axes (+axis=wsu, swu, ...): proj4 and GDAL disagree by kilometres; left out.
    if '+axis=' in proj:
        return None
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    centre = area_centre(srs)
    ref = xy(WGS84, srs, *centre) if centre else None

    def agrees(definition):
        if ref is None:
            return False
        try:
            got = xy(WGS84, from_proj(definition + ' +no_defs'), *centre)
        except Exception:
            return False
        return got is not None and math.hypot(got[0] - ref[0], got[1] - ref[1]) <= 0.001

    def clean(p):
        return ' '.join(t for t in p.split() if t not in ('+no_defs', '+wktext'))

    if '+nadgrids=@null' in proj:
        # Projected on a sphere from WGS 84 coordinates (Pseudo-Mercator and kin): PROJ's string as it is.
        own_def = clean(proj)
        return (code, name, own_def, '' if agrees(own_def) else '~')
    base = strip_datum(proj)
    shape = shape_of(srs)
    own = next((t[9:] for t in proj.split() if t.startswith('+towgs84=')), None)
    wgs_datum = datum_auth == 'EPSG' and str(datum_code) == '6326'
    if wgs_datum:
        d = f'{base} {shape}'
        return (code, name, d, '' if agrees(d) else '~')
    candidates = []
    for c in ([own] if own else []) + helmerts_for_datum(datum_auth, datum_code) + ['0,0,0']:
        if c not in candidates:
            candidates.append(c)
    for c in candidates:
        if agrees(f'{base} {shape} +towgs84={c}'):
            return (code, name, f'{base} {shape} +towgs84={c}', '')
    # PROJ uses something a Helmert cannot express here (a grid, a chain): keep the best Helmert.
    helmerts = helmerts_for_datum(datum_auth, datum_code)
    best = helmerts[0] if helmerts else (own or '0,0,0')
    return (code, name, f'{base} {shape} +towgs84={best}', '~')


def crs_rows(auth):
    q = """select c.code, c.name, g.datum_auth_name, g.datum_code from {table} c
           join geodetic_crs g on g.auth_name = {gauth} and g.code = {gcode}
           where c.auth_name = ? and c.deprecated = 0 {extra}"""
    rows = db.execute(q.format(table='geodetic_crs', gauth='c.auth_name', gcode='c.code', extra="and c.type = 'geographic 2D'"), (auth,)).fetchall()
    rows += db.execute(q.format(table='projected_crs', gauth='c.geodetic_crs_auth_name', gcode='c.geodetic_crs_code', extra=''), (auth,)).fetchall()
    rows = [(str(c), n, da, dc) for c, n, da, dc in rows]
    return sorted(rows, key=lambda r: int(r[0]) if r[0].isdigit() else 0)


def main():
    out = {}
    meta = db.execute("select key, value from metadata where key in ('EPSG.VERSION', 'PROJ.VERSION', 'PROJ_DATA.VERSION')").fetchall()
    for auth in ('EPSG', 'ESRI'):
        rows = []
        for code, name, datum_auth, datum_code in crs_rows(auth):
            if not code.isdigit():
                continue
            r = row_for(auth, code, name, datum_auth, datum_code)
            if r:
                rows.append(r)
        out[auth] = rows
        print(f'{auth}: {len(rows)} CRSs, {sum(1 for r in rows if r[3])} approximate', file=sys.stderr)
    w = sys.stdout.write
    w('/**\n')
    w(' * Every EPSG and ESRI CRS in PROJ\'s database that proj4 can run, with the datum shift PROJ uses.\n')
    w(' * Generated by tiling/scripts/make-epsg-table.py; do not edit by hand.\n')
    w(f' * Source: proj.db ({", ".join(f"{k} {v}" for k, v in meta)}).\n')
    w(' * One line per CRS: code, TAB, flag ("~" = datum shift approximates PROJ\'s grid or chain), TAB, name, TAB,\n')
    w(' * PROJ string (without +no_defs).\n')
    w(' */\n')
    w(f'export const PROJ_DB_VERSION = {str(dict(meta)).replace(chr(39), chr(34))};\n')
    for auth in ('EPSG', 'ESRI'):
        w(f'export const {auth}_ROWS = `\n')
        for code, name, proj, flag in out[auth]:
            line = f'{code}\t{flag}\t{name}\t{proj}'
            assert '`' not in line and '\\' not in line and '${' not in line, line
            w(line + '\n')
        w('`;\n')


main()
