/**
 * OGC WMTS 1.0 GetCapabilities: the layers, their tile matrix sets (in any CRS geo-dino can
 * transform), formats, styles, limits, tile URLs (RESTful `ResourceURL` templates or KVP
 * GetTile) and the attribution the service declares.
 */
import { XMLParser } from 'fast-xml-parser';
import { GeoDinoError } from '@geo-dino/core';
import { crsFromEpsgOrNull, type Crs } from '../crs/crs.js';
import type { TileMatrix, TileMatrixSet } from './matrix.js';
import { redactTileUrl, SECRET_PARAM } from './template.js';

export interface WmtsChoice {
  layer?: string;
  tileMatrixSet?: string;
  style?: string;
  /** MIME type, e.g. image/jpeg (default: JPEG, else PNG, else WebP). */
  format?: string;
}

export interface WmtsService {
  layer: string;
  title: string | null;
  style: string;
  format: string;
  set: TileMatrixSet;
  /** What the service declares: provider name and access constraints, when given. */
  attribution: string | null;
  /** The tile URL template or KVP base, redacted, for provenance. */
  template: string;
  tileUrl(matrix: TileMatrix, col: number, row: number): string;
}

type Node = Record<string, unknown>;

const ARRAYS = new Set(['Layer', 'TileMatrixSet', 'TileMatrix', 'TileMatrixSetLink', 'TileMatrixLimits', 'ResourceURL', 'Format', 'Style', 'Operation', 'Get', 'Dimension', 'Value', 'Constraint']);

const IMAGE_FORMATS = ['image/jpeg', 'image/jpg', 'image/png', 'image/webp'];

/** EPSG axis order is northing first for these projected CRSs (WMTS TopLeftCorner follows it). */
const NORTHING_FIRST = new Set([3034, 3035, 3006, 2056, 21781, 31466, 31467, 31468, 31469, 5514]);

function text(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' || typeof v === 'number') return String(v).trim();
  if (Array.isArray(v)) return text(v[0]);
  if (typeof v === 'object' && '#text' in (v as Node)) return text((v as Node)['#text']);
  return null;
}

function list(v: unknown): Node[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is Node => typeof x === 'object' && x !== null);
}

function strings(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map(text).filter((x): x is string => !!x);
}

/** The EPSG code and axis order of a WMTS SupportedCRS string. */
export function wmtsCrs(s: string): { crs: Crs; lonFirst: boolean } | null {
  const t = s.trim();
  if (/CRS:?84$/i.test(t)) return { crs: crsFromEpsgOrNull(4326)!, lonFirst: true };
  const m = /EPSG[^\d]*(?:[\d.]*[:/])*(\d+)$/i.exec(t);
  if (!m) return null;
  const code = Number(m[1]);
  const crs = crsFromEpsgOrNull(code);
  if (!crs) return null;
  return { crs, lonFirst: !(crs.geographic || NORTHING_FIRST.has(code)) };
}

function fail(url: string, what: string): GeoDinoError {
  return new GeoDinoError('E_BAD_RASTER', `${redactTileUrl(url)}: ${what}`, { details: { url: redactTileUrl(url) } });
}

function argError(field: string, url: string, what: string): GeoDinoError {
  return new GeoDinoError('E_ARGUMENT', `${field}: ${what} (in ${redactTileUrl(url)})`, { details: { field } });
}

