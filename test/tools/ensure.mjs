#!/usr/bin/env node
/**
 * Make sure every external tool the tests need is present, then that node_modules matches
 * package-lock.json. Run by `npm test` before the build and the tests, by `npm run test:tools`,
 * and so by `.ci/run`.
 *
 * For each tool in `tools.mjs` that fails its checks: Debian packages are installed with apt-get
 * (as root, or with `sudo -n`), Go tools with `go install` and Python tools into a virtualenv,
 * both into `$GEO_DINO_TOOLS/<name>@<version>` (default `~/.cache/geo-dino-tools`) and reused by
 * later runs. What still fails afterwards is listed in one message, with how to install it, and
 * the command exits 1 before any test runs.
 *
 *   node test/tools/ensure.mjs           check, install what is missing, `npm ci` when needed
 *   node test/tools/ensure.mjs --check   check only; exit 1 when something is missing
 *
 * `npm ci` runs with ONNXRUNTIME_NODE_INSTALL=skip unless that variable is set (README "GPU").
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TOOLS, TOOLS_DIR, VENV_PYTHON, checkTool, toolDir } from './tools.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LOGS = join(TOOLS_DIR, 'logs');
const started = Date.now();

const say = (line) => process.stderr.write(`[test tools] ${line}\n`);
const seconds = (since) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

/** Run a command with its output in a log file; null when it worked, else the reason (last lines). */
function runLogged(label, cmd, args, options = {}) {
  mkdirSync(LOGS, { recursive: true });
  const log = join(LOGS, `${label}.log`);
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 30 * 60_000, ...options });
  writeFileSync(log, `$ ${cmd} ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  if (r.error) return `${cmd}: ${r.error.code === 'ENOENT' ? 'not found' : r.error.message}`;
  if (r.status === 0) return null;
  const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-2).join(' / ');
  return `\`${cmd} ${args.join(' ')}\` exited ${r.status ?? r.signal}: ${tail} (log: ${log})`;
}

function works(cmd, args) {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 60_000 });
    return true;
  } catch {
    return false;
  }
}

/** How to run apt-get here: { prefix } or { reason } why it cannot. */
function aptAccess() {
  if (!works('apt-get', ['--version'])) return { reason: 'apt-get not found (not Debian/Ubuntu): install the equivalent packages with your package manager' };
  if (process.getuid?.() === 0) return { prefix: [] };
  if (works('sudo', ['-n', 'true'])) return { prefix: ['sudo', '-n'] };
  return { reason: 'needs root: not root, and `sudo -n` is not available' };
}

function dpkgInstalled(pkg) {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('install ok installed');
  } catch {
    return false;
  }
}

function goBinary() {
  for (const go of [process.env.GEO_DINO_GO, 'go', '/usr/local/go/bin/go']) {
    if (go && works(go, ['version'])) return go;
  }
  return null;
}

/** The command a person would run to install a tool (for the message). */
function installCommand(tool) {
  const parts = [];
  if (tool.apt) parts.push(`${process.getuid?.() === 0 ? '' : 'sudo '}apt-get install ${tool.apt.join(' ')}`);
  if (tool.go) parts.push(`GOBIN=${join(toolDir(tool.name), 'bin')} go install ${tool.go}@${tool.version}`);
  if (tool.pip) {
    const dir = toolDir(tool.name);
    parts.push(`${VENV_PYTHON} -m venv ${dir} && ${join(dir, 'bin', 'pip')} install ${tool.pip.map((p) => `'${p}'`).join(' ')}`);
  }
  return parts.join(' && ');
}

