/**
 * Redaction of secrets that travel inside URLs: the password of `user:password@`, and query
 * parameters that carry credentials (signatures, tokens, keys: `sig`, `X-Amz-Signature`,
 * `token`, `api_key`, ...). One function for every place a URL can reach a person: GeoDinoError
 * messages and details (redacted when the error is made), every log line (the logger redacts the
 * message and every field), and commands that print stored URLs.
 */

/** Query parameter names that hold secrets (keys, tokens, signatures). */
export const SECRET_PARAM = /token|sig|signature|key|secret|credential|password|passwd|pwd|auth|session/i;
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi;

/** `url` with its password and credential-carrying query parameters replaced by `***`; unchanged when it holds none. */
export function redactUrl(url: string): string {
  // Work on the text itself (not URL.toString(), which would re-encode templates such as {z}).
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/i.exec(url);
  if (!m) return url;
  let [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    if (colon >= 0 && userinfo.slice(colon + 1) !== '***') authority = `${userinfo.slice(0, colon)}:***${authority.slice(at)}`;
  }
  const q = rest.indexOf('?');
  if (q >= 0) {
    const hash = rest.indexOf('#', q);
    const end = hash < 0 ? rest.length : hash;
    const query = rest
      .slice(q + 1, end)
      .split('&')
      .map((pair) => {
        const eq = pair.indexOf('=');
        if (eq < 0) return pair;
        let name = pair.slice(0, eq);
        try {
          name = decodeURIComponent(name);
        } catch {
          /* keep as written */
        }
        return SECRET_PARAM.test(name) && pair.slice(eq + 1) !== '***' ? `${pair.slice(0, eq)}=***` : pair;
      })
      .join('&');
    rest = rest.slice(0, q + 1) + query + rest.slice(end);
  }
  return scheme + authority + rest;
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
