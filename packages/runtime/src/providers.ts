/**
 * Which onnxruntime execution providers really work on this machine.
 *
 * onnxruntime-node lists providers it was built with, not ones that can run: CUDA needs the
 * CUDA EP libraries (not bundled, see README "GPU"), WebGPU needs an adapter. The only honest
 * answer is to create a session and run it. Each probe runs in a child process so that native
 * log noise and a crashing driver stay out of the caller, and the child's stderr gives the
 * real reason a provider failed.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'webgpu'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export interface ProviderProbe {
  provider: ExecutionProvider;
  ok: boolean;
  /** Why it failed: the error onnxruntime raised, plus the native log line that explains it. */
  reason?: string;
  /** Time to create the session and run it once. */
  ms?: number;
}

/** The tiny model the probes run (y = 2x + 1 on float32 [1,4]); see scripts/make-probe-model.py. */
export const PROBE_MODEL_PATH = fileURLToPath(new URL('../assets/probe.onnx', import.meta.url));

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

/** Pick the most informative native log line (a failed library load, a missing adapter). */
export function explainNativeLog(stderr: string): string | undefined {
  const lines = stderr
    .replace(ANSI, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const pick =
    lines.find((l) => /cannot open shared object|Failed to load library/i.test(l)) ??
    lines.find((l) => /adapter|Vulkan|CUDA|cudnn|driver/i.test(l));
  if (!pick) return undefined;
  // Keep the message part after the source location prefix onnxruntime prints.
  const m = /(?:FAIL : |error: |Warning: )(.*)$/.exec(pick);
  return (m?.[1] ?? pick).slice(0, 400);
}

/** Drop onnxruntime's source-location prefixes and repeated paths from an error message. */
export function cleanOrtMessage(message: string): string {
  let m = message.replace(ANSI, '').split('\n')[0]?.trim() ?? '';
  m = m.replace(/^\/onnxruntime_src\/\S+:\d+\s+/, '');
  const afterAssert = / was false\. (.*)$/.exec(m);
  if (afterAssert?.[1]) m = afterAssert[1];
  // "Failed to load library /a/b/lib.so with error: /a/b/lib.so: cannot open ..." → keep the basename once.
  m = m.replace(/Failed to load library (\S+) with error: \1: /, (_all, p: string) => `cannot load ${p.split('/').pop() ?? p}: `);
  return m;
}

/** A short note on what to do about a failed provider. */
export function providerHint(provider: ExecutionProvider, reason: string): string | undefined {
  if (provider === 'cuda' && /providers_(shared|cuda)|Failed to load shared library/i.test(reason)) {
    return 'the CUDA execution provider is not installed; on a Linux x64 machine with CUDA 12 and internet, reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12 (README, "GPU")';
  }
  if (provider === 'cuda' && /libcudart|libcublas|libcudnn/i.test(reason)) {
    return 'CUDA 12 / cuDNN 9 runtime libraries are missing from the library path';
  }
  if (provider === 'webgpu' && /adapter/i.test(reason)) return 'no WebGPU adapter (GPU with Vulkan) on this machine';
  return undefined;
}

/** Probe one provider in a child process. Never throws. */
export function probeProviderIsolated(provider: ExecutionProvider, timeoutMs = 60_000): Promise<ProviderProbe> {
  const child = fileURLToPath(new URL('./probe-child.js', import.meta.url));
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [child, provider, PROBE_MODEL_PATH], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      let parsed: { ok?: boolean; error?: string; ms?: number } = {};
      try {
        parsed = JSON.parse(last) as typeof parsed;
      } catch {
        /* the child died before answering */
      }
      if (parsed.ok === true) return resolve({ provider, ok: true, ...(parsed.ms !== undefined ? { ms: parsed.ms } : {}) });
      const base = parsed.error
        ? cleanOrtMessage(parsed.error)
        : signal
          ? `probe killed by ${signal}${signal === 'SIGKILL' ? ` (no answer within ${timeoutMs} ms)` : ''}`
          : `probe exited with code ${code}`;
      const native = explainNativeLog(err);
      let reason = native && !base.includes(native) && !cleanOrtMessage(native).includes(base) ? `${base} (${cleanOrtMessage(native)})` : base;
      const hint = providerHint(provider, reason + ' ' + err);
      if (hint) reason += ` — ${hint}`;
      resolve({ provider, ok: false, reason });
    });
  });
}

/** Probe every provider, one after the other (GPU drivers dislike concurrent initialisation). */
export async function probeProviders(providers: readonly ExecutionProvider[] = EXECUTION_PROVIDERS): Promise<ProviderProbe[]> {
  const results: ProviderProbe[] = [];
  for (const p of providers) results.push(await probeProviderIsolated(p));
  return results;
}

/**
 * Whether onnxruntime-node's CUDA provider library is installed (it is downloaded by the
 * package's install script, which this repository skips by default). Lets `auto` skip CUDA
 * without a native error message when it cannot possibly work.
 */
export function cudaProviderInstalled(): boolean {
  try {
    const pkg = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
    const dir = join(dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
    const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    return existsSync(join(dir, lib));
  } catch {
    return false;
  }
}
