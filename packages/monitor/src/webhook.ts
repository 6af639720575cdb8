/**
 * Webhook delivery: a JSON POST signed with HMAC-SHA256, retried with exponential backoff.
 *
 * Headers sent with every delivery:
 * - `Content-Type: application/json`
 * - `X-GeoDino-Event`: the event type (`canopy-loss`)
 * - `X-GeoDino-Delivery`: the alert's idempotency key. It is the same on every retry and every
 *   re-delivery of one alert, so a receiver can drop duplicates (after a crash between the
 *   receiver's 2xx and geo-dino recording it, the alert is sent once more with the same key).
 * - Standard Webhooks (https://www.standardwebhooks.com), so off-the-shelf verifiers work:
 *   `webhook-id` (= the delivery key), `webhook-timestamp` (unix seconds) and
 *   `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>`, where the key
 *   is the secret's bytes after `whsec_` base64-decoded (geo-dino generates `whsec_` secrets), or
 *   the UTF-8 bytes of any other secret. {@link verifyStandardWebhook} checks it.
 * - `X-GeoDino-Signature: t=<unix seconds>,v1=<hex>` (kept for existing receivers) where `<hex>`
 *   is HMAC-SHA256(secret, `<t>.<raw body>`). Verify by recomputing it over the raw request body
 *   (before any JSON parsing), comparing in constant time, and rejecting timestamps older than a
 *   few minutes (replay protection). {@link verifyWebhookSignature} does exactly that.
 *
 * Where deliveries may go: the URL's host is resolved, at `monitor add` and again at every
 * delivery (the connection goes to the address that was checked, so a name cannot be re-pointed in
 * between), and refused when any address is private, loopback, link-local (cloud metadata at
 * 169.254.169.254), carrier-grade NAT, multicast, reserved or unspecified, in every spelling (the
 * URL parser turns decimal, hex and octal IPv4 into dotted form; IPv4-mapped, NAT64 and 6to4 IPv6
 * addresses are checked as the IPv4 address they carry). `allowPrivate` (`--allow-private-webhook`)
 * lets on-premise receivers through. Redirects are never followed: a 3xx is a failed delivery, so
 * the signed body cannot be sent on elsewhere.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { GEO_DINO_VERSION, GeoDinoError, backoffDelay, isGeoDinoError, redactUrl, sleepUnlessAborted, type RetryOptions } from '@geo-dino/core';

export const SIGNATURE_HEADER = 'X-GeoDino-Signature';
export const DELIVERY_HEADER = 'X-GeoDino-Delivery';
export const EVENT_HEADER = 'X-GeoDino-Event';

/** A new signing secret in the Standard Webhooks form: `whsec_` + base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** The HMAC key of a secret: base64-decoded after `whsec_`, else the secret's UTF-8 bytes. */
function standardKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
}

/** Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`) for `body`. */
export function standardWebhookHeaders(secret: string, id: string, body: string | Uint8Array, timestamp: number): Record<string, string> {
  const mac = createHmac('sha256', standardKey(secret)).update(`${id}.${timestamp}.`).update(body).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': `v1,${mac}` };
}

