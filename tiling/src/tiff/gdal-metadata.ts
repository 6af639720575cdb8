/**
 * GDAL's private TIFF tags: GDAL_METADATA (42112, a small XML document of items) and
 * GDAL_NODATA (42113, the nodata value as text). Parsed with a tolerant scanner: unknown
 * markup is ignored, never evaluated.
 */

export interface GdalMetadataItem {
  name: string;
  value: string;
  /** 0-based band, or null for dataset items. */
  sample: number | null;
  role: string | null;
  domain: string | null;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeXmlEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) => {
    if (e[0] === '#') {
      const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code < 0x110000 ? String.fromCodePoint(code) : '';
    }
    return ENTITIES[e.toLowerCase()] ?? '';
  });
}

export function encodeXmlEntities(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&${Object.entries(ENTITIES).find(([, v]) => v === c)![0]};`);
}

export function parseGdalMetadata(xml: string): GdalMetadataItem[] {
  const items: GdalMetadataItem[] = [];
  const re = /<Item\b([^>]*)>([\s\S]*?)<\/Item>/g;
  let m: RegExpExecArray | null;
  let guard = 0;
  while ((m = re.exec(xml)) !== null && guard++ < 100_000) {
    const attrs: Record<string, string> = {};
    const ar = /(\w+)\s*=\s*"([^"]*)"/g;
    let a: RegExpExecArray | null;
    while ((a = ar.exec(m[1]!)) !== null) attrs[a[1]!.toLowerCase()] = decodeXmlEntities(a[2]!);
    if (attrs['name'] === undefined) continue;
    const sample = attrs['sample'] !== undefined && /^\d+$/.test(attrs['sample']) ? Number(attrs['sample']) : null;
    items.push({ name: attrs['name'], value: decodeXmlEntities(m[2]!), sample, role: attrs['role'] ?? null, domain: attrs['domain'] ?? null });
  }
  return items;
}

export function formatGdalMetadata(items: readonly GdalMetadataItem[]): string {
  const lines = items.map((it) => {
    const attrs = [`name="${encodeXmlEntities(it.name)}"`];
    if (it.domain) attrs.push(`domain="${encodeXmlEntities(it.domain)}"`);
    if (it.sample !== null) attrs.push(`sample="${it.sample}"`);
    if (it.role) attrs.push(`role="${encodeXmlEntities(it.role)}"`);
    return `  <Item ${attrs.join(' ')}>${encodeXmlEntities(it.value)}</Item>`;
  });
  return `<GDALMetadata>\n${lines.join('\n')}\n</GDALMetadata>\n`;
}

/** GDAL_NODATA text → number (NaN for "nan"); null when absent or unparsable. */
export function parseNodata(text: string | undefined): number | null {
  if (text === undefined) return null;
  const t = text.trim().toLowerCase();
  if (t === '') return null;
  if (t === 'nan' || t === '-nan') return NaN;
  if (t === 'inf' || t === '+inf') return Infinity;
  if (t === '-inf') return -Infinity;
  const v = Number(t);
  return Number.isFinite(v) ? v : null;
}

export function formatNodata(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  return String(v);
}
