/**
 * Validation with zod, turned into one clear line naming the field and what is wrong.
 */
import { z } from 'zod';
import { GeoDinoError, type ErrorCode } from './errors.js';

export { z };

export interface ParseContext {
  /** What is being validated, e.g. `options`, `geo-dino.json`, a file path. */
  source?: string;
  /** Map a schema path to the name a user typed (e.g. `tileSize` → `--tile-size`). */
  fieldName?: (path: readonly PropertyKey[]) => string;
  code?: ErrorCode;
}

/** `tileSize` → `--tile-size`: how CLI option keys are shown in errors. */
export function flagName(path: readonly PropertyKey[]): string {
  const key = String(path[0] ?? '');
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()) + (path.length > 1 ? '.' + path.slice(1).join('.') : '');
}

function describeValue(input: unknown, path: readonly PropertyKey[]): string {
  let v: unknown = input;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return '';
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  if (v === undefined) return '';
  const s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v);
  return ` (got ${s.length > 60 ? s.slice(0, 57) + '...' : s})`;
}

/** Parse `input` with `schema`, or throw one GeoDinoError line for the first problem. */
export function parseWith<T extends z.ZodType>(schema: T, input: unknown, ctx: ParseContext = {}): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue?.path ?? [];
  const field = path.length ? (ctx.fieldName ?? ((p) => p.map(String).join('.')))(path) : '';
  const where = [ctx.source, field].filter(Boolean).join(': ');
  const message = `${where ? where + ': ' : ''}${issue?.message ?? 'invalid'}${describeValue(input, path)}`;
  throw new GeoDinoError(ctx.code ?? 'E_ARGUMENT', message, {
    details: { source: ctx.source, field, issues: result.error.issues.length },
  });
}

/** Common CLI value schemas. */
export const cliValues = {
  /** A positive integer given as a string or number. */
  positiveInt: z.coerce.number().int('must be an integer').positive('must be > 0'),
  nonNegativeInt: z.coerce.number().int('must be an integer').min(0, 'must be >= 0'),
  positiveNumber: z.coerce.number().refine(Number.isFinite, 'must be a number').refine((v) => v > 0, 'must be > 0'),
  /** `a,b,c` or repeated flags → string[] */
  list: z.union([z.string(), z.array(z.string())]).transform((v) =>
    (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean),
  ),
};
