// Activities only repairFromPointInTime calls (DESIGN.md §4.3). The copy is
// the drill's machinery (restore-base-backup, replay-wal with instance
// 'drill': its own directory and port, loopback, archiving off), through the
// runbook's engine like a drill's (Lifeboat's own repository, or `pgbackrest
// restore` replayed with the restore_command it wrote, twice when the repair
// has an `after` point: src/restore/engine-restore.ts, engine-replay.ts).
// Nothing here reads the engine's backups or WAL: the snapshots read the
// paused copy over SQL, and the artefact goes to the runbook's Lifeboat
// repository (evidence, audit log and plans, for either engine). So these run
// on the drill host's queue, where the copy listens and where the snapshot
// and plan files are (src/repair/run-files.ts); they reach the live primary
// over the network as the runbook's role. checkRepairTables only reads the
// primary's catalog and runs on the `lifeboat` queue.
//
// Each is safe to run twice: snapshots, plans and the manifest are written
// under a temporary name and renamed into place, and a second attempt
// returns what the first recorded; the apply is idempotent by repair id (the
// workflow id) and table through lifeboat_repair_audit (src/repair/apply.ts).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { Context } from '@temporalio/activity';
import { Client } from 'pg';
import type { TeardownResult } from '../src/drill/contract';
import { teardownDrill as teardown } from '../src/drill/instance';
import { LifeboatError } from '../src/errors';
import { primaryClientConfig } from '../src/pg/connect';
import type { CacheResult } from '../src/recovery/contract';
import { applyPlans } from '../src/repair/apply';
import { invalidateRepairedCaches, type RepairedKeys } from '../src/repair/caches';
import { SAFE_CLASSES, classify, type PlanRow, type RepairClass, type SampleRow } from '../src/repair/classify';
import type {
  RepairActivities,
  RepairApplied,
  RepairDiff,
  RepairSnapshot,
  RepairTableCheck,
  RepairTableDiff,
} from '../src/repair/contract';
import { ident, readTableShape } from '../src/repair/keys';
import {
  ensureWorkDir,
  readJsonIfExists,
  removeWorkDir,
  sha256OfFile,
  workDirOf,
  writeByRename,
  writeJsonAtomic,
} from '../src/repair/run-files';
import { copyReadRefused, readRows, readSnapshot, snapshotTable } from '../src/repair/snapshot';
import { repairSqlText } from '../src/repair/sql';
import { openRepository } from '../src/repository';
import { requireOurMarker } from '../src/restore/marker';
import { restoreSite, siteClientConfig } from '../src/restore/site';
import { loadRunbook } from '../src/runbook/load';
import { clusterName, type Runbook } from '../src/runbook/schema';
import { heartbeat, lifeboatActivity } from './failure';

/** The run's manifest (diff.json in its work directory): the diff, and where each table's plan is. */
interface Manifest {
  diff: RepairDiff;
  plans: Array<{ table: string; name: string; keyColumns: string[]; file: string; key: string }>;
}

const SAMPLES_IN_RESULT = 5;
const VALUE_CHARS = 200;

