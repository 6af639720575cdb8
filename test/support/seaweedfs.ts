/**
 * The S3 server of the object-storage tests: SeaweedFS on loopback (`@geo-dino/storage/testing`
 * starts it, stops it by PID). Buckets: `gd-public` (anonymous read), `gd-private`
 * (authenticated), `gd-rp` (requester pays: SeaweedFS has no requester-pays, so the fault proxy in
 * s3-fault-proxy.ts enforces the header in front of it).
 */
import { startSeaweedFs as start, type LocalS3Server } from '@geo-dino/storage/testing';

export const BUCKETS = { public: 'gd-public', private: 'gd-private', requesterPays: 'gd-rp' } as const;

export type S3TestServer = LocalS3Server;

export function startSeaweedFs(): Promise<S3TestServer> {
  return start({ buckets: Object.values(BUCKETS), publicBuckets: [BUCKETS.public] });
}