/** True when Standard Webhooks headers carry a valid, recent signature of the raw `body`. */
export function verifyStandardWebhook(secret: string, body: string | Uint8Array, headers: Record<string, string | undefined>, options: VerifyOptions = {}): boolean {
  const id = headers['webhook-id'];
  const ts = Number(headers['webhook-timestamp']);
  const sigs = headers['webhook-signature'];
  if (!id || !Number.isInteger(ts) || !sigs) return false;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - ts) > (options.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(standardWebhookHeaders(secret, id, body, ts)['webhook-signature']!.slice(3), 'base64');
  return sigs.split(' ').some((s) => {
    const [v, sig] = s.split(',', 2);
    if (v !== 'v1' || !sig) return false;
    const got = Buffer.from(sig, 'base64');
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}

/** The `X-GeoDino-Signature` value for `body` sent at `timestamp` (unix seconds). */
export function signWebhook(secret: string, body: string | Uint8Array, timestamp: number): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

export interface VerifyOptions {
  /** Largest accepted age (and clock skew) of the timestamp, seconds (default 300). */
  toleranceSeconds?: number;
  /** The receiver's time, unix seconds (default: now). */
  now?: number;
}

/** True when `header` is a valid signature of the raw `body` with `secret`, made recently enough. */
export function verifyWebhookSignature(secret: string, body: string | Uint8Array, header: string | null | undefined, options: VerifyOptions = {}): boolean {
  if (!header) return false;
  const parts = new Map<string, string[]>();
  for (const kv of header.split(',')) {
    const i = kv.indexOf('=');
    if (i <= 0) continue;
    const k = kv.slice(0, i).trim();
    parts.set(k, [...(parts.get(k) ?? []), kv.slice(i + 1).trim()]);
  }
  const t = Number(parts.get('t')?.[0]);
  if (!Number.isInteger(t)) return false;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (options.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signWebhook(secret, body, t).split('v1=')[1]!, 'hex');
  return (parts.get('v1') ?? []).some((sig) => {
    const got = Buffer.from(sig, 'hex');
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}

export interface PostWebhookOptions extends RetryOptions {
  secret: string;
  /** Idempotency key of the alert (X-GeoDino-Delivery). */
  key: string;
  event: string;
  /** Signing time, unix seconds (default: now). */
  timestamp?: number;
}

export interface WebhookResult {
  status: number;
  /** HTTP attempts made (1 + retries used). */
  attempts: number;
}

/** Addresses no webhook may reach unless private targets are allowed, by name. */
const BLOCKED: [string, number, 'ipv4' | 'ipv6', string][] = [
  ['0.0.0.0', 8, 'ipv4', 'unspecified'],
  ['10.0.0.0', 8, 'ipv4', 'private'],
  ['100.64.0.0', 10, 'ipv4', 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'ipv4', 'loopback'],
  ['169.254.0.0', 16, 'ipv4', 'link-local (cloud metadata)'],
  ['172.16.0.0', 12, 'ipv4', 'private'],
  ['192.0.0.0', 24, 'ipv4', 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'ipv4', 'documentation'],
  ['192.168.0.0', 16, 'ipv4', 'private'],
  ['198.18.0.0', 15, 'ipv4', 'benchmarking'],
  ['198.51.100.0', 24, 'ipv4', 'documentation'],
  ['203.0.113.0', 24, 'ipv4', 'documentation'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved'],
  ['::', 128, 'ipv6', 'unspecified'],
  ['::1', 128, 'ipv6', 'loopback'],
  ['100::', 64, 'ipv6', 'discard'],
  ['2001:db8::', 32, 'ipv6', 'documentation'],
  ['fc00::', 7, 'ipv6', 'private (unique local)'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['fec0::', 10, 'ipv6', 'site-local'],
  ['ff00::', 8, 'ipv6', 'multicast'],
];

const blocked = BLOCKED.map(([net, prefix, type, why]) => {
  const list = new BlockList();
  list.addSubnet(net, prefix, type);
  return { list, type, why };
});

/** The IPv4 address an IPv6 address carries (IPv4-mapped, IPv4-compatible, NAT64, 6to4), if any. */
function embeddedIpv4(ip: string): string | null {
  const m = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (m) return m[1]!;
  const groups = expandIpv6(ip);
  if (!groups) return null;
  const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zero = (n: number): boolean => groups.slice(0, n).every((g) => g === 0);
  if (zero(5) && groups[5] === 0xffff) return v4(groups[6]!, groups[7]!); // ::ffff:a.b.c.d
  if (zero(6) && (groups[6]! || groups[7]! > 1)) return v4(groups[6]!, groups[7]!); // ::a.b.c.d (deprecated)
  if (groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0)) return v4(groups[6]!, groups[7]!);
  if (groups[0] === 0x2002) return v4(groups[1]!, groups[2]!); // 6to4
  return null;
}

function expandIpv6(ip: string): number[] | null {
  if (isIP(ip) !== 6) return null;
  let s = ip.toLowerCase().split('%')[0]!;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const p = dotted[1]!.split('.').map(Number);
    s = s.slice(0, -dotted[1]!.length) + `${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  const all = [...h, ...fill, ...t].map((g) => parseInt(g || '0', 16));
  return all.length === 8 ? all : null;
}

/** Why `ip` may not receive webhooks (e.g. `private`, `loopback`), or null for a public address. */
export function nonPublicAddress(ip: string): string | null {
  const bare = ip.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family === 0) return 'not an IP address';
  const v4 = family === 6 ? embeddedIpv4(bare) : bare;
  if (v4 && v4 !== bare) return nonPublicAddress(v4);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const b of blocked) if (b.type === type && b.list.check(bare, type)) return b.why;
  if (family === 4 && bare === '255.255.255.255') return 'broadcast';
  return null;
}

export interface WebhookTargetOptions {
  /** Allow private, loopback and link-local receivers (`--allow-private-webhook`). */
  allowPrivate?: boolean;
  /** DNS resolution (tests). */
  lookup?: (host: string) => Promise<string[]>;
}

function resolveAll(host: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(host, { all: true }, (err, addrs: LookupAddress[]) => (err ? reject(err) : resolve(addrs.map((a) => a.address))));
  });
}

function refusedTarget(url: string, field: string, host: string, address: string, why: string): GeoDinoError {
  const shown = address === host ? address : `${host} (${address})`;
  return new GeoDinoError(
    'E_ARGUMENT',
    `${field}: ${redactUrl(url)} points to ${shown}, a ${why} address; webhooks go to public addresses only (pass --allow-private-webhook for a receiver on your own network)`,
    { details: { url: redactUrl(url), address, reason: why } },
  );
}

/** Check the form of a webhook URL given by a user (http or https). */
export function checkWebhookUrl(url: string, field = '--webhook'): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new GeoDinoError('E_ARGUMENT', `${field}: ${JSON.stringify(redactUrl(url))} is not a URL`, { details: { url: redactUrl(url) } });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new GeoDinoError('E_ARGUMENT', `${field}: ${JSON.stringify(redactUrl(url))} must be an http:// or https:// URL`, { details: { url: redactUrl(url) } });
  }
  return u.toString();
}

/**
 * Check a webhook URL and where it leads: its form, then every address its host resolves to
 * (E_ARGUMENT naming the address and its range when one is not public, unless `allowPrivate`).
 */
export async function checkWebhookTarget(url: string, options: WebhookTargetOptions = {}, field = '--webhook'): Promise<string> {
  const normalised = checkWebhookUrl(url, field);
  if (options.allowPrivate) return normalised;
  const host = new URL(normalised).hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = await (options.lookup ?? resolveAll)(host);
    } catch (err) {
      throw new GeoDinoError('E_ARGUMENT', `${field}: ${redactUrl(url)}: cannot resolve ${host}: ${(err as Error).message}`, { cause: err, details: { url: redactUrl(url) } });
    }
  }
  for (const a of addresses) {
    const why = nonPublicAddress(a);
    if (why) throw refusedTarget(url, field, host, a, why);
  }
  return normalised;
}

/**
 * A DNS lookup for the delivery's connection that refuses non-public addresses: the address
 * checked is the address connected to.
 */
function checkedLookup(url: string): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addrs: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      for (const a of addrs) {
        const why = nonPublicAddress(a.address);
        if (why) return callback(refusedTarget(url, 'webhook', hostname, a.address, why), '', 0);
      }
      if ((options as { all?: boolean }).all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addrs);
      else callback(null, addrs[0]!.address, addrs[0]!.family);
    });
  };
}

