/**
 * Datetime windows the way analysts type them (pystac-client style) and the way STAC APIs want
 * them (RFC 3339 intervals, `..` for an open end).
 *
 * Accepted: `2023`, `2023-06`, `2023-06-22`, full RFC 3339 instants (a missing zone means UTC),
 * and intervals `a/b` of any of these with `..` or an empty side for an open end. A partial date
 * covers its whole period: `2023` is 2023-01-01T00:00:00Z .. 2023-12-31T23:59:59.999Z.
 */
import { GeoDinoError } from '@geo-dino/core';
import type { StacItem } from './types.js';

/** An inclusive time window; null ends are open. */
export interface DatetimeRange {
  start: Date | null;
  end: Date | null;
}

function bad(source: string, value: string, why: string): GeoDinoError {
  return new GeoDinoError('E_ARGUMENT', `${source}: ${why} (got ${JSON.stringify(value)})`, { details: { field: source, value } });
}

/** Parse one side of an interval; `side` decides which end of a partial date is meant. */
function parseMoment(text: string, side: 'start' | 'end', source: string, whole: string): Date {
  const t = text.trim();
  let m = /^(\d{4})$/.exec(t);
  if (m) {
    const y = Number(m[1]);
    return side === 'start' ? new Date(Date.UTC(y, 0, 1)) : new Date(Date.UTC(y + 1, 0, 1) - 1);
  }
  m = /^(\d{4})-(\d{2})$/.exec(t);
  if (m) {
    const y = Number(m[1]);
    const mo = Number(m[2]);
    if (mo < 1 || mo > 12) throw bad(source, whole, `month ${mo} is not 01..12`);
    return side === 'start' ? new Date(Date.UTC(y, mo - 1, 1)) : new Date(Date.UTC(y, mo, 1) - 1);
  }
  m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t);
  if (m) {
    const y = Number(m[1]);
    const mo = Number(m[2]);
    const d = Number(m[3]);
    const start = Date.UTC(y, mo - 1, d);
    const check = new Date(start);
    if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) {
      throw bad(source, whole, `${t} is not a calendar date`);
    }
    return side === 'start' ? new Date(start) : new Date(start + 86_400_000 - 1);
  }
  m = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)([Zz]|[+-]\d{2}:?\d{2})?$/.exec(t);
  if (m) {
    const zone = m[3] === undefined ? 'Z' : m[3].toUpperCase();
    const d = new Date(`${m[1]}T${m[2]}${zone}`);
    if (Number.isNaN(d.getTime())) throw bad(source, whole, `${t} is not a valid RFC 3339 datetime`);
    return d;
  }
  throw bad(source, whole, `cannot read ${JSON.stringify(t)} as a date; use YYYY, YYYY-MM, YYYY-MM-DD or an RFC 3339 datetime, and a/b for a range with .. for an open end`);
}

/** Parse a datetime or interval string; `source` names the option or field in errors. */
export function parseDatetimeRange(input: string, source = 'datetime'): DatetimeRange {
  const text = input.trim();
  if (!text) throw bad(source, input, 'empty datetime');
  const parts = text.split('/');
  if (parts.length > 2) throw bad(source, input, 'an interval has at most one "/"');
  if (parts.length === 1) {
    return { start: parseMoment(parts[0]!, 'start', source, input), end: parseMoment(parts[0]!, 'end', source, input) };
  }
  const open = (s: string): boolean => s.trim() === '' || s.trim() === '..';
  const start = open(parts[0]!) ? null : parseMoment(parts[0]!, 'start', source, input);
  const end = open(parts[1]!) ? null : parseMoment(parts[1]!, 'end', source, input);
  if (start === null && end === null) throw bad(source, input, 'both ends of the interval are open');
  if (start && end && start.getTime() > end.getTime()) throw bad(source, input, 'the start is after the end');
  return { start, end };
}

/** RFC 3339 form for a STAC API `datetime` parameter. */
export function formatDatetimeRange(r: DatetimeRange): string {
  const s = r.start ? r.start.toISOString() : '..';
  const e = r.end ? r.end.toISOString() : '..';
  if (r.start && r.end && r.start.getTime() === r.end.getTime()) return s;
  return `${s}/${e}`;
}

/** Intersection of two windows (null when they do not overlap). */
export function intersectRanges(a: DatetimeRange | undefined, b: DatetimeRange | undefined): DatetimeRange | null {
  if (!a) return b ?? { start: null, end: null };
  if (!b) return a;
  const start = a.start && b.start ? (a.start > b.start ? a.start : b.start) : (a.start ?? b.start);
  const end = a.end && b.end ? (a.end < b.end ? a.end : b.end) : (a.end ?? b.end);
  if (start && end && start.getTime() > end.getTime()) return null;
  return { start, end };
}

function toDate(v: unknown): Date | null {
  if (typeof v !== 'string' || !v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** An item's acquisition time: `datetime`, or `start_datetime`/`end_datetime`. */
export interface ItemTime {
  /** The time used to order scenes: datetime, else end, else start. */
  nominal: Date | null;
  start: Date | null;
  end: Date | null;
}

export function itemTime(item: StacItem): ItemTime {
  const p = item.properties;
  const dt = toDate(p.datetime);
  const start = toDate(p['start_datetime']) ?? dt;
  const end = toDate(p['end_datetime']) ?? dt;
  return { nominal: dt ?? end ?? start, start, end };
}

/** True when the item's time (instant or interval) overlaps the window. */
export function itemInRange(t: ItemTime, r: DatetimeRange | undefined): boolean {
  if (!r || (!r.start && !r.end)) return true;
  if (!t.start && !t.end) return false;
  const s = t.start ?? t.end!;
  const e = t.end ?? t.start!;
  if (r.start && e.getTime() < r.start.getTime()) return false;
  if (r.end && s.getTime() > r.end.getTime()) return false;
  return true;
}
