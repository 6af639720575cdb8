/**
 * Publishing a completed run directory to object storage, so that readers never see a half run.
 *
 * Generic over the directory's layout (nested folders such as `shards/…` become key prefixes).
 * Order of work under `s3://bucket/prefix/`:
 *
 * 1. Hash every local file (sha256 → STAC `file:checksum` multihash, and md5 for the upload's
 *    integrity header) in one streaming pass; STAC documents in the directory that record a
 *    `file:checksum` for a local asset must agree with the file, or nothing is published.
 * 2. Delete an earlier `manifest.json` under the prefix (the run is "not there" while it is being
 *    replaced) and abort multipart uploads an interrupted publish left under the prefix.
 * 3. Upload: objects already there with the same sha256 (object metadata `geo-dino-sha256`) and
 *    size are kept (a resumed publish sends only what is missing; no key is ever written twice with
 *    different content by one run). A file given in `sources` (an object elsewhere in the store
 *    with the same sha256 and size) is copied on the server; files given in `remoteFiles` are
 *    already at their keys (checked by HEAD, listed in the manifest). Small files are one PUT; files from `multipartThresholdBytes`
 *    on are multipart uploads whose parts are all sent before any upload is completed. Every PUT
 *    and part carries Content-MD5, so the server refuses corrupted bodies.
 * 4. Complete the multipart uploads, then verify every object (HEAD: size, sha256 metadata, ETag
 *    = md5 or md5-of-part-md5s; when the ETag is not an md5, as with SSE-KMS, the object is read
 *    back and hashed).
 * 5. Write `manifest.json` last: every file with `file:size` and `file:checksum`. A run in object
 *    storage is complete exactly when its manifest exists.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, readFile } from 'node:fs/promises';
import { join, posix, relative, sep } from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { GeoDinoError, TaskGroup, fsError, retrying, silentLogger, silentProgress, throwIfAborted, type Logger, type Progress, type RetryOptions } from '@geo-dino/core';
import { parseS3Url, requesterPaysParam, s3Client, s3Failure, s3GetJson, s3Head, s3RetryPolicy, s3Send, s3Url, type S3Handle, type S3Settings } from './s3.js';

export const MANIFEST_NAME = 'manifest.json';
export const MANIFEST_FORMAT = 'geo-dino-run-manifest';
/** Object metadata key holding the hex sha256 of the object (`x-amz-meta-geo-dino-sha256`). */
export const SHA256_METADATA = 'geo-dino-sha256';

const MiB = 1024 * 1024;

export interface PublishOptions {
  s3?: S3Settings;
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
  /** Files this large or larger go as multipart uploads (default 64 MiB; at least 5 MiB). */
  multipartThresholdBytes?: number;
  /** Part size of multipart uploads (default 16 MiB; at least 5 MiB, S3's minimum). */
  partBytes?: number;
  /** Requests in flight (default 4); memory is about this times `partBytes`. */
  concurrency?: number;
  /** Retry policy of each request (core's defaults). */
  retry?: Omit<RetryOptions, 'signal' | 'onRetry'>;
  /** Extra fields for the manifest (for example the run's request hash). */
  manifestExtra?: Record<string, unknown>;
  /**
   * Files already in object storage (relative path → object, same endpoint): a file whose sha256
   * and size are the object's is copied on the server (CopyObject) instead of uploaded. For runs
   * whose shards workers uploaded (`chm --queue --out s3://`); objects up to 5 GiB.
   */
  sources?: ReadonlyMap<string, { url: string; sha256: string; bytes: number }>;
  /**
   * Files of the run that are not in the directory but already at their keys under the prefix
   * (relative paths), each with the sha256 metadata geo-dino writes: checked (HEAD), cross-checked
   * against the STAC documents and listed in the manifest. For distributed runs whose shard
   * rasters never came to the publishing machine.
   */
  remoteFiles?: readonly string[];
}

export interface PublishedFile {
  /** Path relative to the directory, '/'-separated; also the key under the prefix. */
  path: string;
  'file:size': number;
  'file:checksum': string;
  /** False when an identical object was already there. */
  uploaded: boolean;
  multipart: boolean;
  /** Copied on the server from `sources` (not sent from this machine). */
  copied?: boolean;
}

