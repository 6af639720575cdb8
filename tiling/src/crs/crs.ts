/**
 * Coordinate reference systems: every EPSG and ESRI CRS in PROJ's database (that proj4 can run),
 * in the spellings users write, plus PROJ strings, WKT 1/2 and PROJJSON, resolved to definitions
 * proj4 can transform.
 *
 * The table (`epsg-table.ts`) is generated from PROJ's database by
 * `tiling/scripts/make-epsg-table.py`, with the datum shift to WGS 84 that PROJ itself picks at
 * the centre of each CRS's area of use (see tiling/README.md, "CRSs").
 */
import proj4 from 'proj4';
import { GeoDinoError } from '@geo-dino/core';
import { utmZoneOf } from '@geo-dino/geometry';
import { closestByName, registryLookup, type Authority, type RegistryEntry } from './registry.js';

export interface Crs {
  /** The EPSG code, when there is one. */
  epsg: number | null;
  /** Human name, e.g. "WGS 84 / UTM zone 33N". */
  name: string;
  /** What proj4 is given (a PROJ string, WKT or PROJJSON text); null when geo-dino cannot transform it. */
  definition: string | null;
  /** Longitude/latitude in degrees. */
  geographic: boolean;
  /** Metres per unit of the CRS's x/y (1 for metres; for geographic CRSs, metres per degree at the equator). */
  metresPerUnit: number;
  /** Authority and code when it is not EPSG (e.g. "ESRI:102022"). */
  id?: string;
  /** True when PROJ uses a grid or a chain of operations to WGS 84 and geo-dino a Helmert approximation (metres). */
  approximateDatumShift?: boolean;
}

const ALIASES_3857 = new Set([900913, 102100, 102113, 3785, 3587]);
/** OGC's longitude-first geographic CRSs (CRS84 = WGS 84, CRS83 = NAD83, CRS27 = NAD27). */
const OGC_CRS: Record<string, number> = { crs84: 4326, crs83: 4269, crs27: 4267 };
const DEGREE_METRES = 111319.49079327357;

function crsOfEntry(e: RegistryEntry): Crs {
  const geographic = /^\+proj=longlat\b/.test(e.proj);
  return {
    epsg: e.authority === 'EPSG' ? e.code : null,
    name: e.name,
    definition: e.proj,
    geographic,
    metresPerUnit: geographic ? DEGREE_METRES : unitsOf(e.proj).metresPerUnit,
    ...(e.authority === 'EPSG' ? {} : { id: `${e.authority}:${e.code}` }),
    ...(e.approximate ? { approximateDatumShift: true } : {}),
  };
}

/** The CRS for an EPSG code, or null when PROJ's database has none that proj4 can run. */
export function crsFromEpsgOrNull(code: number): Crs | null {
  if (ALIASES_3857.has(code)) code = 3857;
  const e = registryLookup('EPSG', code);
  return e ? crsOfEntry(e) : null;
}

function unknownCode(auth: Authority, code: number, source: string, text?: string): GeoDinoError {
  const other: Authority = auth === 'EPSG' ? 'ESRI' : 'EPSG';
  const alt = registryLookup(other, code);
  const hint = alt ? `; did you mean ${other}:${code} (${alt.name})?` : '; give its WKT or PROJ string instead';
  const what = text !== undefined && text !== `${auth}:${code}` ? `${JSON.stringify(text)} (${auth}:${code})` : `${auth}:${code}`;
  return new GeoDinoError(
    'E_BAD_CRS',
    `${source}: ${what} is not a CRS in PROJ's database that geo-dino can transform (unknown or deprecated code, or a projection proj4 does not implement)${hint}`,
    { details: { source, authority: auth, code } },
  );
}

/** The CRS for an EPSG code; E_BAD_CRS naming the code when PROJ's database has none geo-dino can use. */
export function crsFromEpsg(code: number, source = 'CRS'): Crs {
  const crs = crsFromEpsgOrNull(code);
  if (!crs) throw unknownCode('EPSG', code, source);
  return crs;
}

