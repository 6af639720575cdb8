/**
 * The height step across a line (issue 20's measure of a scene seam): per segment of `segment`
 * rows, |mean over its rows of (mean of the `band` columns right of the line − mean of the `band`
 * columns left of it)|, averaged over segments. A scene's radiometric offset is systematic along
 * a seamline while the map's texture is not, so segments average the texture out. The same
 * statistic on columns with no seam (`backgroundStep`) is the level a seamless map should reach.
 * Used by the seams benchmark and the scene-seam tests.
 */
export interface SeamStepOptions {
  /** Height nodata (default -9999). */
  nodata?: number;
  /** Columns either side of the line (default 3). */
  band?: number;
  /** Rows per segment (default 32); a segment with under half its rows usable is skipped. */
  segment?: number;
}

/** The step across the line whose column at each row is `lineCol(row)` (null: no line there); NaN when no segment is usable. */
export function seamStep(h: ArrayLike<number>, width: number, height: number, lineCol: (row: number) => number | null, options: SeamStepOptions = {}): number {
  const nodata = options.nodata ?? -9999;
  const band = options.band ?? 3;
  const segment = options.segment ?? 32;
  let s = 0;
  let n = 0;
  for (let y0 = 0; y0 + segment <= height; y0 += segment) {
    let d = 0;
    let m = 0;
    for (let y = y0; y < y0 + segment; y++) {
      const c = lineCol(y);
      if (c === null || c - band < 0 || c + band > width) continue;
      let l = 0;
      let r = 0;
      let ok = true;
      for (let k = 0; k < band; k++) {
        const vl = h[y * width + c - 1 - k]!;
        const vr = h[y * width + c + k]!;
        if (vl === nodata || vr === nodata) ok = false;
        l += vl;
        r += vr;
      }
      if (!ok) continue;
      d += (r - l) / band;
      m++;
    }
    if (m < segment / 2) continue;
    s += Math.abs(d / m);
    n++;
  }
  return n ? s / n : NaN;
}

/** `seamStep` on every column of the given [start, end) column ranges (no seam there), averaged. */
export function backgroundStep(h: ArrayLike<number>, width: number, height: number, ranges: readonly (readonly [number, number])[], options: SeamStepOptions = {}): number {
  const band = options.band ?? 3;
  let s = 0;
  let n = 0;
  for (const [c0, c1] of ranges) {
    for (let c = Math.max(band, c0); c < Math.min(width - band, c1); c++) {
      const v = seamStep(h, width, height, () => c, options);
      if (Number.isFinite(v)) {
        s += v;
        n++;
      }
    }
  }
  return s / n;
}
