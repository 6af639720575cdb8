/**
 * `pullModel`: download a model repository from the Hugging Face Hub (or a mirror with the same
 * layout), resumable and checksum-verified.
 *
 * - File list and checksums: `GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true`
 *   (`sha` = commit; `siblings[].lfs.sha256` for LFS files, `siblings[].blobId` = git blob sha1
 *   for the others). Every file is then fetched from that exact commit, so a push during the
 *   download cannot mix revisions.
 * - Files: `GET {endpoint}/{repo}/resolve/{commit}/{path}` in ranges (core's fetchBytes: deadline,
 *   retries with backoff, truncated bodies retried). Partial files live in
 *   `<out>/.geo-dino-pull/` and a rerun continues where the last one stopped.
 * - `HF_TOKEN` is sent as a bearer token. A gated repository without access gives a clear
 *   E_ACCESS_DENIED saying what to do.
 * - Nothing half-written: files appear in `<out>` only after their checksum matched.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, rename, rm, stat, mkdir, readdir } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import {
  GeoDinoError,
  ensureDir,
  fetchBytes,
  fsError,
  silentLogger,
  silentProgress,
  throwIfAborted,
  writeJsonAtomic,
  type Logger,
  type Progress,
} from '@geo-dino/core';

export const HF_ENDPOINT = 'https://huggingface.co';
export const PULL_STAGING = '.geo-dino-pull';
export const PULL_MANIFEST = 'pull.json';

/** Default selection: what `geo-dino model build` needs, plus licence and readme. */
export const DEFAULT_PULL_PATTERNS = ['config.json', 'preprocessor_config.json', '*.safetensors', '*.safetensors.index.json', 'LICENSE*', 'README.md'];

export interface PullOptions {
  /** Output directory. */
  out: string;
  revision?: string;
  /** Hub endpoint (default $HF_ENDPOINT or https://huggingface.co). */
  endpoint?: string;
  /** Bearer token (default $HF_TOKEN). */
  token?: string;
  /** Glob patterns of files to fetch (`*` matches within a path segment, `**` across). */
  include?: readonly string[];
  /** Range size per request (default 32 MiB). */
  chunkBytes?: number;
  retries?: number;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
}

export interface PulledFile {
  name: string;
  bytes: number;
  /** sha256 (LFS files) or git blob sha1 (small files), as the Hub lists them. */
  checksum: { algorithm: 'sha256' | 'git-sha1'; value: string };
  /** sha256 of the content (always computed). */
  sha256: string;
  /** Found complete in the output directory (from an earlier pull); not fetched again. */
  inPlace?: boolean;
}

export interface PullResult {
  dir: string;
  repo: string;
  revision: string;
  commit: string;
  files: PulledFile[];
  /** Bytes fetched by this run (less than the total when resuming). */
  downloadedBytes: number;
}

interface Sibling {
  rfilename: string;
  size?: number;
  blobId?: string;
  lfs?: { sha256?: string; size?: number };
}

/** Glob → RegExp (`*` within a segment, `**` across segments, `?` one character). */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const REPO_RE = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;

function hubError(repo: string, status: number, errorCode: string | null, body: string, url: string, hasToken: boolean): GeoDinoError {
  const page = `https://huggingface.co/${repo}`;
  const text = (() => {
    try {
      const j = JSON.parse(body) as { error?: unknown };
      return typeof j.error === 'string' ? j.error : body;
    } catch {
      return body;
    }
  })()
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300);
  const details = { repo, status, url, hubError: errorCode };
  if (errorCode === 'GatedRepo' || /gated|restricted/i.test(text)) {
    return new GeoDinoError(
      'E_ACCESS_DENIED',
      hasToken
        ? `${repo} is a gated repository and this HF_TOKEN has no access yet: request access at ${page} (the licence must be accepted by the token's account), then retry`
        : `${repo} is a gated repository: accept its licence at ${page}, create a read token at https://huggingface.co/settings/tokens and set HF_TOKEN`,
      { details },
    );
  }
  if (errorCode === 'RevisionNotFound') return new GeoDinoError('E_NOT_FOUND', `${repo}: revision not found (${text || status})`, { details });
  if (errorCode === 'EntryNotFound') return new GeoDinoError('E_NOT_FOUND', `${repo}: file not found: ${url}`, { details });
  if (status === 404 || errorCode === 'RepoNotFound' || (status === 401 && !hasToken)) {
    return new GeoDinoError(
      status === 401 ? 'E_ACCESS_DENIED' : 'E_NOT_FOUND',
      `${repo}: repository not found${hasToken ? '' : ' (if it is private, set HF_TOKEN)'}${text ? `: ${text}` : ''}`,
      { details },
    );
  }
  if (status === 401 || status === 403) return new GeoDinoError('E_ACCESS_DENIED', `${repo}: access denied (HTTP ${status}${text ? `: ${text}` : ''})`, { details });
  return new GeoDinoError('E_HTTP_STATUS', `${url}: HTTP ${status}${text ? `: ${text}` : ''}`, { details });
}

