/**
 * The test-tool step of `npm test` (test/tools/ensure.mjs): when a tool is missing and cannot be
 * installed it stops with one message naming each missing tool and the command that installs it,
 * and a non-zero exit; node_modules is judged against package-lock.json as npm records it.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeModulesStale } from './ensure.mjs';
import { stacTools } from './tools.mjs';

const ENSURE = fileURLToPath(new URL('./ensure.mjs', import.meta.url));
const base = mkdtempSync(join(tmpdir(), 'gd-ensure-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

function ensure(args: string[], env: Record<string, string>): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [ENSURE, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
  return { code: r.status, stderr: r.stderr };
}

describe('ensure.mjs', () => {
  it('--check lists every missing tool once, with its install command, and exits 1', () => {
    const missing = join(base, 'nowhere');
    const r = ensure(['--check'], { GEO_DINO_PMTILES_CLI: join(missing, 'go-pmtiles'), GEO_DINO_CHROMIUM: join(missing, 'chromium') });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('2 of the tools the tests need are missing; no test was run.');
    expect(r.stderr.match(/^ {2}- /gm)).toHaveLength(2);
    expect(r.stderr).toContain(`- chromium (viewer tests in headless Chromium): \`${join(missing, 'chromium')} --version\` failed (not found)`);
    expect(r.stderr).toContain('install: GOBIN=');
    expect(r.stderr).toContain('go install github.com/protomaps/go-pmtiles@v1.31.2');
  });

  it('an install that fails (Go module proxy unreachable) ends in the same message and exit 1', () => {
    const tools = join(base, 'tools');
    const r = ensure([], { GEO_DINO_TOOLS: tools, GEO_DINO_STAC_TOOLS: stacTools(), GOPROXY: 'off' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('1 of the tools the tests need is missing and could not be installed here; no test was run.');
    expect(r.stderr).toContain(`- go-pmtiles v1.31.2`);
    expect(r.stderr).toMatch(/could not install: `go install github.com\/protomaps\/go-pmtiles@v1.31.2` exited 1: .*GOPROXY=off/);
    expect(r.stderr).toContain(`install: GOBIN=${join(tools, 'go-pmtiles@v1.31.2', 'bin')} go install`);
  });

  describe('nodeModulesStale', () => {
    const lock = {
      packages: {
        '': { name: 'x' },
        'node_modules/a': { version: '1.0.0' },
        'node_modules/b/node_modules/c': { version: '2.0.0' },
        'node_modules/@rollup/rollup-darwin-arm64': { version: '4.0.0', optional: true },
        'node_modules/@x/ws': { resolved: 'packages/ws', link: true },
        'packages/ws': { version: '0.1.0' },
      },
    };
    const installed = {
      'node_modules/a': { version: '1.0.0' },
      'node_modules/b/node_modules/c': { version: '2.0.0' },
      'node_modules/@x/ws': { resolved: 'packages/ws', link: true },
    };
    function project(name: string, hidden: Record<string, unknown> | null): string {
      const dir = join(base, name);
      mkdirSync(join(dir, 'node_modules'), { recursive: true });
      writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock));
      if (hidden) writeFileSync(join(dir, 'node_modules', '.package-lock.json'), JSON.stringify({ packages: hidden }));
      return dir;
    }

    it('matches when every non-optional package is installed at its locked version', () => {
      expect(nodeModulesStale(project('same', installed))).toBeNull();
    });
    it('names a missing node_modules, a missing package and a wrong version', () => {
      expect(nodeModulesStale(project('none', null))).toBe('node_modules is missing');
      const { 'node_modules/b/node_modules/c': _c, ...withoutC } = installed;
      expect(nodeModulesStale(project('lacks', withoutC))).toBe('node_modules/b/node_modules/c is not installed');
      expect(nodeModulesStale(project('older', { ...installed, 'node_modules/a': { version: '0.9.0' } }))).toBe(
        'node_modules/a is 0.9.0, package-lock.json wants 1.0.0',
      );
    });
  });
});
