/**
 * `geo-dino`: argument parsing, global options, error → exit-code mapping, signal handling.
 */
import { Command, CommanderError, Option } from 'commander';
import { GEO_DINO_VERSION, GeoDinoError, configureHttp, toGeoDinoError, EXIT } from '@geo-dino/core';
import { createContext, type CliIo, type CommandContext, type GlobalOptions } from './context.js';
import type { CliApp } from './app.js';
import { COMMANDS } from './commands/index.js';

export interface MainOptions extends Partial<CliIo> {
  /** Abort signal owner; by default SIGINT/SIGTERM abort the run. */
  handleSignals?: boolean;
}

/** Commander may print an error over two lines (message, then a suggestion): make it one. */
function oneLine(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
}

/** Build the program (exported for tests and for docs generation). */
export function buildProgram(app: CliApp, io: CliIo, onCommanderError: (text: string) => void): Command {
  const program = new Command('geo-dino');
  program
    .description('Canopy-height and land-cover maps from high-resolution satellite imagery (DINOv3 SAT + CHMv2).')
    .version(GEO_DINO_VERSION, '-V, --version', 'print the version')
    .addOption(new Option('--json', 'machine-readable output: a JSON result on stdout, JSON-line logs and progress on stderr'))
    .addOption(new Option('-q, --quiet', 'only warnings and errors; no progress bars'))
    .addOption(new Option('-v, --verbose', 'debug logging'))
    .addOption(new Option('--timeout <seconds>', 'give up on a remote server (imagery, STAC, models) that has not answered one read within this time, retries included (default 60)'))
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => onCommanderError(s),
    });
  for (const mod of COMMANDS) mod.register(program, app);
  // Commander applies exitOverride/configureOutput to subcommands created after this call only;
  // copy the settings down so every level behaves the same.
  const apply = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      sub.exitOverride();
      sub.showSuggestionAfterError(true);
      sub.configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => onCommanderError(s) });
      apply(sub);
    }
  };
  apply(program);
  return program;
}

/** Run `geo-dino` with `argv` (process.argv form); resolves to the exit status. */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  const io: CliIo = {
    stdout: options.stdout ?? process.stdout,
    stderr: options.stderr ?? process.stderr,
    env: options.env ?? process.env,
    cwd: options.cwd ?? process.cwd(),
  };
  const controller = new AbortController();
  let ctx: CommandContext | undefined;
  let exitCode = 0;
  let commanderText = '';

  const app: CliApp = {
    context() {
      if (!ctx) throw new GeoDinoError('E_INTERNAL', 'command context used outside an action');
      return ctx;
    },
    setExitCode(code) {
      exitCode = code;
    },
  };

  const program = buildProgram(app, io, (text) => (commanderText += text));
  let httpBefore: { deadlineMs: number } | null = null;
  program.hook('preAction', (_root, action) => {
    const g = action.optsWithGlobals<Partial<GlobalOptions> & { timeout?: string }>();
    ctx = createContext({ json: !!g.json, quiet: !!g.quiet, verbose: !!g.verbose }, io, controller.signal);
    if (g.timeout !== undefined) {
      const seconds = Number(g.timeout);
      if (!(seconds > 0) || !Number.isFinite(seconds)) throw new GeoDinoError('E_ARGUMENT', `--timeout: must be a positive number of seconds (got ${JSON.stringify(g.timeout)})`);
      httpBefore = configureHttp({ deadlineMs: seconds * 1000 });
    }
  });

  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1) process.exit(EXIT.cancelled);
    ctx?.log.warn({ signal: sig }, 'interrupted: stopping cleanly (press Ctrl-C again to force)');
    controller.abort();
  };
  const handle = options.handleSignals ?? true;
  if (handle) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        return EXIT.ok;
      }
      const text = oneLine(commanderText || err.message).replace(/^error:\s*/i, '');
      const wantsJson = argv.includes('--json');
      reportError(io, wantsJson, new GeoDinoError(err.code === 'commander.unknownCommand' ? 'E_UNKNOWN_COMMAND' : 'E_ARGUMENT', text));
      return EXIT.input;
    }
    const gerr = toGeoDinoError(err);
    reportError(io, ctx?.options.json ?? argv.includes('--json'), gerr, ctx?.options.verbose ?? false);
    return gerr.exitCode;
  } finally {
    if (httpBefore) configureHttp(httpBefore);
    if (handle) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

function reportError(io: CliIo, json: boolean, err: GeoDinoError, verbose = false): void {
  if (json) {
    io.stderr.write(JSON.stringify({ type: 'error', ...err.toJSON() }) + '\n');
    return;
  }
  const bug = err.code === 'E_INTERNAL' ? ' (this is a bug in geo-dino; please report it with --verbose output)' : '';
  io.stderr.write(`geo-dino: error: ${err.message}${bug}\n`);
  if (verbose) {
    const cause = err.cause instanceof Error ? err.cause : err;
    if (cause.stack) io.stderr.write(cause.stack + '\n');
  }
}
