/**
 * `geo-dino doctor`: what this machine can do for geo-dino.
 */
import { cpus, totalmem, freemem, platform, arch, release } from 'node:os';
import { GEO_DINO_VERSION, geoDinoHome } from '@geo-dino/core';
import { probeProviders, type ProviderProbe } from '@geo-dino/runtime';
import type { CommandModule } from '../app.js';
import { findModelDirs, type FoundModel } from '../models.js';

export interface DoctorReport {
  geoDino: string;
  node: string;
  platform: string;
  cpu: { model: string; cores: number };
  memory: { totalBytes: number; freeBytes: number };
  home: string;
  providers: ProviderProbe[];
  models: FoundModel[];
}

const GiB = 1024 ** 3;

function human(r: DoctorReport): string {
  const lines = [
    `geo-dino ${r.geoDino}`,
    `node      ${r.node} (${r.platform})`,
    `cpu       ${r.cpu.cores} cores, ${r.cpu.model}`,
    `memory    ${(r.memory.totalBytes / GiB).toFixed(1)} GiB total, ${(r.memory.freeBytes / GiB).toFixed(1)} GiB free`,
    `home      ${r.home}`,
    'execution providers:',
    ...r.providers.map((p) =>
      p.ok ? `  ${p.provider.padEnd(7)} works (${p.ms ?? '?'} ms to load and run)` : `  ${p.provider.padEnd(7)} unavailable: ${p.reason ?? 'unknown reason'}`,
    ),
    'models:',
    ...(r.models.length
      ? r.models.map((m) => `  ${m.path}  [${m.kind}${m.description ? ': ' + m.description : ''}]`)
      : ['  none found (get weights with `geo-dino model pull`, or run `geo-dino chm --model demo`)']),
  ];
  return lines.join('\n');
}

export const doctorCommand: CommandModule = {
  register(program, app) {
    program
      .command('doctor')
      .description('report Node, CPU, memory, which onnxruntime execution providers work here, and the models found')
      .action(async () => {
        const ctx = app.context();
        ctx.log.debug('probing execution providers');
        const providers = await probeProviders();
        const report: DoctorReport = {
          geoDino: GEO_DINO_VERSION,
          node: process.version,
          platform: `${platform()} ${release()} ${arch()}`,
          cpu: { model: cpus()[0]?.model.trim() ?? 'unknown', cores: cpus().length },
          memory: { totalBytes: totalmem(), freeBytes: freemem() },
          home: geoDinoHome(ctx.io.env),
          providers,
          models: await findModelDirs(ctx.io.env, ctx.io.cwd),
        };
        ctx.result(report, () => human(report));
        // No provider at all means geo-dino cannot run a model here.
        if (!providers.some((p) => p.ok)) app.setExitCode(1);
      });
  },
};
