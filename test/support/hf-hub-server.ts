/**
 * A Hugging Face Hub look-alike on loopback, for `geo-dino model pull` tests:
 * - `GET /api/models/{repo}/revision/{rev}?blobs=true` → `{ id, sha, siblings: [{ rfilename, size,
 *   blobId, lfs?: { sha256, size } }] }` (git blob sha1 for every file, LFS sha256 for large ones);
 * - `GET /{repo}/resolve/{commit}/{path}` with Range support; LFS files answer with a 302 to a
 *   `/cdn/...` URL, as the Hub does;
 * - gated repositories: 401 without a token and 403 with a wrong one (`X-Error-Code: GatedRepo`);
 *   unknown repositories: 401 `RepoNotFound`.
 * Hooks let tests drop a connection mid-body, corrupt a file, or observe bytes served.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';

export interface HubRepo {
  files: Record<string, Uint8Array>;
  /** Required bearer token (gated repository). */
  token?: string;
  commit?: string;
}

export interface RequestLog {
  path: string;
  range: string | undefined;
  auth: string | undefined;
  status: number;
}

export interface HubServer {
  url: string;
  requests: RequestLog[];
  /** Drop the connection after half the body, the next `n` times this file is served. */
  dropNext(file: string, n?: number): void;
  /** Serve this file with one byte flipped, always. */
  corrupt(file: string): void;
  /** Called after each body chunk served for a file (bytes served so far in this response). */
  onServe?: (file: string, start: number, end: number) => void;
  close(): Promise<void>;
}

const isLfs = (name: string): boolean => /\.(safetensors|onnx|onnx_data|bin)$/.test(name);

export function gitBlobSha1(data: Uint8Array): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

export async function startHubServer(repos: Record<string, HubRepo>): Promise<HubServer> {
  const requests: RequestLog[] = [];
  const drops = new Map<string, number>();
  const corrupted = new Set<string>();
  const commits = new Map<string, string>();
  for (const [id, r] of Object.entries(repos)) commits.set(id, r.commit ?? createHash('sha1').update(id).digest('hex'));

  const hub: HubServer = {
    url: '',
    requests,
    dropNext(file, n = 1) {
      drops.set(file, n);
    },
    corrupt(file) {
      corrupted.add(file);
    },
    close: () => new Promise((r) => server.close(() => r())),
  };

  const deny = (res: ServerResponse, status: number, code: string, message: string): void => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'X-Error-Code': code });
    res.end(JSON.stringify({ error: message }));
  };

  const serveBytes = (req: IncomingMessage, res: ServerResponse, name: string, data: Uint8Array): number => {
    let bytes = data;
    if (corrupted.has(name)) {
      bytes = Uint8Array.from(data);
      const mid = Math.floor(bytes.length / 2);
      bytes[mid] = bytes[mid]! ^ 0xff;
    }
    let start = 0;
    let end = bytes.length - 1;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let status = 200;
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), bytes.length - 1) : bytes.length - 1;
      if (start >= bytes.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` });
        res.end();
        return 416;
      }
      status = 206;
    }
    const body = bytes.subarray(start, end + 1);
    res.writeHead(status, {
      'Content-Length': body.length,
      'Accept-Ranges': 'bytes',
      ...(status === 206 ? { 'Content-Range': `bytes ${start}-${end}/${bytes.length}` } : {}),
    });
    const left = drops.get(name) ?? 0;
    if (left > 0 && body.length > 1) {
      drops.set(name, left - 1);
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
      return status;
    }
    res.end(body, () => hub.onServe?.(name, start, end));
    return status;
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization;
    const log = (status: number): void => {
      requests.push({ path: url.pathname, range: req.headers.range, auth, status });
    };
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (api) {
      const repo = repos[api[1]!];
      if (!repo) {
        log(401);
        return deny(res, 401, 'RepoNotFound', 'Repository Not Found');
      }
      const sha = commits.get(api[1]!)!;
      const rev = decodeURIComponent(api[2]!);
      if (rev !== 'main' && rev !== sha) {
        log(404);
        return deny(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      }
      const siblings = Object.entries(repo.files).map(([name, data]) => ({
        rfilename: name,
        size: data.length,
        blobId: isLfs(name) ? createHash('sha1').update(name).digest('hex') : gitBlobSha1(data),
        ...(isLfs(name) ? { lfs: { sha256: createHash('sha256').update(data).digest('hex'), size: data.length, pointerSize: 134 } } : {}),
      }));
      log(200);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ id: api[1], sha, gated: repo.token ? 'manual' : false, siblings }));
      return;
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolve) {
      const repo = repos[resolve[1]!];
      const name = decodeURIComponent(resolve[3]!);
      if (!repo) {
        log(401);
        return deny(res, 401, 'RepoNotFound', 'Repository Not Found');
      }
      if (repo.token && auth !== `Bearer ${repo.token}`) {
        const status = auth ? 403 : 401;
        log(status);
        return deny(res, status, 'GatedRepo', `Access to model ${resolve[1]} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
      }
      const data = repo.files[name];
      if (!data || resolve[2] !== commits.get(resolve[1]!)) {
        log(404);
        return deny(res, 404, 'EntryNotFound', `${name} not found`);
      }
      if (isLfs(name)) {
        log(302);
        res.writeHead(302, { Location: `/cdn/${resolve[1]}/${createHash('sha256').update(data).digest('hex')}/${encodeURIComponent(name)}` });
        res.end();
        return;
      }
      log(serveBytes(req, res, name, data));
      return;
    }
    const cdn = /^\/cdn\/([^/]+\/[^/]+)\/[0-9a-f]{64}\/(.+)$/.exec(url.pathname);
    if (cdn) {
      const repo = repos[cdn[1]!];
      const name = decodeURIComponent(cdn[2]!);
      const data = repo?.files[name];
      if (!data) {
        log(404);
        res.writeHead(404);
        res.end();
        return;
      }
      log(serveBytes(req, res, name, data));
      return;
    }
    log(404);
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return hub;
}
