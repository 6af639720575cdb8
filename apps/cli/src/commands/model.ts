/**
 * `geo-dino model build|info|pull|demo`: thin layer over @geo-dino/model.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { cliValues, flagName, parseWith, z } from '@geo-dino/core';
import {
  buildModel,
  createDemoModel,
  defaultDemoDir,
  importOnnxModel,
  openModelDir,
  pullModel,
  DEFAULT_PULL_PATTERNS,
  type ModelDir,
  type PullResult,
} from '@geo-dino/model';
import type { CommandModule } from '../app.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function fmtBytes(n: number): string {
  return n >= GiB ? `${(n / GiB).toFixed(2)} GiB` : n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${n} B`;
}

function summary(md: ModelDir): Record<string, unknown> {
  const m = md.meta;
  return {
    dir: md.dir,
    name: m.name,
    description: m.description,
    demo: m.demo,
    family: m.family,
    layout: m.layout,
    dtype: m.dtype,
    input: m.input,
    normalization: m.normalization,
    gsd: m.gsd,
    graphs: m.graphs,
    features: m.features ?? null,
    heads: m.heads,
    source: m.source,
    created: m.created,
  };
}

function human(md: ModelDir): string {
  const m = md.meta;
  const lines = [
    `${m.name}${m.demo ? '  [DEMO: random weights, not real canopy heights]' : ''}`,
    `  ${m.description}`,
    `  directory     ${md.dir}`,
    `  layout        ${m.layout}, ${m.dtype}, ${m.input.tileSize ? `fixed ${m.input.tileSize[0]}×${m.input.tileSize[1]} tiles` : `any size (multiples of ${m.input.sizeMultiple}; ${m.input.exactMultiple} for output = input)`}`,
    `  input         ${m.input.name} float32 [batch, 3, H, W], normalised: mean ${m.normalization.mean.join('/')} std ${m.normalization.std.join('/')} (of value/${m.normalization.scale})`,
    `  GSD           ${m.gsd} m/pixel`,
  ];
  for (const [key, g] of Object.entries(m.graphs)) {
    lines.push(`  graph ${key.padEnd(8)} ${g.file}${g.externalData ? ` + ${g.externalData}` : ''}: ${g.inputs.map((i) => i.name).join(', ')} → ${g.outputs.map((o) => o.name).join(', ')}`);
  }
  if (m.features) lines.push(`  features      layers ${m.features.layers.join(', ')} (${m.features.channels} channels, stride ${m.features.patchSize})`);
  for (const h of m.heads) lines.push(`  head ${h.name.padEnd(9)}${h.kind}: ${Object.entries(h.outputs).filter(([, v]) => v).map(([k, v]) => `${k}=${v}`).join(', ')}${h.unit ? ` (${h.unit})` : ''}`);
  lines.push(`  weights       sha256 ${m.source.weightsSha256} (${m.source.files.length} file${m.source.files.length === 1 ? '' : 's'}, ${fmtBytes(m.source.files.reduce((s, f) => s + f.bytes, 0))})`);
  if (m.source.repo) lines.push(`  source        ${m.source.repo}${m.source.revision ? `@${m.source.revision}` : ''}`);
  lines.push(`  created       ${m.created.by}, ${m.created.at}`);
  return lines.join('\n');
}

const buildSchema = z.object({
  from: z.string().min(1, 'is required'),
  out: z.string().min(1, 'is required'),
  dtype: z.enum(['fp32', 'fp16', 'int8']).default('fp32'),
  tileSize: cliValues.positiveInt.optional(),
  split: z.boolean().default(false),
  attention: z.enum(['matmul', 'mha']).optional(),
  name: z.string().min(1).optional(),
  force: z.boolean().default(false),
});

const pullSchema = z.object({
  out: z.string().min(1, 'is required'),
  revision: z.string().min(1).default('main'),
  include: cliValues.list.optional(),
  endpoint: z.string().url('must be a URL').optional(),
});

const demoSchema = z.object({
  out: z.string().min(1).optional(),
  seed: cliValues.nonNegativeInt.default(0),
  force: z.boolean().default(false),
});

export const modelCommand: CommandModule = {
  register(program, app) {
    const model = program.command('model').description('build, inspect and download models');

    model
      .command('build')
      .description('build ONNX graphs from a Hugging Face checkpoint (config.json + safetensors), or wrap an exported .onnx, into a geo-dino model directory')
      .requiredOption('--from <dir|file.onnx>', 'Hugging Face model directory (CHMv2 or DINOv3 ViT), or an ONNX file exported elsewhere')
      .requiredOption('--out <dir>', 'model directory to write')
      .option('--dtype <fp32|fp16|int8>', 'precision: fp16 keeps LayerNorm, Softmax, GELU and the bin reduction in fp32; int8 quantises the MatMuls dynamically (experimental)', 'fp32')
      .option('--tile-size <N>', 'fix the input to N×N pixels (multiple of 16; 32 for output = input); default: any size')
      .option('--split', 'separate backbone and head graphs (several heads share one backbone pass)')
      .option('--attention <matmul|mha>', 'attention kernel: onnxruntime MultiHeadAttention (default) or plain MatMul/Softmax/MatMul (default for fp16)')
      .option('--name <name>', 'model name recorded in geo-dino.json')
      .option('--force', 'replace --out if it exists')
      .action(async (opts: Record<string, unknown>) => {
        const ctx = app.context();
        const o = parseWith(buildSchema, opts, { fieldName: flagName });
        const from = resolve(ctx.io.cwd, o.from);
        const out = resolve(ctx.io.cwd, o.out);
        const isFile = await stat(from).then((s) => s.isFile()).catch(() => false);
        const common = { log: ctx.log, ...(o.name ? { name: o.name } : {}), force: o.force };
        const md = isFile
          ? await importOnnxModel(from, { out, ...common })
          : await buildModel({
              from,
              out,
              dtype: o.dtype,
              tileSize: o.tileSize ?? null,
              split: o.split,
              ...(o.attention ? { attention: o.attention } : {}),
              progress: ctx.progress,
              signal: ctx.signal,
              ...common,
            });
        ctx.result(summary(md), () => human(md));
      });

    model
      .command('info')
      .description('describe a model directory (architecture, graphs, inputs and outputs, normalisation, weights hash)')
      .argument('<dir>', 'model directory (or "demo")')
      .action(async (dir: string) => {
        const ctx = app.context();
        const md = await openModelDir(dir === 'demo' ? defaultDemoDir(ctx.io.env) : resolve(ctx.io.cwd, dir));
        ctx.result(summary(md), () => human(md));
      });

    model
      .command('pull')
      .description('download a model from the Hugging Face Hub (HF_TOKEN for gated repositories), resumable and checksum-verified')
      .argument('<repo>', 'Hub repository id, e.g. facebook/dinov3-vitl16-chmv2-dpt-head')
      .requiredOption('--out <dir>', 'directory to download into')
      .option('--revision <rev>', 'branch, tag or commit', 'main')
      .option('--include <glob...>', `files to fetch (default: ${DEFAULT_PULL_PATTERNS.join(', ')})`)
      .option('--endpoint <url>', 'Hub endpoint (default $HF_ENDPOINT or https://huggingface.co)')
      .action(async (repo: string, opts: Record<string, unknown>) => {
        const ctx = app.context();
        const o = parseWith(pullSchema, opts, { fieldName: flagName });
        const out = resolve(ctx.io.cwd, o.out);
        const r: PullResult = await pullModel(repo, {
          out,
          revision: o.revision,
          ...(o.include ? { include: o.include } : {}),
          ...(o.endpoint ? { endpoint: o.endpoint } : {}),
          env: ctx.io.env,
          log: ctx.log,
          progress: ctx.progress,
          signal: ctx.signal,
        });
        ctx.result(r, () =>
          [
            `${r.repo}@${r.revision} (commit ${r.commit}) → ${r.dir}`,
            ...r.files.map((f) => `  ${f.name}  ${fmtBytes(f.bytes)}  ${f.checksum.algorithm} ok`),
            `downloaded ${fmtBytes(r.downloadedBytes)} this run`,
            `next: geo-dino model build --from ${r.dir} --out <model-dir>`,
          ].join('\n'),
        );
      });

    model
      .command('demo')
      .description('create the demo model (a tiny CHMv2 with random weights; no download) used by `--model demo`')
      .option('--out <dir>', 'where to write it (default $GEO_DINO_HOME/models/demo)')
      .option('--seed <n>', 'random seed', '0')
      .option('--force', 'replace --out if it exists')
      .action(async (opts: Record<string, unknown>) => {
        const ctx = app.context();
        const o = parseWith(demoSchema, opts, { fieldName: flagName });
        const out = o.out ? resolve(ctx.io.cwd, o.out) : defaultDemoDir(ctx.io.env);
        const exists = await stat(out).then(() => true).catch(() => false);
        if (exists && !o.force) {
          const md = await openModelDir(out);
          ctx.result(summary(md), () => human(md));
          return;
        }
        const md = await createDemoModel(out, { seed: o.seed, log: ctx.log, progress: ctx.progress, force: o.force });
        ctx.result(summary(md), () => human(md));
      });
  },
};