function crsFromAuthority(auth: Authority, code: number, source: string, text: string): Crs {
  if (auth === 'EPSG') {
    const crs = crsFromEpsgOrNull(code);
    if (!crs) throw unknownCode('EPSG', code, source, text);
    return crs;
  }
  if (ALIASES_3857.has(code)) return crsFromEpsg(3857, source);
  const e = registryLookup('ESRI', code);
  if (!e) throw unknownCode('ESRI', code, source, text);
  return crsOfEntry(e);
}

/** WGS 84 / UTM zone of a lon/lat position (standard 6° zones; no Norway/Svalbard exceptions). */
export function utmCrsFor(lon: number, lat: number): Crs {
  return crsFromEpsg(utmZoneOf(lon, lat).epsg);
}

export const WGS84: Crs = crsFromEpsg(4326);
export const WEB_MERCATOR: Crs = crsFromEpsg(3857);

/** Authority and code of the outermost object of a WKT 1 or 2 string. */
function idFromWkt(wkt: string): { auth: Authority; code: number } | null {
  // The authority of the outermost object is the last AUTHORITY/ID before the final bracket.
  const re = /(?:AUTHORITY\s*\[\s*"(EPSG|ESRI)"\s*,\s*"?(\d+)"?\s*\]|ID\s*\[\s*"(EPSG|ESRI)"\s*,\s*"?(\d+)"?\s*(?:,[^\]]*)?\])\s*\]\s*$/i;
  const m = re.exec(wkt.trim());
  if (!m) return null;
  return { auth: (m[1] ?? m[3])!.toUpperCase() as Authority, code: Number(m[2] ?? m[4]) };
}

function epsgFromProjString(p: string): number | null {
  const s = ` ${p.trim()} `;
  const init = /\+init=epsg:(\d+)\b/i.exec(s);
  if (init) return Number(init[1]);
  const utm = /\+proj=utm\b/.test(s) ? /\+zone=(\d+)/.exec(s) : null;
  if (utm && (/\+datum=WGS84\b/.test(s) || /\+ellps=WGS84\b/.test(s)) && !/\+towgs84=(?!0,0,0)/.test(s)) {
    const zone = Number(utm[1]);
    if (zone >= 1 && zone <= 60) return (/\+south\b/.test(s) ? 32700 : 32600) + zone;
  }
  if (/\+proj=longlat\b/.test(s) && /\+datum=WGS84\b/.test(s)) return 4326;
  if (/\+proj=merc\b/.test(s) && /\+a=6378137\b/.test(s) && /\+b=6378137\b/.test(s)) return 3857;
  return null;
}

type Proj4Input = Parameters<typeof proj4.Proj>[0];

/** What proj4 takes for a definition: PROJJSON text is parsed, strings are passed as they are. */
function proj4Input(definition: string): Proj4Input {
  return definition.startsWith('{') ? (JSON.parse(definition) as Proj4Input) : definition;
}

function probe(definition: string, source: string): void {
  try {
    const conv = proj4(proj4Input(definition) as string);
    conv.inverse([0, 0]); // forces parameter checks
  } catch (err) {
    throw new GeoDinoError('E_BAD_CRS', `${source}: proj4 cannot use this CRS definition: ${(err as Error)?.message ?? String(err)}`, {
      details: { source, definition: definition.slice(0, 200) },
      cause: err,
    });
  }
}

function unitsOf(definition: string): { geographic: boolean; metresPerUnit: number } {
  const p = new proj4.Proj(proj4Input(definition) as string) as unknown as { projName?: string; to_meter?: number; units?: string };
  const geographic = p.projName === 'longlat' || p.projName === 'Geographic' || p.projName === 'Geocentric' ? p.projName !== 'Geocentric' : false;
  if (geographic) return { geographic, metresPerUnit: DEGREE_METRES };
  if (typeof p.to_meter === 'number' && p.to_meter > 0) return { geographic, metresPerUnit: p.to_meter };
  const u = (p.units ?? 'm').toLowerCase();
  const table: Record<string, number> = { m: 1, meter: 1, metre: 1, km: 1000, ft: 0.3048, foot: 0.3048, 'us-ft': 1200 / 3937, 'us survey foot': 1200 / 3937 };
  return { geographic, metresPerUnit: table[u] ?? 1 };
}

