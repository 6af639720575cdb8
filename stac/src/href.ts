/**
 * Where STAC documents live, how their relative links resolve, and how they are read.
 *
 * A location is an absolute http(s) URL, an `s3://bucket/key` URL (read through
 * @geo-dino/storage: the AWS credential chain, custom endpoints, requester pays) or an absolute
 * local path. Relative hrefs are
 * resolved against the location of the document that holds them (the place it was actually
 * read from, not its `self` link, which is often stale in copied catalogs), with URL semantics
 * (`../`, `./`, percent-encoding) for both URLs and files.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  GeoDinoError,
  fetchJson,
  fsError,
  readJsonFile,
  redactUrl,
  silentLogger,
  type FetchBytesOptions,
  type Logger,
} from '@geo-dino/core';
import { isS3Url, s3GetJson } from '@geo-dino/storage';

export function isHttpHref(href: string): boolean {
  return /^https?:\/\//i.test(href);
}

/** True for a scheme-qualified href other than http(s)/file (s3://, gs://, az://, ...). */
export function isOtherSchemeHref(href: string): boolean {
  return /^[a-z][a-z0-9+.-]+:\/\//i.test(href) && !isHttpHref(href) && !/^file:\/\//i.test(href);
}

/** Turn user input (a path, a file:// URL, an http(s) or s3:// URL) into a location. */
export function toLocation(input: string, cwd: string = process.cwd()): string {
  if (isHttpHref(input)) return new URL(input).toString();
  if (isS3Url(input)) return input;
  if (/^file:\/\//i.test(input)) return fileURLToPath(input);
  return isAbsolute(input) ? input : resolvePath(cwd, input);
}

/**
 * Resolve `href` (as found in a link or asset) against the location of the document holding it.
 * Absolute URLs of any scheme are returned unchanged (file:// becomes a path).
 */
export function resolveHref(base: string, href: string): string {
  if (isHttpHref(href)) return href;
  if (/^file:\/\//i.test(href)) return fileURLToPath(href);
  if (isOtherSchemeHref(href)) return href;
  if (isHttpHref(base)) return new URL(href, base).toString();
  if (isOtherSchemeHref(base)) {
    // s3://bucket/key style bases: resolve with URL semantics on a stand-in scheme.
    const scheme = base.slice(0, base.indexOf('://'));
    const u = new URL(href, base.replace(/^[^:]+:\/\//, 'http://'));
    return `${scheme}://${u.host}${u.pathname}${u.search}`;
  }
  if (isAbsolute(href) && !href.startsWith('./')) return href;
  return fileURLToPath(new URL(href, pathToFileURL(base)));
}

/** A location written the way a user recognises it in messages (URLs with tokens redacted). */
export function displayLocation(location: string): string {
  return isHttpHref(location) ? redactUrl(location) : location;
}

export interface ReadJsonOptions {
  log?: Logger;
  signal?: AbortSignal;
  /** Refuse documents larger than this (default 64 MiB). */
  maxBytes?: number;
  /** Passed to core's fetch helpers (retries, timeouts, headers). */
  fetch?: Omit<FetchBytesOptions, 'signal' | 'maxBytes'>;
}

export const DEFAULT_MAX_DOCUMENT_BYTES = 64 * 1024 * 1024;

/** Read and parse a JSON document from a local path, an http(s) or an s3:// URL. */
export async function readJsonDocument(location: string, options: ReadJsonOptions = {}): Promise<unknown> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DOCUMENT_BYTES;
  const log = options.log ?? silentLogger();
  const retry = {
    ...options.fetch,
    maxBytes,
    ...(options.signal ? { signal: options.signal } : {}),
    onRetry: (info: { url: string; attempt: number; delayMs: number; reason: string }) =>
      log.warn({ url: info.url, attempt: info.attempt, delayMs: info.delayMs, reason: info.reason }, 'retrying'),
  };
  if (isHttpHref(location)) return fetchJson(location, retry);
  if (isS3Url(location)) {
    const { headers: _headers, ...s3Retry } = retry;
    return s3GetJson(location, { ...s3Retry, log });
  }
  if (isOtherSchemeHref(location)) {
    throw new GeoDinoError('E_ARGUMENT', `${location}: only local paths, http(s) and s3:// URLs can be read (not ${location.split(':')[0]}://)`, {
      details: { location },
    });
  }
  let size: number;
  try {
    const st = await stat(location);
    if (st.isDirectory()) {
      throw new GeoDinoError('E_FILE_NOT_FOUND', `${location}: is a directory; give the catalog.json, collection.json or item file inside it`, {
        details: { path: location },
      });
    }
    size = st.size;
  } catch (err) {
    if (err instanceof GeoDinoError) throw err;
    throw fsError(err, location, 'read');
  }
  if (size > maxBytes) {
    throw new GeoDinoError('E_LIMIT', `${location}: ${size} bytes exceeds the ${maxBytes}-byte cap for a STAC document`, {
      details: { path: location, bytes: size, maxBytes },
    });
  }
  return readJsonFile(location);
}

/**
 * An href that survives moving a directory: URLs (http(s), s3://, ...) unchanged; a local path
 * made relative to `fromDir` (`./scene.tif`, `../imagery/scene.tif`), `/`-separated.
 */
export function portableHref(href: string, fromDir: string): string {
  if (isHttpHref(href) || isOtherSchemeHref(href)) return href;
  const path = /^file:\/\//i.test(href) ? fileURLToPath(href) : href;
  if (!isAbsolute(path)) return href;
  const rel = relative(resolvePath(fromDir), path).split(sep).join('/');
  return rel.startsWith('.') ? rel : `./${rel}`;
}
