/** Types of `tools.mjs` (the external test tools), for the TypeScript tests. */

/** A check: an argv that must exit 0, or a function returning null when fine, else the reason. */
export type Check = readonly string[] | (() => string | null);

export interface Tool {
  name: string;
  purpose: string;
  /** The pin of a Go or Python tool; part of its install folder `$GEO_DINO_TOOLS/<name>@<version>`. */
  version?: string;
  checks(): Check[];
  /** Debian packages (installed as root or with `sudo -n`). */
  apt?: string[];
  /** Go package path, installed with `go install <go>@<version>` into `<toolDir>/bin`. */
  go?: string;
  /** Pinned requirements, installed into a virtualenv at `<toolDir>`. */
  pip?: string[];
  /** Extra advice shown when it cannot be installed. */
  hint?: string;
}

export const TOOLS_DIR: string;
export const INSTALL_HINT: string;
export const GDAL_PYTHON: string;
export const VENV_PYTHON: string;
export const CHROMIUM: string;
export const TOOLS: readonly Tool[];
export function toolDir(name: string): string;
export function pmtilesCli(): string;
export function stacTools(): string;
export function mapproxyTools(): string;
export function pgBinDir(): string | null;
export function checkTool(tool: Tool): string | null;
