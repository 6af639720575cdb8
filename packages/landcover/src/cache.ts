/**
 * The feature cache: one file per training/validation tile with the backbone's patch features
 * (float32, channel-major [C, gh, gw]) and the tile's class index per pixel (uint8, 255 = no
 * label). Training reads tiles back one mini-batch at a time, so memory holds a few tiles'
 * features whatever the area; the backbone — by far the most expensive step (seconds per 512²
 * tile for ViT-L on a CPU) — runs once per tile instead of once per tile per epoch.
 *
 * Size: C × (T/16)² × 4 bytes per tile, e.g. 4 MiB for ViT-L's last layer at 512² (16 MiB with
 * all four layers); the labels add T² bytes. Files are written atomically and verified on read
 * (length and a checksum), and the cache directory is removed when training ends.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GeoDinoError, ensureDir, fsError, writeFileAtomic } from '@geo-dino/core';
import { sha256Hex } from '@geo-dino/chm';
import type { ProbeTile } from './probe.js';

const MAGIC = 'GDLCF1';

interface CacheHeader {
  magic: typeof MAGIC;
  id: number;
  C: number;
  gh: number;
  gw: number;
  patch: number;
  sha256: string;
}

export class FeatureCache {
  constructor(readonly dir: string) {}

  static async create(dir: string): Promise<FeatureCache> {
    await ensureDir(dir);
    return new FeatureCache(dir);
  }

  pathOf(id: number): string {
    return join(this.dir, `${id}.tile`);
  }

  async write(id: number, tile: ProbeTile, C: number): Promise<void> {
    const feat = new Uint8Array(tile.features.buffer, tile.features.byteOffset, tile.features.byteLength);
    const body = new Uint8Array(tile.labels.length + feat.length);
    body.set(tile.labels, 0);
    body.set(feat, tile.labels.length);
    const header: CacheHeader = { magic: MAGIC, id, C, gh: tile.gh, gw: tile.gw, patch: tile.patch, sha256: sha256Hex(body) };
    const h = Buffer.from(JSON.stringify(header));
    // Header length, header, padding so the features start on a 4-byte boundary, body.
    const headLen = 4 + h.length;
    const pad = (4 - ((headLen + tile.labels.length) % 4)) % 4;
    const out = new Uint8Array(headLen + pad + body.length);
    new DataView(out.buffer).setUint32(0, h.length + pad, true);
    out.set(h, 4);
    out.fill(0x20, headLen, headLen + pad);
    out.set(body, headLen + pad);
    await writeFileAtomic(this.pathOf(id), out);
  }

  async read(id: number): Promise<ProbeTile> {
    const path = this.pathOf(id);
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      throw fsError(err, path, 'read');
    }
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    const bad = (what: string): GeoDinoError => new GeoDinoError('E_INTERNAL', `${path}: damaged feature cache file (${what})`, { details: { path } });
    if (bytes.length < 4) throw bad('too short');
    const hl = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
    if (4 + hl > bytes.length) throw bad('header length');
    let h: CacheHeader;
    try {
      h = JSON.parse(Buffer.from(bytes.subarray(4, 4 + hl)).toString('utf8')) as CacheHeader;
    } catch {
      throw bad('header');
    }
    if (h.magic !== MAGIC || h.id !== id) throw bad('magic');
    const px = h.gh * h.patch * h.gw * h.patch;
    const nf = h.C * h.gh * h.gw;
    const body = bytes.subarray(4 + hl);
    if (body.length !== px + 4 * nf) throw bad('length');
    if (sha256Hex(body) !== h.sha256) throw bad('checksum');
    // Copies with buffers of their own: they may be handed (transferred) to a worker thread.
    const labels = body.slice(0, px);
    const features = new Float32Array(body.slice(px).buffer);
    return { features, gh: h.gh, gw: h.gw, patch: h.patch, labels };
  }
}
