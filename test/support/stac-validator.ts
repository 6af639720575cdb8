/**
 * stac-node-validator (an implementation geo-dino did not write) run offline: every schema URL is
 * mapped to its copy in ../shared/data/stac-schemas, so validation needs no network.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { REPO_ROOT, sharedData } from './shared-data.js';

const VALIDATOR = join(REPO_ROOT, 'node_modules', 'stac-node-validator', 'bin', 'cli.js');
const URL_PREFIX: Record<string, string> = {
  'stac-spec': 'https://schemas.stacspec.org/',
  'stac-extensions': 'https://stac-extensions.github.io/',
  geojson: 'https://geojson.org/',
  proj: 'https://proj.org/',
};

/** `url=path;url=path` for every offline schema (stac-node-validator 1.x takes this string form). */
export function stacSchemaMap(): string {
  const root = sharedData('stac-schemas');
  const entries: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, name.name);
      if (name.isDirectory()) walk(p);
      else if (name.name.endsWith('.json')) {
        const rel = relative(root, p).split(sep);
        const prefix = URL_PREFIX[rel[0]!];
        if (prefix) entries.push(`${prefix}${rel.slice(1).join('/')}=${p}`);
      }
    }
  };
  walk(root);
  return entries.join(';');
}

/** Validate STAC documents; `ok` is the validator's exit status, `output` what it printed. */
export function validateStac(files: string[]): { ok: boolean; output: string } {
  const r = spawnSync(process.execPath, [VALIDATOR, ...files, '--schemaMap', stacSchemaMap()], { encoding: 'utf8', timeout: 60_000 });
  return { ok: r.status === 0, output: `${r.stdout}\n${r.stderr}` };
}