function absolute(href: string, base: string): string {
  if (/^https?:\/\//i.test(href)) return href;
  const b = new URL(base);
  if (href.startsWith('/')) return `${b.origin}${href}`;
  return `${b.origin}${b.pathname.replace(/[^/]*$/, '')}${href}`;
}

/** Query parameters of the capabilities URL that look like keys, to repeat on tile URLs that lack them. */
function secretParams(url: string): [string, string][] {
  try {
    return [...new URL(url).searchParams].filter(([k]) => SECRET_PARAM.test(k));
  } catch {
    return [];
  }
}

function withParams(url: string, params: [string, string][]): string {
  const missing = params.filter(([k]) => !new RegExp(`[?&]${k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}=`, 'i').test(url));
  if (!missing.length) return url;
  return url + (url.includes('?') ? '&' : '?') + missing.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

function matrixSetOf(node: Node, url: string): TileMatrixSet | null {
  const id = text(node['Identifier']) ?? '';
  const crsText = text(node['SupportedCRS']) ?? '';
  const c = wmtsCrs(crsText);
  if (!c) return null;
  const matrices: TileMatrix[] = list(node['TileMatrix']).map((m) => {
    const mid = text(m['Identifier']) ?? '';
    const scale = Number(text(m['ScaleDenominator']));
    const corner = (text(m['TopLeftCorner']) ?? '').split(/\s+/).map(Number);
    const tw = Number(text(m['TileWidth']));
    const th = Number(text(m['TileHeight']));
    const mw = Number(text(m['MatrixWidth']));
    const mh = Number(text(m['MatrixHeight']));
    if (!(scale > 0) || corner.length !== 2 || corner.some((v) => !Number.isFinite(v)) || !(tw > 0 && tw <= 4096) || !(th > 0 && th <= 4096) || !(mw > 0) || !(mh > 0)) {
      throw fail(url, `TileMatrixSet ${id}: TileMatrix ${mid} is incomplete or invalid`);
    }
    const [a, b] = corner as [number, number];
    return {
      id: mid,
      // OGC's standardised rendering pixel: 0.28 mm.
      resolution: (scale * 0.00028) / c.crs.metresPerUnit,
      x0: c.lonFirst ? a : b,
      y0: c.lonFirst ? b : a,
      tileWidth: tw,
      tileHeight: th,
      matrixWidth: mw,
      matrixHeight: mh,
      limits: null,
    };
  });
  if (!matrices.length) throw fail(url, `TileMatrixSet ${id} has no TileMatrix`);
  matrices.sort((p, q) => q.resolution - p.resolution);
  return { id, crs: c.crs, matrices };
}

/** Parse a capabilities document and pick the layer, tile matrix set, style and format. */
export function parseWmtsCapabilities(xml: string, url: string, choice: WmtsChoice = {}): WmtsService {
  let doc: Node;
  try {
    const parser = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '@_',
      removeNSPrefix: true,
      processEntities: false,
      parseTagValue: false,
      parseAttributeValue: false,
      trimValues: true,
      isArray: (name) => ARRAYS.has(name),
    });
    doc = parser.parse(xml) as Node;
  } catch (err) {
    throw fail(url, `not a WMTS capabilities document: ${(err as Error).message}`);
  }
  const caps = doc['Capabilities'] as Node | undefined;
  if (!caps || typeof caps !== 'object') {
    const root = Object.keys(doc).find((k) => !k.startsWith('?'));
    throw fail(url, `not a WMTS capabilities document (root element ${root ?? 'none'}${/<html/i.test(xml.slice(0, 512)) ? ', an HTML page' : ''})`);
  }
  const contents = (caps['Contents'] ?? {}) as Node;
  const layers = list(contents['Layer']);
  if (!layers.length) throw fail(url, 'the capabilities list no layer');
  const layerIds = layers.map((l) => text(l['Identifier']) ?? '');
  let layer: Node;
  if (choice.layer !== undefined) {
    const i = layerIds.indexOf(choice.layer);
    if (i < 0) throw argError('--layer', url, `no layer ${JSON.stringify(choice.layer)}; the service has ${layerIds.slice(0, 20).join(', ')}${layerIds.length > 20 ? ', …' : ''}`);
    layer = layers[i]!;
  } else if (layers.length === 1) layer = layers[0]!;
  else throw argError('--layer', url, `the service has ${layers.length} layers, choose one: ${layerIds.slice(0, 20).join(', ')}${layerIds.length > 20 ? ', …' : ''}`);
  const layerId = text(layer['Identifier']) ?? '';

  // Tile matrix sets linked to the layer, in a CRS geo-dino knows.
  const sets = new Map<string, Node>();
  for (const s of list(contents['TileMatrixSet'])) sets.set(text(s['Identifier']) ?? '', s);
  const links = list(layer['TileMatrixSetLink']);
  const linkIds = links.map((l) => text(l['TileMatrixSet']) ?? '');
  let chosen: { set: TileMatrixSet; link: Node } | null = null;
  if (choice.tileMatrixSet !== undefined) {
    const i = linkIds.indexOf(choice.tileMatrixSet);
    if (i < 0) throw argError('--tile-matrix-set', url, `layer ${layerId} has no tile matrix set ${JSON.stringify(choice.tileMatrixSet)} (it has ${linkIds.join(', ')})`);
    const node = sets.get(choice.tileMatrixSet);
    if (!node) throw fail(url, `tile matrix set ${choice.tileMatrixSet} is linked but not defined`);
    const set = matrixSetOf(node, url);
    if (!set) throw argError('--tile-matrix-set', url, `tile matrix set ${choice.tileMatrixSet}: its CRS ${text(node['SupportedCRS'])} is not built into geo-dino`);
    chosen = { set, link: links[i]! };
  } else {
    const usable: { set: TileMatrixSet; link: Node }[] = [];
    links.forEach((link, i) => {
      const node = sets.get(linkIds[i]!);
      const set = node ? matrixSetOf(node, url) : null;
      if (set) usable.push({ set, link });
    });
    chosen = usable.find((u) => u.set.crs.epsg === 3857) ?? usable[0] ?? null;
    if (!chosen) throw argError('--tile-matrix-set', url, `layer ${layerId}: none of its tile matrix sets (${linkIds.join(', ')}) is in a CRS built into geo-dino`);
  }
  const set = chosen.set;
  // Limits of the layer in each matrix.
  const limits = list((chosen.link['TileMatrixSetLimits'] as Node | undefined)?.['TileMatrixLimits']);
  for (const l of limits) {
    const m = set.matrices.find((x) => x.id === text(l['TileMatrix']));
    if (!m) continue;
    const v = ['MinTileCol', 'MaxTileCol', 'MinTileRow', 'MaxTileRow'].map((k) => Number(text(l[k])));
    if (v.every((x) => Number.isInteger(x) && x >= 0)) m.limits = { minCol: v[0]!, maxCol: v[1]!, minRow: v[2]!, maxRow: v[3]! };
  }

  const styles = list(layer['Style']);
  const style = choice.style ?? text((styles.find((s) => String(s['@_isDefault']).toLowerCase() === 'true') ?? styles[0])?.['Identifier']) ?? 'default';
  const resources = list(layer['ResourceURL']).filter((r) => String(r['@_resourceType'] ?? 'tile').toLowerCase() === 'tile' && typeof r['@_template'] === 'string');
  const formats = [...new Set([...resources.map((r) => String(r['@_format'] ?? '')), ...strings(layer['Format'])])].filter((f) => f);
  const format = choice.format ?? IMAGE_FORMATS.find((f) => formats.includes(f)) ?? '';
  if (!format || !IMAGE_FORMATS.includes(format)) {
    throw fail(url, `layer ${layerId} offers ${formats.join(', ') || 'no format'}; geo-dino reads image/jpeg, image/png and image/webp tiles`);
  }
  const dims = new Map<string, string>();
  for (const d of list(layer['Dimension'])) {
    const id = text(d['Identifier']);
    const def = text(d['Default']) ?? strings(d['Value'])[0];
    if (id && def) dims.set(id.toLowerCase(), def);
  }
  const keys = secretParams(url);
  const resource = resources.find((r) => r['@_format'] === format) ?? resources[0];
  let template: string;
  let tileUrl: (m: TileMatrix, col: number, row: number) => string;
  if (resource) {
    template = absolute(String(resource['@_template']), url);
    const t = template;
    tileUrl = (m, col, row) =>
      withParams(
        t.replace(/\{([^}]+)\}/g, (whole, k: string) => {
          switch (k.toLowerCase()) {
            case 'tilematrixset':
              return encodeURIComponent(set.id);
            case 'tilematrix':
              return encodeURIComponent(m.id);
            case 'tilerow':
              return String(row);
            case 'tilecol':
              return String(col);
            case 'style':
              return encodeURIComponent(style);
            default:
              return dims.has(k.toLowerCase()) ? encodeURIComponent(dims.get(k.toLowerCase())!) : whole;
          }
        }),
        keys,
      );
  } else {
    const ops = list((caps['OperationsMetadata'] as Node | undefined)?.['Operation']);
    const op = ops.find((o) => o['@_name'] === 'GetTile');
    const gets = list(((op?.['DCP'] as Node | undefined)?.['HTTP'] as Node | undefined)?.['Get']);
    const kvp = gets.find((g) => list(g['Constraint']).some((c) => JSON.stringify(c).includes('KVP'))) ?? gets[0];
    const href = kvp?.['@_href'];
    if (typeof href !== 'string') throw fail(url, `layer ${layerId}: no ResourceURL template and no GetTile operation`);
    const base = absolute(href, url);
    const sep = base.includes('?') ? (/[?&]$/.test(base) ? '' : '&') : '?';
    const fixed = `SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=${encodeURIComponent(layerId)}&STYLE=${encodeURIComponent(style)}&FORMAT=${encodeURIComponent(format)}&TILEMATRIXSET=${encodeURIComponent(set.id)}`;
    const dimParams = [...dims].map(([k, v]) => `&${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('');
    template = `${base}${sep}${fixed}${dimParams}&TILEMATRIX={TileMatrix}&TILEROW={TileRow}&TILECOL={TileCol}`;
    tileUrl = (m, col, row) => withParams(`${base}${sep}${fixed}${dimParams}&TILEMATRIX=${encodeURIComponent(m.id)}&TILEROW=${row}&TILECOL=${col}`, keys);
  }
  const ident = (caps['ServiceIdentification'] ?? {}) as Node;
  const provider = text(((caps['ServiceProvider'] ?? {}) as Node)['ProviderName']);
  const access = strings(ident['AccessConstraints']).filter((a) => !/^none$/i.test(a));
  const attribution = [provider, ...access].filter((x): x is string => !!x).join(' — ') || null;
  return { layer: layerId, title: text(layer['Title']), style, format, set, attribution, template: redactTileUrl(template), tileUrl };
}