/** `EPSG:n`, `epsg::n`, `n`, URNs and OGC URLs: the authority and code, or null. */
function authorityCode(t: string): { auth: Authority; code: number } | { ogc: number } | null {
  let m = /^(?:(epsg|esri)\s*::?\s*)?(\d{4,6})$/i.exec(t);
  if (m) return { auth: (m[1]?.toUpperCase() ?? 'EPSG') as Authority, code: Number(m[2]) };
  m = /^urn:ogc:def:crs:(epsg|esri):[\w.]*:(\d+)$/i.exec(t);
  if (m) return { auth: m[1]!.toUpperCase() as Authority, code: Number(m[2]) };
  m = /^https?:\/\/www\.opengis\.net\/def\/crs\/(epsg|esri)\/[\w.]+\/(\d+)\/?$/i.exec(t);
  if (m) return { auth: m[1]!.toUpperCase() as Authority, code: Number(m[2]) };
  m = /^(?:ogc:|crs:|urn:ogc:def:crs:ogc:[\w.]*:|https?:\/\/www\.opengis\.net\/def\/crs\/ogc\/[\w.]+\/)?(crs)?(84|83|27)\/?$/i.exec(t);
  if (m && (m[1] || /^(ogc:|crs:)/i.test(t) || /^(urn|http)/i.test(t)) && !/^\d+$/.test(t)) return { ogc: OGC_CRS[`crs${m[2]}`]! };
  return null;
}

/** The closest form geo-dino understands for a string it does not, or null. */
function suggestionFor(t: string): string | null {
  const digits = /(?:^|[^\d])(\d{4,6})(?:[^\d]|$)/.exec(t);
  if (digits) {
    const code = Number(digits[1]);
    const esri = /esri/i.test(t) ? registryLookup('ESRI', code) : null;
    const e = esri ?? registryLookup('EPSG', code) ?? registryLookup('ESRI', code);
    if (e) return `${e.authority}:${e.code} (${e.name})`;
  }
  if (/^wgs\s*-?\s*84$/i.test(t)) return 'EPSG:4326 (WGS 84) or OGC:CRS84';
  if (/web\s*-?\s*mercator|pseudo\s*-?\s*mercator|google/i.test(t)) return 'EPSG:3857 (WGS 84 / Pseudo-Mercator)';
  const utm = /^(?:wgs\s*84\W*)?utm\W*(?:zone\W*)?(\d{1,2})\s*([ns])$/i.exec(t);
  if (utm && Number(utm[1]) >= 1 && Number(utm[1]) <= 60) {
    const code = (utm[2]!.toLowerCase() === 's' ? 32700 : 32600) + Number(utm[1]);
    return `EPSG:${code} (${registryLookup('EPSG', code)?.name ?? 'WGS 84 / UTM'})`;
  }
  if (t.length <= 120) {
    const e = closestByName(t);
    if (e) return `${e.authority}:${e.code} (${e.name})`;
  }
  return null;
}

/**
 * Parse what a user or a file gives: `EPSG:32633`, `epsg:32633`, a bare `32633`, `ESRI:102022`,
 * `urn:ogc:def:crs:EPSG::32633`, `http://www.opengis.net/def/crs/EPSG/0/32633`, `OGC:CRS84`
 * (and its URN/URL forms), a PROJ string (`+proj=...`, `+init=epsg:n`), WKT 1 or 2, or PROJJSON.
 * `source` names where it came from, for errors (e.g. `--crs`).
 */
