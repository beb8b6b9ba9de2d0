import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/build-models.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Image models and crash tests use both cores; running files one at a time keeps timings honest.
    fileParallelism: false,
    reporters: ['default'],
  },
});
