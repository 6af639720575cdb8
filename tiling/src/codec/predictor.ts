/**
 * TIFF predictors (TIFF 6.0 §14 and Adobe Photoshop TIFF Technical Note 3).
 *
 * - Predictor 2, horizontal differencing: each sample stores the difference from the same
 *   sample of the previous pixel in the row; undone by a running sum in the sample's own width
 *   (wrapping), after byte order has been made native.
 * - Predictor 3, floating point: each row's samples are split into byte planes, most significant
 *   byte first, and the bytes differenced with a stride of samples-per-pixel. Byte order is part
 *   of the predictor, so no swap is applied before or after.
 *
 * `data` holds `rows` rows of `width × spp` samples of `bytesPerSample` bytes each.
 */

export function undoHorizontal(data: Uint8Array, width: number, rows: number, spp: number, bytesPerSample: number): void {
  const rowSamples = width * spp;
  if (bytesPerSample === 1) {
    for (let r = 0; r < rows; r++) {
      const base = r * rowSamples;
      for (let i = base + spp, end = base + rowSamples; i < end; i++) data[i] = (data[i]! + data[i - spp]!) & 0xff;
    }
  } else if (bytesPerSample === 2) {
    const a = new Uint16Array(data.buffer, data.byteOffset, data.byteLength >> 1);
    for (let r = 0; r < rows; r++) {
      const base = r * rowSamples;
      for (let i = base + spp, end = base + rowSamples; i < end; i++) a[i] = a[i]! + a[i - spp]!;
    }
  } else if (bytesPerSample === 4) {
    const a = new Uint32Array(data.buffer, data.byteOffset, data.byteLength >> 2);
    for (let r = 0; r < rows; r++) {
      const base = r * rowSamples;
      for (let i = base + spp, end = base + rowSamples; i < end; i++) a[i] = a[i]! + a[i - spp]!;
    }
  } else if (bytesPerSample === 8) {
    const a = new BigUint64Array(data.buffer, data.byteOffset, data.byteLength >> 3);
    for (let r = 0; r < rows; r++) {
      const base = r * rowSamples;
      for (let i = base + spp, end = base + rowSamples; i < end; i++) a[i] = BigInt.asUintN(64, a[i]! + a[i - spp]!);
    }
  }
}

