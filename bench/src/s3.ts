/**
 * `npm run bench -- s3`: COG decode throughput (MPix/s) of geo-dino's reader from a local S3
 * server (SeaweedFS on loopback, `@geo-dino/storage/testing`; the weed binary of the tests' tool
 * list, `npm run test:tools` builds it) against the same file on local disk, in the same run.
 *
 * The imagery is cogeo.tif (real 0.6 m forest imagery) enlarged 4× to 4096 × 4096 and written as
 * JPEG and DEFLATE COGs by GDAL (as in the tiler bench). Each figure opens the COG afresh, decodes
 * the full-resolution image in 1024² windows and closes it; best of `--runs` (default 3), local and
 * S3 measured alternately.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { resetS3Clients, setS3Defaults } from '@geo-dino/storage';
import { startSeaweedFs } from '@geo-dino/storage/testing';
import { openRaster } from '@geo-dino/tiling';
import type { BenchModule, BenchReport, BenchRow } from './report.js';

const SHARED = resolve(process.env['GEO_DINO_SHARED_DATA'] ?? join(fileURLToPath(new URL('../..', import.meta.url)), '..', 'shared', 'data'));
const BUCKET = 'bench';
const WINDOW = 1024;

function gdal(args: string[]): void {
  execFileSync('gdal_translate', ['-q', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Open, decode every full-resolution pixel in windows, close; MPix/s. */
async function decodeRate(location: string): Promise<{ mpix: number; seconds: number }> {
  const t0 = performance.now();
  const src = await openRaster(location);
  let pixels = 0;
  try {
    const { width, height } = src.info;
    for (let y = 0; y < height; y += WINDOW) {
      for (let x = 0; x < width; x += WINDOW) {
        const w = Math.min(WINDOW, width - x);
        const h = Math.min(WINDOW, height - y);
        await src.read({ x, y, width: w, height: h });
        pixels += w * h;
      }
    }
  } finally {
    await src.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { mpix: pixels / 1e6 / seconds, seconds };
}

/** Best of `runs` for each location, the two measured alternately so that load affects both alike. */
async function bestOf(runs: number, a: string, b: string): Promise<[number, number]> {
  let ta = 0;
  let tb = 0;
  for (let i = 0; i < runs; i++) {
    ta = Math.max(ta, (await decodeRate(a)).mpix);
    tb = Math.max(tb, (await decodeRate(b)).mpix);
  }
  return [ta, tb];
}

export const s3Bench: BenchModule = {
  description: 'COG decode MPix/s from a local S3 server (SeaweedFS) vs the same file on local disk',
  explicitOnly: true,
  async run(args): Promise<BenchReport> {
    const runsArg = args.find((a) => a.startsWith('--runs='));
    const runs = runsArg ? Math.max(1, Number(runsArg.slice(7))) : 3;
    const dir = mkdtempSync(join(tmpdir(), 'geo-dino-bench-s3-'));
    // The tests' tool list says where weed is (plain JavaScript, outside this package).
    const tools = (await import(new URL('../../test/tools/tools.mjs', import.meta.url).href)) as { weedBinary(): string };
    const server = await startSeaweedFs({ bin: tools.weedBinary(), buckets: [BUCKET] });
    try {
      const big = join(dir, 'big.tif');
      gdal(['-outsize', '400%', '400%', '-r', 'bilinear', '-co', 'TILED=YES', join(SHARED, 'rasterio', 'cogeo.tif'), big]);
      const files: Record<string, string> = { JPEG: join(dir, 'jpeg.tif'), DEFLATE: join(dir, 'deflate.tif') };
      gdal(['-of', 'COG', '-co', 'COMPRESS=JPEG', '-co', 'QUALITY=85', '-co', 'BLOCKSIZE=512', big, files['JPEG']!]);
      gdal(['-of', 'COG', '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=2', '-co', 'BLOCKSIZE=512', big, files['DEFLATE']!]);
      resetS3Clients();
      setS3Defaults({ endpoint: server.endpoint }, { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, AWS_REGION: 'us-east-1' });
      const rows: BenchRow[] = [];
      const sizes: Record<string, number> = {};
      for (const [codec, path] of Object.entries(files)) {
        const bytes = readFileSync(path);
        sizes[codec] = bytes.length;
        await server.admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${codec}.tif`, Body: bytes }));
        const url = `s3://${BUCKET}/${codec}.tif`;
        await decodeRate(path); // warm-up: the page cache and the decoder
        await decodeRate(url);
        const [local, remote] = await bestOf(runs, path, url);
        rows.push({
          metric: `${codec} COG 4096², decoded from S3 (SeaweedFS on loopback)`,
          value: remote,
          unit: 'MPix/s',
          reference: { name: 'same file on local disk', value: local },
          better: 'higher',
        });
      }
      return { name: 's3', context: { runs, window: WINDOW, bytes: sizes, endpoint: 'loopback' }, rows };
    } finally {
      setS3Defaults({});
      resetS3Clients();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
