/**
 * GeoTIFF georeferencing (OGC GeoTIFF 1.1): the GeoKey directory → a {@link Crs}, and the model
 * tie point / pixel scale / transformation tags → a GDAL-style geotransform.
 *
 * CRSs are resolved, in order: an EPSG code (ProjectedCSTypeGeoKey / GeographicTypeGeoKey) that
 * geo-dino knows; an ESRI "PE string" (WKT) in the citation, as GDAL writes for ESRI CRSs; a
 * user-defined projection described by keys (transverse Mercator, Mercator, Lambert conformal
 * conic 1SP/2SP, Lambert azimuthal equal area, Albers, polar and oblique stereographic,
 * equirectangular, polyconic, sinusoidal) on a known datum or ellipsoid. Anything else keeps its
 * EPSG code and name but cannot be transformed (reading works; warping asks for a CRS override).
 */
import { crsFromEpsgOrNull, parseCrs, type Crs } from '../crs/crs.js';
import { registryLookup } from '../crs/registry.js';
import { type Ifd, tagNumbers, tagString } from './ifd.js';
import { Tag } from './tags.js';

export const GeoKey = {
  GTModelType: 1024,
  GTRasterType: 1025,
  GTCitation: 1026,
  GeographicType: 2048,
  GeogCitation: 2049,
  GeogGeodeticDatum: 2050,
  GeogPrimeMeridian: 2051,
  GeogLinearUnits: 2052,
  GeogAngularUnits: 2054,
  GeogEllipsoid: 2056,
  GeogSemiMajorAxis: 2057,
  GeogSemiMinorAxis: 2058,
  GeogInvFlattening: 2059,
  ProjectedCSType: 3072,
  PCSCitation: 3073,
  Projection: 3074,
  ProjCoordTrans: 3075,
  ProjLinearUnits: 3076,
  ProjLinearUnitSize: 3077,
  ProjStdParallel1: 3078,
  ProjStdParallel2: 3079,
  ProjNatOriginLong: 3080,
  ProjNatOriginLat: 3081,
  ProjFalseEasting: 3082,
  ProjFalseNorthing: 3083,
  ProjFalseOriginLong: 3084,
  ProjFalseOriginLat: 3085,
  ProjFalseOriginEasting: 3086,
  ProjFalseOriginNorthing: 3087,
  ProjCenterLong: 3088,
  ProjCenterLat: 3089,
  ProjCenterEasting: 3090,
  ProjCenterNorthing: 3091,
  ProjScaleAtNatOrigin: 3092,
  ProjScaleAtCenter: 3093,
  ProjAzimuthAngle: 3094,
  ProjStraightVertPoleLong: 3095,
  VerticalCSType: 4096,
} as const;

export type GeoKeyValue = number | string | number[];

export function parseGeoKeys(ifd: Ifd): Map<number, GeoKeyValue> {
  const keys = new Map<number, GeoKeyValue>();
  const dir = tagNumbers(ifd, Tag.GeoKeyDirectory);
  if (!dir || dir.length < 4) return keys;
  const doubles = tagNumbers(ifd, Tag.GeoDoubleParams) ?? [];
  const ascii = tagString(ifd, Tag.GeoAsciiParams) ?? '';
  const n = Math.min(dir[3]!, Math.floor((dir.length - 4) / 4));
  for (let i = 0; i < n; i++) {
    const [id, loc, count, value] = [dir[4 + i * 4]!, dir[5 + i * 4]!, dir[6 + i * 4]!, dir[7 + i * 4]!];
    if (loc === 0) keys.set(id, value);
    else if (loc === Tag.GeoDoubleParams) {
      const v = doubles.slice(value, value + count);
      if (v.length) keys.set(id, v.length === 1 ? v[0]! : v);
    } else if (loc === Tag.GeoAsciiParams) {
      keys.set(id, ascii.slice(value, value + count).replace(/\|$/, ''));
    } else if (loc === Tag.GeoKeyDirectory) {
      keys.set(id, dir.slice(value, value + count));
    }
  }
  return keys;
}

function num(keys: Map<number, GeoKeyValue>, id: number): number | undefined {
  const v = keys.get(id);
  return typeof v === 'number' ? v : Array.isArray(v) ? v[0] : undefined;
}