export interface RunManifest {
  type: typeof MANIFEST_FORMAT;
  version: 1;
  published: string;
  files: { path: string; 'file:size': number; 'file:checksum': string }[];
  [extra: string]: unknown;
}

export interface PublishResult {
  url: string;
  manifestUrl: string;
  files: PublishedFile[];
  uploadedBytes: number;
}

interface LocalFile {
  path: string;
  abs: string;
  size: number;
  sha256: string;
  md5: Buffer;
}

/** Every regular file under `dir`, as '/'-separated relative paths, sorted. */
async function walk(dir: string): Promise<{ path: string; abs: string }[]> {
  const out: { path: string; abs: string }[] = [];
  const visit = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      throw fsError(err, d, 'read');
    }
    for (const e of entries) {
      const abs = join(d, e.name);
      if (e.isDirectory()) await visit(abs);
      else if (e.isFile()) out.push({ path: relative(dir, abs).split(sep).join('/'), abs });
    }
  };
  await visit(dir);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** sha256 (hex) and md5 of a local file in one streaming pass. */
export async function hashFile(abs: string, signal?: AbortSignal): Promise<{ size: number; sha256: string; md5: Buffer }> {
  const sha = createHash('sha256');
  const md5 = createHash('md5');
  let size = 0;
  try {
    for await (const chunk of createReadStream(abs, { highWaterMark: 4 * MiB, ...(signal ? { signal } : {}) })) {
      const b = chunk as Buffer;
      sha.update(b);
      md5.update(b);
      size += b.length;
    }
  } catch (err) {
    throwIfAborted(signal);
    throw fsError(err, abs, 'read');
  }
  return { size, sha256: sha.digest('hex'), md5: md5.digest() };
}

/** The STAC multihash of a sha256 (code 0x12, length 0x20). */
export function sha256Multihash(hex: string): string {
  return '1220' + hex;
}

/**
 * STAC documents among the files that record `file:checksum` for a local asset must agree with
 * the file as it is now: publishing a run whose item.json describes other bytes is refused.
 */
async function crossCheckStac(dir: string, files: Map<string, LocalFile>, remote: ReadonlyMap<string, { sha256: string }>): Promise<void> {
  for (const f of files.values()) {
    if (!f.path.endsWith('.json') || f.size > 16 * MiB) continue;
    let doc: unknown;
    try {
      doc = JSON.parse(await readFile(f.abs, 'utf8'));
    } catch {
      continue;
    }
    const assets = (doc as { assets?: unknown } | null)?.assets;
    if (!assets || typeof assets !== 'object') continue;
    for (const [name, a] of Object.entries(assets as Record<string, { href?: unknown; 'file:checksum'?: unknown }>)) {
      if (typeof a?.href !== 'string' || typeof a['file:checksum'] !== 'string' || /^[a-z][a-z0-9+.-]*:/i.test(a.href)) continue;
      const target = posix.normalize(posix.join(posix.dirname(f.path), a.href));
      const local = files.get(target) ?? remote.get(target);
      if (!local) continue;
      if (a['file:checksum'].toLowerCase() !== sha256Multihash(local.sha256)) {
        throw new GeoDinoError(
          'E_WRITE',
          `${join(dir, f.path)}: assets.${name}: file:checksum ${a['file:checksum']} does not match ${target} (${sha256Multihash(local.sha256)}); the run directory changed after it was written, not publishing it`,
          { details: { path: join(dir, f.path), asset: name } },
        );
      }
    }
  }
}

function joinKey(prefix: string, path: string): string {
  return prefix ? `${prefix}/${path}` : path;
}

function md5Etag(md5s: readonly Buffer[], multipart: boolean): string {
  if (!multipart) return md5s[0]!.toString('hex');
  const all = createHash('md5');
  for (const m of md5s) all.update(m);
  return `${all.digest('hex')}-${md5s.length}`;
}

async function readPart(abs: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(abs, 'r').catch((err: unknown) => {
    throw fsError(err, abs, 'read');
  });
  try {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) throw new GeoDinoError('E_WRITE', `${abs}: file shrank while it was being published`, { details: { path: abs } });
      done += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

async function sha256OfObject(h: S3Handle, bucket: string, key: string, url: string, retry: RetryOptions): Promise<string> {
  return retrying(url, retry, async (signal) => {
    try {
      const res = await h.client.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(h.settings.requesterPays ? { RequestPayer: 'requester' } : {}) }), { abortSignal: signal });
      const sha = createHash('sha256');
      for await (const chunk of res.Body as AsyncIterable<Uint8Array>) sha.update(chunk);
      return sha.digest('hex');
    } catch (err) {
      throw s3Failure(err, url, h);
    }
  });
}