async function withClient<T>(
  config: ConstructorParameters<typeof Client>[0],
  body: (c: Client) => Promise<T>,
): Promise<T> {
  const c = new Client(config);
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await body(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

const primary = (runbook: Runbook) =>
  primaryClientConfig(runbook, { application_name: 'lifeboat-repair', connectionTimeoutMillis: 10_000 });
const repairPrefix = (runbook: Runbook, workflowId: string) =>
  `${clusterName(runbook)}/repair/${workflowId.replace(/[^A-Za-z0-9._-]/g, '_')}/`;

/** Each table exists, has a primary key, and the role may read it (and, unless a dry run, write it). Reads the catalog only. */
export async function checkRepairTables(input: {
  runbook: string;
  tables: string[];
  write?: boolean;
}): Promise<RepairTableCheck[]> {
  return lifeboatActivity(async () => {
    const runbook = await loadRunbook(input.runbook);
    return withClient(primary(runbook), async (c) => {
      const out: RepairTableCheck[] = [];
      for (const table of input.tables) {
        const shape = await readTableShape(c, table);
        const need = input.write === false ? ['SELECT'] : ['SELECT', 'INSERT', 'UPDATE'];
        const { rows } = await c.query<{ p: string; ok: boolean }>(
          'select p, has_table_privilege($1::regclass, p) as ok from unnest($2::text[]) p',
          [shape.qualified, need],
        );
        const missing = rows.filter((r) => !r.ok).map((r) => r.p);
        if (missing.length > 0) {
          throw new LifeboatError(
            'PRIVILEGE_MISSING',
            `role ${runbook.cluster.primary.user} lacks ${missing.join(', ')} on ${shape.qualified}: a repair reads the table on the primary and restores rows with UPDATE and INSERT`,
            {
              hints: [
                `GRANT ${missing.join(', ')} ON ${shape.qualified} TO ${ident(runbook.cluster.primary.user)}; (lifeboat grants --runbook ${runbook.name} prints every grant)`,
                'nothing was touched',
              ],
            },
          );
        }
        out.push({ table: shape.qualified, keyColumns: shape.keyColumns, columns: shape.columns.length });
      }
      return out;
    });
  });
}

/** The rows of each table read from the paused copy, one snapshot file per table. */
export async function snapshotRepairCopy(input: {
  runbook: string;
  workflowId: string;
  tables: string[];
  where?: string;
  label: 'before' | 'after';
}): Promise<RepairSnapshot> {
  return lifeboatActivity(async () => {
    const runbook = await loadRunbook(input.runbook);
    const dir = await ensureWorkDir(runbook, input.workflowId);
    const summaryFile = path.join(dir, `${input.label}.json`);
    const done = await readJsonIfExists<RepairSnapshot>(summaryFile);
    if (done) return done;
    const site = restoreSite(runbook, 'drill');
    await requireOurMarker(site.dataDir, input.workflowId, `snapshot-${input.label}`);
    const result = await withClient(
      siteClientConfig(runbook, site, { application_name: 'lifeboat-repair', connectionTimeoutMillis: 10_000 }),
      async (c) => {
        const at =
          (await c.query<{ lsn: string | null }>('select pg_last_wal_replay_lsn()::text as lsn')).rows[0]?.lsn ??
          undefined;
        const tables: RepairSnapshot['tables'] = [];
        for (const [i, table] of input.tables.entries()) {
          const file = path.join(dir, `${input.label}-${i}.jsonl`);
          const r = await writeByRename(file, (tmp) =>
            snapshotTable(c, {
              table,
              file: tmp,
              ...(input.where ? { where: input.where } : {}),
              onProgress: (rows) => heartbeat({ step: `snapshot-${input.label}`, table, rows }),
            }),
          );
          tables.push({ table: r.shape.qualified, rows: r.rows });
        }
        return { label: input.label, tables, ...(at ? { at } : {}) };
      },
    ).catch((err: unknown) => {
      throw copyReadRefused(err, runbook.name, input.tables);
    });
    await writeJsonAtomic(summaryFile, result);
    return result;
  });
}

function trimSample(s: SampleRow): SampleRow {
  const cut = (r: SampleRow['before']) =>
    r
      ? Object.fromEntries(
          Object.entries(r).map(([k, v]) => [k, v && v.length > VALUE_CHARS ? `${v.slice(0, VALUE_CHARS)}…` : v]),
        )
      : r;
  return { key: s.key, before: cut(s.before), after: cut(s.after), now: cut(s.now) };
}

/** Snapshots merged with the live primary: plans, counts, samples and the SQL, stored in the repository. */
export async function diffRepair(input: {
  runbook: string;
  workflowId: string;
  runId: string;
  tables: string[];
  where?: string;
  withAfter: boolean;
}): Promise<RepairDiff> {
  return lifeboatActivity(async () => {
    const runbook = await loadRunbook(input.runbook);
    const dir = await ensureWorkDir(runbook, input.workflowId);
    const manifestFile = path.join(dir, 'diff.json');
    const done = await readJsonIfExists<Manifest>(manifestFile);
    if (done) return done.diff;
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    const prefix = repairPrefix(runbook, input.workflowId);
    const full: Array<RepairTableDiff & { samplesAll: Partial<Record<RepairClass, SampleRow[]>> }> = [];
    const plans: Manifest['plans'] = [];
    await withClient(primary(runbook), async (c) => {
      const schema = (await c.query<{ s: string | null }>('select current_schema() as s')).rows[0]?.s ?? 'public';
      for (const [i, table] of input.tables.entries()) {
        const file = path.join(dir, `plan-${i}.jsonl`);
        const before = await readSnapshot(path.join(dir, `before-${i}.jsonl`));
        const after = input.withAfter
          ? await readSnapshot(path.join(dir, `after-${i}.jsonl`)).catch(async (err: unknown) => {
              await before.close();
              throw err;
            })
          : undefined;
        // The snapshots' readers are closed by classify, or here when the primary refuses the read.
        const now = await readRows(c, table, input.where ? { where: input.where } : {}).catch(async (err: unknown) => {
          await Promise.all([before.close(), after?.close()]);
          throw err;
        });
        const r = await writeByRename(file, (tmp) =>
          classify({
            before,
            ...(after ? { after } : {}),
            now,
            planFile: tmp,
            sampleSize: 20,
            onProgress: (keys) => heartbeat({ step: 'diff', table, keys }),
          }),
        );
        const classes: RepairClass[] = input.withAfter ? [...SAFE_CLASSES] : ['candidate'];
        const sql = repairSqlText(r.shape, {
          classes,
          auditTable: `${ident(schema)}.lifeboat_repair_audit`,
          planFile: `${prefix}plan-${i}.jsonl`,
        });
        const samplesAll = Object.fromEntries(Object.entries(r.samples).filter(([, v]) => v.length > 0)) as Partial<
          Record<RepairClass, SampleRow[]>
        >;
        const samples = Object.fromEntries(
          Object.entries(samplesAll).map(([k, v]) => [k, v.slice(0, SAMPLES_IN_RESULT).map(trimSample)]),
        );
        full.push({
          table: r.table,
          keyColumns: r.keyColumns,
          counts: r.counts,
          planned: r.planned,
          samples,
          sql,
          samplesAll,
        });
        plans.push({
          table: r.table,
          name: before.shape.name,
          keyColumns: r.keyColumns,
          file,
          key: `${prefix}plan-${i}.jsonl`,
        });
      }
    });
    // The artefact: every sample and the SQL (diff.json), and each plan, beside the evidence. Overwritten by a
    // second attempt (one that crashed before its manifest): what is stored is what the approvers are shown.
    for (const p of plans) {
      await repo.put(p.key, createReadStream(p.file), {
        sha256: await sha256OfFile(p.file),
        contentType: 'application/x-ndjson',
      });
    }
    const artefact = Buffer.from(
      `${JSON.stringify({ workflowId: input.workflowId, runId: input.runId, withAfter: input.withAfter, where: input.where ?? null, tables: full.map(({ samplesAll, ...t }) => ({ ...t, samples: samplesAll })) }, null, 2)}\n`,
    );
    await repo.put(`${prefix}diff.json`, artefact, {
      sha256: createHash('sha256').update(artefact).digest('hex'),
      contentType: 'application/json',
    });
    const diff: RepairDiff = {
      withAfter: input.withAfter,
      tables: full.map(({ samplesAll: _, ...t }) => t),
      artefact: `${repo.url}/${prefix}diff.json`,
      diffedAt: new Date().toISOString(),
    };
    await writeJsonAtomic(manifestFile, { diff, plans } satisfies Manifest);
    return diff;
  });
}

/** The manifest, fetched back from the repository (with the plans) when this host lost its work directory. */
async function manifestOf(runbook: Runbook, workflowId: string): Promise<Manifest> {
  const dir = workDirOf(runbook, workflowId);
  const local = await readJsonIfExists<Manifest>(path.join(dir, 'diff.json'));
  if (local) return local;
  throw new LifeboatError(
    'INPUT_INVALID',
    `the repair's plans are not on this host: ${path.join(dir, 'diff.json')} is absent`,
    {
      hints: [
        'the diff step writes them on the drill host; run the repair again (a new diff) if that host lost its work directory',
        'the artefact in the repository (repair/<workflowId>/) shows what was planned',
      ],
    },
  );
}

async function* planKeys(file: string, classes: readonly RepairClass[]): AsyncGenerator<string[]> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let first = true;
  for await (const line of lines) {
    if (first || line === '') {
      first = false;
      continue;
    }
    const row = JSON.parse(line) as PlanRow;
    if (classes.includes(row.class)) yield row.key;
  }
}

/**
 * The approved classes of every plan applied on the primary in ONE
 * transaction (src/repair/apply.ts applyPlans: parents first, all tables or
 * none), once per repair id: a retry after a commit it did not hear about
 * finds every table's audit row and reports each "already applied".
 */
export async function applyRepair(input: {
  runbook: string;
  workflowId: string;
  classes: RepairClass[];
  approvedBy: string[];
}): Promise<RepairApplied[]> {
  return lifeboatActivity(async () => {
    const runbook = await loadRunbook(input.runbook);
    const manifest = await manifestOf(runbook, input.workflowId);
    return withClient(primary(runbook), async (c) => {
      const applied = await applyPlans(c, {
        repairId: input.workflowId,
        planFiles: manifest.plans.map((p) => p.file),
        classes: input.classes,
        approvedBy: input.approvedBy,
        skippedKeysLimit: 20,
        onProgress: (table, rows) => heartbeat({ step: 'apply-repair', table, rowsLoaded: rows }),
      });
      return applied.map((r) => ({
        table: r.table,
        alreadyApplied: r.alreadyApplied,
        updated: r.updated,
        inserted: r.inserted,
        skipped: r.skipped,
        skippedKeys: r.skippedKeys,
        sequencesAdvanced: r.sequencesAdvanced,
        auditTable: r.auditTable,
        transactionMs: r.transactionMs,
        lockedMs: r.lockedMs,
      }));
    });
  });
}

/** The runbook's caches invalidated for the keys of the approved classes (src/repair/caches.ts). */
export async function invalidateRepairCaches(input: {
  runbook: string;
  workflowId: string;
  classes: RepairClass[];
}): Promise<CacheResult[]> {
  const ctx = Context.current();
  return lifeboatActivity(async () => {
    const runbook = await loadRunbook(input.runbook);
    const manifest = await manifestOf(runbook, input.workflowId);
    const tables: RepairedKeys[] = manifest.plans.map((p) => ({
      name: p.name,
      keyColumns: p.keyColumns,
      keys: () => planKeys(p.file, input.classes),
    }));
    return invalidateRepairedCaches(runbook, tables, {
      signal: ctx.cancellationSignal,
      onProgress: (deleted) => heartbeat({ step: 'invalidate-caches', deleted }),
    });
  });
}

/** The copy stopped and removed when its marker names this run (src/drill/instance.ts), then the run's work directory. */
export async function teardownRepairCopy(input: {
  runbook: string;
  workflowId: string;
}): Promise<TeardownResult & { workDirRemoved?: string }> {
  return lifeboatActivity(async () => {
    const runbook = await loadRunbook(input.runbook);
    const t = await teardown(runbook, input);
    const workDirRemoved = await removeWorkDir(runbook, input.workflowId);
    return { ...t, ...(workDirRemoved ? { workDirRemoved } : {}) };
  });
}

// What repairFromPointInTime proxies must be what the worker registers.
const repairActivities: RepairActivities = {
  checkRepairTables,
  snapshotRepairCopy,
  diffRepair,
  applyRepair,
  invalidateRepairCaches,
  teardownRepairCopy,
};
void repairActivities;
