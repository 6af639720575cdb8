/**
 * A {@link Crs} → GeoTIFF keys, for the COG writer.
 *
 * CRSs with an EPSG code are written as that code (ProjectedCSTypeGeoKey or
 * GeographicTypeGeoKey), which is what GDAL and every reader prefer. Others are written as a
 * user-defined projection (GeoTIFF 1.1 §7.5) from proj4's parsed parameters: transverse Mercator
 * (and UTM), Mercator, Lambert conformal conic, Albers, Lambert azimuthal equal area, polar and
 * oblique stereographic, equirectangular, on WGS 84, NAD83 or an explicit ellipsoid with an
 * optional TOWGS84 shift. Anything else is refused with E_BAD_CRS.
 */
import proj4 from 'proj4';
import { GeoDinoError } from '@geo-dino/core';
import { crsLabel, type Crs } from '../crs/crs.js';
import { GeoKey } from './geokeys.js';

export interface GeoKeyTags {
  directory: number[];
  doubles: number[];
  ascii: string;
}

type KeyValue = { id: number; short?: number; double?: number | number[]; ascii?: string };

function pack(keys: KeyValue[]): GeoKeyTags {
  keys.sort((a, b) => a.id - b.id);
  const directory = [1, 1, 0, keys.length];
  const doubles: number[] = [];
  let ascii = '';
  for (const k of keys) {
    if (k.short !== undefined) directory.push(k.id, 0, 1, k.short);
    else if (k.double !== undefined) {
      const v = Array.isArray(k.double) ? k.double : [k.double];
      directory.push(k.id, 34736, v.length, doubles.length);
      doubles.push(...v);
    } else if (k.ascii !== undefined) {
      const s = k.ascii.replace(/\|/g, '/') + '|';
      directory.push(k.id, 34737, s.length, ascii.length);
      ascii += s;
    }
  }
  return { directory, doubles, ascii };
}

const R2D = 180 / Math.PI;

interface ParsedProj {
  projName?: string;
  lat0?: number;
  long0?: number;
  lat1?: number;
  lat2?: number;
  lat_ts?: number;
  k0?: number;
  x0?: number;
  y0?: number;
  a: number;
  b: number;
  rf?: number;
  datumCode?: string;
  datum_params?: number[] | string[];
  to_meter?: number;
  utmSouth?: boolean;
}

function unsupported(crs: Crs, why: string): GeoDinoError {
  return new GeoDinoError('E_BAD_CRS', `${crsLabel(crs)}: cannot be written as GeoTIFF keys: ${why}; use a CRS with an EPSG code`, {
    details: { crs: crs.name },
  });
}

