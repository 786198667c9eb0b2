// The cluster a fault test recovers: a PostgreSQL 15 primary archiving into an
// s3:// repository through `lifeboat archive-push`, with an application schema
// of the test's own (not the demo's orders) and a runbook written for it:
// approvals by alice, an invariant on the test's table, no gates or traffic
// (the faults under test are in the store and in Temporal, not in the fence).
// Plus what every fault test checks: a fingerprint of every row, and a poll of
// a recovery's steps that fails at once on a failed step.
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { Client } from 'pg';
import type { RecoveryStatus } from '../../src/recovery/contract';
import { statusQuery } from '../../src/recovery/messages';
import type { Cleanups } from './cleanups';
import { postgresTempDir, PG_BIN, startPrimary, type Primary } from './postgres';
import { freePort } from './ports';

export interface FaultCluster {
  name: string;
  host: string;
  repoUrl: string;
  pg: Primary;
  runbookFile: string;
  runbooksDir: string;
  stateDir: string;
}

export async function startFaultCluster(opts: {
  name: string;
  host: string;
  /** s3://bucket/prefix */
  repoUrl: string;
  /** The variables the primary's archive-push needs to reach the store (AWS_*, S3_ENDPOINT). */
  storeEnv: Record<string, string>;
  /** Invariants of the test's schema. */
  invariants: Array<{ name: string; sql: string; expect: number }>;
  conf?: string[];
  cleanups: Cleanups;
}): Promise<FaultCluster> {
  const { name, host, repoUrl, cleanups } = opts;
  const runbooksDir = postgresTempDir('faults-runbooks');
  cleanups.push(() => rmSync(runbooksDir, { recursive: true, force: true }));
  const stateDir = postgresTempDir('faults-state');
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const pg = await startPrimary({
    archive: { repo: repoUrl, cluster: name, env: opts.storeEnv },
    conf: opts.conf ?? [],
  });
  cleanups.push(() => pg.stop());
  const runbookFile = path.join(runbooksDir, `${name}.yaml`);
  writeFileSync(
    runbookFile,
    `# A fault test's runbook (test/harness/faults-cluster.ts).
name: ${name}
cluster:
  primary: { host: 127.0.0.1, port: ${pg.port}, database: postgres, user: postgres }
  pgBin: ${PG_BIN}
  osUser: postgres
repository: { url: "${repoUrl}", endpointEnv: S3_ENDPOINT }
restore: { host: ${host}, dataDir: ${stateDir}/recovery, port: ${await freePort()}, mode: side-by-side }
backup: { host: ${host}, retainFull: 3, scratchDir: ${stateDir}/scratch }
invariants:
${opts.invariants.map((i) => `  - { name: ${JSON.stringify(i.name)}, sql: ${JSON.stringify(i.sql)}, expect: ${i.expect} }`).join('\n')}
approvals:
  approve-fence: { approvers: [alice] }
  approve-promote: { approvers: [alice] }
  approve-resume: { approvers: [alice] }
objectives: { rpoSeconds: 300, rtoSeconds: 2700 }
`,
  );
  return { name, host, repoUrl, pg, runbookFile, runbooksDir, stateDir };
}

export interface Fingerprint {
  rows: number;
  md5: string;
}

/** md5 over every row of `table` in key order, and the row count: equal fingerprints mean the same rows, not only as many. */
export async function fingerprint(
  connection: { host: string; port: number; user: string; database: string },
  table: string,
  key = 'id',
): Promise<Fingerprint> {
  const client = new Client(connection);
  await client.connect();
  try {
    const { rows } = await client.query<{ rows: string; md5: string | null }>(
      `select count(*) as rows, md5(coalesce(string_agg(t::text, E'\\n' order by t.${key}), '')) as md5 from ${table} t`,
    );
    return { rows: Number(rows[0]!.rows), md5: rows[0]!.md5 ?? '' };
  } finally {
    await client.end();
  }
}

/** Runs one query against a server and returns its rows. */
export async function queryAt<T extends Record<string, unknown>>(
  connection: { host: string; port: number; user: string; database: string },
  sql: string,
): Promise<T[]> {
  const client = new Client(connection);
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Polls the run's status until `step` is in `state`. A failed step ends the
 * wait at once with its error; a status that cannot be read (Temporal down,
 * no worker yet) is polled again until the timeout.
 */
export async function waitForStep(
  wf: WorkflowHandle,
  step: string,
  state: string,
  timeoutMs = 300_000,
): Promise<RecoveryStatus> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    let s: RecoveryStatus | undefined;
    try {
      s = await wf.query(statusQuery);
    } catch (err) {
      lastError = err;
    }
    // Waiting for a step to be 'failed' is allowed; any other step failing ends the wait.
    if (s?.steps.find((x) => x.id === step)?.state === state) return s;
    const failed = s?.steps.find((x) => x.state === 'failed' && x.id !== step);
    if (failed)
      throw new Error(
        `${failed.id} failed while waiting for ${step} to be ${state}: ${failed.error?.type} ${failed.error?.message}\n${failed.error?.hints.join('\n')}`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${step} to be ${state}${lastError ? `: ${String(lastError)}` : ''}`,
  );
}

export interface WriteLoad {
  /** Transactions committed so far. */
  committed(): number;
  /**
   * Holds every writer before its next transaction and resolves once all of
   * them wait there: from then until releaseWriters() nothing commits, so a
   * fingerprint and an LSN read meanwhile describe the same moment.
   */
  holdWriters(): Promise<void>;
  releaseWriters(): void;
  /** Stops the writers; throws what a writer failed with, if one did. */
  stop(): Promise<void>;
}

/**
 * `writers` sessions each committing `statement` in a loop, `pauseMs` apart
 * (the pause only bounds how fast pg_wal grows while archiving is down).
 */
export function startWriteLoad(
  connection: { host: string; port: number; user: string; database: string },
  statement: (writer: number) => string,
  { writers = 2, pauseMs = 30 } = {},
): WriteLoad {
  let stopped = false;
  let committed = 0;
  let hold: { until: Promise<void>; release: () => void } | undefined;
  const waiting = new Set<number>();
  const failures: unknown[] = [];
  const loops = Array.from({ length: writers }, async (_, w) => {
    const client = new Client(connection);
    await client.connect();
    try {
      while (!stopped) {
        const h = hold;
        if (h) {
          waiting.add(w);
          await h.until;
          waiting.delete(w);
          continue;
        }
        await client.query(statement(w));
        committed++;
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    } finally {
      await client.end();
    }
  }).map((p) => p.catch((err: unknown) => void failures.push(err)));
  const releaseWriters = () => {
    const h = hold;
    hold = undefined;
    h?.release();
  };
  return {
    committed: () => committed,
    async holdWriters() {
      let release!: () => void;
      const until = new Promise<void>((r) => (release = r));
      hold = { until, release };
      while (waiting.size + failures.length < writers) await new Promise((r) => setTimeout(r, 10));
      if (failures.length > 0) throw failures[0];
    },
    releaseWriters,
    async stop() {
      stopped = true;
      releaseWriters();
      await Promise.all(loops);
      if (failures.length > 0) throw failures[0];
    },
  };
}
