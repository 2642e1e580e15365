import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests each make their own database; two workers suit the two cores here.
    pool: 'forks',
    maxWorkers: 2,
  },
});
