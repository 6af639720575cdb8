/**
 * Redaction of secrets that travel inside URLs: the password of `user:password@`, and query
 * parameters that carry credentials (signatures, tokens, keys: `sig`, `X-Amz-Signature`,
 * `token`, `api_key`, ...). One function for every place a URL can reach a person: GeoDinoError
 * messages and details (redacted when the error is made), every log line (the logger redacts the
 * message and every field), and commands that print stored URLs.
 */

const SECRET_PARAM = /token|sig|signature|key|secret|credential|password|passwd|pwd|auth|session/i;
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi;

/** `url` with its password and credential-carrying query parameters replaced by `***`; unchanged when it holds none. */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  let changed = false;
  if (u.password) {
    u.password = '***';
    changed = true;
  }
  for (const key of [...new Set(u.searchParams.keys())]) {
    if (SECRET_PARAM.test(key)) {
      u.searchParams.set(key, '***');
      changed = true;
    }
  }
  return changed ? u.toString() : url;
}

/** `text` with every URL in it redacted ({@link redactUrl}). */
export function redactText(text: string): string {
  if (!text.includes('://')) return text;
  return text.replace(URL_IN_TEXT, (m) => {
    // Punctuation that ends a sentence or a "<url>: reason" message is not part of the URL.
    const tail = /[.,;:!?)\]}]+$/.exec(m)?.[0] ?? '';
    return redactUrl(m.slice(0, m.length - tail.length)) + tail;
  });
}

/**
 * A copy of `value` with every string in it redacted (objects and arrays to `depth` levels; Errors
 * become `{ type, message, code, stack }`), for log records and error details.
 */
export function redactValue(value: unknown, depth = 6): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object' || depth <= 0) return value;
  if (value instanceof Error) {
    const e = value as Error & { code?: unknown; details?: unknown };
    return {
      type: e.name,
      message: redactText(e.message),
      ...(e.code !== undefined ? { code: e.code } : {}),
      ...(e.details !== undefined ? { details: redactValue(e.details, depth - 1) } : {}),
      ...(e.stack ? { stack: redactText(e.stack) } : {}),
    };
  }
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth - 1));
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = redactValue(v, depth - 1);
  return out;
}
