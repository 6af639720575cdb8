/**
 * Small HTTP helpers: security headers on every response, JSON and error bodies (never HTML, never
 * echoing the request), request bodies read under a byte cap.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Content-Security-Policy of every response: only this origin, nothing inline but styles. */
export function contentSecurityPolicy(extraOrigins: readonly string[] = []): string {
  const extra = extraOrigins.length ? ' ' + extraOrigins.join(' ') : '';
  return [
    "default-src 'self'",
    "script-src 'self'",
    // MapLibre positions its controls and popups with inline style attributes set from script.
    "style-src 'self' 'unsafe-inline'",
    `img-src 'self' data: blob:${extra}`,
    `connect-src 'self'${extra}`,
    "worker-src 'self' blob:",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function securityHeaders(res: ServerResponse, csp: string): void {
  res.setHeader('Content-Security-Policy', csp);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
}

export function sendJson(res: ServerResponse, status: number, body: unknown, head = false): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.setHeader('Cache-Control', 'no-store');
  res.end(head ? undefined : text);
}

const REASONS: Record<number, string> = {
  400: 'bad request',
  403: 'forbidden',
  404: 'not found',
  405: 'method not allowed',
  411: 'length required',
  413: 'payload too large',
  415: 'unsupported media type',
  416: 'range not satisfiable',
  421: 'misdirected request',
  500: 'internal error',
  503: 'busy',
};

/** A JSON error. `message` must not contain request input that was not validated. */
export function sendError(res: ServerResponse, status: number, message?: string, head = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { error: message ?? REASONS[status] ?? 'error', status }, head);
}

/**
 * Read a request body up to `maxBytes`; 413 beyond it (checked before and while reading). An
 * oversized body is not read further (the server closes the connection after answering).
 */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    const n = Number(declared);
    if (!Number.isSafeInteger(n) || n < 0) throw new HttpError(400, 'invalid Content-Length');
    if (n > maxBytes) {
      req.pause();
      throw new HttpError(413, `request body of ${n} bytes is larger than the ${maxBytes}-byte limit`);
    }
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > maxBytes) {
        done = true;
        req.pause();
        req.removeAllListeners('data');
        reject(new HttpError(413, `request body is larger than the ${maxBytes}-byte limit`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) {
        done = true;
        resolve(Buffer.concat(chunks, size));
      }
    });
    req.on('error', (err) => {
      if (!done) {
        done = true;
        reject(err);
      }
    });
  });
}
