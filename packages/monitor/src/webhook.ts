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
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { GEO_DINO_VERSION, GeoDinoError, fetchBytes, isGeoDinoError, type RetryOptions } from '@geo-dino/core';

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

/** Check a webhook URL given by a user. */
export function checkWebhookUrl(url: string, field = '--webhook'): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new GeoDinoError('E_ARGUMENT', `${field}: ${JSON.stringify(url)} is not a URL`, { details: { url } });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new GeoDinoError('E_ARGUMENT', `${field}: ${JSON.stringify(url)} must be an http:// or https:// URL`, { details: { url } });
  }
  return u.toString();
}

/**
 * POST `body` to `url`, signed. Retries on connection errors, timeouts, 5xx and 429 with
 * exponential backoff (core's fetchBytes); a 4xx other than 429 is not retried. Throws
 * E_NETWORK / E_HTTP_STATUS with the attempt count in `details.attempts`.
 */
export async function postWebhook(url: string, body: string, options: PostWebhookOptions): Promise<WebhookResult> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  let attempts = 1;
  try {
    const res = await fetchBytes(url, {
      ...options,
      method: 'POST',
      body,
      maxBytes: 1024 * 1024,
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': `geo-dino/${GEO_DINO_VERSION}`,
        [EVENT_HEADER]: options.event,
        [DELIVERY_HEADER]: options.key,
        [SIGNATURE_HEADER]: signWebhook(options.secret, body, timestamp),
        ...standardWebhookHeaders(options.secret, options.key, body, timestamp),
      },
      onRetry: (info) => {
        attempts = info.attempt + 1;
        options.onRetry?.(info);
      },
    });
    return { status: res.status, attempts };
  } catch (err) {
    if (isGeoDinoError(err)) {
      err.details['attempts'] = attempts;
      throw err;
    }
    throw new GeoDinoError('E_NETWORK', `${url}: webhook delivery failed: ${(err as Error).message}`, { cause: err, details: { attempts } });
  }
}
