import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One PostgreSQL server for the run: the embedded one unless TEST_DATABASE_ADMIN_URL is set.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests each make their own database; two workers suit the two cores here.
    pool: 'forks',
    maxWorkers: 2,
  },
});