export function geoKeysFor(crs: Crs): GeoKeyTags {
  const citation = crs.name.slice(0, 200);
  if (crs.epsg !== null && crs.epsg !== 32767) {
    if (crs.geographic) {
      return pack([
        { id: GeoKey.GTModelType, short: 2 },
        { id: GeoKey.GTRasterType, short: 1 },
        { id: GeoKey.GeographicType, short: crs.epsg },
        { id: GeoKey.GeogCitation, ascii: citation },
        { id: GeoKey.GeogAngularUnits, short: 9102 },
      ]);
    }
    return pack([
      { id: GeoKey.GTModelType, short: 1 },
      { id: GeoKey.GTRasterType, short: 1 },
      { id: GeoKey.GTCitation, ascii: citation },
      { id: GeoKey.ProjectedCSType, short: crs.epsg },
      { id: GeoKey.ProjLinearUnits, short: 9001 },
    ]);
  }
  if (!crs.definition) throw unsupported(crs, 'no definition');
  let p: ParsedProj;
  try {
    p = new proj4.Proj(crs.definition) as unknown as ParsedProj;
  } catch (err) {
    throw unsupported(crs, (err as Error)?.message ?? 'proj4 cannot parse it');
  }
  const keys: KeyValue[] = [{ id: GeoKey.GTRasterType, short: 1 }];
  // Geographic part.
  const datum = (p.datumCode ?? '').toLowerCase();
  const params = (p.datum_params ?? []).map(Number);
  const shift = params.some((v) => v !== 0) ? params : null;
  if (datum === 'wgs84' && !shift) keys.push({ id: GeoKey.GeographicType, short: 4326 });
  else if (datum === 'nad83' && !shift) keys.push({ id: GeoKey.GeographicType, short: 4269 });
  else {
    const rf = p.rf !== undefined && Number.isFinite(p.rf) && p.rf > 0 ? p.rf : p.a !== p.b ? p.a / (p.a - p.b) : undefined;
    keys.push(
      { id: GeoKey.GeographicType, short: 32767 },
      { id: GeoKey.GeogGeodeticDatum, short: 32767 },
      { id: GeoKey.GeogEllipsoid, short: 32767 },
      { id: GeoKey.GeogPrimeMeridian, short: 8901 },
      { id: GeoKey.GeogSemiMajorAxis, double: p.a },
      rf !== undefined ? { id: GeoKey.GeogInvFlattening, double: rf } : { id: GeoKey.GeogSemiMinorAxis, double: p.b },
      { id: GeoKey.GeogCitation, ascii: 'user-defined' },
    );
    if (shift) keys.push({ id: 2062, double: shift.length >= 7 ? shift.slice(0, 7) : shift.slice(0, 3) });
  }
  keys.push({ id: GeoKey.GeogAngularUnits, short: 9102 });
  if (crs.geographic) {
    keys.push({ id: GeoKey.GTModelType, short: 2 });
    return pack(keys);
  }
  keys.push(
    { id: GeoKey.GTModelType, short: 1 },
    { id: GeoKey.GTCitation, ascii: citation },
    { id: GeoKey.ProjectedCSType, short: 32767 },
    { id: GeoKey.Projection, short: 32767 },
  );
  const toM = p.to_meter ?? 1;
  if (Math.abs(toM - 1) > 1e-12) keys.push({ id: GeoKey.ProjLinearUnits, short: 32767 }, { id: GeoKey.ProjLinearUnitSize, double: toM });
  else keys.push({ id: GeoKey.ProjLinearUnits, short: 9001 });
  const deg = (v: number | undefined): number => (v ?? 0) * R2D;
  const fe = (p.x0 ?? 0) / toM;
  const fn = (p.y0 ?? 0) / toM;
  const name = (p.projName ?? '').toLowerCase().replace(/ /g, '_');
  const K = GeoKey;
  const add = (ct: number, extra: KeyValue[]): GeoKeyTags => pack([...keys, { id: K.ProjCoordTrans, short: ct }, ...extra]);
  if (['utm', 'universal_transverse_mercator_system', 'tmerc', 'etmerc', 'transverse_mercator', 'extended_transverse_mercator', 'gauss_kruger'].includes(name)) {
    return add(1, [
      { id: K.ProjNatOriginLat, double: deg(p.lat0) },
      { id: K.ProjNatOriginLong, double: deg(p.long0) },
      { id: K.ProjScaleAtNatOrigin, double: p.k0 ?? 1 },
      { id: K.ProjFalseEasting, double: fe },
      { id: K.ProjFalseNorthing, double: fn },
    ]);
  }
  if (['merc', 'mercator', 'mercator_1sp', 'mercator_variant_a'].includes(name)) {
    return add(7, [
      { id: K.ProjNatOriginLat, double: 0 },
      { id: K.ProjNatOriginLong, double: deg(p.long0) },
      { id: K.ProjScaleAtNatOrigin, double: p.k0 ?? 1 },
      { id: K.ProjFalseEasting, double: fe },
      { id: K.ProjFalseNorthing, double: fn },
    ]);
  }
  if (name.startsWith('lcc') || name.startsWith('lambert_conformal_conic')) {
    return add(8, [
      { id: K.ProjStdParallel1, double: deg(p.lat1) },
      { id: K.ProjStdParallel2, double: deg(p.lat2 ?? p.lat1) },
      { id: K.ProjFalseOriginLat, double: deg(p.lat0) },
      { id: K.ProjFalseOriginLong, double: deg(p.long0) },
      { id: K.ProjFalseOriginEasting, double: fe },
      { id: K.ProjFalseOriginNorthing, double: fn },
    ]);
  }
  if (name === 'aea' || name.startsWith('albers')) {
    return add(11, [
      { id: K.ProjStdParallel1, double: deg(p.lat1) },
      { id: K.ProjStdParallel2, double: deg(p.lat2) },
      { id: K.ProjNatOriginLat, double: deg(p.lat0) },
      { id: K.ProjNatOriginLong, double: deg(p.long0) },
      { id: K.ProjFalseEasting, double: fe },
      { id: K.ProjFalseNorthing, double: fn },
    ]);
  }
  if (name === 'laea' || name === 'lambert_azimuthal_equal_area') {
    return add(10, [
      { id: K.ProjCenterLat, double: deg(p.lat0) },
      { id: K.ProjCenterLong, double: deg(p.long0) },
      { id: K.ProjFalseEasting, double: fe },
      { id: K.ProjFalseNorthing, double: fn },
    ]);
  }
  if ((name === 'stere' || name.startsWith('polar_stereographic')) && Math.abs(Math.abs(deg(p.lat0)) - 90) < 1e-9) {
    const ts = p.lat_ts !== undefined && Number.isFinite(p.lat_ts) ? deg(p.lat_ts) : deg(p.lat0);
    return add(15, [
      { id: K.ProjNatOriginLat, double: ts },
      { id: K.ProjStraightVertPoleLong, double: deg(p.long0) },
      { id: K.ProjScaleAtNatOrigin, double: p.k0 ?? 1 },
      { id: K.ProjFalseEasting, double: fe },
      { id: K.ProjFalseNorthing, double: fn },
    ]);
  }
  if (name === 'sterea' || name === 'oblique_stereographic' || name === 'double_stereographic') {
    return add(16, [
      { id: K.ProjNatOriginLat, double: deg(p.lat0) },
      { id: K.ProjNatOriginLong, double: deg(p.long0) },
      { id: K.ProjScaleAtNatOrigin, double: p.k0 ?? 1 },
      { id: K.ProjFalseEasting, double: fe },
      { id: K.ProjFalseNorthing, double: fn },
    ]);
  }
  if (name === 'eqc' || name === 'equirectangular' || name === 'equidistant_cylindrical') {
    return add(17, [
      { id: K.ProjStdParallel1, double: deg(p.lat_ts) },
      { id: K.ProjNatOriginLat, double: deg(p.lat0) },
      { id: K.ProjNatOriginLong, double: deg(p.long0) },
      { id: K.ProjFalseEasting, double: fe },
      { id: K.ProjFalseNorthing, double: fn },
    ]);
  }
  throw unsupported(crs, `projection ${p.projName ?? '?'} is not supported`);
}