export interface PostWebhookOptions extends RetryOptions {
  secret: string;
  /** Idempotency key of the alert (X-GeoDino-Delivery). */
  key: string;
  event: string;
  /** Signing time, unix seconds (default: now). */
  timestamp?: number;
  /** Deliver to private, loopback and link-local addresses too (the region's `--allow-private-webhook`). */
  allowPrivate?: boolean;
}

export interface WebhookResult {
  status: number;
  /** HTTP attempts made (1 + retries used). */
  attempts: number;
}

class Retryable extends Error {}

/** One POST, no redirects followed, answered within `timeoutMs` (headers and body). */
function postOnce(url: string, body: string, headers: Record<string, string>, timeoutMs: number, allowPrivate: boolean, signal?: AbortSignal): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const u = new URL(url);
    const opts: RequestOptions = {
      method: 'POST',
      headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
      ...(allowPrivate ? {} : { lookup: checkedLookup(url) }),
      ...(signal ? { signal } : {}),
    };
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, opts, (res: IncomingMessage) => {
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > 1024 * 1024) req.destroy(new Retryable('answer larger than 1 MiB'));
      });
      res.on('end', () => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(status);
        else if (status >= 300 && status < 400) {
          reject(new GeoDinoError('E_HTTP_STATUS', `${redactUrl(url)}: HTTP ${status}: webhook redirects are not followed (point --webhook at the final URL)`, { details: { url: redactUrl(url), status } }));
        } else if (status === 408 || status === 425 || status === 429 || status >= 500) reject(new Retryable(`HTTP ${status}`));
        else reject(new GeoDinoError('E_HTTP_STATUS', `${redactUrl(url)}: HTTP ${status}`, { details: { url: redactUrl(url), status } }));
      });
      res.on('error', (err) => reject(new Retryable(err.message)));
    });
    const timer = setTimeout(() => req.destroy(new Retryable(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      if (isGeoDinoError(err) || err instanceof Retryable) return reject(err);
      if (signal?.aborted) return reject(new GeoDinoError('E_CANCELLED', 'interrupted'));
      const code = (err as NodeJS.ErrnoException).code;
      reject(new Retryable(code ?? err.message));
    });
    req.end(body);
  });
}

