/**
 * geo-dino's COGs in the browser: geotiff.js reads the header and tiles over HTTP Range; this
 * module turns an image (full resolution or an overview) into @geo-dino/zonal's WindowRaster with
 * the same validity rule as the server's reader (sparse tiles and pixels whose every band read is
 * nodata or NaN are invalid), so zonal computes the same numbers here as on the server.
 *
 * Refused with a clear message (never a wrong value): a file that is missing (names it), a server
 * that does not answer Range requests, and layouts this reader does not handle (strips, separate
 * planes, compressions geotiff.js lacks, sample types other than integers/floats, a size that
 * differs from the published index).
 */
import { fromUrl, getDecoder, type GeoTIFF, type GeoTIFFImage } from 'geotiff';
import type { LonLatProjection, RasterGrid, Window, WindowData, WindowRaster } from '@geo-dino/zonal';

export class SiteFileError extends Error {
  constructor(
    readonly kind: 'missing' | 'no-range' | 'unsupported' | 'network',
    readonly file: string,
    message: string,
  ) {
    super(message);
  }
}

/** Whether `url` answers a one-byte Range request with 206; a clear error otherwise (never waits for a whole file). */
export async function probeRange(url: string, file: string, timeoutMs = 20_000): Promise<void> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, { headers: { Range: 'bytes=0-0' }, signal: ac.signal, cache: 'no-store' });
  } catch (err) {
    clearTimeout(timer);
    throw new SiteFileError('network', file, `${file}: cannot be fetched (${(err as Error).message})`);
  }
  clearTimeout(timer);
  // Do not read a body that may be the whole file.
  void res.body?.cancel().catch(() => undefined);
  if (res.status === 404 || res.status === 410) throw new SiteFileError('missing', file, `${file} is missing from the published site (HTTP ${res.status}); publish the run again or copy the file back`);
  if (res.status === 200) {
    throw new SiteFileError('no-range', file, `the web server does not support HTTP Range requests (it sent all of ${file}); serve the site from a host that does (a bucket, nginx, \`npx http-server\`)`);
  }
  if (res.status !== 206) throw new SiteFileError('network', file, `${file}: HTTP ${res.status}`);
}

type Samples = Float32Array | Float64Array | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array;

function arrayFor(format: number, bits: number, buf: ArrayBuffer): Samples | null {
  if (format === 3 && bits === 32) return new Float32Array(buf);
  if (format === 3 && bits === 64) return new Float64Array(buf);
  if (format === 1 || format === undefined) {
    if (bits === 8) return new Uint8Array(buf);
    if (bits === 16) return new Uint16Array(buf);
    if (bits === 32) return new Uint32Array(buf);
  }
  if (format === 2) {
    if (bits === 8) return new Int8Array(buf);
    if (bits === 16) return new Int16Array(buf);
    if (bits === 32) return new Int32Array(buf);
  }
  return null;
}

interface Decoder {
  decode(fileDirectory: unknown, buffer: ArrayBuffer): Promise<ArrayBuffer>;
}

/** One image of a COG (full resolution or an overview) as a windowed reader. */
class CogImage {
  private readonly tiles = new Map<number, Promise<Samples | null>>();
  private decoder: Promise<Decoder> | null = null;

  constructor(
    readonly file: string,
    readonly image: GeoTIFFImage,
    readonly nodata: number | null,
  ) {}

  get width(): number {
    return this.image.getWidth();
  }
  get height(): number {
    return this.image.getHeight();
  }

  private tile(tx: number, ty: number): Promise<Samples | null> {
    const img = this.image;
    const perRow = Math.ceil(img.getWidth() / img.getTileWidth());
    const index = ty * perRow + tx;
    let t = this.tiles.get(index);
    if (t) {
      this.tiles.delete(index);
      this.tiles.set(index, t);
      return t;
    }
    const counts = (img.fileDirectory as { TileByteCounts: ArrayLike<number> }).TileByteCounts;
    if (!counts[index]) t = Promise.resolve(null); // sparse: never written, reads as nodata
    else {
      this.decoder ??= getDecoder(img.fileDirectory) as Promise<Decoder>;
      t = this.decoder.then(async (decoder) => {
        const r = (await (img.getTileOrStrip as unknown as (x: number, y: number, s: number, d: Decoder) => Promise<{ data: ArrayBuffer }>).call(img, tx, ty, 0, decoder)).data;
        return arrayFor(img.getSampleFormat() as number, img.getBitsPerSample() as number, r);
      });
    }
    t.catch(() => this.tiles.delete(index));
    this.tiles.set(index, t);
    while (this.tiles.size > 96) this.tiles.delete(this.tiles.keys().next().value as number);
    return t;
  }