export function parseCrs(text: string, source = 'CRS'): Crs {
  const t = text.trim();
  const ac = authorityCode(t);
  if (ac) return 'ogc' in ac ? crsFromEpsg(ac.ogc, source) : crsFromAuthority(ac.auth, ac.code, source, t);
  if (/^\+?proj=/.test(t) || /^\+init=/.test(t)) {
    const def = t.startsWith('+') ? t : `+${t.replace(/\s+(?=\w+=|\w+\b)/g, ' +')}`;
    const epsg = epsgFromProjString(def);
    if (epsg !== null) return crsFromEpsg(epsg, source);
    probe(def, source);
    const u = unitsOf(def);
    return { epsg: null, name: def, definition: def, ...u };
  }
  if (/^(PROJCS|GEOGCS|PROJCRS|GEOGCRS|GEODCRS|PROJECTEDCRS|GEODETICCRS|COMPD_CS|COMPOUNDCRS|BOUNDCRS)\s*\[/i.test(t)) {
    const id = idFromWkt(t);
    const known = id ? registryLookup(id.auth, id.code) : null;
    if (known) return crsOfEntry(known);
    probe(t, source);
    const name = /^\w+\s*\[\s*"([^"]*)"/.exec(t)?.[1] ?? 'custom CRS';
    return { epsg: id?.auth === 'EPSG' ? id.code : null, name, definition: t, ...unitsOf(t) };
  }
  if (t.startsWith('{')) return parseProjJson(t, source);
  const hint = suggestionFor(t);
  throw new GeoDinoError(
    'E_BAD_CRS',
    `${source}: not a CRS: ${JSON.stringify(t.length > 80 ? t.slice(0, 77) + '...' : t)} (${hint ? `did you mean ${hint}? ` : ''}use EPSG:<code>, ESRI:<code>, OGC:CRS84, a URN or OGC URL, a PROJ string, WKT or PROJJSON)`,
    { details: { source, ...(hint ? { suggestion: hint } : {}) } },
  );
}

function parseProjJson(t: string, source: string): Crs {
  let json: unknown;
  try {
    json = JSON.parse(t);
  } catch (err) {
    throw new GeoDinoError('E_BAD_CRS', `${source}: looks like PROJJSON but is not valid JSON: ${(err as Error).message}`, { details: { source }, cause: err });
  }
  const obj = json as { type?: unknown; name?: unknown; id?: { authority?: unknown; code?: unknown }; ids?: { authority?: unknown; code?: unknown }[] };
  if (typeof obj !== 'object' || obj === null || typeof obj.type !== 'string') {
    throw new GeoDinoError('E_BAD_CRS', `${source}: PROJJSON needs a "type" (e.g. "ProjectedCRS")`, { details: { source } });
  }
  const id = obj.id ?? obj.ids?.[0];
  if (id && typeof id.authority === 'string' && /^(EPSG|ESRI)$/i.test(id.authority) && (typeof id.code === 'number' || typeof id.code === 'string')) {
    const e = registryLookup(id.authority.toUpperCase() as Authority, Number(id.code));
    if (e) return crsOfEntry(e);
  }
  probe(t, source);
  const name = typeof obj.name === 'string' ? obj.name : 'custom CRS';
  return { epsg: null, name, definition: t, ...unitsOf(t) };
}

export function crsLabel(crs: Crs): string {
  if (crs.id !== undefined) return `${crs.id} (${crs.name})`;
  return crs.epsg !== null ? `EPSG:${crs.epsg} (${crs.name})` : crs.name.length > 80 ? crs.name.slice(0, 77) + '...' : crs.name;
}

export function sameCrs(a: Crs, b: Crs): boolean {
  if (a.epsg !== null && b.epsg !== null) return a.epsg === b.epsg;
  if (a.id !== undefined && b.id !== undefined) return a.id === b.id;
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
      conv = proj4(proj4Input(a) as string, proj4Input(b) as string);
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
