/**
 * A local S3 server for tests and benchmarks (`@geo-dino/storage/testing`): SeaweedFS
 * (`weed server -s3`, Apache-2.0; the binary is the caller's: the tests' tool list,
 * test/tools/tools.mjs, builds it from the Go module proxy). Everything listens on 127.0.0.1 on
 * free ports, data lives in a temporary directory, and `stop()` kills the server by its PID
 * (SIGKILL: weed ignores SIGTERM for a while).
 *
 * Identities (S3 config JSON): an admin with random keys (every action on every bucket), and
 * `anonymous` with Read and List on the buckets given as public.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

export interface LocalS3Options {
  /** The weed binary. */
  bin: string;
  /** Buckets to create. */
  buckets: readonly string[];
  /** Buckets anonymous requests may read and list. */
  publicBuckets?: readonly string[];
}

export interface LocalS3Server {
  /** http://127.0.0.1:<port> of the S3 gateway. */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  pid: number;
  /** An SDK client with the admin's keys (for arranging fixtures). */
  admin: S3Client;
  /** Environment for a child process using the admin's keys against this server. */
  env(): NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/**
 * `n` distinct free loopback ports: every listener stays open until all are chosen (one at a time,
 * the system may hand out a port it just released, and SeaweedFS then fails on a duplicate).
 */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const srv = createServer();
          srv.once('error', reject);
          srv.listen(0, '127.0.0.1', () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((srv) => (srv.address() as { port: number }).port);
  await Promise.all(servers.map((srv) => new Promise<void>((r) => srv.close(() => r()))));
  return ports;
}

async function waitForS3(endpoint: string, proc: ChildProcess, log: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`weed exited with ${proc.exitCode} before the S3 gateway was up:\n${log().slice(-3000)}`);
    try {
      const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      // Any S3 answer (403 for an anonymous ListBuckets) means the gateway is serving.
      if (res.status < 500) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`SeaweedFS S3 gateway at ${endpoint} not up within ${timeoutMs} ms (${last}):\n${log().slice(-3000)}`);
}

/** Start SeaweedFS with an S3 gateway on loopback, create the buckets, and return when it serves. */
export async function startSeaweedFs(options: LocalS3Options): Promise<LocalS3Server> {
  const bin = options.bin;
  if (!existsSync(bin)) throw new Error(`SeaweedFS not found at ${bin}: \`npm run test:tools\` builds it (or set GEO_DINO_WEED)`);
  const dir = await mkdtemp(join(tmpdir(), 'geo-dino-weed-'));
  const accessKeyId = 'GDTEST' + randomBytes(7).toString('hex').toUpperCase();
  const secretAccessKey = randomBytes(24).toString('base64url');
  const config = {
    identities: [
      {
        name: 'geo-dino-admin',
        credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }],
        actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'],
      },
      ...(options.publicBuckets?.length ? [{ name: 'anonymous', actions: options.publicBuckets.flatMap((b) => [`Read:${b}`, `List:${b}`]) }] : []),
    ],
  };
  const configPath = join(dir, 's3.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const ports = await freePorts(9);
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc, debug] = ports;
  const args = [
    'server',
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    `-dir=${join(dir, 'data')}`,
    `-master.port=${master}`,
    `-master.port.grpc=${masterGrpc}`,
    '-master.volumeSizeLimitMB=64',
    `-volume.port=${volume}`,
    `-volume.port.grpc=${volumeGrpc}`,
    '-volume.max=16',
    '-filer',
    `-filer.port=${filer}`,
    `-filer.port.grpc=${filerGrpc}`,
    '-s3',
    `-s3.port=${s3}`,
    `-s3.port.grpc=${s3Grpc}`,
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    `-s3.config=${configPath}`,
    `-debug.port=${debug}`,
  ];
  await mkdir(join(dir, 'data'), { recursive: true });
  const proc = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20000)));
  proc.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20000)));
  const endpoint = `http://127.0.0.1:${s3}`;
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.pid) {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      process.kill(proc.pid, 'SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForS3(endpoint, proc, () => output, 90_000);
    const admin = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
    for (const b of options.buckets) {
      // The filer may need a moment after the gateway answers; retry bucket creation briefly.
      for (let attempt = 0; ; attempt++) {
        try {
          await admin.send(new CreateBucketCommand({ Bucket: b }));
          break;
        } catch (err) {
          if ((err as { name?: string }).name === 'BucketAlreadyOwnedByYou' || (err as { name?: string }).name === 'BucketAlreadyExists') break;
          if (attempt >= 40) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    }
    return {
      endpoint,
      accessKeyId,
      secretAccessKey,
      pid: proc.pid!,
      admin,
      env: () => ({ AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: endpoint }),
      stop: async () => {
        admin.destroy();
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
