/**
 * Bad input: each case must give one clear error line naming what is wrong, the documented exit
 * status (2 for input, 1 for environment), and nothing presented as complete in --out.
 *
 * Unwritable and full disks are real file systems, not mocks: a read-only tmpfs and a tiny tmpfs
 * mounted in a private mount namespace (`unshare --user --map-root-user --mount`, no root needed
 * where user namespaces are enabled), with the run and the checks inside that namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { sharedData, CLI_BIN } from '../support/shared-data.js';
import { requireTool } from '../support/tools.js';
import { COGEO_AOI, chm, tempDir, writeJson } from './helpers.js';

let dir: string;
let home: string;
let aoi: string;
const cogeo = (): string => sharedData('rasterio', 'cogeo.tif');
const FAST = ['--tile-size', '256', '--overlap', '32', '--no-web-tiles'];

beforeAll(() => {
  dir = tempDir('bad');
  home = join(dir, 'home');
  aoi = writeJson(join(dir, 'aoi.geojson'), COGEO_AOI);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Nothing left beside the requested --out: no run directory, no state, no staging. */
function leftovers(parent: string, name: string): string[] {
  return readdirSync(parent).filter((f) => f === name || f.startsWith(`.${name}.`));
}

/** A port on 127.0.0.1 that refuses connections (bound, then closed). */
async function closedPort(): Promise<number> {
  const s: Server = createServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

describe('geo-dino chm: bad input', () => {
  it('an invalid AOI: exit 2, names the file and the problem, writes nothing', async () => {
    const bad = writeJson(join(dir, 'open-ring.geojson'), { type: 'Polygon', coordinates: [[[128.656, 37.667], [128.66, 37.667], [128.66, 37.67], [128.656, 37.669]]] });
    const r = await chm(['--model', 'demo', '--aoi', bad, '--imagery', cogeo(), '--out', join(dir, 'r1'), ...FAST], home);
    expect(r.code).toBe(2);
    const err = r.events.find((e) => e['type'] === 'error')!;
    expect(err['code']).toBe('E_BAD_AOI');
    expect(String(err['message'])).toMatch(/open-ring\.geojson: coordinates\[0\]: ring is not closed/);
    expect(leftovers(dir, 'r1')).toEqual([]);
  });

  it('an AOI outside the imagery: exit 2, E_NO_OVERLAP naming the AOI and the scene', async () => {
    const r = await chm(['--model', 'demo', '--aoi', sharedData('aoi', 'kenya.geojson'), '--imagery', cogeo(), '--out', join(dir, 'r2'), ...FAST], home);
    expect(r.code).toBe(2);
    const err = r.events.find((e) => e['type'] === 'error')!;
    expect(err['code']).toBe('E_NO_OVERLAP');
    expect(String(err['message'])).toMatch(/kenya\.geojson: the AOI does not overlap the imagery \(cogeo\)/);
    expect(leftovers(dir, 'r2')).toEqual([]);
  });

  it('unreachable imagery: exit 1, E_NETWORK naming the URL, after retries', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/scene.tif`;
    const r = await chm(['--model', 'demo', '--aoi', aoi, '--imagery', url, '--out', join(dir, 'r3'), ...FAST], home);
    expect(r.code).toBe(1);
    const err = r.events.find((e) => e['type'] === 'error')!;
    expect(err['code']).toBe('E_NETWORK');
    expect(String(err['message'])).toContain(url);
    expect(leftovers(dir, 'r3')).toEqual([]);
  });

  it('a missing model directory: exit 2, E_MODEL_NOT_FOUND naming it', async () => {
    const r = await chm(['--model', join(dir, 'no-such-model'), '--aoi', aoi, '--imagery', cogeo(), '--out', join(dir, 'r4'), ...FAST], home);
    expect(r.code).toBe(2);
    const err = r.events.find((e) => e['type'] === 'error')!;
    expect(err['code']).toBe('E_MODEL_NOT_FOUND');
    expect(String(err['message'])).toContain('no-such-model: no such model directory');
    expect(leftovers(dir, 'r4')).toEqual([]);
  });

  it('no --model and no weights installed: says how to get the real weights instead of guessing', async () => {
    const r = await chm(['--aoi', aoi, '--imagery', cogeo(), '--out', join(dir, 'r5')], join(dir, 'empty-home'));
    expect(r.code).toBe(2);
    const err = r.events.find((e) => e['type'] === 'error')!;
    expect(err['code']).toBe('E_MODEL_NOT_FOUND');
    expect(String(err['message'])).toContain('geo-dino model pull facebook/dinov3-vitl16-chmv2-dpt-head');
    expect(String(err['message'])).toContain('geo-dino model build');
    expect(String(err['message'])).toContain('--model demo');
  });

  it('an --out whose parent is a file: exit 1, E_WRITE', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const r = await chm(['--model', 'demo', '--aoi', aoi, '--imagery', cogeo(), '--out', join(file, 'run'), ...FAST], home);
    expect(r.code).toBe(1);
    const err = r.events.find((e) => e['type'] === 'error')!;
    expect(err['code']).toBe('E_WRITE');
    expect(String(err['message'])).toMatch(/a-file: cannot (create|write): a parent is not a directory/);
  });

  it('an --out that holds something else: exit 2, nothing replaced without --force', async () => {
    const other = join(dir, 'other');
    execFileSync('mkdir', ['-p', other]);
    writeFileSync(join(other, 'notes.txt'), 'mine');
    const r = await chm(['--model', 'demo', '--aoi', aoi, '--imagery', cogeo(), '--out', other, ...FAST], home);
    expect(r.code).toBe(2);
    expect(String(r.events.find((e) => e['type'] === 'error')!['message'])).toMatch(/already holds files that are not a geo-dino run; choose another --out, or pass --force/);
    expect(readFileSync(join(other, 'notes.txt'), 'utf8')).toBe('mine');
  });

  describe('real file systems (private mount namespace)', () => {
    beforeAll(() => requireTool('unshare', ['--version'], 'install util-linux'));

    /** Run the CLI inside a fresh mount namespace with a tmpfs at `mnt`; report exit status and what is left there. */
    function inNamespace(tmpfsOptions: string, name: string): { rc: number; out: boolean; left: string[]; stderr: string } {
      const mnt = join(dir, `mnt-${name}`);
      const errFile = join(dir, `stderr-${name}`);
      const script = [
        'set -u',
        `mkdir -p "${mnt}"`,
        `mount -t tmpfs -o ${tmpfsOptions} tmpfs "${mnt}" || { echo "MOUNT-FAILED"; exit 0; }`,
        `"${process.execPath}" "${CLI_BIN}" chm --model demo --aoi "${aoi}" --imagery "${cogeo()}" --out "${mnt}/run" ${FAST.join(' ')} --json >/dev/null 2>"${errFile}"`,
        'echo "rc=$?"',
        `[ -e "${mnt}/run" ] && echo "out=yes" || echo "out=no"`,
        `ls -A "${mnt}" | sed 's/^/left=/'`,
      ].join('\n');
      const text = execFileSync('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c', script], {
        encoding: 'utf8',
        env: { ...process.env, GEO_DINO_HOME: home, GEO_DINO_MODEL: '' },
        timeout: 240_000,
      });
      if (text.includes('MOUNT-FAILED')) throw new Error(`cannot mount a tmpfs in a user namespace here (unshare -rm): ${text}`);
      return {
        rc: Number(/rc=(\d+)/.exec(text)![1]),
        out: text.includes('out=yes'),
        left: [...text.matchAll(/^left=(.*)$/gm)].map((m) => m[1]!),
        stderr: readFileSync(errFile, 'utf8'),
      };
    }

    it('a read-only --out: exit 1, "read-only file system", before any work', async () => {
      const r = inNamespace('ro,size=1m', 'ro');
      expect(r.rc).toBe(1);
      expect(r.stderr).toMatch(/"code":"E_WRITE".*read-only file system/);
      expect(r.out).toBe(false);
    });

    it('a full disk: exit 1, "no space left on device", no run directory', async () => {
      const r = inNamespace('size=1500k', 'full');
      expect(r.rc, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/"code":"E_WRITE".*no space left on device/);
      expect(r.out).toBe(false);
      // What is left is the resumable state, never a run directory or staging output.
      expect(r.left.every((f) => f === '.run.geo-dino-state'), r.left.join(', ')).toBe(true);
    });
  });
});