/**
 * Publish the completed directory `dir` under `dest` (`s3://bucket/prefix`); see the module
 * comment for the order of work and what a reader can rely on.
 */
export async function publishDirectory(dir: string, dest: string, options: PublishOptions = {}): Promise<PublishResult> {
  const log = options.log ?? silentLogger();
  const progress = options.progress ?? silentProgress;
  const signal = options.signal;
  const { bucket, key: rawPrefix } = parseS3Url(dest, '--out');
  const prefix = rawPrefix.replace(/\/+$/, '');
  const partBytes = Math.max(5 * MiB, options.partBytes ?? 16 * MiB);
  const threshold = Math.max(5 * MiB, options.multipartThresholdBytes ?? 64 * MiB);
  const retry = s3RetryPolicy({ ...(options.retry ? { retry: options.retry } : {}), ...(signal ? { signal } : {}), log });
  const h = await s3Client(options.s3, log, options.env);
  const rp = requesterPaysParam(h);
  const send = <T>(url: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> => s3Send(h, url, retry, fn);

  // 1. Hash.
  const listed = await walk(dir);
  if (listed.some((f) => f.path === MANIFEST_NAME)) {
    throw new GeoDinoError('E_WRITE', `${join(dir, MANIFEST_NAME)}: the directory already holds a ${MANIFEST_NAME}; it is the name publishing writes last`, { details: { path: dir } });
  }
  const hashTask = progress.start('hashing outputs', { total: listed.length, unit: 'files' });
  const files = new Map<string, LocalFile>();
  for (const f of listed) {
    throwIfAborted(signal);
    files.set(f.path, { ...f, ...(await hashFile(f.abs, signal)) });
    hashTask.tick();
  }
  hashTask.finish();
  // Files already at their keys (remoteFiles): present, with their sha256.
  const remote = new Map<string, { size: number; sha256: string }>();
  for (const path of options.remoteFiles ?? []) {
    if (files.has(path) || remote.has(path)) continue;
    const url = s3Url(bucket, joinKey(prefix, path));
    const info = await s3Head(url, { ...retry, ...(options.s3 ? { s3: options.s3 } : {}), log, ...(options.env ? { env: options.env } : {}) });
    const sha = info?.metadata[SHA256_METADATA];
    if (!info || !sha || !/^[0-9a-f]{64}$/.test(sha)) {
      throw new GeoDinoError('E_WRITE', `${url}: a file of the run that should already be in object storage is ${info ? 'there without its sha256 metadata' : 'missing'}; not publishing the run`, { details: { url } });
    }
    remote.set(path, { size: info.size, sha256: sha });
  }
  await crossCheckStac(dir, files, remote);

  // 2. Take the old manifest down, clear leftovers of an interrupted publish.
  const manifestKey = joinKey(prefix, MANIFEST_NAME);
  const manifestUrl = s3Url(bucket, manifestKey);
  await send(manifestUrl, (s) => h.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: manifestKey, ...rp }), { abortSignal: s }));
  const listUrl = s3Url(bucket, prefix ? prefix + '/' : '');
  const leftovers = await send(listUrl, (s) =>
    h.client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix ? prefix + '/' : '', ...rp }), { abortSignal: s }),
  );
  for (const u of leftovers.Uploads ?? []) {
    if (!u.Key || !u.UploadId) continue;
    const url = s3Url(bucket, u.Key);
    log.info({ url }, 'aborting a multipart upload an interrupted publish left');
    await send(url, (s) => h.client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId!, ...rp }), { abortSignal: s }));
  }

  // 3. Upload what is not already there.
  const total = [...files.values()].reduce((n, f) => n + f.size, 0);
  const task = progress.start('publishing', { total, unit: 'bytes' });
  const results: PublishedFile[] = [];
  const pending: { file: LocalFile; key: string; uploadId: string; parts: CompletedPart[]; md5s: Buffer[] }[] = [];
  /** md5 of every part of the multipart uploads, for their ETags. */
  const partMd5 = new Map<string, Buffer[]>();
  const group = new TaskGroup(Math.max(1, options.concurrency ?? 4));
  let uploadedBytes = 0;
  try {
    for (const f of files.values()) {
      throwIfAborted(signal);
      const key = joinKey(prefix, f.path);
      const url = s3Url(bucket, key);
      const existing = await s3Head(url, { ...retry, ...(options.s3 ? { s3: options.s3 } : {}), log, ...(options.env ? { env: options.env } : {}) });
      const multipart = f.size >= threshold;
      if (existing && existing.size === f.size && existing.metadata[SHA256_METADATA] === f.sha256) {
        results.push({ path: f.path, 'file:size': f.size, 'file:checksum': sha256Multihash(f.sha256), uploaded: false, multipart });
        task.tick(f.size);
        continue;
      }
      const Metadata = { [SHA256_METADATA]: f.sha256 };
      const source = options.sources?.get(f.path);
      if (source && source.sha256 === f.sha256 && source.bytes === f.size && f.size <= 5 * 1024 ** 3) {
        const src = parseS3Url(source.url);
        results.push({ path: f.path, 'file:size': f.size, 'file:checksum': sha256Multihash(f.sha256), uploaded: true, multipart: false, copied: true });
        await group.room();
        group.add(
          send(url, (s) =>
            h.client.send(
              new CopyObjectCommand({
                Bucket: bucket,
                Key: key,
                CopySource: `${src.bucket}/${src.key.split('/').map(encodeURIComponent).join('/')}`,
                MetadataDirective: 'REPLACE',
                ContentType: contentType(f.path),
                Metadata,
                ...rp,
              }),
              { abortSignal: s },
            ),
          ).then(() => task.tick(f.size)),
        );
        continue;
      }
      results.push({ path: f.path, 'file:size': f.size, 'file:checksum': sha256Multihash(f.sha256), uploaded: true, multipart });
      uploadedBytes += f.size;
      if (!multipart) {
        await group.room();
        group.add(
          send(url, (s) =>
            h.client.send(
              new PutObjectCommand({
                Bucket: bucket,
                Key: key,
                Body: createReadStream(f.abs),
                ContentLength: f.size,
                ContentMD5: f.md5.toString('base64'),
                ContentType: contentType(f.path),
                Metadata,
                ...rp,
              }),
              { abortSignal: s },
            ),
          ).then(() => task.tick(f.size)),
        );
        continue;
      }
      const created = await send(url, (s) =>
        h.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: contentType(f.path), Metadata, ...rp }), { abortSignal: s }),
      );
      const entry = { file: f, key, uploadId: created.UploadId!, parts: [] as CompletedPart[], md5s: [] as Buffer[] };
      pending.push(entry);
      partMd5.set(f.path, entry.md5s);
      const count = Math.ceil(f.size / partBytes);
      for (let i = 0; i < count; i++) {
        await group.room();
        const offset = i * partBytes;
        const length = Math.min(partBytes, f.size - offset);
        const PartNumber = i + 1;
        group.add(
          (async () => {
            const body = await readPart(f.abs, offset, length);
            const md5 = createHash('md5').update(body).digest();
            entry.md5s[i] = md5;
            const res = await send(url, (s) =>
              h.client.send(
                new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: entry.uploadId, PartNumber, Body: body, ContentLength: length, ContentMD5: md5.toString('base64'), ...rp }),
                { abortSignal: s },
              ),
            );
            entry.parts[i] = { PartNumber, ETag: res.ETag! };
            task.tick(length);
          })(),
        );
      }
    }
    await group.drain();
    for (const [path, r] of remote) results.push({ path, 'file:size': r.size, 'file:checksum': sha256Multihash(r.sha256), uploaded: false, multipart: false });

    // 4. Complete the multipart uploads (all parts are there), then verify every object.
    for (const p of pending) {
      const url = s3Url(bucket, p.key);
      await send(url, (s) =>
        h.client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: p.key, UploadId: p.uploadId, MultipartUpload: { Parts: p.parts }, ...rp }), { abortSignal: s }),
      );
    }
    pending.length = 0;
  } catch (err) {
    await group.settle();
    for (const p of pending) {
      await h.client
        .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: p.key, UploadId: p.uploadId, ...rp }))
        .catch((e: unknown) => log.warn({ url: s3Url(bucket, p.key), err: e }, 'could not abort a multipart upload; the next publish will'));
    }
    throw err;
  }
  task.finish();

  for (const p of results) {
    throwIfAborted(signal);
    const f = files.get(p.path);
    if (!f) continue; // remoteFiles: checked above
    const key = joinKey(prefix, p.path);
    const url = s3Url(bucket, key);
    const info = await s3Head(url, { ...retry, ...(options.s3 ? { s3: options.s3 } : {}), log, ...(options.env ? { env: options.env } : {}) });
    const fail = (what: string): GeoDinoError =>
      new GeoDinoError('E_WRITE', `${url}: verification after upload failed: ${what}`, { details: { url, path: f.abs } });
    if (!info) throw fail('the object is missing');
    if (info.size !== f.size) throw fail(`${info.size} bytes, expected ${f.size}`);
    if (info.metadata[SHA256_METADATA] !== f.sha256) throw fail(`sha256 metadata ${info.metadata[SHA256_METADATA] ?? '(none)'}, expected ${f.sha256}`);
    if (!p.uploaded) continue;
    const expectEtag = md5Etag(p.multipart ? partMd5.get(p.path)! : [f.md5], p.multipart);
    const etag = (info.etag ?? '').replace(/"/g, '');
    if (etag !== expectEtag) {
      // Not an md5 ETag (SSE-KMS, some S3-compatible servers): read the object back and hash it.
      log.info({ url, etag }, 'ETag is not the md5 of the upload; verifying by reading the object back');
      const sha = await sha256OfObject(h, bucket, key, url, retry);
      if (sha !== f.sha256) throw fail(`read back sha256 ${sha}, expected ${f.sha256}`);
    }
  }

  // 5. The manifest, last.
  const manifest: RunManifest = {
    type: MANIFEST_FORMAT,
    version: 1,
    published: new Date().toISOString(),
    ...(options.manifestExtra ?? {}),
    files: results.map((r) => ({ path: r.path, 'file:size': r['file:size'], 'file:checksum': r['file:checksum'] })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
  const body = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  const md5 = createHash('md5').update(body).digest('base64');
  const sha = createHash('sha256').update(body).digest('hex');
  await send(manifestUrl, (s) =>
    h.client.send(
      new PutObjectCommand({ Bucket: bucket, Key: manifestKey, Body: body, ContentMD5: md5, ContentType: 'application/json', Metadata: { [SHA256_METADATA]: sha }, ...rp }),
      { abortSignal: s },
    ),
  );
  log.info({ url: s3Url(bucket, prefix), files: results.length, uploaded: results.filter((r) => r.uploaded && !r.copied).length, copied: results.filter((r) => r.copied).length, bytes: uploadedBytes }, 'run published');
  return { url: s3Url(bucket, prefix), manifestUrl, files: results, uploadedBytes };
}

export function contentType(path: string): string {
  if (/\.tiff?$/i.test(path)) return 'image/tiff; application=geotiff';
  if (/\.geojson$/i.test(path)) return 'application/geo+json';
  if (/\.json$/i.test(path)) return 'application/json';
  if (/\.pmtiles$/i.test(path)) return 'application/vnd.pmtiles';
  if (/\.vrt$/i.test(path)) return 'application/xml';
  return 'application/octet-stream';
}

/** Read a run's manifest; null when the prefix holds no complete run. */
export async function readManifest(dest: string, options: { s3?: S3Settings; env?: NodeJS.ProcessEnv; log?: Logger; signal?: AbortSignal } = {}): Promise<RunManifest | null> {
  const { bucket, key } = parseS3Url(dest, '--out');
  const url = s3Url(bucket, joinKey(key.replace(/\/+$/, ''), MANIFEST_NAME));
  try {
    const doc = (await s3GetJson(url, options)) as RunManifest;
    if (doc?.type !== MANIFEST_FORMAT || !Array.isArray(doc.files)) {
      throw new GeoDinoError('E_BAD_JSON', `${url}: not a geo-dino run manifest`, { details: { url } });
    }
    return doc;
  } catch (err) {
    if (err instanceof GeoDinoError && err.code === 'E_FILE_NOT_FOUND' && err.details['s3Code'] !== 'NoSuchBucket') return null;
    throw err;
  }
}
