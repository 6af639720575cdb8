/**
 * The training report: `report.json` (everything) and `report.md` (the same, for people).
 */
import type { LandcoverClass } from './classes.js';
import type { Metrics } from './metrics.js';

export interface TrainReport {
  head: string;
  createdAt: string;
  classes: (LandcoverClass & { trainPixels: number; validationPixels: number; weight: number })[];
  /** The exported head on the held-out tiles. */
  validation: Metrics;
  /** The exported head on the training tiles (for spotting over- or under-fitting). */
  train: Metrics;
  /** Predicting the most frequent training class everywhere, on the held-out tiles. */
  baseline: { class: string; metrics: Metrics };
  history: { epoch: number; trainLoss: number; valLoss: number; valOverallAccuracy: number | null; valMeanIou: number | null }[];
  settings: Record<string, unknown>;
  backbone: Record<string, unknown>;
  features: Record<string, unknown>;
  timings: { total_s: number; backbone_s: number; train_s: number };
  /** Validation pixels of classes absent from the training tiles (not in the head, not in the metrics). */
  excludedValidationPixels: number;
  /** The tiles of each side of the split: [x, y, width, height] in pixels of the training grid (settings.grid). */
  split: { train: number[][]; validation: number[][] };
}

const pct = (v: number | null): string => (v === null ? '–' : `${(100 * v).toFixed(1)} %`);
const num = (v: number | null, d = 3): string => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(d));

function table(headers: string[], rows: string[][]): string {
  return [`| ${headers.join(' | ')} |`, `|${headers.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function renderReportMarkdown(r: TrainReport): string {
  const v = r.validation;
  const b = r.baseline.metrics;
  const s = r.settings as Record<string, unknown> & { tiles?: { train: number; validation: number }; labels?: { path: string; method: string }; imagery?: { id: string }[] };
  const lines: string[] = [];
  lines.push(`# Land-cover head: ${r.head}`, '');
  if (r.backbone['demo']) lines.push('> **DEMO backbone** (random weights): these features and figures say nothing about real imagery.', '');
  lines.push(
    `Held-out validation tiles: **mIoU ${num(v.meanIou)}**, overall accuracy **${pct(v.overallAccuracy)}** over ${v.pixels.toLocaleString('en')} labelled pixels.`,
    `Majority-class baseline (always "${r.baseline.class}"): mIoU ${num(b.meanIou)}, overall accuracy ${pct(b.overallAccuracy)}.`,
    `Training tiles: mIoU ${num(r.train.meanIou)}, overall accuracy ${pct(r.train.overallAccuracy)}.`,
    '',
  );
  lines.push('## Data', '');
  lines.push(`- labels: \`${s.labels?.path ?? '?'}\`, ${s.labels?.method ?? '?'}`);
  lines.push(`- imagery: ${(s.imagery ?? []).map((i) => `\`${i.id}\``).join(', ')}`);
  lines.push(`- tiles: ${s.tiles?.train ?? '?'} for training, ${s.tiles?.validation ?? '?'} held out (split by tiles, seed ${String(s['seed'])})`);
  lines.push(`- backbone: \`${String(r.backbone['name'])}\` (weights ${String(r.backbone['weightsSha256']).slice(0, 12)}), features ${JSON.stringify(r.features['layers'])} (${String(r.features['channels'])} channels), ${String(r.features['upsampling'])}`);
  const unscored = r.classes.filter((c) => c.validationPixels === 0).map((c) => c.name);
  if (unscored.length) lines.push(`- not in any held-out tile, so not scored: ${unscored.join(', ')} (label more of it, or try another --seed)`);
  if (r.excludedValidationPixels) lines.push(`- ${r.excludedValidationPixels} validation pixels of classes absent from the training tiles are not scored`);
  lines.push('');
  lines.push('## Classes', '');
  lines.push(
    table(
      ['value', 'class', 'train px', 'validation px', 'weight', 'IoU', 'precision', 'recall', 'F1'],
      r.classes.map((c, k) => {
        const m = v.classes[k]!;
        return [String(c.value), `${c.name} (${c.color})`, c.trainPixels.toLocaleString('en'), c.validationPixels.toLocaleString('en'), num(c.weight), num(m.iou), num(m.precision), num(m.recall), num(m.f1)];
      }),
    ),
    '',
  );
  lines.push('## Confusion matrix (validation)', '', 'Rows: reference class; columns: predicted class; pixel counts.', '');
  lines.push(table(['reference \\ predicted', ...r.classes.map((c) => c.name)], v.confusion.map((row, i) => [r.classes[i]!.name, ...row.map((x) => x.toLocaleString('en'))])), '');
  lines.push('## Training', '');
  lines.push(
    `Multinomial logistic regression, L2 ${String(s['l2'])}, class weighting ${String(s['classWeighting'])}, Adam (step ${String(s['learningRate'])}, cosine decay), ${String(s['epochs'])} epochs of mini-batches of ${String(s['batchTiles'])} tiles.`,
    '',
  );
  lines.push(table(['epoch', 'train loss', 'validation loss', 'validation OA', 'validation mIoU'], r.history.map((h) => [String(h.epoch), num(h.trainLoss, 4), num(h.valLoss, 4), pct(h.valOverallAccuracy), num(h.valMeanIou)])), '');
  lines.push(`Time: ${r.timings.total_s.toFixed(1)} s in all (${r.timings.backbone_s.toFixed(1)} s in the backbone, ${r.timings.train_s.toFixed(1)} s training). Written ${r.createdAt}.`, '');
  return lines.join('\n');
}
