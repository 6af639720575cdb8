/**
 * `npm run bench -- http`: range-read throughput of core's fetchBytes (deadline, retries, length
 * checks) against a bare `fetch` of the same ranges from the same loopback server.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchBytes } from '@geo-dino/core';
import type { BenchModule, BenchReport } from './report.js';

const FILE = new Uint8Array(64 * 1024 * 1024).map((_, i) => i & 0xff);
const CHUNK = 256 * 1024;

async function timeRanges(read: (start: number, end: number) => Promise<number>): Promise<number> {
  const t0 = performance.now();
  let bytes = 0;
  for (let off = 0; off < FILE.length; off += CHUNK) bytes += await read(off, off + CHUNK - 1);
  return bytes / 1e6 / ((performance.now() - t0) / 1000);
}

export const httpBench: BenchModule = {
  description: 'range reads over loopback: core fetchBytes vs bare fetch',
  async run(): Promise<BenchReport> {
    const server = createServer((req, res) => {
      const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
      const s = Number(m?.[1] ?? 0);
      const e = Math.min(FILE.length - 1, Number(m?.[2] ?? FILE.length - 1));
      res.writeHead(206, { 'Content-Length': e - s + 1, 'Content-Range': `bytes ${s}-${e}/${FILE.length}` });
      res.end(FILE.subarray(s, e + 1));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/f`;
    try {
      const bare = async (s: number, e: number): Promise<number> => {
        const res = await fetch(url, { headers: { Range: `bytes=${s}-${e}` } });
        return (await res.arrayBuffer()).byteLength;
      };
      const ours = async (s: number, e: number): Promise<number> => (await fetchBytes(url, { range: [s, e] })).bytes.length;
      await timeRanges(bare); // warm-up
      const ref = await timeRanges(bare);
      const val = await timeRanges(ours);
      return {
        name: 'http',
        context: { fileMiB: FILE.length / 2 ** 20, chunkKiB: CHUNK / 1024 },
        rows: [{ metric: 'fetchBytes range reads', value: val, unit: 'MB/s', reference: { name: 'bare fetch', value: ref }, better: 'higher', target: 0.9 }],
      };
    } finally {
      server.close();
    }
  },
};
