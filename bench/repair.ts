// `npm run bench:repair`: a repair without failover (src/repair) of a large
// table with a few damaged rows, on this machine: how long the diff takes
// (snapshots B and A, then the classify that reads the live table N), how
// long the apply takes, what it locks on the live table and for how long,
// and the bench process's peak RSS (the engine streams: it must not grow
// with the table). Written into the "Repair" section of BENCHMARKS.md
// (between the repair-bench markers; the prose around them is kept).
//
// The data: a PostgreSQL 15 primary (src/dev/repair-db.ts: the role has
// exactly CONNECT and `lifeboat grants --repair-tables`), a table of
// BENCH_ROWS orders (default 5,000,000). B and A are snapshots of the primary
// itself taken at the moments a copy restored to the before and after
// targets would stand for (as the engine tests do): the restore and replay
// of such a copy are the recovery bench's subject, not this one's.
// The incident: one UPDATE cancels the pending orders (0.6% of the rows:
// 30,000 at 5M). Since then: a tenth of them edited again (3,000: conflicts),
// other rows updated, new orders inserted.
// While the apply runs, a second session updates one unrelated row of the
// same table every 10 ms (each UPDATE's wait is what the application
// sees), and a third updates a row the repair restores as soon as the apply
// has locked it (it waits for the commit).
//   BENCH_ROWS  rows of the table (default 5000000)
//   BENCH_DRY   1: print, leave BENCHMARKS.md alone
import { readFileSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { applyPlan, type ApplyResult } from '../src/repair/apply';
import { classify } from '../src/repair/classify';
import { readRows, readSnapshot, snapshotTable } from '../src/repair/snapshot';
import { setTimeout as sleep } from 'node:timers/promises';
import { repairGrants, startRepairDb } from '../src/dev/repair-db';
import { MiB, row, secondsSince, writeBenchSection } from './common';

const ROWS = Math.max(10_000, Number(process.env.BENCH_ROWS ?? 5_000_000));
/** Orders the bad UPDATE damages: 0.6% (30,000 of 5,000,000), every STRIDE-th up to DAMAGED * STRIDE. */
const DAMAGED = Math.round(ROWS * 0.006);
const STRIDE = Math.floor(ROWS / DAMAGED);
/** Every 10th damaged order is edited again since: a conflict. */
const CHANGED = Math.floor(DAMAGED / 10);
const OTHER_UPDATES = Math.floor(DAMAGED / 3);
const INSERTED = Math.floor(DAMAGED / 30);

const out: string[] = [];
const log = (line = '') => {
  out.push(line);
  process.stdout.write(`${line}\n`);
};
const progress = (line: string) =>
  process.stderr.write(`[repair bench] ${new Date().toISOString().slice(11, 19)} ${line}\n`);
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const rssMiB = () => process.memoryUsage().rss / MiB;
/** Peak RSS of this process so far (getrusage ru_maxrss, KiB on Linux). */
const peakMiB = () => process.resourceUsage().maxRSS / 1024;
const ms = (x: number) => `${x.toFixed(0)} ms`;

interface WriterStats {
  updates: number;
  maxMs: number;
  medianMs: number;
}

/** Updates one row every 10 ms until `done`; the wait of each UPDATE is what an application writer sees. */
async function hammer(c: Client, table: string, id: number, done: () => boolean): Promise<WriterStats> {
  const waits: number[] = [];
  while (!done()) {
    const t = process.hrtime.bigint();
    await c.query(`update ${table} set note = note where id = $1`, [id]);
    waits.push(secondsSince(t) * 1000);
    await sleep(10);
  }
  waits.sort((a, b) => a - b);
  return { updates: waits.length, maxMs: waits.at(-1) ?? 0, medianMs: waits[Math.floor(waits.length / 2)] ?? 0 };
}

async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  const loadStart = loadavg();
  progress(`${ROWS} rows, ${DAMAGED} damaged, ${CHANGED} changed since`);
  const db = await startRepairDb();
  const { admin, dir } = db;
  const table = 'bench.orders';
  try {
    let t = process.hrtime.bigint();
    await admin.query(`create schema bench;
      create table ${table} (id bigserial primary key, customer text not null, status text not null,
        amount numeric(10,2) not null, note text, placed_at timestamptz not null);
      insert into ${table} (customer, status, amount, note, placed_at)
        select 'customer ' || (g % 9973), case when g % ${STRIDE} = 0 and g <= ${DAMAGED * STRIDE} then 'pending' else (array['paid','shipped','delivered'])[g % 3 + 1] end,
               (g % 100000) / 100.0, case when g % 7 = 0 then null else 'note ' || g end,
               timestamptz '2026-01-01 00:00+00' + g * interval '1 second'
          from generate_series(1, ${ROWS}) g`);
    await admin.query(`vacuum analyze ${table}`);
    await admin.query(repairGrants([table]));
    const tableBytes = Number(
      (await admin.query<{ n: string }>(`select pg_total_relation_size('${table}')::text as n`)).rows[0]!.n,
    );
    const setupS = secondsSince(t);
    progress(`table made in ${setupS.toFixed(1)} s (${(tableBytes / MiB).toFixed(0)} MiB with its index)`);

    const c = await db.asRole('lifeboat-repair-bench');
    const rss: Record<string, number> = { start: rssMiB() };
    t = process.hrtime.bigint();
    const b = await snapshotTable(c, { table, file: path.join(dir, 'B.jsonl') });
    const snapB = secondsSince(t);
    rss.afterB = rssMiB();
    progress(`snapshot B ${snapB.toFixed(1)} s`);

    await admin.query(`update ${table} set status = 'canceled' where status = 'pending'`);
    t = process.hrtime.bigint();
    const a = await snapshotTable(c, { table, file: path.join(dir, 'A.jsonl') });
    const snapA = secondsSince(t);
    rss.afterA = rssMiB();
    progress(`snapshot A ${snapA.toFixed(1)} s`);

    // Since the incident: conflicts, other rows, new orders (one transaction each).
    await admin.query(
      `update ${table} set note = 'customer called back' where id % ${STRIDE * 10} = 0 and id <= ${DAMAGED * STRIDE}`,
    );
    await admin.query(
      `update ${table} set amount = amount + 1 where id % ${STRIDE} = 1 and id <= ${OTHER_UPDATES * STRIDE}`,
    );
    await admin.query(
      `insert into ${table} (customer, status, amount, placed_at) select 'new ' || g, 'paid', 1, now() from generate_series(1, ${INSERTED}) g`,
    );
    await admin.query(`vacuum analyze ${table}`);

    t = process.hrtime.bigint();
    const result = await classify({
      before: await readSnapshot(b.file),
      after: await readSnapshot(a.file),
      now: await readRows(c, table),
      planFile: path.join(dir, 'plan.jsonl'),
    });
    const classifyS = secondsSince(t);
    rss.afterClassify = rssMiB();
    progress(`classify ${classifyS.toFixed(1)} s: ${JSON.stringify(result.counts)}`);
    if (
      result.counts.damaged !== DAMAGED - CHANGED ||
      result.counts.changedSince !== CHANGED ||
      result.counts.insertedSince !== INSERTED
    ) {
      throw new Error(
        `unexpected classes: ${JSON.stringify(result.counts)} (expected ${DAMAGED - CHANGED} damaged, ${CHANGED} changed since, ${INSERTED} inserted since)`,
      );
    }

    // The apply, with a writer of an unrelated row throughout and a writer of a restored row.
    const unrelated = new Client({ ...db.pg.connection, database: 'shop', application_name: 'bench-unrelated-writer' });
    const restoredWriter = new Client({
      ...db.pg.connection,
      database: 'shop',
      application_name: 'bench-restored-writer',
    });
    const watcher = new Client({ ...db.pg.connection, database: 'shop' });
    await Promise.all([unrelated.connect(), restoredWriter.connect(), watcher.connect()]);
    const victim = STRIDE * 2 + 0; // damaged, not a conflict (every 10th is)
    let applying = true;
    const unrelatedStats = hammer(unrelated, table, 2, () => !applying);
    const lockModes = new Set<string>();
    const restoredWait = (async () => {
      // Once the apply's restoring UPDATE has locked the victim row (the
      // committed version we see has the apply's transaction as its xmax),
      // update that row: the wait is what its writer sees.
      for (;;) {
        if (!applying) return undefined;
        const { rows } = await watcher.query<{ mode: string; locked: boolean }>(
          `select l.mode, (select o.xmax::text = a.backend_xid::text from ${table} o where o.id = $1) as locked
             from pg_stat_activity a join pg_locks l on l.pid = a.pid
            where a.application_name = 'lifeboat-repair-apply' and a.query like 'with u as (%' and a.state = 'active'
              and l.relation = '${table}'::regclass`,
          [victim],
        );
        for (const r of rows) lockModes.add(r.mode);
        if (rows.some((r) => r.locked)) {
          const w = process.hrtime.bigint();
          await restoredWriter.query(`update ${table} set note = note where id = $1`, [victim]);
          return secondsSince(w) * 1000;
        }
        await sleep(5);
      }
    })();
    const applier = await db.asRole('lifeboat-repair-apply');
    t = process.hrtime.bigint();
    let res: ApplyResult;
    try {
      res = await applyPlan(applier, { repairId: 'bench', planFile: result.planFile, approvedBy: ['bench'] });
    } finally {
      applying = false;
    }
    const applyS = secondsSince(t);
    const [unrel, restoredMs] = await Promise.all([unrelatedStats, restoredWait]);
    await Promise.all([unrelated.end(), restoredWriter.end(), watcher.end()]);
    rss.afterApply = rssMiB();
    progress(`apply ${applyS.toFixed(1)} s: ${res.updated} restored, ${res.skipped} skipped`);

    const check = await admin.query<{ pending: string; conflicts: string }>(
      `select count(*) filter (where status = 'pending')::text as pending,
              count(*) filter (where status = 'canceled' and note = 'customer called back')::text as conflicts from ${table}`,
    );
    const ok =
      check.rows[0]!.pending === String(DAMAGED - CHANGED) &&
      check.rows[0]!.conflicts === String(CHANGED) &&
      res.updated === DAMAGED - CHANGED;
    if (!ok)
      throw new Error(`the repair restored the wrong rows: ${JSON.stringify(check.rows[0])}, ${JSON.stringify(res)}`);
    const fileMiB = (f: string) => statSync(f).size / MiB;

    log(
      `Measured ${new Date().toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, PostgreSQL 15 on 127.0.0.1; load average at start ${loadStart}.`,
    );
    log(
      `Table: ${ROWS.toLocaleString('en')} orders, ${(tableBytes / MiB).toFixed(0)} MiB with its primary key index (made in ${setupS.toFixed(0)} s, untimed). ` +
        `Incident: one UPDATE canceled ${DAMAGED.toLocaleString('en')} pending orders; since then ${CHANGED.toLocaleString('en')} of them edited again (conflicts), ` +
        `${OTHER_UPDATES.toLocaleString('en')} other orders updated, ${INSERTED.toLocaleString('en')} inserted. B and A: snapshots of the primary at those moments (no restored copy: see above).`,
    );
    log('');
    log('| phase | s | what |');
    log('|---|---|---|');
    log(
      row([
        'snapshot B',
        snapB,
        `${b.rows.toLocaleString('en')} rows to a ${fileMiB(b.file).toFixed(0)} MiB file, one REPEATABLE READ cursor`,
      ]),
    );
    log(row(['snapshot A', snapA, `${fileMiB(a.file).toFixed(0)} MiB`]));
    log(
      row([
        'classify (reads N live, merges B, A, N)',
        classifyS,
        `${Object.entries(result.counts)
          .filter(([, n]) => n > 0)
          .map(([k, n]) => `${k} ${n.toLocaleString('en')}`)
          .join(', ')}; plan ${fileMiB(result.planFile).toFixed(1)} MiB`,
      ]),
    );
    log(
      row([
        '**diff total** (B + A + classify)',
        snapB + snapA + classifyS,
        'on a restored copy, B and A are read from the copy instead',
      ]),
    );
    log(
      row([
        'apply (one transaction)',
        applyS,
        `${res.updated.toLocaleString('en')} rows restored, ${res.skipped} skipped; staging ${((res.transactionMs - res.lockedMs) / 1000).toFixed(1)} s, restoring to commit ${(res.lockedMs / 1000).toFixed(1)} s`,
      ]),
    );
    log('');
    log(
      `Locks on the live table during the apply: ${[...lockModes].sort().join(', ') || '(not seen)'} on ${table} (no table lock that blocks writers); ` +
        `restored rows locked from the first restoring statement to commit: ${ms(res.lockedMs)} (apply's lockedMs). ` +
        `A writer of a restored row (id ${victim}), started once the apply had locked it, waited ${restoredMs === undefined ? '(not seen locked: the apply ended first)' : ms(restoredMs)} (until the commit). ` +
        `A writer of an unrelated row of the same table, updating it ${unrel.updates.toLocaleString('en')} times during the apply: median ${unrel.medianMs.toFixed(1)} ms, max ${unrel.maxMs.toFixed(1)} ms per UPDATE.`,
    );
    log(
      `Memory of the bench process (the engine runs in it): RSS ${rss.start!.toFixed(0)} MiB before the snapshots, ${rss.afterB!.toFixed(0)} after B, ${rss.afterA!.toFixed(0)} after A, ` +
        `${rss.afterClassify!.toFixed(0)} after classify, ${rss.afterApply!.toFixed(0)} after apply; peak ${peakMiB().toFixed(0)} MiB (ru_maxrss) for a table of ${(tableBytes / MiB).toFixed(0)} MiB.`,
    );
    log(`Whole bench ${(secondsSince(started) / 60).toFixed(1)} min. Load average at the end: ${loadavg()}.`);
    if (ROWS !== 5_000_000 && process.env.BENCH_DRY !== '1')
      progress(
        `BENCH_ROWS=${ROWS}: not the documented size; writing anyway (BENCH_DRY=1 to leave BENCHMARKS.md alone)`,
      );
    writeBenchSection('repair-bench', 'Repair', out.join('\n'));
  } finally {
    await db.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
