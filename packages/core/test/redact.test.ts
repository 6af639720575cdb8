/**
 * Secrets in URLs never reach a person (issue 14): one redaction function for error messages and
 * details, every log line (JSON and human), and remote reads that give up within `--timeout`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureHttp, createLogger, fetchBytes, GeoDinoError, redactText, redactUrl, toGeoDinoError } from '../src/index.js';

const URL_WITH_SECRETS = 'https://alice:hunter2@imagery.example/scene.tif?X-Amz-Signature=abc123def&token=tok456&sv=2024&se=2026';

describe('redaction', () => {
  it('hides the password and credential parameters and leaves the rest as written', () => {
    const r = redactUrl(URL_WITH_SECRETS);
    expect(r).not.toMatch(/hunter2|abc123def|tok456/);
    expect(r).toContain('alice:***@imagery.example/scene.tif');
    expect(r).toContain('sv=2024');
    expect(redactUrl('https://a.example/x?b=1')).toBe('https://a.example/x?b=1');
    const text = redactText(`cannot read ${URL_WITH_SECRETS}: failed; retry http://bob:pw9876@h.example/y.`);
    expect(text).not.toMatch(/hunter2|abc123def|tok456|pw9876/);
    expect(text).toMatch(/^cannot read https:\/\/alice:\*\*\*@imagery/);
    // Punctuation after a URL stays: "<url>: reason" and a URL ending a sentence.
    expect(text).toMatch(/: failed; retry http:\/\/bob:\*\*\*@h\.example\/y\.$/);
    expect(redactText('http://h.example/t.png?key=SECRET: failed')).toBe('http://h.example/t.png?key=***: failed');
  });

  it('redacts every GeoDinoError message and its details, also when wrapping a foreign error', () => {
    const e = new GeoDinoError('E_NETWORK', `${URL_WITH_SECRETS}: HTTP 500`, { details: { url: URL_WITH_SECRETS, nested: { href: URL_WITH_SECRETS } } });
    expect(JSON.stringify(e.toJSON())).not.toMatch(/hunter2|abc123def|tok456/);
    const wrapped = toGeoDinoError(new TypeError(`Request cannot be constructed from a URL that includes credentials: ${URL_WITH_SECRETS}`));
    expect(wrapped.message).not.toMatch(/hunter2|abc123def|tok456/);
  });

  for (const json of [true, false]) {
    it(`redacts every ${json ? 'JSON' : 'human'} log line: message, fields and errors`, () => {
      let out = '';
      const stream = new Writable({
        write(chunk: Buffer, _enc, done) {
          out += chunk.toString();
          done();
        },
      });
      const log = createLogger({ json, stream, color: false });
      log.warn({ url: URL_WITH_SECRETS, reason: `fetch ${URL_WITH_SECRETS} failed`, list: [URL_WITH_SECRETS] }, `retrying ${URL_WITH_SECRETS}`);
      log.error({ err: new Error(`boom at ${URL_WITH_SECRETS}`) }, 'failed');
      expect(out).toMatch(/retrying/);
      expect(out).toMatch(/boom at/);
      expect(out).not.toMatch(/hunter2|abc123def|tok456/);
    });
  }
});

describe('remote reads', () => {
  let server: Server;
  let base = '';
  const auth: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/stall') return; // accept, never answer
      auth.push(String(req.headers.authorization ?? ''));
      res.writeHead(200, { 'Content-Length': 2 }).end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('sends user:password from the URL as Basic authentication', async () => {
    const res = await fetchBytes(`${base.replace('//', '//alice:hunter2@')}/x`, { retries: 0 });
    expect(Buffer.from(res.bytes).toString()).toBe('ok');
    expect(auth.at(-1)).toBe(`Basic ${Buffer.from('alice:hunter2').toString('base64')}`);
  });

  it('gives up on a stalled server within the deadline, retries included (--timeout)', async () => {
    const err = (await fetchBytes(`${base}/stall`, { deadlineMs: 800, backoffMs: 10 }).catch((e: unknown) => e)) as GeoDinoError;
    expect(err.code).toBe('E_NETWORK');
    expect(err.message).toMatch(/gave up after 0\.8 s \(--timeout\)/);
    const before = configureHttp({ deadlineMs: 600 });
    try {
      const e2 = (await fetchBytes(`${base}/stall`, { backoffMs: 10 }).catch((e: unknown) => e)) as GeoDinoError;
      expect(e2.message).toMatch(/gave up after 0\.6 s/);
    } finally {
      configureHttp(before);
    }
    expect(() => configureHttp({ deadlineMs: -1 })).toThrow(/--timeout/);
  });
});
