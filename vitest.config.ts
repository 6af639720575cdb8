import { defineConfig } from 'vitest/config';

// One test configuration for the whole workspace. `npm test` builds first (`tsc -b`), because
// tests that spawn the CLI or worker threads run the compiled JavaScript in each package's dist/.
export default defineConfig({
  test: {
    include: [
      'packages/*/test/**/*.test.ts',
      'tiling/test/**/*.test.ts',
      'stac/test/**/*.test.ts',
      'apps/*/test/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    // Native addons (onnxruntime, better-sqlite3) are happier in child processes than in threads.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Keep CI output readable and bounded.
    reporters: ['default'],
  },
});
