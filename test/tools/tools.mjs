/**
 * The external tools the tests use as oracles and servers: one entry per tool, saying what it is
 * for, how to check that it works, how to install it and at which pinned version.
 *
 * `test/tools/ensure.mjs` (run by `npm test`, by `npm run test:tools` and so by `.ci/run`) reads
 * this list, installs what is missing and stops with one message when something cannot be
 * installed. Tests find the tools through the paths exported here (via `test/support/tools.ts`),
 * so the place a tool is installed and the place tests look are defined once.
 *
 * Plain JavaScript without dependencies: it runs before `npm ci` on a fresh clone.
 * Adding a tool: DEVELOPERS.md, "An external test tool".
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const env = process.env;

/** Go and Python tools live here, outside the repository: one folder per tool and pinned version. */
export const TOOLS_DIR = env.GEO_DINO_TOOLS || join(homedir(), '.cache', 'geo-dino-tools');

/** What a failing test tells the developer to run. */
export const INSTALL_HINT = '`npm run test:tools` installs it (`npm test` does so first)';

/** `$GEO_DINO_TOOLS/<name>@<version>`: the install folder of a pinned Go or Python tool. */
export function toolDir(name) {
  const tool = TOOLS.find((t) => t.name === name);
  if (!tool || !tool.version) throw new Error(`test/tools/tools.mjs: no pinned tool named ${name}`);
  return join(TOOLS_DIR, `${tool.name}@${tool.version}`);
}

/** Debian's Python: python3-gdal and python3-venv (apt) serve this one, not a pyenv or conda one. */
const SYSTEM_PYTHON = '/usr/bin/python3';

/** The Python that has GDAL's `osgeo` bindings. */
export const GDAL_PYTHON = env.GEO_DINO_GDAL_PYTHON || SYSTEM_PYTHON;

/** The Python that creates the virtualenvs of Python tools. */
export const VENV_PYTHON = env.GEO_DINO_VENV_PYTHON || SYSTEM_PYTHON;

/** Debian's chromium, driven by playwright-core in the viewer tests. */
export const CHROMIUM = env.GEO_DINO_CHROMIUM || '/usr/bin/chromium';

/** The go-pmtiles binary (reference PMTiles reader). */
export function pmtilesCli() {
  return env.GEO_DINO_PMTILES_CLI || join(toolDir('go-pmtiles'), 'bin', 'go-pmtiles');
}

/** The virtualenv with rustac (STAC API server) and pypgstac. */
export function stacTools() {
  return env.GEO_DINO_STAC_TOOLS || toolDir('stac-api');
}

/** The virtualenv with MapProxy (the WMTS server of the tile-service tests). */
export function mapproxyTools() {
  return env.GEO_DINO_MAPPROXY_TOOLS || toolDir('mapproxy');
}

const PG_ROOT = '/usr/lib/postgresql';

/** PostgreSQL's bin folder (Debian keeps one per major version; the newest wins), or null. */
export function pgBinDir() {
  if (env.GEO_DINO_PG_BIN) return env.GEO_DINO_PG_BIN;
  const versions = existsSync(PG_ROOT) ? readdirSync(PG_ROOT).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  return versions.length > 0 ? join(PG_ROOT, versions[0], 'bin') : null;
}

/**
 * The tools. Fields:
 * - name, purpose: for messages; `version` (Go and Python tools): the pin, part of the install folder.
 * - checks(): what must work, each an argv (the command must exit 0) or a function returning
 *   null when fine, else the reason.
 * - apt: Debian packages that provide it (installed as root or with `sudo -n`).
 * - go: a Go package path, installed with `go install <go>@<version>` into `<toolDir>/bin`.
 * - pip: pinned requirements, installed into a virtualenv at `<toolDir>` (needs python3-venv in `apt`).
 * - hint: extra advice for the message when it cannot be installed.
 * @type {import('./tools.d.mts').Tool[]}
 */
export const TOOLS = [
  {
    name: 'build-tools',
    purpose: 'compilers for native npm modules (better-sqlite3) built by npm ci',
    checks: () => [['make', '--version'], ['g++', '--version'], ['python3', '--version']],
    apt: ['build-essential', 'python3'],
  },
  {
    name: 'gdal',
    purpose: 'raster oracle: gdalinfo and Python osgeo',
    checks: () => [['gdalinfo', '--version'], [GDAL_PYTHON, '-c', 'from osgeo import gdal']],
    apt: ['gdal-bin', 'python3-gdal'],
  },
  {
    name: 'redis-server',
    purpose: 'BullMQ queue tests',
    checks: () => [['redis-server', '--version']],
    apt: ['redis-server'],
  },
  {
    name: 'chromium',
    purpose: 'viewer tests in headless Chromium',
    checks: () => [[CHROMIUM, '--version']],
    apt: ['chromium'],
  },
  {
    name: 'util-linux',
    purpose: 'unshare (network-less runs in the bad-input tests)',
    checks: () => [['unshare', '--version']],
    apt: ['util-linux'],
  },
  {
    name: 'postgis',
    purpose: 'PostgreSQL + PostGIS under the pgstac STAC API tests',
    checks: () => {
      const bin = pgBinDir();
      if (!bin) return [() => `PostgreSQL not found under ${PG_ROOT}`];
      const version = bin.split('/').at(-2) ?? '';
      const control = join('/usr/share/postgresql', version, 'extension', 'postgis.control');
      return [[join(bin, 'initdb'), '--version'], () => (existsSync(control) || env.GEO_DINO_PG_BIN ? null : `${control} is missing`)];
    },
    apt: ['postgresql', 'postgresql-postgis'],
  },
  {
    name: 'go-pmtiles',
    version: 'v1.31.2',
    purpose: 'reference PMTiles CLI: pmtiles verify, show, tile',
    checks: () => [[pmtilesCli(), 'version']],
    go: 'github.com/protomaps/go-pmtiles',
  },
  {
    name: 'stac-api',
    version: 'rustac-0.9.18_pypgstac-0.10.0',
    purpose: 'STAC API server: rustac serve, in memory and on pgstac',
    checks: () => [[join(stacTools(), 'bin', 'rustac'), '--version'], [join(stacTools(), 'bin', 'python'), '-c', 'import pypgstac, psycopg']],
    apt: ['python3-venv'],
    pip: ['rustac==0.9.18', 'pypgstac[psycopg]==0.10.0'],
  },
  {
    name: 'mapproxy',
    version: 'MapProxy-7.0.0',
    purpose: 'a standard WMTS server (over gdal2tiles XYZ tiles, Web Mercator and UTM) for the tile-service tests',
    checks: () => [[join(mapproxyTools(), 'bin', 'python'), '-c', 'import mapproxy.wsgiapp']],
    apt: ['python3-venv'],
    pip: ['MapProxy==7.0.0'],
  },
];

/** Run every check of a tool; the first failure's reason, or null when the tool works. */
export function checkTool(tool) {
  for (const check of tool.checks()) {
    if (typeof check === 'function') {
      const reason = check();
      if (reason) return reason;
      continue;
    }
    try {
      execFileSync(check[0], check.slice(1), { stdio: 'ignore', timeout: 60_000 });
    } catch (err) {
      const e = /** @type {NodeJS.ErrnoException & { status?: number | null }} */ (err);
      const why = e.code === 'ENOENT' ? 'not found' : e.status != null ? `exit ${e.status}` : (e.code ?? e.message);
      return `\`${check.join(' ')}\` failed (${why})`;
    }
  }
  return null;
}
