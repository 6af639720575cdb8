import { readFileSync } from 'node:fs';

/** geo-dino's version, read once from this package's package.json (all packages share it). */
export const GEO_DINO_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
