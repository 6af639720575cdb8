/**
 * The S3 server of the object-storage tests: SeaweedFS on loopback (`@geo-dino/storage/testing`
 * starts it, stops it by PID; the binary comes from the tool list, test/tools/tools.mjs). Buckets: `gd-public` (anonymous read), `gd-private`
 * (authenticated), `gd-rp` (requester pays: SeaweedFS has no requester-pays, so the fault proxy in
 * s3-fault-proxy.ts enforces the header in front of it).
 */
import { resetS3Clients, setS3Defaults, type S3Settings } from '@geo-dino/storage';
import { startSeaweedFs as start, type LocalS3Server } from '@geo-dino/storage/testing';
import { S3FaultProxy } from './s3-fault-proxy.js';
import { requireTool, weedBinary } from './tools.js';

export const BUCKETS = { public: 'gd-public', private: 'gd-private', requesterPays: 'gd-rp' } as const;

export type S3TestServer = LocalS3Server;

export function startSeaweedFs(): Promise<S3TestServer> {
  requireTool(weedBinary(), ['version']);
  return start({ bin: weedBinary(), buckets: Object.values(BUCKETS), publicBuckets: [BUCKETS.public] });
}

/** An environment with no AWS credentials or config from this machine (only what a test gives). */
export const CLEAN_AWS_ENV: NodeJS.ProcessEnv = {
  AWS_ACCESS_KEY_ID: '',
  AWS_SECRET_ACCESS_KEY: '',
  AWS_SESSION_TOKEN: '',
  AWS_PROFILE: '',
  AWS_ENDPOINT_URL: '',
  AWS_ENDPOINT_URL_S3: '',
  AWS_REGION: 'us-east-1',
  AWS_CONFIG_FILE: '/nonexistent',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
  AWS_EC2_METADATA_DISABLED: 'true',
};

export interface S3TestBed {
  server: S3TestServer;
  proxy: S3FaultProxy;
  /** Point this process's s3:// access at the proxy, with these credentials (null: none) and settings. */
  use(creds: { id: string; secret: string } | null, settings?: S3Settings): void;
  /** The admin's credentials. */
  admin(): { id: string; secret: string };
  close(): Promise<void>;
}

/** SeaweedFS and the fault proxy in front of it; `close()` stops both and resets the S3 defaults. */
export async function startS3TestBed(): Promise<S3TestBed> {
  const server = await startSeaweedFs();
  let proxy: S3FaultProxy;
  try {
    proxy = await S3FaultProxy.start(server.endpoint, BUCKETS.requesterPays);
  } catch (err) {
    await server.stop();
    throw err;
  }
  const admin = (): { id: string; secret: string } => ({ id: server.accessKeyId, secret: server.secretAccessKey });
  const use = (creds: { id: string; secret: string } | null, settings: S3Settings = {}): void => {
    resetS3Clients();
    const env: NodeJS.ProcessEnv = { ...CLEAN_AWS_ENV, ...(creds ? { AWS_ACCESS_KEY_ID: creds.id, AWS_SECRET_ACCESS_KEY: creds.secret } : {}) };
    setS3Defaults({ endpoint: proxy.endpoint, ...settings }, env);
  };
  use(admin());
  return {
    server,
    proxy,
    use,
    admin,
    async close() {
      setS3Defaults({});
      resetS3Clients();
      await proxy.close();
      await server.stop();
    },
  };
}
