/**
 * S3 and S3-compatible object storage through the official AWS SDK for JavaScript v3.
 *
 * - Where: `s3://bucket/key` URLs. The endpoint is AWS unless `--s3-endpoint`,
 *   `$AWS_ENDPOINT_URL_S3` or `$AWS_ENDPOINT_URL` names another (MinIO, SeaweedFS, Ceph, R2, ...);
 *   a custom endpoint uses path-style addressing unless `$GEO_DINO_S3_PATH_STYLE=0`.
 * - Who: the standard AWS credential chain (environment, shared config/credentials files and
 *   `$AWS_PROFILE`, SSO, web identity, container and instance roles). When the chain finds no
 *   credentials, requests go unsigned (public buckets work without setup); `--no-sign-request`
 *   (`$GEO_DINO_S3_NO_SIGN_REQUEST=1`) forces unsigned requests even when credentials exist.
 * - Who pays: `--s3-requester-pays` (`$GEO_DINO_S3_REQUESTER_PAYS=1`) sends
 *   `x-amz-request-payer: requester`, needed for requester-pays buckets (you pay transfer and
 *   requests).
 *
 * Reads go through core's {@link retrying}: the SDK's own retries are off so that S3 reads follow
 * exactly the policy of HTTP reads (deadline over headers and body, backoff with jitter on 5xx,
 * 429, 503 SlowDown, connection errors and truncated bodies, byte caps, E_NETWORK naming the URL).
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
  type GetObjectCommandOutput,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { GeoDinoError, RetryableError, isRetryableStatus, readBody, retrying, silentLogger, type Logger, type RetryOptions } from '@geo-dino/core';

/** How to reach object storage. Every field falls back to the environment (see the module comment). */
export interface S3Settings {
  /** Custom endpoint URL (S3-compatible services); default AWS. */
  endpoint?: string;
  /** Region (default `$AWS_REGION`, `$AWS_DEFAULT_REGION`, else us-east-1; AWS redirects are followed). */
  region?: string;
  /** Unsigned requests even when credentials exist. */
  anonymous?: boolean;
  /** Send `x-amz-request-payer: requester`. */
  requesterPays?: boolean;
  /** Path-style addressing (`endpoint/bucket/key`); default true with a custom endpoint. */
  forcePathStyle?: boolean;
  /** Profile of the shared config files (default `$AWS_PROFILE`). */
  profile?: string;
}

/** The shared files the credential chain reads (`$AWS_SHARED_CREDENTIALS_FILE`, `$AWS_CONFIG_FILE`). */
function sharedFiles(env: NodeJS.ProcessEnv): { filepath?: string; configFilepath?: string } {
  return {
    ...(env['AWS_SHARED_CREDENTIALS_FILE'] ? { filepath: env['AWS_SHARED_CREDENTIALS_FILE'] } : {}),
    ...(env['AWS_CONFIG_FILE'] ? { configFilepath: env['AWS_CONFIG_FILE'] } : {}),
  };
}

export interface ResolvedS3Settings {
  endpoint: string | null;
  region: string;
  anonymous: boolean;
  requesterPays: boolean;
  forcePathStyle: boolean;
  profile: string | null;
}

export interface S3Location {
  bucket: string;
  key: string;
}

export function isS3Url(value: string): boolean {
  return /^s3:\/\//i.test(value);
}

/** Split `s3://bucket/key` (the key is taken literally: no percent-decoding, like the AWS CLI). */
export function parseS3Url(url: string, field?: string): S3Location {
  const what = field ? `${field} ${url}` : url;
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/i.exec(url);
  if (!m) throw new GeoDinoError('E_ARGUMENT', `${what}: not an s3://bucket/key URL`, { details: { url, ...(field ? { field } : {}) } });
  const bucket = m[1]!;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new GeoDinoError('E_ARGUMENT', `${what}: "${bucket}" is not a valid bucket name (3-63 lower-case letters, digits, dots, hyphens)`, { details: { url, ...(field ? { field } : {}) } });
  }
  return { bucket, key: m[2] ?? '' };
}

