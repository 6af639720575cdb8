/**
 * The seam between the `geo-dino` program and its commands. A command module exports
 * `register(program, app)`; its action calls `app.context()` for the logger, progress, output and
 * cancellation signal, and returns (or throws a GeoDinoError, which `main` maps to an exit code).
 */
import type { Command } from 'commander';
import { GeoDinoError } from '@geo-dino/core';
import type { CommandContext } from './context.js';

export interface CliApp {
  /** The context of the command being run (valid inside an action). */
  context(): CommandContext;
  /** Exit status to return when the action finishes without throwing (default 0). */
  setExitCode(code: number): void;
}

export interface CommandModule {
  register(program: Command, app: CliApp): void;
}

export function requireContext(ctx: CommandContext | undefined): CommandContext {
  if (!ctx) throw new GeoDinoError('E_INTERNAL', 'command context used outside an action');
  return ctx;
}
