/**
 * Lookup in the CRS table generated from PROJ's database (`epsg-table.ts`, made by
 * `tiling/scripts/make-epsg-table.py`). The table is one string per authority, indexed on first use.
 */
import { EPSG_ROWS, ESRI_ROWS, PROJ_DB_VERSION } from './epsg-table.js';

export type Authority = 'EPSG' | 'ESRI';

export interface RegistryEntry {
  authority: Authority;
  code: number;
  name: string;
  /** PROJ string for proj4 (with +no_defs), datum shift to WGS 84 explicit. */
  proj: string;
  /** True where PROJ itself uses a grid or a chain of operations to WGS 84 and the table keeps the most accurate Helmert. */
  approximate: boolean;
}

const indexes = new Map<Authority, Map<number, string>>();

function index(auth: Authority): Map<number, string> {
  let m = indexes.get(auth);
  if (!m) {
    m = new Map();
    for (const line of (auth === 'EPSG' ? EPSG_ROWS : ESRI_ROWS).split('\n')) {
      const tab = line.indexOf('\t');
      if (tab > 0) m.set(Number(line.slice(0, tab)), line);
    }
    indexes.set(auth, m);
  }
  return m;
}

function entryOf(auth: Authority, line: string): RegistryEntry {
  const [code, flag, name, proj] = line.split('\t') as [string, string, string, string];
  return { authority: auth, code: Number(code), name, proj: `${proj} +no_defs`, approximate: flag === '~' };
}

/** The table entry for a code, or null when PROJ's database has no such CRS that proj4 can run. */
export function registryLookup(auth: Authority, code: number): RegistryEntry | null {
  const line = index(auth).get(code);
  return line === undefined ? null : entryOf(auth, line);
}

/** All codes of an authority in the table, ascending. */
export function registryCodes(auth: Authority): number[] {
  return [...index(auth).keys()];
}

/** Version of PROJ's database the table was generated from (EPSG registry version included). */
export const CRS_REGISTRY_VERSION: Readonly<Record<string, string>> = PROJ_DB_VERSION;

const normalise = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]+/g, '');

function levenshtein(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) > cap) return cap + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      if (v < best) best = v;
    }
    if (best > cap) return cap + 1;
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The registry entry whose name is closest to `text` (case, spaces and punctuation ignored), or
 * null when nothing is close. Used to suggest a form for a string geo-dino does not understand.
 */
export function closestByName(text: string): RegistryEntry | null {
  const want = normalise(text);
  if (want.length < 3) return null;
  const cap = Math.max(1, Math.floor(want.length / 5));
  let best: { d: number; auth: Authority; line: string } | null = null;
  for (const auth of ['EPSG', 'ESRI'] as const) {
    for (const line of index(auth).values()) {
      const name = line.split('\t')[2]!;
      const d = levenshtein(want, normalise(name), best ? Math.min(best.d - 1, cap) : cap);
      if (d <= cap && (!best || d < best.d)) best = { d, auth, line };
      if (best?.d === 0) return entryOf(best.auth, best.line);
    }
  }
  return best ? entryOf(best.auth, best.line) : null;
}
