/**
 * Coordinate reference systems: EPSG codes, PROJ strings and WKT, resolved to definitions proj4
 * can transform.
 *
 * Built in without any database: WGS 84 / UTM (EPSG:326xx north, 327xx south, computed),
 * Web Mercator (3857, also 900913/102100/102113), geographic WGS 84 (4326), and a bundled table
 * of common national and continental systems (`epsg-table.ts`, generated from PROJ's EPSG
 * database). Anything else: pass its PROJ string or WKT.
 */
import proj4 from 'proj4';
import { GeoDinoError } from '@geo-dino/core';
import { EPSG_TABLE } from './epsg-table.js';

export interface Crs {
  /** The EPSG code, when there is one. */
  epsg: number | null;
  /** Human name, e.g. "WGS 84 / UTM zone 33N". */
  name: string;
  /** What proj4 is given (a PROJ string or WKT); null when geo-dino cannot transform it. */
  definition: string | null;
  /** Longitude/latitude in degrees. */
  geographic: boolean;
  /** Metres per unit of the CRS's x/y (1 for metres; for geographic CRSs, metres per degree at the equator). */
  metresPerUnit: number;
}

const ALIASES_3857 = new Set([900913, 102100, 102113, 3785, 3587]);

function utmCode(code: number): { zone: number; south: boolean } | null {
  if (code >= 32601 && code <= 32660) return { zone: code - 32600, south: false };
  if (code >= 32701 && code <= 32760) return { zone: code - 32700, south: true };
  return null;
}

/** The CRS for an EPSG code, or null when it is not built in. */
export function crsFromEpsgOrNull(code: number): Crs | null {
  if (ALIASES_3857.has(code)) code = 3857;
  const utm = utmCode(code);
  if (utm) {
    return {
      epsg: code,
      name: `WGS 84 / UTM zone ${utm.zone}${utm.south ? 'S' : 'N'}`,
      definition: `+proj=utm +zone=${utm.zone}${utm.south ? ' +south' : ''} +datum=WGS84 +units=m +no_defs`,
      geographic: false,
      metresPerUnit: 1,
    };
  }
  const row = EPSG_TABLE[code];
  if (!row) return null;
  const geographic = /\+proj=longlat\b/.test(row[1]);
  return { epsg: code, name: row[0], definition: row[1] + ' +no_defs', geographic, metresPerUnit: geographic ? 111319.49079327357 : 1 };
}

/** The CRS for an EPSG code; E_BAD_CRS naming the code when it is not built in. */
export function crsFromEpsg(code: number, source = 'CRS'): Crs {
  const crs = crsFromEpsgOrNull(code);
  if (!crs) {
    throw new GeoDinoError(
      'E_BAD_CRS',
      `${source}: EPSG:${code} is not among the CRSs built into geo-dino (WGS 84 / UTM, Web Mercator, WGS 84 and ${Object.keys(EPSG_TABLE).length} others); give its PROJ string or WKT instead`,
      { details: { epsg: code, source } },
    );
  }
  return crs;
}

/** WGS 84 / UTM zone of a lon/lat position (standard 6° zones; no Norway/Svalbard exceptions). */
export function utmCrsFor(lon: number, lat: number): Crs {
  let l = ((((lon + 180) % 360) + 360) % 360) - 180;
  if (l === 180) l = -180;
  const zone = Math.min(60, Math.max(1, Math.floor((l + 180) / 6) + 1));
  return crsFromEpsg((lat >= 0 ? 32600 : 32700) + zone);
}

export const WGS84: Crs = crsFromEpsg(4326);
export const WEB_MERCATOR: Crs = crsFromEpsg(3857);

function epsgFromWkt(wkt: string): number | null {
  // The authority of the outermost object is the last AUTHORITY/ID before the final bracket.
  const re = /(?:AUTHORITY\s*\[\s*"EPSG"\s*,\s*"?(\d+)"?\s*\]|ID\s*\[\s*"EPSG"\s*,\s*(\d+)\s*\])\s*\]\s*$/i;
  const m = re.exec(wkt.trim());
  return m ? Number(m[1] ?? m[2]) : null;
}

function epsgFromProjString(p: string): number | null {
  const s = ` ${p.trim()} `;
  const utm = /\+proj=utm\b/.test(s) ? /\+zone=(\d+)/.exec(s) : null;
  if (utm && (/\+datum=WGS84\b/.test(s) || /\+ellps=WGS84\b/.test(s)) && !/\+towgs84=(?!0,0,0)/.test(s)) {
    const zone = Number(utm[1]);
    if (zone >= 1 && zone <= 60) return (/\+south\b/.test(s) ? 32700 : 32600) + zone;
  }
  if (/\+proj=longlat\b/.test(s) && /\+datum=WGS84\b/.test(s)) return 4326;
  if (/\+proj=merc\b/.test(s) && /\+a=6378137\b/.test(s) && /\+b=6378137\b/.test(s)) return 3857;
  return null;
}

function probe(definition: string, source: string): proj4.Converter {
  try {
    const conv = proj4(definition);
    conv.inverse([0, 0]); // forces parameter checks
    return conv;
  } catch (err) {
    throw new GeoDinoError('E_BAD_CRS', `${source}: proj4 cannot use this CRS definition: ${(err as Error)?.message ?? String(err)}`, {
      details: { source, definition: definition.slice(0, 200) },
      cause: err,
    });
  }
}

