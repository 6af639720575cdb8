/**
 * Error helpers for the tiler. Every error names the file (or redacted URL) it is about.
 */
import { GeoDinoError, type ErrorCode } from '@geo-dino/core';

/** A raster that is corrupt, hostile or malformed: `E_BAD_RASTER`. */
export function badRaster(name: string, what: string, details: Record<string, unknown> = {}): GeoDinoError {
  return new GeoDinoError('E_BAD_RASTER', `${name}: ${what}`, { details: { file: name, ...details } });
}

/** A well-formed raster that uses something geo-dino does not support: `E_UNSUPPORTED_RASTER`. */
export function unsupportedRaster(name: string, what: string, details: Record<string, unknown> = {}): GeoDinoError {
  return new GeoDinoError('E_UNSUPPORTED_RASTER', `${name}: ${what}`, { details: { file: name, ...details } });
}

/** A resource cap an input would exceed: `E_LIMIT`. */
export function limitError(name: string, what: string, details: Record<string, unknown> = {}): GeoDinoError {
  return new GeoDinoError('E_LIMIT', `${name}: ${what}`, { details: { file: name, ...details } });
}

export function rasterError(code: ErrorCode, name: string, what: string, details: Record<string, unknown> = {}): GeoDinoError {
  return new GeoDinoError(code, `${name}: ${what}`, { details: { file: name, ...details } });
}

export const MiB = 1024 * 1024;

export function fmtBytes(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
