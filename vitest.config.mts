import { defineConfig } from 'vitest/config';

// One Temporal dev server and one MinIO per run (test/harness/global-setup.ts);
// PostgreSQL primaries per test file (test/harness/postgres.ts). Real servers
// are slow to start, so time limits here are generous: speed is measured in
// `npm run bench`, never asserted by a test.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/harness/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    reporters: ['default', './test/harness/summary-reporter.ts'],
    // Workers in tests log warnings and errors only.
    env: { LIFEBOAT_LOG_LEVEL: 'WARN' },
  },
});