const DATUM_BY_GEOGCS: Record<number, string> = { 4326: '+datum=WGS84', 4269: '+datum=NAD83' };
const DATUM_BY_DATUM: Record<number, string> = {
  6326: '+datum=WGS84',
  6269: '+datum=NAD83',
  6258: '+ellps=GRS80 +towgs84=0,0,0,0,0,0,0',
  6283: '+ellps=GRS80 +towgs84=0,0,0,0,0,0,0',
  6674: '+ellps=GRS80 +towgs84=0,0,0,0,0,0,0',
  6140: '+ellps=GRS80 +towgs84=0,0,0,0,0,0,0',
  6167: '+ellps=GRS80 +towgs84=0,0,0,0,0,0,0',
};
const ELLIPSOIDS: Record<number, string> = {
  7030: '+ellps=WGS84',
  7019: '+ellps=GRS80',
  7008: '+ellps=clrk66',
  7004: '+ellps=bessel',
  7022: '+ellps=intl',
  7001: '+ellps=airy',
  7043: '+ellps=WGS72',
  7035: '+a=6371000 +b=6371000',
  7059: '+a=6378137 +b=6378137',
};

/** The datum/ellipsoid part of a PROJ string, or null when it cannot be told. */
function datumPart(keys: Map<number, GeoKeyValue>): string | null {
  const gcs = num(keys, GeoKey.GeographicType);
  if (gcs !== undefined && gcs !== 32767) {
    if (DATUM_BY_GEOGCS[gcs]) return DATUM_BY_GEOGCS[gcs];
    const row = registryLookup('EPSG', gcs);
    if (row && row.proj.startsWith('+proj=longlat ')) return row.proj.slice('+proj=longlat '.length).replace(/ \+no_defs$/, '');
    return null;
  }
  const datum = num(keys, GeoKey.GeogGeodeticDatum);
  if (datum !== undefined && DATUM_BY_DATUM[datum]) return DATUM_BY_DATUM[datum];
  const ell = num(keys, GeoKey.GeogEllipsoid);
  if (ell !== undefined && ELLIPSOIDS[ell]) return ELLIPSOIDS[ell] + (ell === 7030 || ell === 7019 ? ' +towgs84=0,0,0,0,0,0,0' : '');
  const a = num(keys, GeoKey.GeogSemiMajorAxis);
  if (a !== undefined) {
    const rf = num(keys, GeoKey.GeogInvFlattening);
    const b = num(keys, GeoKey.GeogSemiMinorAxis);
    const shape = rf !== undefined && rf > 0 ? `+a=${a} +rf=${rf}` : b !== undefined ? `+a=${a} +b=${b}` : `+a=${a} +b=${a}`;
    // Datum unknown: assume no shift to WGS 84 (what GDAL does for a bare ellipsoid).
    return `${shape} +towgs84=0,0,0,0,0,0,0`;
  }
  return null;
}

function linearToMetres(keys: Map<number, GeoKeyValue>): number {
  const u = num(keys, GeoKey.ProjLinearUnits);
  if (u === 9002) return 0.3048;
  if (u === 9003) return 1200 / 3937;
  if (u === 9036) return 1000;
  if (u === 32767) return num(keys, GeoKey.ProjLinearUnitSize) ?? 1;
  return 1;
}

function unitsPart(toMetre: number): string {
  if (toMetre === 1) return '+units=m';
  if (Math.abs(toMetre - 0.3048) < 1e-12) return '+units=ft';
  if (Math.abs(toMetre - 1200 / 3937) < 1e-12) return '+units=us-ft';
  return `+to_meter=${toMetre}`;
}

