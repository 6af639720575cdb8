/**
 * Child process entry for {@link probeProviderIsolated}: create a session on the probe model with
 * one execution provider, run it, check the answer, print one JSON line.
 * Usage: node probe-child.js <provider> <model.onnx>
 */
import * as ort from 'onnxruntime-node';

async function main(): Promise<void> {
  const [provider, modelPath] = process.argv.slice(2);
  if (!provider || !modelPath) throw new Error('usage: probe-child <provider> <model.onnx>');
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: [provider],
    logSeverityLevel: 3,
  });
  const x = new ort.Tensor('float32', new Float32Array([1, 2, 3, 4]), [1, 4]);
  const out = await session.run({ x });
  const y = out['y']?.data as Float32Array | undefined;
  const expected = [3, 5, 7, 9];
  if (!y || expected.some((v, i) => Math.abs((y[i] ?? NaN) - v) > 1e-6)) {
    throw new Error(`wrong result from the probe model: ${y ? Array.from(y).join(',') : 'no output'}`);
  }
  await session.release();
  process.stdout.write(JSON.stringify({ ok: true, ms: Math.round(performance.now() - t0) }) + '\n');
}

main().catch((err: unknown) => {
  process.stdout.write(JSON.stringify({ ok: false, error: err instanceof Error ? err.message : String(err) }) + '\n');
  process.exitCode = 1;
});