  async read(w: Window, bands: number[]): Promise<WindowData> {
    const img = this.image;
    const tw = img.getTileWidth();
    const th = img.getTileHeight();
    const spp = img.getSamplesPerPixel();
    const n = w.width * w.height;
    const out = bands.map(() => new Float64Array(n));
    const written = new Uint8Array(n);
    const tx0 = Math.floor(w.x / tw);
    const tx1 = Math.floor((w.x + w.width - 1) / tw);
    const ty0 = Math.floor(w.y / th);
    const ty1 = Math.floor((w.y + w.height - 1) / th);
    const jobs: Promise<void>[] = [];
    for (let ty = ty0; ty <= ty1; ty++) {
      for (let tx = tx0; tx <= tx1; tx++) {
        jobs.push(
          this.tile(tx, ty).then((data) => {
            if (!data) return;
            const x0 = Math.max(w.x, tx * tw);
            const x1 = Math.min(w.x + w.width, (tx + 1) * tw);
            const y0 = Math.max(w.y, ty * th);
            const y1 = Math.min(w.y + w.height, (ty + 1) * th);
            for (let y = y0; y < y1; y++) {
              const src = ((y - ty * th) * tw + (x0 - tx * tw)) * spp;
              const dst = (y - w.y) * w.width + (x0 - w.x);
              for (let x = 0; x < x1 - x0; x++) {
                written[dst + x] = 1;
                for (let b = 0; b < bands.length; b++) out[b]![dst + x] = data[src + x * spp + bands[b]!]!;
              }
            }
          }),
        );
      }
    }
    await Promise.all(jobs);
    // The server reader's rule: invalid where not written, or where every band read is NaN or nodata.
    const valid = written;
    const nd = this.nodata;
    for (let i = 0; i < n; i++) {
      if (!valid[i]) continue;
      let any = false;
      for (let b = 0; b < out.length; b++) {
        const v = out[b]![i]!;
        if (Number.isNaN(v)) continue;
        if (nd !== null && !Number.isNaN(nd) && v === nd) continue;
        any = true;
        break;
      }
      if (!any) valid[i] = 0;
    }
    return { bands: out, valid };
  }
}

/** A COG: its full-resolution image and overviews (masks left out), finest first. */
export class Cog {
  private constructor(
    readonly file: string,
    readonly levels: CogImage[],
  ) {}

  static async open(url: string, file: string, expect: { width: number; height: number; bandCount: number }): Promise<Cog> {
    await probeRange(url, file);
    let tiff: GeoTIFF;
    try {
      tiff = await fromUrl(url, { allowFullFile: false, cacheSize: 256 });
    } catch (err) {
      throw new SiteFileError('unsupported', file, `${file}: not a GeoTIFF the browser can read (${(err as Error).message})`);
    }
    const count = await tiff.getImageCount();
    const images: GeoTIFFImage[] = [];
    for (let i = 0; i < count; i++) {
      const img = await tiff.getImage(i);
      const sub = (img.fileDirectory as { NewSubfileType?: number }).NewSubfileType ?? 0;
      if (sub & 4) continue; // a mask
      images.push(img);
    }
    const full = images[0];
    const unsupported = (why: string): SiteFileError => new SiteFileError('unsupported', file, `${file}: a COG layout the browser reader cannot handle (${why}); use \`geo-dino serve\` for this run, or rewrite it as geo-dino writes COGs`);
    if (!full) throw unsupported('no image');
    if (full.getWidth() !== expect.width || full.getHeight() !== expect.height || full.getSamplesPerPixel() < expect.bandCount) {
      throw new SiteFileError('unsupported', file, `${file}: ${full.getWidth()}×${full.getHeight()} pixels, not the ${expect.width}×${expect.height} of the published index (was the file replaced? publish the run again)`);
    }
    for (const img of images) {
      const fd = img.fileDirectory as { Compression?: number; PlanarConfiguration?: number };
      if (!img.isTiled) throw unsupported('stripped, not tiled');
      if ((fd.PlanarConfiguration ?? 1) !== 1 && img.getSamplesPerPixel() > 1) throw unsupported('bands in separate planes');
      for (let s = 0; s < img.getSamplesPerPixel(); s++) {
        if (img.getSampleFormat(s) !== img.getSampleFormat(0) || img.getBitsPerSample(s) !== img.getBitsPerSample(0)) throw unsupported('bands of different sample types');
      }
      if (!arrayFor(img.getSampleFormat() as number, img.getBitsPerSample() as number, new ArrayBuffer(8))) throw unsupported(`${img.getBitsPerSample()}-bit samples of format ${img.getSampleFormat()}`);
      try {
        await getDecoder(img.fileDirectory);
      } catch {
        throw unsupported(`compression ${fd.Compression}`);
      }
    }
    const nodata = full.getGDALNoData();
    return new Cog(
      file,
      images.map((img) => new CogImage(file, img, nodata)),
    );
  }
}

export type GridInfo = RasterGrid;

/** A COG level as a WindowRaster on `grid` (its geotransform scaled by the level's reduction). */
export function cogLevelRaster(cog: Cog, level: number, grid: GridInfo): WindowRaster {
  const img = cog.levels[level]!;
  const full = cog.levels[0]!;
  const fx = full.width / img.width;
  const fy = full.height / img.height;
  const gt = grid.geoTransform;
  return {
    name: grid.name,
    width: img.width,
    height: img.height,
    bandCount: grid.bandCount,
    geoTransform: level === 0 ? gt : [gt[0]!, gt[1]! * fx, gt[2]! * fy, gt[3]!, gt[4]! * fx, gt[5]! * fy],
    geographic: grid.geographic,
    metresPerUnit: grid.metresPerUnit,
    projection: grid.projection,
    read: (w, o) => img.read(w, o.bands),
  };
}