function unitsOf(definition: string): { geographic: boolean; metresPerUnit: number } {
  const p = new proj4.Proj(definition) as unknown as { projName?: string; to_meter?: number; units?: string };
  const geographic = p.projName === 'longlat' || p.projName === 'Geographic' || p.projName === 'Geocentric' ? p.projName !== 'Geocentric' : false;
  if (geographic) return { geographic, metresPerUnit: 111319.49079327357 };
  if (typeof p.to_meter === 'number' && p.to_meter > 0) return { geographic, metresPerUnit: p.to_meter };
  const u = (p.units ?? 'm').toLowerCase();
  const table: Record<string, number> = { m: 1, meter: 1, metre: 1, km: 1000, ft: 0.3048, foot: 0.3048, 'us-ft': 1200 / 3937, 'us survey foot': 1200 / 3937 };
  return { geographic, metresPerUnit: table[u] ?? 1 };
}

/**
 * Parse what a user or a file gives: `EPSG:32633` (or a bare number), a PROJ string
 * (`+proj=...`), or WKT (1 or 2). `source` names where it came from, for errors (e.g. `--crs`).
 */
export function parseCrs(text: string, source = 'CRS'): Crs {
  const t = text.trim();
  const m = /^(?:epsg:|urn:ogc:def:crs:epsg::?|urn:ogc:def:crs:epsg:[\d.]*:)?(\d{4,6})$/i.exec(t);
  if (m) return crsFromEpsg(Number(m[1]), source);
  if (/^\+proj=/.test(t) || /^proj=/.test(t)) {
    const def = t.startsWith('+') ? t : `+${t.replace(/\s+(?=\w+=|\w+\b)/g, ' +')}`;
    const epsg = epsgFromProjString(def);
    if (epsg !== null) return crsFromEpsg(epsg, source);
    probe(def, source);
    const u = unitsOf(def);
    return { epsg: null, name: def, definition: def, ...u };
  }
  if (/^(PROJCS|GEOGCS|PROJCRS|GEOGCRS|GEODCRS|PROJECTEDCRS|GEODETICCRS|COMPD_CS|COMPOUNDCRS|BOUNDCRS)\s*\[/i.test(t)) {
    const epsg = epsgFromWkt(t);
    const known = epsg !== null ? crsFromEpsgOrNull(epsg) : null;
    if (known) return known;
    probe(t, source);
    const name = /^\w+\s*\[\s*"([^"]*)"/.exec(t)?.[1] ?? 'custom CRS';
    return { epsg, name, definition: t, ...unitsOf(t) };
  }
  throw new GeoDinoError('E_BAD_CRS', `${source}: not a CRS: ${JSON.stringify(t.slice(0, 80))} (use EPSG:<code>, a PROJ string or WKT)`, {
    details: { source },
  });
}

export function crsLabel(crs: Crs): string {
  return crs.epsg !== null ? `EPSG:${crs.epsg} (${crs.name})` : crs.name.length > 80 ? crs.name.slice(0, 77) + '...' : crs.name;
}

export function sameCrs(a: Crs, b: Crs): boolean {
  if (a.epsg !== null && b.epsg !== null) return a.epsg === b.epsg;
  return a.definition !== null && a.definition === b.definition;
}

export interface Transform {
  /** from → to, in place on a pair; returns [NaN, NaN] where the transform is undefined. */
  forward(x: number, y: number): [number, number];
  inverse(x: number, y: number): [number, number];
}

const IDENTITY: Transform = { forward: (x, y) => [x, y], inverse: (x, y) => [x, y] };
const cache = new Map<string, Transform>();

function requireDefinition(crs: Crs, source: string): string {
  if (crs.definition === null) {
    throw new GeoDinoError('E_BAD_CRS', `${source}: ${crsLabel(crs)} cannot be transformed by geo-dino; give the CRS as a PROJ string or WKT`, {
      details: { source, epsg: crs.epsg },
    });
  }
  return crs.definition;
}

/** A transform between two CRSs (cached). */
export function transformBetween(from: Crs, to: Crs, source = 'transform'): Transform {
  if (sameCrs(from, to)) return IDENTITY;
  const a = requireDefinition(from, source);
  const b = requireDefinition(to, source);
  const key = `${a}\u0000${b}`;
  let t = cache.get(key);
  if (!t) {
    let conv: proj4.Converter;
    try {
      conv = proj4(a, b);
    } catch (err) {
      throw new GeoDinoError('E_BAD_CRS', `${source}: cannot transform ${crsLabel(from)} to ${crsLabel(to)}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
    const wrap = (f: (p: [number, number]) => number[]) => (x: number, y: number): [number, number] => {
      try {
        const r = f([x, y]);
        const rx = r[0]!;
        const ry = r[1]!;
        return Number.isFinite(rx) && Number.isFinite(ry) ? [rx, ry] : [NaN, NaN];
      } catch {
        return [NaN, NaN];
      }
    };
    t = { forward: wrap((p) => conv.forward(p)), inverse: wrap((p) => conv.inverse(p)) };
    if (cache.size > 256) cache.clear();
    cache.set(key, t);
  }
  return t;
}
