import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Interop files start real daemons; unit files are pure. Files run in parallel (2 cores).
    pool: 'forks',
  },
});
