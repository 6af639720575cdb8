/**
 * A loopback proxy in front of the SeaweedFS S3 gateway for what SeaweedFS cannot do itself:
 *
 * - requester pays: requests to the requester-pays bucket without `x-amz-request-payer:
 *   requester` get AWS's answer (403 AccessDenied); with it they pass (and are counted);
 * - throttling: the next `n` requests under a path answer 503 SlowDown (AWS's XML body);
 * - connection cuts: the next `n` GETs under a path send the headers and half the body, then the
 *   socket is destroyed;
 * - foreign ETags: HEADs under a path answer an ETag that is not an MD5 (as SSE-KMS objects do);
 * - corruption: GETs under a path get one byte of their body flipped.
 *
 * Requests are forwarded unchanged (the Host header too, so SigV4 signatures stay valid).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface ProxyLogEntry {
  method: string;
  path: string;
  status: number;
  fault: 'slowdown' | 'cut' | 'etag' | 'corrupt' | 'requester-pays-denied' | null;
  requestPayer: boolean;
  /** `x-amz-copy-source` of a CopyObject (decoded), else null. */
  copySource: string | null;
}

interface Fault {
  kind: 'slowdown' | 'cut' | 'etag' | 'corrupt';
  prefix: string;
  left: number;
}

function s3Error(res: ServerResponse, status: number, code: string, message: string, resource: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><Resource>${resource}</Resource><RequestId>geo-dino-fault-proxy</RequestId></Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export class S3FaultProxy {
  readonly log: ProxyLogEntry[] = [];
  private readonly faults: Fault[] = [];

  private constructor(
    private readonly server: Server,
    readonly endpoint: string,
    private readonly upstream: URL,
    readonly requesterPaysBucket: string,
  ) {}

  static async start(upstream: string, requesterPaysBucket: string): Promise<S3FaultProxy> {
    let proxy!: S3FaultProxy;
    const server = createServer((req, res) => proxy.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    proxy = new S3FaultProxy(server, `http://127.0.0.1:${port}`, new URL(upstream), requesterPaysBucket);
    return proxy;
  }

  /** The next `times` requests whose path starts with `prefix` (e.g. `/bucket/key`) answer 503 SlowDown. */
  slowDown(prefix: string, times: number): void {
    this.faults.push({ kind: 'slowdown', prefix, left: times });
  }

  /** The next `times` GETs under `prefix` are cut after half their body. */
  cutMidBody(prefix: string, times: number): void {
    this.faults.push({ kind: 'cut', prefix, left: times });
  }

  /** The next `times` HEADs under `prefix` answer an ETag that is not an MD5. */
  foreignEtag(prefix: string, times: number): void {
    this.faults.push({ kind: 'etag', prefix, left: times });
  }

  /** The next `times` GETs under `prefix` have the first byte of their body flipped. */
  corruptBody(prefix: string, times: number): void {
    this.faults.push({ kind: 'corrupt', prefix, left: times });
  }

  clearFaults(): void {
    this.faults.length = 0;
    this.log.length = 0;
  }

  private takeFault(req: IncomingMessage, path: string): Fault['kind'] | null {
    for (const f of this.faults) {
      const method = f.kind === 'slowdown' ? req.method : f.kind === 'etag' ? 'HEAD' : 'GET';
      if (f.left > 0 && path.startsWith(f.prefix) && req.method === method) {
        f.left--;
        return f.kind;
      }
    }
    return null;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const payer = String(req.headers['x-amz-request-payer'] ?? '').toLowerCase() === 'requester';
    const copy = req.headers['x-amz-copy-source'];
    const entry: ProxyLogEntry = { method: req.method ?? 'GET', path, status: 0, fault: null, requestPayer: payer, copySource: typeof copy === 'string' ? decodeURIComponent(copy) : null };
    this.log.push(entry);
    const rpPrefix = `/${this.requesterPaysBucket}`;
    if ((path === rpPrefix || path.startsWith(rpPrefix + '/')) && !payer) {
      entry.status = 403;
      entry.fault = 'requester-pays-denied';
      req.resume();
      s3Error(res, 403, 'AccessDenied', 'Access Denied', path);
      return;
    }
    const fault = this.takeFault(req, path);
    if (fault === 'slowdown') {
      entry.status = 503;
      entry.fault = 'slowdown';
      req.resume();
      s3Error(res, 503, 'SlowDown', 'Please reduce your request rate.', path);
      return;
    }
    const up = httpRequest(
      { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        entry.status = upRes.statusCode ?? 0;
        if (fault === 'cut' && (upRes.statusCode === 200 || upRes.statusCode === 206)) {
          entry.fault = 'cut';
          const total = Number(upRes.headers['content-length'] ?? 0);
          res.writeHead(upRes.statusCode, upRes.headers);
          let sent = 0;
          upRes.on('data', (chunk: Buffer) => {
            if (sent >= total / 2) return;
            const part = chunk.subarray(0, Math.max(0, Math.ceil(total / 2) - sent));
            sent += part.length;
            res.write(part);
            if (sent >= total / 2) {
              upRes.destroy();
              res.socket?.destroy();
            }
          });
          return;
        }
        if (fault === 'etag') {
          entry.fault = 'etag';
          upRes.headers['etag'] = '"0123456789abcdef-kms"';
        }
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (fault === 'corrupt') {
          entry.fault = 'corrupt';
          let first = true;
          upRes.on('data', (chunk: Buffer) => {
            if (first && chunk.length) chunk[0] = chunk[0]! ^ 0xff;
            first = false;
            res.write(chunk);
          });
          upRes.on('end', () => res.end());
          return;
        }
        upRes.pipe(res);
      },
    );
    up.on('error', () => {
      if (!res.headersSent) s3Error(res, 502, 'BadGateway', 'upstream failed', path);
      else res.socket?.destroy();
    });
    req.pipe(up);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
