/** Types of `ensure.mjs`, for its tests. */
export function nodeModulesStale(root?: string): string | null;
