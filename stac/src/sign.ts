/**
 * Signing asset URLs: a pluggable function that turns an asset href into one the tiler can read
 * (a SAS token appended, a presigned URL, ...). Scene selection calls it once per chosen scene.
 *
 * `planetaryComputerSigner` implements Microsoft Planetary Computer's scheme: Azure Blob hrefs
 * (`https://<account>.blob.core.windows.net/<container>/...`) get a read token obtained from the
 * SAS endpoint per account/container, cached until shortly before it expires.
 */
import { GeoDinoError, fetchJson, silentLogger, type Logger } from '@geo-dino/core';
import type { StacItem } from './types.js';

export interface SignContext {
  item: StacItem;
  assetKey: string;
  collection?: string;
  signal?: AbortSignal;
}

export type AssetSigner = (href: string, context: SignContext) => Promise<string> | string;

export interface PlanetaryComputerSignerOptions {
  /** SAS token endpoint (default `https://planetarycomputer.microsoft.com/api/sas/v1/token`). */
  tokenEndpoint?: string;
  /** Optional subscription key (sent as `Ocp-Apim-Subscription-Key`) for higher rate limits. */
  subscriptionKey?: string;
  /** Renew a token this long before its expiry (default 5 minutes). */
  marginMs?: number;
  /** Clock, for tests. */
  now?: () => number;
  log?: Logger;
  retries?: number;
  timeoutMs?: number;
}

const BLOB_HOST = /^([a-z0-9]+)\.blob\.core\.windows\.net$/i;

/** Append a query string (`a=1&b=2`) to a URL that may already have one. */
export function appendQuery(href: string, query: string): string {
  const q = query.replace(/^\?/, '');
  if (!q) return href;
  const hash = href.indexOf('#');
  const main = hash >= 0 ? href.slice(0, hash) : href;
  const frag = hash >= 0 ? href.slice(hash) : '';
  return `${main}${main.includes('?') ? '&' : '?'}${q}${frag}`;
}

export function planetaryComputerSigner(options: PlanetaryComputerSignerOptions = {}): AssetSigner {
  const endpoint = (options.tokenEndpoint ?? 'https://planetarycomputer.microsoft.com/api/sas/v1/token').replace(/\/$/, '');
  const margin = options.marginMs ?? 5 * 60_000;
  const now = options.now ?? Date.now;
  const log = options.log ?? silentLogger();
  const cache = new Map<string, { token: string; expiresAt: number }>();
  const inflight = new Map<string, Promise<string>>();

  async function tokenFor(account: string, container: string, signal?: AbortSignal): Promise<string> {
    const key = `${account}/${container}`;
    const hit = cache.get(key);
    if (hit && hit.expiresAt - margin > now()) return hit.token;
    const pending = inflight.get(key);
    if (pending) return pending;
    const p = (async () => {
      const url = `${endpoint}/${encodeURIComponent(account)}/${encodeURIComponent(container)}`;
      const doc = (await fetchJson(url, {
        headers: options.subscriptionKey ? { 'Ocp-Apim-Subscription-Key': options.subscriptionKey } : {},
        ...(options.retries !== undefined ? { retries: options.retries } : {}),
        ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
        ...(signal ? { signal } : {}),
      })) as { token?: unknown; 'msft:expiry'?: unknown };
      if (typeof doc.token !== 'string' || !doc.token) {
        throw new GeoDinoError('E_BAD_STAC', `${url}: the token answer has no "token" string`, { details: { url } });
      }
      const expiry = typeof doc['msft:expiry'] === 'string' ? Date.parse(doc['msft:expiry']) : NaN;
      const expiresAt = Number.isFinite(expiry) ? expiry : now() + 45 * 60_000;
      cache.set(key, { token: doc.token, expiresAt });
      log.debug({ account, container, expires: new Date(expiresAt).toISOString() }, 'Planetary Computer token');
      return doc.token;
    })();
    inflight.set(key, p);
    try {
      return await p;
    } finally {
      inflight.delete(key);
    }
  }

  return async (href, context) => {
    let u: URL;
    try {
      u = new URL(href);
    } catch {
      return href;
    }
    const m = BLOB_HOST.exec(u.hostname);
    if (!m || u.protocol !== 'https:') return href;
    // Already signed (a SAS signature present): leave it.
    if (u.searchParams.has('sig')) return href;
    const container = u.pathname.split('/').filter(Boolean)[0];
    if (!container) return href;
    const token = await tokenFor(m[1]!, container, context.signal);
    return appendQuery(href, token);
  };
}

/** A signer that appends a fixed query string (or one a function returns) to matching hrefs. */
export function queryTokenSigner(token: string | (() => Promise<string> | string), match: RegExp = /^https?:\/\//i): AssetSigner {
  return async (href) => {
    if (!match.test(href)) return href;
    const t = typeof token === 'string' ? token : await token();
    return appendQuery(href, t);
  };
}