export function s3Url(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

let processDefaults: S3Settings = {};
let processEnv: NodeJS.ProcessEnv | null = null;

/**
 * Set the settings the CLI's flags give (and the environment to read the rest from), for every
 * later S3 access of this process that does not pass its own.
 */
export function setS3Defaults(settings: S3Settings, env?: NodeJS.ProcessEnv): void {
  processDefaults = { ...settings };
  processEnv = env ?? null;
}

/** The process defaults, to hand to a worker thread (which has its own module state). */
export function s3Defaults(): { settings: S3Settings; env: Record<string, string | undefined> | null } {
  return { settings: { ...processDefaults }, env: processEnv ? { ...processEnv } : null };
}

function flag(value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  return !/^(0|false|no|off)$/i.test(value);
}

/** Merge explicit settings, the process defaults and the environment. */
export function resolveS3Settings(settings: S3Settings = {}, env: NodeJS.ProcessEnv = processEnv ?? process.env): ResolvedS3Settings {
  const s = { ...processDefaults, ...definedOnly(settings) };
  const endpoint = s.endpoint || env['AWS_ENDPOINT_URL_S3'] || env['AWS_ENDPOINT_URL'] || null;
  if (endpoint !== null) {
    let u: URL;
    try {
      u = new URL(endpoint);
    } catch {
      throw new GeoDinoError('E_ARGUMENT', `--s3-endpoint ${endpoint}: not a URL (expected e.g. https://s3.example.com or http://127.0.0.1:8333)`, { details: { field: '--s3-endpoint' } });
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new GeoDinoError('E_ARGUMENT', `--s3-endpoint ${endpoint}: must be an http(s) URL`, { details: { field: '--s3-endpoint' } });
    }
  }
  return {
    endpoint,
    region: s.region || env['AWS_REGION'] || env['AWS_DEFAULT_REGION'] || 'us-east-1',
    anonymous: s.anonymous ?? flag(env['GEO_DINO_S3_NO_SIGN_REQUEST']) ?? false,
    requesterPays: s.requesterPays ?? flag(env['GEO_DINO_S3_REQUESTER_PAYS']) ?? false,
    forcePathStyle: s.forcePathStyle ?? flag(env['GEO_DINO_S3_PATH_STYLE']) ?? endpoint !== null,
    profile: s.profile || env['AWS_PROFILE'] || null,
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A client and what it was made from. */
export interface S3Handle {
  client: S3Client;
  settings: ResolvedS3Settings;
  /** True when requests go unsigned (asked for, or no credentials found). */
  unsigned: boolean;
}

const clients = new Map<string, Promise<S3Handle>>();

/**
 * Unsigned requests: both of S3's auth schemes get an empty identity and a signer that leaves the
 * request as it is (the SDK has no "anonymous" switch of its own).
 */
const noSigning = { sign: async <R>(request: R): Promise<R> => request };
const UNSIGNED: Pick<S3ClientConfig, 'httpAuthSchemes'> = {
  httpAuthSchemes: ['aws.auth#sigv4', 'aws.auth#sigv4a'].map((schemeId) => ({
    schemeId,
    identityProvider: () => async () => ({}),
    signer: noSigning,
  })),
};

/**
 * The client for these settings (one per distinct settings, shared). Credentials are looked up
 * once here: when the chain finds none, the client sends unsigned requests and says so in the log.
 */
export function s3Client(settings: S3Settings = {}, log: Logger = silentLogger(), env: NodeJS.ProcessEnv = processEnv ?? process.env): Promise<S3Handle> {
  const resolved = resolveS3Settings(settings, env);
  const fromEnv = staticCredentials(env);
  const files = sharedFiles(env);
  const key = JSON.stringify([resolved, files, fromEnv ? createHash('sha256').update(JSON.stringify(fromEnv)).digest('hex') : null]);
  let p = clients.get(key);
  if (!p) {
    p = makeClient(resolved, fromEnv, files, log);
    clients.set(key, p);
    p.catch(() => clients.delete(key));
  }
  return p;
}

/** Keys given in the environment (checked first, as the SDK's chain does, but from `env`). */
function staticCredentials(env: NodeJS.ProcessEnv): { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | null {
  const id = env['AWS_ACCESS_KEY_ID'];
  const secret = env['AWS_SECRET_ACCESS_KEY'];
  if (!id || !secret) return null;
  const token = env['AWS_SESSION_TOKEN'];
  return { accessKeyId: id, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) };
}

async function makeClient(
  settings: ResolvedS3Settings,
  fromEnv: ReturnType<typeof staticCredentials>,
  files: ReturnType<typeof sharedFiles>,
  log: Logger,
): Promise<S3Handle> {
  const base: S3ClientConfig = {
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    followRegionRedirects: true,
    // Retries are core's (see the module comment); checksums only where S3 requires them (we send
    // Content-MD5 and verify what we upload ourselves, which every S3-compatible server accepts).
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
  };
  if (settings.anonymous) return { client: new S3Client({ ...base, ...UNSIGNED }), settings, unsigned: true };
  if (fromEnv) return { client: new S3Client({ ...base, credentials: fromEnv }), settings, unsigned: false };
  const chain = fromNodeProviderChain({ ...files, ...(settings.profile ? { profile: settings.profile } : {}) });
  try {
    await chain();
  } catch (err) {
    log.info({ reason: (err as Error).message }, 'no AWS credentials found (environment, shared files, roles): s3:// requests go unsigned');
    return { client: new S3Client({ ...base, ...UNSIGNED }), settings, unsigned: true };
  }
  return { client: new S3Client({ ...base, credentials: chain }), settings, unsigned: false };
}

/** Forget cached clients (tests change credentials between cases). */
export function resetS3Clients(): void {
  for (const p of clients.values()) void p.then((h) => h.client.destroy()).catch(() => undefined);
  clients.clear();
}

/** What to tell the user to do about a 403, given how the request was made. */
function accessHint(h: S3Handle): string {
  const tips: string[] = [];
  if (h.unsigned) tips.push('requests were unsigned: set AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a role) if the bucket is private');
  else tips.push('check the AWS credentials in use (AWS_PROFILE, AWS_ACCESS_KEY_ID, roles), or --no-sign-request for a public bucket');
  if (!h.settings.requesterPays) tips.push('--s3-requester-pays if the bucket is requester-pays');
  return tips.join('; ');
}

/** `RequestPayer: requester` on every request when the settings say the bucket is requester-pays. */
export function requesterPaysParam(h: S3Handle): { RequestPayer?: 'requester' } {
  return h.settings.requesterPays ? { RequestPayer: 'requester' } : {};
}

/** Core's retry policy for object-storage writes: the caller's retry settings and signal, each retry logged. */
export function s3RetryPolicy(o: { retry?: Omit<RetryOptions, 'signal' | 'onRetry'>; signal?: AbortSignal; log?: Logger }): RetryOptions {
  const log = o.log ?? silentLogger();
  return {
    ...(o.retry ?? {}),
    ...(o.signal ? { signal: o.signal } : {}),
    onRetry: (i) => log.warn({ url: i.url, attempt: i.attempt, delayMs: i.delayMs, reason: i.reason }, 'retrying object storage request'),
  };
}

/** One SDK request inside core's `retrying`, its failures turned into geo-dino's errors (s3Failure). */
export async function s3Send<T>(h: S3Handle, url: string, retry: RetryOptions, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  return retrying(url, retry, async (s) => {
    try {
      return await fn(s);
    } catch (err) {
      throw s3Failure(err, url, h);
    }
  });
}

/**
 * Turn an SDK failure into geo-dino's error: final (GeoDinoError) for 4xx the user must fix,
 * RetryableError for 5xx / 429 / throttling, anything else (connection errors) as it is.
 */
export function s3Failure(err: unknown, url: string, h: S3Handle): unknown {
  if (err instanceof GeoDinoError || err instanceof RetryableError) return err;
  const name = (err as { name?: string }).name ?? '';
  if (name === 'CredentialsProviderError') {
    return new GeoDinoError('E_ACCESS_DENIED', `${url}: no usable AWS credentials: ${(err as Error).message}`, { cause: err, details: { url } });
  }
  if (!(err instanceof S3ServiceException)) return err;
  const status = err.$metadata.httpStatusCode ?? 0;
  const code = err.name;
  const where = h.settings.endpoint ? ` at ${h.settings.endpoint}` : '';
  const details = { url, status, s3Code: code, endpoint: h.settings.endpoint };
  if (isRetryableStatus(status) || code === 'SlowDown' || code === 'RequestTimeout' || code === 'Throttling' || code === 'ThrottlingException') {
    return new RetryableError(`HTTP ${status} ${code}`);
  }
  if (code === 'NoSuchBucket') {
    const { bucket } = parseS3Url(url);
    return new GeoDinoError('E_FILE_NOT_FOUND', `${url}: bucket "${bucket}" does not exist${where} (NoSuchBucket)`, { cause: err, details });
  }
  if (code === 'NoSuchKey' || code === 'NotFound' || status === 404) {
    return new GeoDinoError('E_FILE_NOT_FOUND', `${url}: no such object${where} (${code || 'HTTP 404'})`, { cause: err, details });
  }
  if (status === 401 || status === 403) {
    const msg = err.message && err.message !== 'UnknownError' && err.message !== code ? `: ${err.message}` : '';
    return new GeoDinoError('E_ACCESS_DENIED', `${url}: access denied (HTTP ${status} ${code}${msg}); ${accessHint(h)}`, { cause: err, details });
  }
  if (code === 'InvalidRange' || status === 416) {
    return new GeoDinoError('E_BAD_RASTER', `${url}: byte range outside the object (HTTP 416)`, { cause: err, details });
  }
  return new GeoDinoError('E_HTTP_STATUS', `${url}: HTTP ${status} ${code}${err.message ? `: ${err.message}` : ''}`, { cause: err, details });
}

export interface S3ReadOptions extends RetryOptions {
  s3?: S3Settings;
  log?: Logger;
  env?: NodeJS.ProcessEnv;
  /** Refuse bodies longer than this (default 512 MiB). */
  maxBytes?: number;
}

export interface S3ReadResult {
  bytes: Uint8Array;
  /** The object's total size. */
  size: number;
  etag: string | null;
}

function bodyReader(body: GetObjectCommandOutput['Body'], signal: AbortSignal) {
  if (!body) return undefined;
  const stream = body as unknown as Readable;
  const onAbort = (): void => {
    stream.destroy(new Error('aborted'));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  return {
    async read(): Promise<{ done: boolean; value?: Uint8Array }> {
      try {
        const r = await it.next();
        if (r.done) signal.removeEventListener('abort', onAbort);
        return r.done ? { done: true } : { done: false, value: r.value };
      } catch (err) {
        signal.removeEventListener('abort', onAbort);
        throw err;
      }
    },
    async cancel(): Promise<void> {
      signal.removeEventListener('abort', onAbort);
      stream.destroy();
    },
  };
}

/**
 * GET an object, or the inclusive byte range `[start, end]` of it, into memory with core's retry
 * policy. The body is checked against Content-Length (a cut connection is retried) and the cap.
 */
export async function s3Get(url: string, range: readonly [number, number] | null, options: S3ReadOptions = {}): Promise<S3ReadResult> {
  const log = options.log ?? silentLogger();
  const { bucket, key } = parseS3Url(url);
  const h = await s3Client(options.s3, log, options.env);
  const maxBytes = options.maxBytes ?? 512 * 1024 * 1024;
  return retrying(url, options, async (signal) => {
    let res: GetObjectCommandOutput;
    try {
      res = await h.client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          ...(range ? { Range: `bytes=${range[0]}-${range[1]}` } : {}),
          ...(h.settings.requesterPays ? { RequestPayer: 'requester' } : {}),
        }),
        { abortSignal: signal },
      );
    } catch (err) {
      throw s3Failure(err, url, h);
    }
    let size = res.ContentLength ?? null;
    if (res.ContentRange) {
      const m = /bytes (\d+)-(\d+)\/(\d+|\*)/.exec(res.ContentRange);
      if (m && range && Number(m[1]) !== range[0]) {
        throw new GeoDinoError('E_NETWORK', `${url}: server answered range ${res.ContentRange} for bytes ${range[0]}-${range[1]}`, { details: { url } });
      }
      size = m && m[3] !== '*' ? Number(m[3]) : null;
    } else if (range && res.ContentLength !== undefined) {
      // A server that ignored Range sent the whole object: read it only if it fits the cap.
      size = res.ContentLength;
    }
    const expected = res.ContentLength ?? null;
    let bytes: Uint8Array;
    try {
      bytes = await readBody(bodyReader(res.Body, signal), url, maxBytes, expected);
    } catch (err) {
      throw s3Failure(err, url, h);
    }
    if (range && !res.ContentRange) bytes = bytes.subarray(range[0], Math.min(bytes.length, range[1] + 1));
    if (size === null) throw new GeoDinoError('E_NETWORK', `${url}: the server did not say how long the object is`, { details: { url } });
    return { bytes, size, etag: res.ETag ?? null };
  });
}

export interface S3ObjectInfo {
  size: number;
  etag: string | null;
  metadata: Record<string, string>;
  lastModified: Date | null;
}

/** HEAD an object; null when it does not exist. */
export async function s3Head(url: string, options: S3ReadOptions = {}): Promise<S3ObjectInfo | null> {
  const log = options.log ?? silentLogger();
  const { bucket, key } = parseS3Url(url);
  const h = await s3Client(options.s3, log, options.env);
  return retrying(url, options, async (signal) => {
    try {
      const res = await h.client.send(
        new HeadObjectCommand({ Bucket: bucket, Key: key, ...(h.settings.requesterPays ? { RequestPayer: 'requester' } : {}) }),
        { abortSignal: signal },
      );
      return { size: res.ContentLength ?? 0, etag: res.ETag ?? null, metadata: res.Metadata ?? {}, lastModified: res.LastModified ?? null };
    } catch (err) {
      const e = s3Failure(err, url, h);
      if (e instanceof GeoDinoError && e.code === 'E_FILE_NOT_FOUND' && e.details['s3Code'] !== 'NoSuchBucket') return null;
      throw e;
    }
  });
}

/** GET a JSON object (STAC documents, manifests); errors name the URL. */
export async function s3GetJson(url: string, options: S3ReadOptions = {}): Promise<unknown> {
  const { bytes } = await s3Get(url, null, { maxBytes: 64 * 1024 * 1024, ...options });
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
  } catch (err) {
    throw new GeoDinoError('E_BAD_JSON', `${url}: invalid JSON: ${(err as Error).message}`, { cause: err, details: { url } });
  }
}

