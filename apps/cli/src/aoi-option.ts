/**
 * `--aoi <file>` or `--bbox minlon,minlat,maxlon,maxlat`: the two ways every command that takes an
 * area accepts it (exclusive). Bad input is one line naming the flag (exit 2).
 */
import { resolve } from 'node:path';
import { GeoDinoError, z } from '@geo-dino/core';
import { aoiFromBbox, loadAoi, type Aoi } from '@geo-dino/geometry';

/** Zod field for `--bbox`: four comma-separated numbers. */
export const bboxField = z
  .string()
  .transform((s) => s.split(',').map((v) => (v.trim() === '' ? NaN : Number(v.trim()))))
  .refine((a) => a.length === 4 && a.every(Number.isFinite), 'must be four numbers: minlon,minlat,maxlon,maxlat')
  .optional();

export const BBOX_HELP = 'area as a lon/lat box instead of an AOI file (EPSG:4326; minlon > maxlon crosses the antimeridian)';

/** The AOI of `--aoi` or `--bbox` (undefined when neither was given); both → E_ARGUMENT. */
export async function aoiFromOptions(opts: { aoi?: string | undefined; bbox?: number[] | undefined }, cwd: string): Promise<Aoi | undefined> {
  if (opts.aoi && opts.bbox) {
    throw new GeoDinoError('E_ARGUMENT', '--aoi and --bbox: give one or the other, not both', { details: { field: '--bbox' } });
  }
  if (opts.bbox) return aoiFromBbox(opts.bbox, '--bbox');
  if (opts.aoi) return loadAoi(resolve(cwd, opts.aoi));
  return undefined;
}
