/**
 * pullModel against a real HTTP server on loopback with the Hub's layout (api + resolve +
 * LFS redirect to a CDN path): checksums, resume after an interruption, a dropped connection,
 * corruption, gated repositories and tokens; and the pulled directory builds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, readdir, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pullModel, buildModel, listStaging, PULL_MANIFEST, globToRegExp } from '@geo-dino/model';
import { startHubServer, type HubServer } from '../../../test/support/hf-hub-server.js';
import { fixture, tempDir } from './support.js';

const REPO = 'facebook/chmv2-tiny';
const GATED = 'facebook/chmv2-gated';
let hub: HubServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
let files: Record<string, Uint8Array>;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  tmp = await tempDir('geo-dino-hub-');
  files = {};
  for (const f of await readdir(fixture('chmv2-vitl-like'))) {
    if (f.startsWith('reference-')) continue;
    files[f] = new Uint8Array(await readFile(fixture('chmv2-vitl-like', f)));
  }
  files['README.md'] = new TextEncoder().encode('# tiny CHMv2\n');
  files['onnx/model.onnx'] = new Uint8Array(100);
  hub = await startHubServer({ [REPO]: { files }, [GATED]: { files: { 'config.json': files['config.json']! }, token: 'hf_good' } });
});
afterAll(async () => {
  await hub.close();
  await tmp.cleanup();
});

const fast = { retries: 2, timeoutMs: 10_000 };

describe('model pull', () => {
  it('downloads the selected files from one commit, verified, then builds', async () => {
    const out = join(tmp.dir, 'full');
    const r = await pullModel(REPO, { out, endpoint: hub.url, env: {}, ...fast });
    expect(r.commit).toMatch(/^[0-9a-f]{40}$/);
    const names = r.files.map((f) => f.name).sort();
    expect(names).toEqual(Object.keys(files).filter((n) => !n.startsWith('onnx/')).sort());
    for (const f of r.files) {
      const got = new Uint8Array(await readFile(join(out, f.name)));
      expect(sha(got)).toBe(sha(files[f.name]!));
      expect(f.sha256).toBe(sha(got));
      expect(f.checksum.algorithm).toBe(f.name.endsWith('.safetensors') ? 'sha256' : 'git-sha1');
    }
    expect(r.downloadedBytes).toBe(Object.entries(files).filter(([n]) => !n.startsWith('onnx/')).reduce((s, [, b]) => s + b.length, 0));
    const manifest = JSON.parse(await readFile(join(out, PULL_MANIFEST), 'utf8')) as { commit: string; repo: string };
    expect(manifest).toMatchObject({ repo: REPO, commit: r.commit });
    await expect(stat(join(out, '.geo-dino-pull'))).rejects.toThrow();
    // every file request was pinned to the commit, and large files went through the CDN redirect
    const resolves = hub.requests.filter((q) => q.path.includes('/resolve/'));
    expect(resolves.every((q) => q.path.includes(`/resolve/${r.commit}/`))).toBe(true);
    expect(hub.requests.some((q) => q.path.startsWith('/cdn/'))).toBe(true);
    const md = await buildModel({ from: out, out: join(tmp.dir, 'built') });
    expect(md.meta.source.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    // Pulling again verifies what is there and fetches nothing.
    hub.requests.length = 0;
    const again = await pullModel(REPO, { out, endpoint: hub.url, env: {}, ...fast });
    expect(again.downloadedBytes).toBe(0);
    expect(again.files.every((f) => f.inPlace)).toBe(true);
    expect(hub.requests.filter((q) => q.path.includes('/resolve/') || q.path.startsWith('/cdn/'))).toEqual([]);
  });

  it('resumes an interrupted download where it stopped (Range from the partial size)', async () => {
    const out = join(tmp.dir, 'resume');
    const big = 'model-00003-of-00003.safetensors';
    const ac = new AbortController();
    hub.onServe = (file, _s, end) => {
      if (file === big && end > 200_000) ac.abort();
    };
    const first = await pullModel(REPO, { out, endpoint: hub.url, env: {}, chunkBytes: 64 * 1024, signal: ac.signal, ...fast }).catch((e: unknown) => e);
    hub.onServe = undefined;
    expect(first).toMatchObject({ code: 'E_CANCELLED' });
    const staged = await listStaging(out);
    expect(staged).toContain(`${big}.partial`);
    const partialSize = (await stat(join(out, '.geo-dino-pull', `${big}.partial`))).size;
    expect(partialSize).toBeGreaterThan(0);
    await expect(stat(join(out, big))).rejects.toThrow(); // nothing half-written in place
    hub.requests.length = 0;
    const r = await pullModel(REPO, { out, endpoint: hub.url, env: {}, chunkBytes: 64 * 1024, ...fast });
    const ranges = hub.requests.filter((q) => q.path.endsWith(encodeURIComponent(big)) && q.path.startsWith('/cdn/')).map((q) => Number(/bytes=(\d+)-/.exec(q.range ?? '')?.[1]));
    expect(Math.min(...ranges)).toBe(partialSize);
    expect(r.downloadedBytes).toBeLessThan(r.files.reduce((s, f) => s + f.bytes, 0));
    expect(sha(new Uint8Array(await readFile(join(out, big))))).toBe(sha(files[big]!));
  });

  it('retries a connection dropped mid-body', async () => {
    const out = join(tmp.dir, 'flaky');
    hub.dropNext('config.json', 1);
    hub.requests.length = 0;
    const r = await pullModel(REPO, { out, endpoint: hub.url, env: {}, include: ['config.json'], ...fast, retries: 3 });
    expect(r.files.map((f) => f.name)).toEqual(['config.json']);
    expect(hub.requests.filter((q) => q.path.endsWith('/config.json')).length).toBe(2);
    expect(sha(new Uint8Array(await readFile(join(out, 'config.json'))))).toBe(sha(files['config.json']!));
  });

  it('a checksum mismatch that persists fails, and leaves no file in place', async () => {
    const out = join(tmp.dir, 'corrupt');
    hub.corrupt('model-00001-of-00003.safetensors');
    const err = await pullModel(REPO, { out, endpoint: hub.url, env: {}, include: ['model-00001-of-00003.safetensors'], ...fast }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_NETWORK' });
    expect((err as Error).message).toMatch(/checksum mismatch after a fresh download/);
    await expect(stat(join(out, 'model-00001-of-00003.safetensors'))).rejects.toThrow();
  });

  it('a gated repository: clear messages without a token and with one lacking access; works with access', async () => {
    const out = join(tmp.dir, 'gated');
    const none = await pullModel(GATED, { out, endpoint: hub.url, env: {}, ...fast }).catch((e: unknown) => e);
    expect(none).toMatchObject({ code: 'E_ACCESS_DENIED' });
    expect((none as Error).message).toMatch(/gated repository: accept its licence at https:\/\/huggingface\.co\/facebook\/chmv2-gated.*set HF_TOKEN/);
    const wrong = await pullModel(GATED, { out, endpoint: hub.url, env: { HF_TOKEN: 'hf_other' }, ...fast }).catch((e: unknown) => e);
    expect((wrong as Error).message).toMatch(/this HF_TOKEN has no access yet/);
    const ok = await pullModel(GATED, { out, endpoint: hub.url, env: { HF_TOKEN: 'hf_good' }, ...fast });
    expect(ok.files.map((f) => f.name)).toEqual(['config.json']);
    expect(hub.requests.filter((q) => q.path.includes('chmv2-gated/resolve')).at(-1)!.auth).toBe('Bearer hf_good');
  });

  it('an unknown repository or a bad id', async () => {
    await expect(pullModel('nobody/nothing', { out: join(tmp.dir, 'x'), endpoint: hub.url, env: {}, ...fast })).rejects.toThrow(/nobody\/nothing: repository not found \(if it is private, set HF_TOKEN\)/);
    await expect(pullModel('../etc', { out: join(tmp.dir, 'x'), endpoint: hub.url, env: {} })).rejects.toMatchObject({ code: 'E_ARGUMENT' });
  });

  it('globs', () => {
    expect(globToRegExp('*.safetensors').test('model-00001-of-00003.safetensors')).toBe(true);
    expect(globToRegExp('*.safetensors').test('onnx/model.safetensors')).toBe(false);
    expect(globToRegExp('onnx/**').test('onnx/a/b.onnx')).toBe(true);
  });
});
