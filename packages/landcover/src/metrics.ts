/**
 * Accuracy of a class map against reference labels, from a confusion matrix (rows = reference,
 * columns = prediction, pixel counts): overall accuracy, per-class IoU = TP / (TP + FP + FN),
 * precision, recall, F1, and mIoU = the mean IoU over the classes with a non-empty union (a class
 * neither present nor predicted has no IoU; one predicted but absent counts 0).
 */

export interface ClassMetrics {
  value: number;
  name: string;
  /** Reference pixels of the class. */
  support: number;
  predicted: number;
  truePositive: number;
  /** null when the class is neither present nor predicted. */
  iou: number | null;
  precision: number | null;
  recall: number | null;
  f1: number | null;
}

export interface Metrics {
  pixels: number;
  overallAccuracy: number | null;
  meanIou: number | null;
  classes: ClassMetrics[];
  /** Rows = reference class, columns = predicted class (same order as `classes`). */
  confusion: number[][];
}

export function metricsFrom(confusion: ArrayLike<number>, classes: readonly { value: number; name: string }[]): Metrics {
  const K = classes.length;
  if (confusion.length !== K * K) throw new Error(`metrics: confusion of ${confusion.length} cells for ${K} classes`);
  let total = 0;
  let diag = 0;
  const rows = new Float64Array(K);
  const cols = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    for (let j = 0; j < K; j++) {
      const v = confusion[i * K + j]!;
      total += v;
      rows[i]! += v;
      cols[j]! += v;
      if (i === j) diag += v;
    }
  }
  const per: ClassMetrics[] = classes.map((c, k) => {
    const tp = confusion[k * K + k]!;
    const union = rows[k]! + cols[k]! - tp;
    const precision = cols[k]! > 0 ? tp / cols[k]! : null;
    const recall = rows[k]! > 0 ? tp / rows[k]! : null;
    return {
      value: c.value,
      name: c.name,
      support: rows[k]!,
      predicted: cols[k]!,
      truePositive: tp,
      iou: union > 0 ? tp / union : null,
      precision,
      recall,
      f1: precision !== null && recall !== null ? (precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0) : null,
    };
  });
  const ious = per.map((c) => c.iou).filter((v): v is number => v !== null);
  return {
    pixels: total,
    overallAccuracy: total > 0 ? diag / total : null,
    meanIou: ious.length ? ious.reduce((a, b) => a + b, 0) / ious.length : null,
    classes: per,
    confusion: Array.from({ length: K }, (_, i) => Array.from({ length: K }, (_, j) => confusion[i * K + j]!)),
  };
}

/** The confusion matrix of predicting class `k` everywhere, given the reference counts per class. */
export function constantPredictionConfusion(referenceCounts: readonly number[], k: number): Float64Array {
  const K = referenceCounts.length;
  const m = new Float64Array(K * K);
  referenceCounts.forEach((n, i) => (m[i * K + k] = n));
  return m;
}
