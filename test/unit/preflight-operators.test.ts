// A preflight that fails after reading the runbook carries the runbook's
// operators in its failure, so the workflow (which has no runbook yet) lets
// only them retry or abort the failed step (workflows/recovery/rules.ts).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { preflight } from '../../activities/recovery';
import { activity, failureOf } from '../harness/activity';

const dir = mkdtempSync(path.join(tmpdir(), 'lifeboat-preflight-operators-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('names the runbook operators in the failure of a preflight that read the runbook', async () => {
  // The example runbook, on a file:// repository that does not exist: a failure a retry can fix.
  const example = readFileSync(path.resolve(__dirname, '../../runbooks/orders.example.yaml'), 'utf8');
  writeFileSync(
    path.join(dir, 'orders.yaml'),
    example.replace('s3://pg-backups/orders, endpointEnv: S3_ENDPOINT', `file://${dir}/repo`),
  );
  process.env.LIFEBOAT_RUNBOOKS_DIR = dir;
  const f = await failureOf(
    activity(preflight, {
      runbook: 'orders',
      target: { time: '2026-11-21T14:31:59Z' },
      mode: 'side-by-side',
      dryRun: false,
    }),
  );
  expect(f.type).toBe('REPOSITORY_UNREACHABLE');
  expect(f.nonRetryable).toBe(false);
  expect(f.details).toEqual([expect.objectContaining({ operators: ['alice', 'bob', 'carol'] })]);
});