function safeRelative(name: string, repo: string): string {
  if (!name || name.startsWith('/') || name.includes('\\') || name.split('/').some((p) => p === '..' || p === '' || p === '.')) {
    throw new GeoDinoError('E_BAD_JSON', `${repo}: the Hub listed an unsafe file name ${JSON.stringify(name)}`);
  }
  return name;
}

async function sizeOf(p: string): Promise<number | undefined> {
  try {
    return (await stat(p)).size;
  } catch {
    return undefined;
  }
}

async function hashExisting(path: string, bytes: number, hashes: Hash[]): Promise<void> {
  const h = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(8 << 20);
    let pos = 0;
    while (pos < bytes) {
      const { bytesRead } = await h.read(buf, 0, Math.min(buf.length, bytes - pos), pos);
      if (bytesRead === 0) break;
      for (const x of hashes) x.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await h.close();
  }
}

/** Download `repo` from the Hub into `options.out`. */
export async function pullModel(repo: string, options: PullOptions): Promise<PullResult> {
  const env = options.env ?? process.env;
  const log = options.log ?? silentLogger();
  const progress = options.progress ?? silentProgress;
  if (!REPO_RE.test(repo)) throw new GeoDinoError('E_ARGUMENT', `${JSON.stringify(repo)} is not a Hub repository id (expected owner/name)`);
  const endpoint = (options.endpoint ?? env['HF_ENDPOINT'] ?? HF_ENDPOINT).replace(/\/+$/, '');
  const token = options.token ?? env['HF_TOKEN'] ?? env['HUGGING_FACE_HUB_TOKEN'];
  const revision = options.revision ?? 'main';
  const out = resolve(options.out);
  const headers: Record<string, string> = { 'User-Agent': 'geo-dino' };
  if (token) headers['Authorization'] = `Bearer ${token}`;
  const retry = {
    ...(options.retries !== undefined ? { retries: options.retries } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    onRetry: (i: { url: string; attempt: number; reason: string }) => log.warn({ url: i.url, attempt: i.attempt, reason: i.reason }, 'retrying'),
  };

  // 1. File list with checksums, pinned to a commit.
  const infoUrl = `${endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
  const infoRes = await fetchBytes(infoUrl, { ...retry, headers: { ...headers, Accept: 'application/json' }, acceptStatus: [401, 403, 404], maxBytes: 64 << 20 });
  const infoText = new TextDecoder().decode(infoRes.bytes);
  if (infoRes.status >= 400) throw hubError(repo, infoRes.status, infoRes.headers.get('x-error-code'), infoText, infoUrl, !!token);
  let info: { sha?: unknown; siblings?: unknown; gated?: unknown };
  try {
    info = JSON.parse(infoText) as typeof info;
  } catch (err) {
    throw new GeoDinoError('E_BAD_JSON', `${infoUrl}: invalid JSON: ${(err as Error).message}`);
  }
  if (typeof info.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha) || !Array.isArray(info.siblings)) {
    throw new GeoDinoError('E_BAD_JSON', `${infoUrl}: answer lacks a commit sha or the file list`);
  }
  const commit = info.sha;
  const patterns = (options.include?.length ? options.include : DEFAULT_PULL_PATTERNS).map(globToRegExp);
  const siblings = (info.siblings as Sibling[]).filter((s) => typeof s?.rfilename === 'string' && patterns.some((p) => p.test(s.rfilename)));
  if (!siblings.length) {
    throw new GeoDinoError('E_NOT_FOUND', `${repo}@${revision}: no files match ${(options.include ?? DEFAULT_PULL_PATTERNS).join(', ')}`);
  }
  const plan = siblings.map((s) => {
    const name = safeRelative(s.rfilename, repo);
    const lfsSha = s.lfs?.sha256;
    const size = s.lfs?.size ?? s.size;
    if (lfsSha && !/^[0-9a-f]{64}$/.test(lfsSha)) throw new GeoDinoError('E_BAD_JSON', `${infoUrl}: ${name}: malformed lfs.sha256`);
    if (!lfsSha && !(typeof s.blobId === 'string' && /^[0-9a-f]{40}$/.test(s.blobId))) {
      throw new GeoDinoError('E_BAD_JSON', `${infoUrl}: ${name}: neither lfs.sha256 nor blobId to verify it against`);
    }
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new GeoDinoError('E_BAD_JSON', `${infoUrl}: ${name}: missing size`);
    return {
      name,
      size,
      checksum: lfsSha ? { algorithm: 'sha256' as const, value: lfsSha } : { algorithm: 'git-sha1' as const, value: s.blobId! },
    };
  });
  if (info.gated && info.gated !== false) log.info({ repo, gated: info.gated }, 'gated repository');

  // 2. Download into the staging directory, resuming partial files.
  await ensureDir(out);
  const staging = join(out, PULL_STAGING);
  await ensureDir(staging);
  const total = plan.reduce((s, f) => s + f.size, 0);
  const task = progress.start(`pulling ${repo}`, { total, unit: 'bytes' });
  const chunk = Math.max(64 * 1024, options.chunkBytes ?? 32 << 20);
  let downloaded = 0;
  let doneBytes = 0;
  const results: PulledFile[] = [];
  for (const f of plan) {
    throwIfAborted(options.signal);
    const complete = join(staging, f.name);
    const partial = `${complete}.partial`;
    await mkdir(dirname(complete), { recursive: true });
    const url = `${endpoint}/${repo}/resolve/${commit}/${f.name.split('/').map(encodeURIComponent).join('/')}`;
    // Already in place from an earlier pull (same size and checksum): nothing to fetch.
    const final = join(out, f.name);
    if ((await sizeOf(final)) === f.size) {
      const sha256 = createHash('sha256');
      const hashes = f.checksum.algorithm === 'git-sha1' ? [sha256, createHash('sha1').update(`blob ${f.size}\0`)] : [sha256];
      await hashExisting(final, f.size, hashes);
      const sha = sha256.digest('hex');
      const got = f.checksum.algorithm === 'sha256' ? sha : hashes[1]!.digest('hex');
      if (got === f.checksum.value) {
        log.info({ file: f.name }, 'already downloaded and verified');
        results.push({ name: f.name, bytes: f.size, checksum: f.checksum, sha256: sha, inPlace: true });
        doneBytes += f.size;
        task.update(doneBytes);
        continue;
      }
    }
    let attemptFresh = false;
    for (;;) {
      const sha256 = createHash('sha256');
      const gitSha1 = createHash('sha1').update(`blob ${f.size}\0`);
      const hashes = f.checksum.algorithm === 'git-sha1' ? [sha256, gitSha1] : [sha256];
      let have = attemptFresh ? 0 : (await sizeOf(complete)) ?? (await sizeOf(partial)) ?? 0;
      const already = (await sizeOf(complete)) !== undefined && !attemptFresh;
      const path = already ? complete : partial;
      if (attemptFresh) {
        await rm(complete, { force: true });
        await rm(partial, { force: true });
      }
      if (have > f.size) {
        await rm(path, { force: true });
        have = 0;
      }
      if (have > 0) {
        log.info({ file: f.name, bytes: have }, already ? 'verifying downloaded file' : 'resuming download');
        await hashExisting(path, have, hashes);
      }
      task.update(doneBytes + have);
      if (have < f.size) {
        let handle;
        try {
          handle = await open(partial, have > 0 ? 'r+' : 'w');
        } catch (err) {
          throw fsError(err, partial, 'write');
        }
        try {
          while (have < f.size) {
            throwIfAborted(options.signal);
            const end = Math.min(f.size, have + chunk) - 1;
            const res = await fetchBytes(url, { ...retry, headers, range: [have, end], acceptStatus: [401, 403, 404], maxBytes: chunk + 1024 });
            if (res.status >= 400) throw hubError(repo, res.status, res.headers.get('x-error-code'), new TextDecoder().decode(res.bytes), url, !!token);
            if (res.bytes.length !== end - have + 1) {
              throw new GeoDinoError('E_NETWORK', `${url}: expected ${end - have + 1} bytes at offset ${have}, got ${res.bytes.length}`);
            }
            await handle.write(res.bytes, 0, res.bytes.length, have);
            for (const x of hashes) x.update(res.bytes);
            have += res.bytes.length;
            downloaded += res.bytes.length;
            task.update(doneBytes + have);
          }
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      const sha = sha256.digest('hex');
      const got = f.checksum.algorithm === 'sha256' ? sha : gitSha1.digest('hex');
      if (got === f.checksum.value) {
        if (!already) await rename(partial, complete);
        results.push({ name: f.name, bytes: f.size, checksum: f.checksum, sha256: sha });
        break;
      }
      if (attemptFresh) {
        await rm(partial, { force: true });
        throw new GeoDinoError('E_NETWORK', `${repo}/${f.name}: checksum mismatch after a fresh download (${f.checksum.algorithm} ${got}, the Hub lists ${f.checksum.value})`, {
          details: { file: f.name },
        });
      }
      log.warn({ file: f.name }, 'checksum mismatch; downloading the file again from the start');
      attemptFresh = true;
    }
    doneBytes += f.size;
  }
  task.finish();

  // 3. Move verified files into place, then the manifest, then drop the staging directory.
  for (const r of results) {
    if (r.inPlace) continue;
    const dest = join(out, r.name);
    await mkdir(dirname(dest), { recursive: true });
    await rename(join(staging, r.name), dest);
  }
  const result: PullResult = { dir: out, repo, revision, commit, files: results, downloadedBytes: downloaded };
  await writeJsonAtomic(join(out, PULL_MANIFEST), { repo, revision, commit, endpoint, pulledAt: new Date().toISOString(), files: results });
  await rm(staging, { recursive: true, force: true });
  return result;
}

/** Files under a pull's staging directory (for tests and diagnostics). */
export async function listStaging(out: string): Promise<string[]> {
  const base = join(resolve(out), PULL_STAGING);
  const acc: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      if ((await stat(p)).isDirectory()) await walk(p);
      else acc.push(p.slice(base.length + 1).split(sep).join('/'));
    }
  };
  await walk(base);
  return acc.sort();
}
