/**
 * A real STAC API server on loopback for tests: `rustac serve` (stac-utils/rustac, from PyPI),
 * either with its in-memory backend or on pgstac (PostgreSQL + PostGIS from apt, schema installed
 * by pypgstac). `npm test` / `npm run test:tools` installs the tools (test/tools/tools.mjs): rustac
 * and pypgstac into a virtualenv outside the repository (`$GEO_DINO_STAC_TOOLS`, by default
 * `$GEO_DINO_TOOLS/stac-api@<version>`), PostgreSQL + PostGIS from apt.
 *
 * A missing tool fails the test with the reason (requireTool); nothing skips silently.
 * Servers and the database cluster are stopped by PID in `stop()`.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { INSTALL_HINT, pgBinDir as pgBin, requireTool, stacTools } from './tools.js';

const run = promisify(execFile);

export const STAC_TOOLS = stacTools();

export interface StacApiServer {
  url: string;
  backend: 'memory' | 'pgstac';
  /** Server log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function pgBinDir(): string {
  const bin = pgBin();
  if (!bin) throw new Error(`PostgreSQL not found under /usr/lib/postgresql; ${INSTALL_HINT}`);
  return bin;
}

export async function waitForHttp(url: string, proc: ChildProcess, logs: () => string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}:\n${logs()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`server at ${url} did not answer within ${timeoutMs} ms:\n${logs()}`);
}

export function stopProcess(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

function startRustac(args: string[], env: NodeJS.ProcessEnv = {}): { proc: ChildProcess; logs: () => string } {
  const rustac = join(STAC_TOOLS, 'bin', 'rustac');
  requireTool(rustac, ['--version']);
  let out = '';
  const proc = spawn(rustac, ['serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  proc.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  proc.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  return { proc, logs: () => out };
}

/** `rustac serve` with its in-memory backend, loaded with the given collection/item files. */
export async function startMemoryStacApi(hrefs: readonly string[]): Promise<StacApiServer> {
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const { proc, logs } = startRustac(['--addr', addr, ...hrefs]);
  const url = `http://${addr}/`;
  try {
    await waitForHttp(url, proc, logs);
  } catch (err) {
    await stopProcess(proc);
    throw err;
  }
  return { url, backend: 'memory', log: logs, stop: () => stopProcess(proc) };
}

/**
 * `rustac serve --pgstac` on a throw-away PostgreSQL cluster (initdb in a temporary directory,
 * loopback port, trust auth), with pgstac migrated in and the given files loaded.
 */
export async function startPgstacStacApi(hrefs: readonly string[]): Promise<StacApiServer> {
  const bin = pgBinDir();
  requireTool(join(bin, 'initdb'), ['--version']);
  const pypgstac = join(STAC_TOOLS, 'bin', 'pypgstac');
  const python = join(STAC_TOOLS, 'bin', 'python');
  requireTool(python, ['-c', 'import pypgstac, psycopg']);
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'geo-dino-pgstac-'));
  const data = join(dir, 'data');
  const wrap = (cmd: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  if (asRoot) {
    // PostgreSQL refuses to run as root: the cluster belongs to the `postgres` user apt created.
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const pgPort = await freePort();
  const dsn = `postgresql://postgres@127.0.0.1:${pgPort}/postgres`;
  let started = false;
  const pgStop = async (): Promise<void> => {
    if (started) {
      const [c, a] = wrap(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      await run(c, a).catch(() => undefined);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    let [c, a] = wrap(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    await run(c, a);
    [c, a] = wrap(join(bin, 'pg_ctl'), [
      '-D',
      data,
      '-o',
      `-p ${pgPort} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off`,
      '-l',
      join(dir, 'postgres.log'),
      '-w',
      '-t',
      '60',
      'start',
    ]);
    await run(c, a);
    started = true;
    await run(pypgstac, ['migrate', '--dsn', dsn]);
    // rustac's connections use the default search_path; pgstac's functions expect `pgstac` on it.
    // Cloud cover as a numeric queryable, as production pgstac deployments declare it (without
    // it pgstac compares and sorts the property as text).
    const sql = [
      'ALTER DATABASE postgres SET search_path TO pgstac, public',
      'SET search_path TO pgstac, public',
      `INSERT INTO pgstac.queryables (name, definition, property_wrapper, property_index_type) VALUES ('eo:cloud_cover', '{"type": "number", "minimum": 0, "maximum": 100}', 'to_float', 'BTREE')`,
    ];
    await run(python, ['-c', `import psycopg, json, sys\nc = psycopg.connect(${JSON.stringify(dsn)}, autocommit=True)\nfor s in json.loads(sys.argv[1]): c.execute(s)`, JSON.stringify(sql)]);
  } catch (err) {
    await pgStop();
    throw new Error(`could not set up pgstac: ${(err as Error).message}`);
  }
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const { proc, logs } = startRustac(['--addr', addr, '--pgstac', dsn, ...hrefs]);
  const url = `http://${addr}/`;
  try {
    await waitForHttp(url, proc, logs);
  } catch (err) {
    await stopProcess(proc);
    await pgStop();
    throw err;
  }
  return {
    url,
    backend: 'pgstac',
    log: logs,
    stop: async () => {
      await stopProcess(proc);
      await pgStop();
    },
  };
}