export function applyHorizontal(data: Uint8Array, width: number, rows: number, spp: number, bytesPerSample: number): void {
  const rowSamples = width * spp;
  if (bytesPerSample === 1) {
    for (let r = 0; r < rows; r++) {
      const base = r * rowSamples;
      for (let i = base + rowSamples - 1; i >= base + spp; i--) data[i] = (data[i]! - data[i - spp]!) & 0xff;
    }
  } else if (bytesPerSample === 2) {
    const a = new Uint16Array(data.buffer, data.byteOffset, data.byteLength >> 1);
    for (let r = 0; r < rows; r++) {
      const base = r * rowSamples;
      for (let i = base + rowSamples - 1; i >= base + spp; i--) a[i] = a[i]! - a[i - spp]!;
    }
  } else if (bytesPerSample === 4) {
    const a = new Uint32Array(data.buffer, data.byteOffset, data.byteLength >> 2);
    for (let r = 0; r < rows; r++) {
      const base = r * rowSamples;
      for (let i = base + rowSamples - 1; i >= base + spp; i--) a[i] = a[i]! - a[i - spp]!;
    }
  } else if (bytesPerSample === 8) {
    const a = new BigUint64Array(data.buffer, data.byteOffset, data.byteLength >> 3);
    for (let r = 0; r < rows; r++) {
      const base = r * rowSamples;
      for (let i = base + rowSamples - 1; i >= base + spp; i--) a[i] = BigInt.asUintN(64, a[i]! - a[i - spp]!);
    }
  }
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Undo predictor 3 in place; the result is in the host's byte order. */
export function undoFloatingPoint(data: Uint8Array, width: number, rows: number, spp: number, bytesPerSample: number): void {
  const wc = width * spp;
  const rowBytes = wc * bytesPerSample;
  const tmp = new Uint8Array(rowBytes);
  const u32 = float32Words(data, rows * rowBytes, bytesPerSample);
  if (u32) {
    // float32 (the common case): byte sums into tmp, then one 32-bit word per sample.
    for (let r = 0; r < rows; r++) {
      const off = r * rowBytes;
      prefixSum(data, off, rowBytes, spp, tmp);
      const o = off >> 2;
      for (let s = 0; s < wc; s++) u32[o + s] = (tmp[s]! << 24) | (tmp[wc + s]! << 16) | (tmp[2 * wc + s]! << 8) | tmp[3 * wc + s]!;
    }
    return;
  }
  for (let r = 0; r < rows; r++) {
    const row = data.subarray(r * rowBytes, (r + 1) * rowBytes);
    prefixSum(data, r * rowBytes, rowBytes, spp, tmp);
    for (let s = 0; s < wc; s++) {
      for (let b = 0; b < bytesPerSample; b++) {
        // Plane 0 holds the most significant bytes.
        const dst = LITTLE_ENDIAN_HOST ? s * bytesPerSample + (bytesPerSample - 1 - b) : s * bytesPerSample + b;
        row[dst] = tmp[b * wc + s]!;
      }
    }
  }
}

/** 4-byte samples as host-order 32-bit words, when the host is little-endian and `data` aligned. */
function float32Words(data: Uint8Array, bytes: number, bytesPerSample: number): Uint32Array | null {
  if (bytesPerSample !== 4 || !LITTLE_ENDIAN_HOST || data.byteOffset % 4 !== 0) return null;
  return new Uint32Array(data.buffer, data.byteOffset, bytes >> 2);
}

/** tmp[i] = Σ data[off + i − k·spp] (mod 256): the byte-wise horizontal differencing undone. */
function prefixSum(data: Uint8Array, off: number, n: number, spp: number, tmp: Uint8Array): void {
  if (spp === 1) {
    let acc = 0;
    for (let i = 0; i < n; i++) {
      acc = (acc + data[off + i]!) & 0xff;
      tmp[i] = acc;
    }
    return;
  }
  for (let i = 0; i < spp && i < n; i++) tmp[i] = data[off + i]!;
  for (let i = spp; i < n; i++) tmp[i] = tmp[i - spp]! + data[off + i]!;
}

/** Apply predictor 3 in place to host-order samples. */
export function applyFloatingPoint(data: Uint8Array, width: number, rows: number, spp: number, bytesPerSample: number): void {
  const wc = width * spp;
  const rowBytes = wc * bytesPerSample;
  const tmp = new Uint8Array(rowBytes);
  const u32 = float32Words(data, rows * rowBytes, bytesPerSample);
  for (let r = 0; r < rows; r++) {
    const off = r * rowBytes;
    // Split into byte planes, most significant first.
    if (u32) {
      const o = off >> 2;
      for (let s = 0; s < wc; s++) {
        const v = u32[o + s]!;
        tmp[s] = v >>> 24;
        tmp[wc + s] = v >>> 16;
        tmp[2 * wc + s] = v >>> 8;
        tmp[3 * wc + s] = v;
      }
    } else {
      for (let s = 0; s < wc; s++) {
        for (let b = 0; b < bytesPerSample; b++) {
          const src = LITTLE_ENDIAN_HOST ? s * bytesPerSample + (bytesPerSample - 1 - b) : s * bytesPerSample + b;
          tmp[b * wc + s] = data[off + src]!;
        }
      }
    }
    // Horizontal byte differencing.
    for (let i = 0; i < spp && i < rowBytes; i++) data[off + i] = tmp[i]!;
    for (let i = spp; i < rowBytes; i++) data[off + i] = tmp[i]! - tmp[i - spp]!;
  }
}

/** Reverse the byte order of every sample in place (big-endian files on little-endian hosts). */
export function swapBytes(data: Uint8Array, bytesPerSample: number): void {
  if (bytesPerSample === 2) {
    for (let i = 0; i + 1 < data.length; i += 2) {
      const t = data[i]!;
      data[i] = data[i + 1]!;
      data[i + 1] = t;
    }
  } else if (bytesPerSample === 4) {
    for (let i = 0; i + 3 < data.length; i += 4) {
      let t = data[i]!;
      data[i] = data[i + 3]!;
      data[i + 3] = t;
      t = data[i + 1]!;
      data[i + 1] = data[i + 2]!;
      data[i + 2] = t;
    }
  } else if (bytesPerSample === 8) {
    for (let i = 0; i + 7 < data.length; i += 8) {
      for (let k = 0; k < 4; k++) {
        const t = data[i + k]!;
        data[i + k] = data[i + 7 - k]!;
        data[i + 7 - k] = t;
      }
    }
  }
}

export { LITTLE_ENDIAN_HOST };
