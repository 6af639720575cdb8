/**
 * What a benchmark reports: measurements beside a reference measured in the same run, and their
 * ratio. Targets are printed, never asserted (timings are not tests).
 */
export interface BenchRow {
  /** What was measured, e.g. "fp32 graph, 512² tile". */
  metric: string;
  value: number;
  unit: string;
  /** The reference measured in the same run on the same machine. */
  reference: { name: string; value: number };
  /** How to read the ratio: for "higher" (throughput) ratio = value / reference, for "lower"
   * (time, memory) ratio = reference / value; > 1 means geo-dino is better. */
  better: 'higher' | 'lower';
  /** The ratio the issue asks for, if any (same orientation). */
  target?: number;
  note?: string;
}

export interface BenchReport {
  name: string;
  rows: BenchRow[];
  /** Facts about the run (machine, sizes, thread counts). */
  context?: Record<string, unknown>;
}

export interface BenchModule {
  description: string;
  /** Needs extra setup (e.g. a PyTorch environment): run only when named. */
  explicitOnly?: boolean;
  run(args: readonly string[]): Promise<BenchReport>;
}

export function ratioOf(row: BenchRow): number {
  return row.better === 'higher' ? row.value / row.reference.value : row.reference.value / row.value;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

export function formatReport(r: BenchReport): string {
  const lines = [`== ${r.name}`];
  if (r.context) lines.push('   ' + Object.entries(r.context).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' '));
  for (const row of r.rows) {
    const ratio = ratioOf(row);
    const target = row.target === undefined ? '' : ` target ≥ ${row.target}× ${ratio >= row.target ? '(met)' : '(NOT met)'}`;
    lines.push(
      `   ${row.metric}: ${fmt(row.value)} ${row.unit} | reference ${row.reference.name}: ${fmt(row.reference.value)} ${row.unit} | ratio ${ratio.toFixed(2)}×${target}${row.note ? ` — ${row.note}` : ''}`,
    );
  }
  return lines.join('\n');
}
