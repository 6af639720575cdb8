/**
 * Class tables: which label values a head knows, what they are called and how they are drawn.
 *
 * A class is `{ value, name, color, title? }`: `value` is the integer stored in label rasters and in
 * `landcover.tif` (0-255, the map is uint8), `name` a machine name (letters, digits, `-`, `_`: the
 * STAC classification extension's rule), `color` `#rrggbb`. Tables come from a JSON file (a list,
 * or `{ "classes": [...] }`), a CSV file (`value,name,color[,title]` with a header line), or the
 * built-in `worldcover` preset (ESA WorldCover 10 m v200 classes and colours).
 */
import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { GeoDinoError, fsError, parseWith, z } from '@geo-dino/core';

export interface LandcoverClass {
  /** Value in label rasters and in landcover.tif (0-255). */
  value: number;
  /** Machine name: letters, digits, `-` and `_`. */
  name: string;
  /** `#rrggbb`. */
  color: string;
  /** Human-readable name. */
  title?: string;
}

/** ESA WorldCover 10 m (v100/v200) classes, with the product's colours; 0 is its no-data value. */
export const WORLDCOVER_CLASSES: readonly LandcoverClass[] = [
  { value: 10, name: 'tree_cover', title: 'Tree cover', color: '#006400' },
  { value: 20, name: 'shrubland', title: 'Shrubland', color: '#ffbb22' },
  { value: 30, name: 'grassland', title: 'Grassland', color: '#ffff4c' },
  { value: 40, name: 'cropland', title: 'Cropland', color: '#f096ff' },
  { value: 50, name: 'built_up', title: 'Built-up', color: '#fa0000' },
  { value: 60, name: 'bare_sparse_vegetation', title: 'Bare / sparse vegetation', color: '#b4b4b4' },
  { value: 70, name: 'snow_and_ice', title: 'Snow and ice', color: '#f0f0f0' },
  { value: 80, name: 'permanent_water_bodies', title: 'Permanent water bodies', color: '#0064c8' },
  { value: 90, name: 'herbaceous_wetland', title: 'Herbaceous wetland', color: '#0096a0' },
  { value: 95, name: 'mangroves', title: 'Mangroves', color: '#00cf75' },
  { value: 100, name: 'moss_and_lichen', title: 'Moss and lichen', color: '#fae6a0' },
];

/** Built-in tables by name (`--classes worldcover`). */
export const CLASS_PRESETS: Readonly<Record<string, readonly LandcoverClass[]>> = { worldcover: WORLDCOVER_CLASSES };

/** Distinct colours for classes without one (a qualitative palette, cycled). */
const PALETTE = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#666666', '#1f78b4', '#b2df8a', '#fb9a99', '#cab2d6', '#ffff99', '#8dd3c7'];

export function defaultColor(index: number): string {
  return PALETTE[index % PALETTE.length]!;
}

const NAME_RE = /^[0-9A-Za-z_-]+$/;

const classSchema = z.object({
  value: z.number().int('must be an integer').min(0, 'must be 0-255').max(255, 'must be 0-255'),
  name: z.string().regex(NAME_RE, 'may only contain letters, digits, "-" and "_"'),
  color: z
    .string()
    .regex(/^#?[0-9A-Fa-f]{6}$/, 'must be #rrggbb')
    .transform((c) => (c.startsWith('#') ? c : `#${c}`).toLowerCase()),
  title: z.string().min(1).optional(),
});
const tableSchema = z.union([z.array(classSchema), z.object({ classes: z.array(classSchema) })]).transform((v) => (Array.isArray(v) ? v : v.classes));

/** Validate a class table (parsed JSON); `source` names it in errors. */
export function parseClassTable(value: unknown, source: string): LandcoverClass[] {
  const list = parseWith(tableSchema, value, { source, code: 'E_BAD_LABELS' }).map((c) => ({
    value: c.value,
    name: c.name,
    color: c.color,
    ...(c.title ? { title: c.title } : {}),
  }));
  if (list.length === 0) throw new GeoDinoError('E_BAD_LABELS', `${source}: the class table is empty`, { details: { source } });
  const values = new Set<number>();
  const names = new Set<string>();
  list.forEach((c, i) => {
    if (values.has(c.value)) throw new GeoDinoError('E_BAD_LABELS', `${source}: [${i}].value: ${c.value} is used twice`, { details: { source, value: c.value } });
    if (names.has(c.name)) throw new GeoDinoError('E_BAD_LABELS', `${source}: [${i}].name: ${JSON.stringify(c.name)} is used twice`, { details: { source, name: c.name } });
    values.add(c.value);
    names.add(c.name);
  });
  if (list.length > 255) throw new GeoDinoError('E_BAD_LABELS', `${source}: ${list.length} classes; at most 255 fit a uint8 map with a nodata value`, { details: { source } });
  return list;
}

function parseCsv(text: string, source: string): unknown[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() && !l.trimStart().startsWith('#'));
  const header = (lines.shift() ?? '').split(',').map((h) => h.trim().toLowerCase());
  for (const need of ['value', 'name']) {
    if (!header.includes(need)) throw new GeoDinoError('E_BAD_LABELS', `${source}: the header line must name the columns value,name,color[,title] (got ${header.join(',') || 'nothing'})`, { details: { source } });
  }
  return lines.map((line, i) => {
    const cells = line.split(',').map((c) => c.trim());
    const row: Record<string, unknown> = {};
    header.forEach((h, k) => {
      const c = cells[k];
      if (c === undefined || c === '') return;
      row[h] = h === 'value' ? (/^-?\d+$/.test(c) ? Number(c) : c) : c;
    });
    if (row['color'] === undefined) row['color'] = defaultColor(i);
    return row;
  });
}

/** A class table from `worldcover` or a .json/.csv file. */
export async function loadClassTable(spec: string, cwd = process.cwd()): Promise<LandcoverClass[]> {
  const preset = CLASS_PRESETS[spec.toLowerCase()];
  if (preset) return preset.map((c) => ({ ...c }));
  const path = resolve(cwd, spec);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') {
      throw new GeoDinoError('E_FILE_NOT_FOUND', `--classes: ${path}: no such file (give a .json or .csv class table, or one of: ${Object.keys(CLASS_PRESETS).join(', ')})`, {
        details: { field: '--classes', path },
      });
    }
    throw fsError(err, path, 'read');
  }
  if (extname(path).toLowerCase() === '.csv') return parseClassTable(parseCsv(text, path), path);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new GeoDinoError('E_BAD_JSON', `${path}: invalid JSON: ${(err as Error).message}`, { details: { path } });
  }
  return parseClassTable(json, path);
}

/** The map's nodata value: 0 unless a class uses it, else 255, else none fits. */
export function nodataFor(classes: readonly LandcoverClass[]): number {
  const used = new Set(classes.map((c) => c.value));
  for (const v of [0, 255]) if (!used.has(v)) return v;
  for (let v = 254; v > 0; v--) if (!used.has(v)) return v;
  throw new GeoDinoError('E_BAD_LABELS', 'the class table uses every value 0-255; no value is left for nodata');
}

/** `#rrggbb` of an RGBA colour-table entry. */
export function hexColor(rgba: readonly number[]): string {
  return `#${rgba
    .slice(0, 3)
    .map((v) => Math.max(0, Math.min(255, Math.round(v))).toString(16).padStart(2, '0'))
    .join('')}`;
}
