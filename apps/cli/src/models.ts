/**
 * Where `doctor` (and later `chm`) look for models: `$GEO_DINO_MODEL` (one directory),
 * `$GEO_DINO_HOME/models/*` and `./models/*`. A directory is a model when it holds a
 * `geo-dino.json` (built for geo-dino) or a Hugging Face `config.json` with safetensors weights
 * (to be built with `geo-dino model build`).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { geoDinoHome, homePaths } from '@geo-dino/core';

export interface FoundModel {
  path: string;
  kind: 'geo-dino' | 'huggingface';
  description?: string;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function inspect(dir: string): Promise<FoundModel | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  if (names.includes('geo-dino.json')) {
    let description: string | undefined;
    try {
      const meta = JSON.parse(await readFile(join(dir, 'geo-dino.json'), 'utf8')) as { name?: unknown; architecture?: unknown };
      description = typeof meta.name === 'string' ? meta.name : typeof meta.architecture === 'string' ? meta.architecture : undefined;
    } catch {
      description = 'unreadable geo-dino.json';
    }
    return { path: dir, kind: 'geo-dino', ...(description ? { description } : {}) };
  }
  if (names.includes('config.json') && names.some((n) => n.endsWith('.safetensors'))) {
    return { path: dir, kind: 'huggingface', description: 'Hugging Face weights; build with `geo-dino model build`' };
  }
  return undefined;
}

export async function findModelDirs(env: NodeJS.ProcessEnv, cwd: string): Promise<FoundModel[]> {
  const candidates: string[] = [];
  const single = env['GEO_DINO_MODEL'];
  if (single) candidates.push(resolve(cwd, single));
  for (const parent of [homePaths(geoDinoHome(env)).models, join(cwd, 'models')]) {
    if (!(await isDir(parent))) continue;
    for (const name of (await readdir(parent)).sort()) candidates.push(join(parent, name));
  }
  const found: FoundModel[] = [];
  const seen = new Set<string>();
  for (const c of candidates) {
    if (seen.has(c) || !(await isDir(c))) continue;
    seen.add(c);
    const m = await inspect(c);
    if (m) found.push(m);
  }
  return found;
}

