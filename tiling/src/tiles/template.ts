/**
 * XYZ/TMS URL templates (`xyz:https://host/{z}/{x}/{y}.jpg`) and redaction of the secrets a tile
 * URL may carry.
 *
 * Placeholders: `{z}`, `{x}`, `{y}` (XYZ, row 0 at the top), `{-y}` (TMS, row 0 at the bottom),
 * `{q}` (Bing-style quadkey), `{s}` (a subdomain, `a`, `b`, `c` unless given as `{s:1234}` or
 * `{switch:a,b,c}`, chosen per tile so a tile always has the same URL). API keys go in the query
 * string as the service wants them; headers (`Authorization`) through the HTTP options.
 */
import { GeoDinoError, SECRET_PARAM, redactUrl } from '@geo-dino/core';

export const TILE_SERVICE_PREFIX = /^(xyz|wmts):/i;

/** True for `xyz:` and `wmts:` imagery strings. */
export function isTileServiceHref(s: string): boolean {
  return TILE_SERVICE_PREFIX.test(s.trim());
}

export interface XyzTemplate {
  /** The template with the subdomain placeholder normalised to `{s}`. */
  url: string;
  subdomains: string[];
}

const SUBDOMAINS = /\{(?:s|switch)(?::([^}]*))?\}/i;

function badTemplate(source: string, template: string, what: string): GeoDinoError {
  return new GeoDinoError('E_ARGUMENT', `${source}: ${redactTileUrl(template)}: ${what}`, { details: { field: source } });
}

/** Parse the template of `xyz:<template>` (without the prefix). */
export function parseXyzTemplate(template: string, source = '--imagery'): XyzTemplate {
  const t = template.trim();
  if (!/^https?:\/\/[^/{}]+/i.test(t) && !/^https?:\/\/\{(?:s|switch)/i.test(t)) throw badTemplate(source, t, 'an XYZ template must be an http(s) URL');
  const m = SUBDOMAINS.exec(t);
  let subdomains: string[] = [];
  let url = t;
  if (m) {
    const list = m[1];
    subdomains = list === undefined ? ['a', 'b', 'c'] : list.includes(',') ? list.split(',').map((x) => x.trim()) : [...list];
    if (!subdomains.length || subdomains.some((x) => !/^[a-z0-9-]+$/i.test(x))) throw badTemplate(source, t, `invalid subdomain list ${JSON.stringify(list)}`);
    url = t.replace(SUBDOMAINS, '{s}');
  }
  const has = (p: string): boolean => url.includes(p);
  if (!has('{q}') && !(has('{z}') && has('{x}') && (has('{y}') || has('{-y}')))) {
    throw badTemplate(source, t, 'needs {z}, {x} and {y} (or {-y} for TMS), or {q} for quadkeys');
  }
  const unknown = /\{([^}]*)\}/g;
  for (let u = unknown.exec(url); u; u = unknown.exec(url)) {
    if (!['z', 'x', 'y', '-y', 'q', 's'].includes(u[1]!)) throw badTemplate(source, t, `unknown placeholder {${u[1]}} (known: {z} {x} {y} {-y} {q} {s})`);
  }
  return { url, subdomains };
}

/** The quadkey of a tile (Bing Maps tile system). */
export function quadkey(z: number, x: number, y: number): string {
  let q = '';
  for (let i = z; i > 0; i--) {
    const mask = 1 << (i - 1);
    q += String((x & mask ? 1 : 0) + (y & mask ? 2 : 0));
  }
  return q;
}

/** The URL of tile (x, y) at zoom z (XYZ numbering: row 0 at the top). */
export function xyzTileUrl(t: XyzTemplate, z: number, x: number, y: number): string {
  return t.url.replace(/\{(z|x|y|-y|q|s)\}/g, (_, k: string) => {
    switch (k) {
      case 'z':
        return String(z);
      case 'x':
        return String(x);
      case 'y':
        return String(y);
      case '-y':
        return String(2 ** z - 1 - y);
      case 'q':
        return quadkey(z, x, y);
      default:
        return t.subdomains[(x + y) % t.subdomains.length]!;
    }
  });
}

export { SECRET_PARAM };

/**
 * A tile URL or template with its secrets replaced by `***` (core's `redactUrl`, which edits the
 * text, so placeholders stay as they are), also behind an `xyz:`/`wmts:` prefix.
 */
export function redactTileUrl(url: string): string {
  const prefix = TILE_SERVICE_PREFIX.exec(url)?.[0] ?? '';
  return prefix + redactUrl(url.slice(prefix.length));
}