/** Run fn holding a lock folder (several worktrees may run the tests at once). */
function withLock(path, fn) {
  mkdirSync(dirname(path), { recursive: true });
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    try {
      mkdirSync(path);
      writeFileSync(join(path, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let pid = NaN;
      try {
        pid = Number(readFileSync(join(path, 'pid'), 'utf8'));
      } catch {
        // the holder has not written its pid yet
      }
      let alive = true;
      try {
        if (pid > 0) process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (!alive) {
        rmSync(path, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${path} is held by process ${pid} for 30 minutes`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

/** Install a Go or Python tool into its own folder; null when done, else the reason. */
function installPinned(tool) {
  const dir = toolDir(tool.name);
  return withLock(`${dir}.lock`, () => {
    if (checkTool(tool) === null) return null; // another run installed it meanwhile
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const t0 = Date.now();
    let reason = null;
    if (tool.go) {
      const go = goBinary();
      if (!go) return 'Go not found (install it from https://go.dev/dl, or set GEO_DINO_GO)';
      say(`go install ${tool.go}@${tool.version} ...`);
      reason = runLogged(tool.name, go, ['install', `${tool.go}@${tool.version}`], { env: { ...process.env, GOBIN: join(dir, 'bin') } });
    }
    if (!reason && tool.pip) {
      say(`virtualenv ${dir}: pip install ${tool.pip.join(' ')} ...`);
      reason =
        runLogged(`${tool.name}-venv`, VENV_PYTHON, ['-m', 'venv', dir]) ??
        runLogged(tool.name, join(dir, 'bin', 'pip'), ['install', '-q', '--disable-pip-version-check', ...tool.pip]);
    }
    if (reason) rmSync(dir, { recursive: true, force: true });
    else say(`${tool.name} ${tool.version} installed in ${seconds(t0)}`);
    return reason;
  });
}

/** Why `<root>/node_modules` does not match package-lock.json (npm's own record of what it installed), or null. */
export function nodeModulesStale(root = ROOT) {
  const hidden = join(root, 'node_modules', '.package-lock.json');
  if (!existsSync(hidden)) return 'node_modules is missing';
  const want = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')).packages ?? {};
  const have = JSON.parse(readFileSync(hidden, 'utf8')).packages ?? {};
  for (const [path, entry] of Object.entries(want)) {
    if (!path.startsWith('node_modules/') && !path.includes('/node_modules/')) continue;
    const got = have[path];
    if (!got) {
      if (entry.optional) continue; // another platform's build
      return `${path} is not installed`;
    }
    if ((entry.version ?? entry.resolved) !== (got.version ?? got.resolved)) return `${path} is ${got.version ?? got.resolved}, package-lock.json wants ${entry.version ?? entry.resolved}`;
  }
  return null;
}

function main() {
  const checkOnly = process.argv.includes('--check');
  let missing = TOOLS.map((tool) => ({ tool, reason: checkTool(tool) })).filter((m) => m.reason);
  const failed = new Map(); // tool name -> why installing it failed

  if (missing.length > 0 && !checkOnly) {
    say(`missing: ${missing.map((m) => m.tool.name).join(', ')}; installing`);
    const aptTools = missing.filter((m) => m.tool.apt);
    const packages = [...new Set(aptTools.flatMap((m) => m.tool.apt))].filter((p) => !dpkgInstalled(p));
    if (packages.length > 0) {
      const access = aptAccess();
      let reason = access.reason ?? null;
      if (!reason) {
        const t0 = Date.now();
        say(`apt-get install ${packages.join(' ')} ...`);
        const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
        const apt = [...access.prefix, 'apt-get'];
        const lock = ['-o', 'DPkg::Lock::Timeout=600'];
        reason =
          runLogged('apt-update', apt[0], [...apt.slice(1), ...lock, 'update', '-qq'], { env }) ??
          runLogged('apt-install', apt[0], [...apt.slice(1), ...lock, 'install', '-y', '-qq', '--no-install-recommends', ...packages], { env });
        if (!reason) say(`apt packages installed in ${seconds(t0)}`);
      }
      if (reason) for (const m of aptTools) if (m.tool.apt.some((p) => packages.includes(p))) failed.set(m.tool.name, reason);
    }
    for (const m of missing) {
      if ((m.tool.go || m.tool.pip) && !failed.has(m.tool.name)) {
        const reason = installPinned(m.tool);
        if (reason) failed.set(m.tool.name, reason);
      }
    }
    missing = missing.map((m) => ({ tool: m.tool, reason: checkTool(m.tool) })).filter((m) => m.reason);
  }

  if (missing.length > 0) {
    const lines = [
      `${missing.length} of the tools the tests need ${missing.length === 1 ? 'is' : 'are'} missing${checkOnly ? '' : ' and could not be installed here'}; no test was run.`,
    ];
    for (const { tool, reason } of missing) {
      lines.push(`  - ${tool.name}${tool.version ? ` ${tool.version}` : ''} (${tool.purpose}): ${reason}`);
      if (failed.has(tool.name)) lines.push(`      could not install: ${failed.get(tool.name)}`);
      lines.push(`      install: ${installCommand(tool)}`);
      if (tool.hint) lines.push(`      ${tool.hint}`);
    }
    lines.push(`Install ${missing.length === 1 ? 'it' : 'them'} (or run \`npm test\` as root, with sudo, or with network access to apt, PyPI and the Go module proxy), then rerun.`);
    process.stderr.write(`[test tools] ${lines.join('\n')}\n`);
    process.exit(1);
  }

  const stale = nodeModulesStale();
  if (stale && checkOnly) {
    say(`all ${TOOLS.length} tools present; node_modules needs \`npm ci\`: ${stale}`);
    process.exit(1);
  }
  if (stale) {
    const t0 = Date.now();
    say(`${stale}: npm ci`);
    const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
    const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: process.env.ONNXRUNTIME_NODE_INSTALL || 'skip' };
    const r = spawnSync(npm[0], [...npm.slice(1), 'ci', '--no-fund', '--no-audit'], { cwd: ROOT, stdio: 'inherit', env });
    if (r.status !== 0) {
      say(`npm ci failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}); no test was run.`);
      process.exit(1);
    }
    say(`npm ci done in ${seconds(t0)}`);
  }
  say(`all ${TOOLS.length} tools present, node_modules up to date (${seconds(started)})`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