export interface S3ListEntry {
  key: string;
  size: number;
  etag: string | null;
  lastModified: Date | null;
}

/**
 * Every object under `s3://bucket/prefix` (ListObjectsV2, paginated, each page with core's retry
 * policy). More than `maxKeys` objects is an E_LIMIT error naming the URL.
 */
export async function s3List(url: string, options: S3ReadOptions & { maxKeys?: number } = {}): Promise<S3ListEntry[]> {
  const log = options.log ?? silentLogger();
  const { bucket, key: prefix } = parseS3Url(url);
  const h = await s3Client(options.s3, log, options.env);
  const maxKeys = options.maxKeys ?? 100_000;
  const out: S3ListEntry[] = [];
  let token: string | undefined;
  do {
    const page = await retrying(url, options, async (signal) => {
      try {
        return await h.client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}), ...(h.settings.requesterPays ? { RequestPayer: 'requester' } : {}) }),
          { abortSignal: signal },
        );
      } catch (err) {
        throw s3Failure(err, url, h);
      }
    });
    for (const c of page.Contents ?? []) {
      if (!c.Key) continue;
      out.push({ key: c.Key, size: c.Size ?? 0, etag: c.ETag ?? null, lastModified: c.LastModified ?? null });
    }
    if (out.length > maxKeys) {
      throw new GeoDinoError('E_LIMIT', `${url}: more than ${maxKeys} objects under this prefix; give a narrower prefix`, { details: { url, maxKeys } });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}