/** A PROJ string from user-defined projection keys, or null. */
function projectionFromKeys(keys: Map<number, GeoKeyValue>): string | null {
  const datum = datumPart(keys);
  if (!datum) return null;
  const toM = linearToMetres(keys);
  const angular = num(keys, GeoKey.GeogAngularUnits);
  const ang = angular === 9101 ? 180 / Math.PI : angular === 9105 ? 0.9 : 1;
  const a = (...ids: number[]): number | undefined => {
    for (const id of ids) {
      const v = num(keys, id);
      if (v !== undefined) return v * ang;
    }
    return undefined;
  };
  const lin = (...ids: number[]): number => {
    for (const id of ids) {
      const v = num(keys, id);
      if (v !== undefined) return v * toM; // PROJ's x_0/y_0 are always metres
    }
    return 0;
  };
  const K = GeoKey;
  const projection = num(keys, K.Projection);
  if (projection !== undefined && projection >= 16001 && projection <= 16060) return `+proj=utm +zone=${projection - 16000} ${datum} ${unitsPart(toM)}`;
  if (projection !== undefined && projection >= 16101 && projection <= 16160) return `+proj=utm +zone=${projection - 16100} +south ${datum} ${unitsPart(toM)}`;
  const ct = num(keys, K.ProjCoordTrans);
  const fe = lin(K.ProjFalseEasting, K.ProjFalseOriginEasting, K.ProjCenterEasting);
  const fn = lin(K.ProjFalseNorthing, K.ProjFalseOriginNorthing, K.ProjCenterNorthing);
  const tail = `+x_0=${fe} +y_0=${fn} ${datum} ${unitsPart(toM)}`;
  const lon0 = a(K.ProjNatOriginLong, K.ProjFalseOriginLong, K.ProjCenterLong, K.ProjStraightVertPoleLong) ?? 0;
  const lat0 = a(K.ProjNatOriginLat, K.ProjFalseOriginLat, K.ProjCenterLat) ?? 0;
  const k = num(keys, K.ProjScaleAtNatOrigin) ?? num(keys, K.ProjScaleAtCenter) ?? 1;
  switch (ct) {
    case 1:
      return `+proj=tmerc +lat_0=${lat0} +lon_0=${lon0} +k=${k} ${tail}`;
    case 7: {
      const ts = a(K.ProjStdParallel1);
      return ts !== undefined ? `+proj=merc +lon_0=${lon0} +lat_ts=${ts} ${tail}` : `+proj=merc +lon_0=${lon0} +k=${k} ${tail}`;
    }
    case 8:
      return `+proj=lcc +lat_1=${a(K.ProjStdParallel1) ?? lat0} +lat_2=${a(K.ProjStdParallel2) ?? lat0} +lat_0=${a(K.ProjFalseOriginLat, K.ProjNatOriginLat) ?? 0} +lon_0=${a(K.ProjFalseOriginLong, K.ProjNatOriginLong) ?? 0} ${tail}`;
    case 9:
      return `+proj=lcc +lat_1=${lat0} +lat_0=${lat0} +lon_0=${lon0} +k_0=${k} ${tail}`;
    case 10:
      return `+proj=laea +lat_0=${a(K.ProjCenterLat, K.ProjNatOriginLat) ?? 0} +lon_0=${a(K.ProjCenterLong, K.ProjNatOriginLong) ?? 0} ${tail}`;
    case 11:
      return `+proj=aea +lat_1=${a(K.ProjStdParallel1) ?? 0} +lat_2=${a(K.ProjStdParallel2) ?? 0} +lat_0=${a(K.ProjNatOriginLat, K.ProjFalseOriginLat, K.ProjCenterLat) ?? 0} +lon_0=${a(K.ProjNatOriginLong, K.ProjFalseOriginLong, K.ProjCenterLong) ?? 0} ${tail}`;
    case 15: {
      const ts = a(K.ProjNatOriginLat, K.ProjStdParallel1) ?? 90;
      const pole = ts < 0 ? -90 : 90;
      const vlon = a(K.ProjStraightVertPoleLong, K.ProjNatOriginLong) ?? 0;
      return Math.abs(Math.abs(ts) - 90) < 1e-9
        ? `+proj=stere +lat_0=${pole} +lon_0=${vlon} +k=${k} ${tail}`
        : `+proj=stere +lat_0=${pole} +lat_ts=${ts} +lon_0=${vlon} ${tail}`;
    }
    case 16:
      return `+proj=sterea +lat_0=${lat0} +lon_0=${lon0} +k=${k} ${tail}`;
    case 17:
      return `+proj=eqc +lat_ts=${a(K.ProjStdParallel1, K.ProjNatOriginLat, K.ProjCenterLat) ?? 0} +lon_0=${lon0} ${tail}`;
    case 22:
      return `+proj=poly +lat_0=${lat0} +lon_0=${lon0} ${tail}`;
    case 24:
      return `+proj=sinu +lon_0=${a(K.ProjCenterLong, K.ProjNatOriginLong) ?? 0} ${tail}`;
    default:
      return null;
  }
}

