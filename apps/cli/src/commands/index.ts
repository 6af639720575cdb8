/**
 * Every `geo-dino` subcommand, in the order `--help` lists them. One file per command (or group);
 * each is a thin layer over a library package.
 */
import type { CommandModule } from '../app.js';
import { doctorCommand } from './doctor.js';

export const COMMANDS: readonly CommandModule[] = [doctorCommand];
