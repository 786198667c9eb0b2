// The runbook schema (shared/DESIGN.md §5): one zod schema, parsed at the
// edge, so a typo fails fast with the path of the bad field. Secrets never
// appear here: runbooks name environment variables (`*Env`) that workers read.
//
// This file composes the runbook from its blocks, one file each: cluster.ts,
// repository.ts (repository:, repositories:), instances.ts (restore:, drill:,
// standby:), backup.ts (backup:, retention:), gates.ts, checks.ts (capture:,
// invariants:, objectives:), endpoints.ts (caches:, traffic:), approvals.ts
// (approvals:, skippable:), engine.ts; fields.ts holds the field schemas they
// share. Every block's schema is re-exported here, where callers import it.
//
// This module is imported by workflow code too (zod works in the sandbox):
// keep it and its blocks free of Node builtins (eslint.config.mjs
// WORKFLOW_BUNDLED_SOURCES).
import { z } from 'zod';
import { Approvals, DEFAULT_SKIPPABLE, SKIPPABLE_STEP_IDS } from './approvals';
import { Backup, Retention } from './backup';
import { Invariant, namedSql, Objectives } from './checks';
import { Cluster } from './cluster';
import { Engine } from './engine';
import { Cache, Traffic } from './endpoints';
import { envName, identifier } from './fields';
import { Gates } from './gates';
import { Drill, drillApart, Restore, Standby, standbyApart } from './instances';
import { Repository, repositoriesOneWay, repositoryEntries, s3OnlySettings } from './repository';

export { ApprovalPolicy, APPROVAL_STEPS, Approvals, DEFAULT_SKIPPABLE, SKIPPABLE_STEP_IDS } from './approvals';
export { Backup, Retention } from './backup';
export { Invariant, Objectives } from './checks';
export { Cluster, Primary } from './cluster';
export { Cache, Traffic } from './endpoints';
export { identifier, parseDurationSeconds } from './fields';
export { Gates } from './gates';
export { Drill, Restore, RestoreMode, Standby } from './instances';
export { Encryption, ObjectLock, Repository, ServerSide, type RepositoryEntry } from './repository';

export const Runbook = z
  .strictObject({
    name: identifier('a runbook name'),
    cluster: Cluster,
    /** One repository; or `repositories:` (a list), never both. */
    repository: Repository.optional(),
    /** Several repositories, tried in this order by recoveries and drills; the first is the primary one. */
    repositories: z
      .array(Repository, { error: 'expected a list of repositories ({ name, url, ... })' })
      .min(1, { error: 'expected a list of at least one repository' })
      .optional(),
    /**
     * When archive-push succeeds with several repositories: `all` (every
     * repository has the segment) or `primary` (the first has it; the others
     * get it later from the catch-up queue, src/wal/catchup.ts).
     */
    repositoryPolicy: z.enum(['all', 'primary'], { error: 'expected "all" or "primary"' }).default('all'),
    restore: Restore,
    backup: Backup.default({}),
    retention: Retention.optional(),
    gates: Gates.optional(),
    capture: z.array(namedSql, { error: 'expected a list of { name, sql }' }).default([]),
    invariants: z.array(Invariant, { error: 'expected a list of { name, sql, expect }' }).default([]),
    caches: z
      .array(Cache, { error: 'expected a list of caches ({ redis: ... }, { http: ... } or { command: ... })' })
      .default([]),
    traffic: Traffic.optional(),
    approvals: Approvals.default({}),
    /** Extension: step ids an operator may skip after a failure (DESIGN.md §4.1). */
    skippable: z
      .array(
        z.enum(SKIPPABLE_STEP_IDS, {
          error: `expected a step id that can be skipped: ${SKIPPABLE_STEP_IDS.join(', ')}`,
        }),
        { error: 'expected a list of step ids' },
      )
      .default([...DEFAULT_SKIPPABLE]),
    objectives: Objectives,
    drill: Drill.optional(),
    notify: z
      .strictObject(
        {
          webhookUrlEnv: envName.optional(),
          /** Extension: approval messages with Approve / Reject buttons, posted to a Slack channel's incoming webhook (README "Chat-ops"). */
          slack: z
            .strictObject(
              { webhookUrlEnv: envName },
              {
                error:
                  "expected a mapping with webhookUrlEnv (the variable holding the channel's incoming-webhook URL)",
              },
            )
            .optional(),
        },
        { error: 'expected a mapping with webhookUrlEnv and/or slack: { webhookUrlEnv }' },
      )
      .refine((n) => n.webhookUrlEnv !== undefined || n.slack !== undefined, {
        error: 'expected webhookUrlEnv, slack: { webhookUrlEnv }, or both',
      })
      .optional(),
    standby: Standby.optional(),
    /** Extension: the backup engine (src/runbook/engine.ts); left out, Lifeboat's own repository. */
    engine: Engine.optional(),
  })
  .superRefine((rb, ctx) => repositoriesOneWay(rb, ctx))
  .superRefine((rb, ctx) => s3OnlySettings(rb, ctx))
  .superRefine((rb, ctx) => standbyApart(rb, ctx))
  .superRefine((rb, ctx) => {
    if (rb.retention && rb.backup.retainFull !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['backup', 'retainFull'],
        message:
          'expected either retention or backup.retainFull, not both (retention: tiers replace backup.retainFull; remove it)',
      });
    }
  })
  .superRefine((rb, ctx) => drillApart(rb, ctx))
  // Existing code reads `runbook.repository`: it is the first of the list.
  .transform((rb) => {
    const repositories = repositoryEntries(rb);
    return { ...rb, repository: repositories[0]!, repositories };
  });

export type Runbook = z.output<typeof Runbook>;
export type RunbookInput = z.input<typeof Runbook>;

/** The cluster's name in the repository. */
export function clusterName(rb: Runbook): string {
  return rb.cluster.name ?? rb.name;
}

/** The host whose worker takes base backups. */
export function backupHost(rb: Runbook): string {
  return rb.backup.host ?? rb.restore.host;
}

export function hostQueue(host: string): string {
  return `lifeboat-host-${host}`;
}

export const TASK_QUEUE = 'lifeboat';
