/** Reading an AOI from a file (Node only; the parsing itself is in aoi.ts, browser-safe). */
import { readFile } from 'node:fs/promises';
import { GeoDinoError, fsError } from '@geo-dino/core';
import { parseAoi, type Aoi, type GeometryBudget } from './aoi.js';

/** Read and parse an AOI file (bounded by `budget`, see {@link parseAoi}). */
export async function loadAoi(path: string, budget: GeometryBudget = {}): Promise<Aoi> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw fsError(err, path, 'read');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new GeoDinoError('E_BAD_AOI', `${path}: not valid JSON: ${(err as Error).message}`, { cause: err, details: { source: path } });
  }
  return parseAoi(json, path, budget);
}