/** Drop a VERTCS[...] that ESRI nests inside PROJCS (proj4 cannot parse it; only x/y matter here). */
function withoutVertical(wkt: string): string {
  const i = wkt.search(/,\s*VERTCS\s*\[/);
  if (i < 0) return wkt;
  let depth = 0;
  for (let j = wkt.indexOf('[', i); j < wkt.length; j++) {
    if (wkt[j] === '[') depth++;
    else if (wkt[j] === ']' && --depth === 0) return wkt.slice(0, i) + wkt.slice(j + 1);
  }
  return wkt;
}

export interface Georef {
  crs: Crs | null;
  /** GTRasterTypeGeoKey = PixelIsPoint. */
  pixelIsPoint: boolean;
}

/** Resolve the CRS described by the GeoKeys of an IFD. */
export function crsFromGeoKeys(keys: Map<number, GeoKeyValue>): Georef {
  const pixelIsPoint = num(keys, GeoKey.GTRasterType) === 2;
  if (keys.size === 0) return { crs: null, pixelIsPoint };
  const model = num(keys, GeoKey.GTModelType);
  const pcs = num(keys, GeoKey.ProjectedCSType);
  const gcs = num(keys, GeoKey.GeographicType);
  const citations = [keys.get(GeoKey.PCSCitation), keys.get(GeoKey.GTCitation)].filter((v): v is string => typeof v === 'string' && v.length > 0);
  const citation = citations.find((c) => !c.includes('ESRI PE String')) ?? citations[0];

  const named = (code: number): Crs => crsFromEpsgOrNull(code) ?? { epsg: code, name: `EPSG:${code}`, definition: null, geographic: model === 2, metresPerUnit: 1 };

  if ((model === 1 || model === undefined) && pcs !== undefined && pcs > 0 && pcs < 32767) return { crs: named(pcs), pixelIsPoint };
  if (model === 2 || (model === undefined && pcs === undefined && gcs !== undefined)) {
    if (gcs !== undefined && gcs > 0 && gcs < 32767) return { crs: named(gcs), pixelIsPoint };
    const d = datumPart(keys);
    return { crs: d ? parseCrs(`+proj=longlat ${d}`, 'GeoKeys') : null, pixelIsPoint };
  }
  // User-defined projected CRS.
  const pe = citations.map((c) => /ESRI PE String = (.*)$/s.exec(c)).find((m) => m !== null);
  if (pe) {
    try {
      return { crs: parseCrs(withoutVertical(pe[1]!.trim()), 'ESRI PE string'), pixelIsPoint };
    } catch {
      // fall through to the keys
    }
  }
  const p = projectionFromKeys(keys);
  if (p) {
    const crs = parseCrs(p, 'GeoKeys');
    const name = citation?.split('|')[0]?.trim();
    return { crs: { ...crs, name: name && crs.epsg === null ? name : crs.name }, pixelIsPoint };
  }
  return { crs: { epsg: null, name: citation ?? 'user-defined CRS', definition: null, geographic: false, metresPerUnit: 1 }, pixelIsPoint };
}

export type GeoTransform = [number, number, number, number, number, number];

/** GDAL geotransform from ModelTransformation, or ModelTiepoint + ModelPixelScale. */
export function geoTransformOf(ifd: Ifd, pixelIsPoint: boolean): GeoTransform | null {
  let gt: GeoTransform | null = null;
  const m = tagNumbers(ifd, Tag.ModelTransformation);
  const tp = tagNumbers(ifd, Tag.ModelTiepoint);
  const sc = tagNumbers(ifd, Tag.ModelPixelScale);
  if (m && m.length >= 16) {
    gt = [m[3]!, m[0]!, m[1]!, m[7]!, m[4]!, m[5]!];
  } else if (tp && tp.length >= 6 && sc && sc.length >= 2) {
    const [i, j, , x, y] = tp as [number, number, number, number, number];
    const [sx, sy] = sc as [number, number];
    gt = [x - i * sx, sx, 0, y + j * sy, 0, -sy];
  }
  if (!gt || !gt.every(Number.isFinite)) return null;
  if (pixelIsPoint) {
    // The tie point refers to the pixel centre: move the origin to the corner (as GDAL does).
    gt = [gt[0] - 0.5 * gt[1] - 0.5 * gt[2], gt[1], gt[2], gt[3] - 0.5 * gt[4] - 0.5 * gt[5], gt[4], gt[5]];
  }
  return gt;
}