/**
 * POST `body` to `url`, signed, to a checked address (see the top of this file), redirects not
 * followed. Retries on connection errors, timeouts, 5xx and 429 with exponential backoff (core's
 * backoffDelay); a 4xx other than 429, a 3xx and a refused address are not retried. Throws
 * E_NETWORK / E_HTTP_STATUS / E_ARGUMENT with the attempt count in `details.attempts`.
 */
export async function postWebhook(url: string, body: string, options: PostWebhookOptions): Promise<WebhookResult> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const retries = options.retries ?? 4;
  const headers = {
    'Content-Type': 'application/json',
    'User-Agent': `geo-dino/${GEO_DINO_VERSION}`,
    [EVENT_HEADER]: options.event,
    [DELIVERY_HEADER]: options.key,
    [SIGNATURE_HEADER]: signWebhook(options.secret, body, timestamp),
    ...standardWebhookHeaders(options.secret, options.key, body, timestamp),
  };
  let attempts = 0;
  let reason = '';
  try {
    // Literal addresses are not looked up: check them here (names are checked at connect).
    const host = new URL(checkWebhookUrl(url, 'webhook')).hostname.replace(/^\[|\]$/g, '');
    const why = isIP(host) && !options.allowPrivate ? nonPublicAddress(host) : null;
    if (why) throw refusedTarget(url, 'webhook', host, host, why);
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        const delayMs = backoffDelay(attempt, options);
        options.onRetry?.({ url: redactUrl(url), attempt, delayMs, reason });
        await sleepUnlessAborted(delayMs, options.signal);
      }
      attempts = attempt + 1;
      try {
        const status = await postOnce(url, body, headers, options.timeoutMs ?? 30_000, options.allowPrivate ?? false, options.signal);
        return { status, attempts };
      } catch (err) {
        if (!(err instanceof Retryable)) throw err;
        reason = err.message;
      }
    }
    throw new GeoDinoError('E_NETWORK', `${redactUrl(url)}: webhook delivery failed after ${attempts} attempts: ${reason}`, { details: { url: redactUrl(url), reason } });
  } catch (err) {
    const e = isGeoDinoError(err) ? err : new GeoDinoError('E_NETWORK', `${redactUrl(url)}: webhook delivery failed: ${(err as Error).message}`, { cause: err });
    e.details['attempts'] = Math.max(1, attempts);
    throw e;
  }
}
