// `lifeboat grants` and `lifeboat doctor` as an operator runs them (the built
// binary; npm run build first) on a cluster of its own (test/harness/
// bank-primary.ts): grants prints exactly grantsSql() and nothing else on
// stdout, psql takes it as it is, and doctor, connected as the role, says
// what is missing with the fix, per backup too, with the exit code to match.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { grantsSql } from '../../src/privileges/grants';
import { needsOf } from '../../src/privileges/needs';
import type { Runbook } from '../../src/runbook/schema';
import { ROLE, asSuperuserOn, startBank, stopBank } from '../harness/bank-primary';
import { cliRunner } from '../harness/cli';
import { PG_BIN, postgresTempDir, type Primary } from '../harness/postgres';

const runbooksDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-privileges-cli-'));
const repoDir = postgresTempDir('privileges-cli-repo');
const lifeboat = cliRunner(() => ({ ...process.env, LIFEBOAT_RUNBOOKS_DIR: runbooksDir }));
let pg: Primary;
let runbook: Runbook;

const asSuperuser = (sql: string, database?: string) => asSuperuserOn(pg, sql, database);

beforeAll(async () => {
  ({ pg, runbook } = await startBank({ runbooksDir, repoDir }));
});

afterAll(() => stopBank(pg, { runbooksDir, repoDir }));

describe('lifeboat grants and lifeboat doctor', () => {
  it('grants prints exactly the SQL on stdout, how to run it on stderr, and psql runs it as printed', async () => {
    const r = await lifeboat('grants', '--runbook', 'bank');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(grantsSql(runbook));
    expect(r.stderr).toBe(
      [
        `lifeboat grants: SQL for role ${ROLE} in database bank; run it as a superuser connected to that database:`,
        `  lifeboat grants --runbook bank | psql -h 127.0.0.1 -p ${pg.port} -U postgres -d bank -v ON_ERROR_STOP=1 -f -`,
        'then check it as the role (lifeboat doctor --runbook bank) and take a new base backup (lifeboat backup --runbook bank):',
        'a restored copy has the grants of its backup, not those made since.',
        '',
      ].join('\n'),
    );
    const psql = spawnSync(
      `${PG_BIN}/psql`,
      [
        '-X',
        '-q',
        '-h',
        '127.0.0.1',
        '-p',
        String(pg.port),
        '-U',
        'postgres',
        '-d',
        'bank',
        '-v',
        'ON_ERROR_STOP=1',
        '-f',
        '-',
      ],
      {
        input: r.stdout,
        encoding: 'utf8',
      },
    );
    expect(psql.stderr).not.toMatch(/ERROR/);
    expect(psql.status).toBe(0);
  });

  it('grants --repair-tables adds what a repair of those tables needs (identity and owned sequences too), psql runs it, and a table not there stops it', async () => {
    const r = await lifeboat('grants', '--runbook', 'bank', '--repair-tables', 'ledger.entries, ledger.accounts');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(grantsSql(runbook, { repair: { tables: ['ledger.entries', 'ledger.accounts'] } }));
    expect(r.stdout).toContain(
      '-- ===== Repair without failover (lifeboat repair) of ledger.entries, ledger.accounts, in database bank',
    );
    const psql = (input: string) =>
      spawnSync(
        `${PG_BIN}/psql`,
        [
          '-X',
          '-q',
          '-h',
          '127.0.0.1',
          '-p',
          String(pg.port),
          '-U',
          'postgres',
          '-d',
          'bank',
          '-v',
          'ON_ERROR_STOP=1',
          '-f',
          '-',
        ],
        { input, encoding: 'utf8' },
      );
    const ran = psql(r.stdout);
    expect(ran.stderr).not.toMatch(/ERROR/);
    expect(ran.status).toBe(0);
    const c = new Client({ ...pg.connection, database: 'bank' });
    await c.connect();
    try {
      const { rows } = await c.query(
        `select has_table_privilege($1, 'ledger.entries', 'SELECT, INSERT, UPDATE') and has_table_privilege($1, 'ledger.entries', 'INSERT') and has_table_privilege($1, 'ledger.accounts', 'UPDATE') as tables,
                has_sequence_privilege($1, 'ledger.entry_no', 'SELECT') and has_sequence_privilege($1, 'ledger.entry_no', 'UPDATE')
                  and has_sequence_privilege($1, pg_get_serial_sequence('ledger.accounts', 'id'), 'UPDATE') as sequences,
                has_database_privilege($1, 'bank', 'TEMPORARY') as temp, has_schema_privilege($1, $1, 'CREATE') as audit`,
        [ROLE],
      );
      expect(rows).toEqual([{ tables: true, sequences: true, temp: true, audit: true }]);
    } finally {
      await c.end();
    }
    const missing = await lifeboat('grants', '--runbook', 'bank', '--repair-tables', 'ledger.nope');
    const refused = psql(missing.stdout);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('table ledger.nope (to be repaired) does not exist in database bank');
  });

  it('doctor finds nothing missing but the optional pg_monitor, and says there is no backup yet (exit 0)', async () => {
    const r = await lifeboat('doctor', '--runbook', 'bank');
    // Every need of the runbook, and the pg_hba.conf replication line doctor tries.
    const total = needsOf(runbook).length + 1;
    expect(r.stdout).toBe(
      [
        `lifeboat doctor: runbook bank, role ${ROLE} on the primary 127.0.0.1:${pg.port}, database bank`,
        '',
        `Privileges on the primary, checked as ${ROLE}: ${total - 1} of ${total} pieces present`,
        `  optional: membership of ${ROLE} in pg_monitor (optional)`,
        '    fix, as a superuser:',
        `      GRANT pg_monitor TO "${ROLE}";`,
        '',
        'Base backups (a restored copy has the grants its backup copied, not those made since):',
        '  none yet: take one after granting: lifeboat backup --runbook bank',
        '',
        `All grants at once (safe to repeat): lifeboat grants --runbook bank | psql -h 127.0.0.1 -p ${pg.port} -U postgres -d bank -v ON_ERROR_STOP=1 -f -`,
        'Result: nothing missing',
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(0);
  });

  it('doctor names a missing piece with its fix and a backup taken without it, and exits 1 until both are fixed', async () => {
    await asSuperuser(`revoke execute on function pg_catalog.pg_wal_replay_pause() from ${ROLE}`);
    const lacking = await takeBaseBackup({ runbook });
    const r = await lifeboat('doctor', '--runbook', 'bank');
    // Every need of the runbook, and the pg_hba.conf replication line doctor tries.
    const total = needsOf(runbook).length + 1;
    console.log(r.stdout);
    expect(r.stdout).toBe(
      [
        `lifeboat doctor: runbook bank, role ${ROLE} on the primary 127.0.0.1:${pg.port}, database bank`,
        '',
        `Privileges on the primary, checked as ${ROLE}: ${total - 2} of ${total} pieces present, 1 MISSING`,
        '  MISSING: EXECUTE on pg_catalog.pg_wal_replay_pause() in database bank',
        '    needed by: recoveries (in the restored copy), drills (in the drill copy)',
        '    fix, as a superuser connected to database bank:',
        `      GRANT EXECUTE ON FUNCTION pg_catalog.pg_wal_replay_pause() TO "${ROLE}";`,
        `  optional: membership of ${ROLE} in pg_monitor (optional)`,
        '    fix, as a superuser:',
        `      GRANT pg_monitor TO "${ROLE}";`,
        '',
        'Base backups (a restored copy has the grants its backup copied, not those made since):',
        `  ${lacking.backupId}  LACKING: taken when ${ROLE} lacked 1 piece a restored copy needs: EXECUTE on pg_catalog.pg_wal_replay_pause() in database bank`,
        '',
        `All grants at once (safe to repeat): lifeboat grants --runbook bank | psql -h 127.0.0.1 -p ${pg.port} -U postgres -d bank -v ON_ERROR_STOP=1 -f -`,
        `Result: 1 piece missing on the primary; the newest backup ${lacking.backupId} lacks 1 piece its restored copy needs: after granting, take a new one (lifeboat backup --runbook bank)`,
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(1);

    const json = await lifeboat('doctor', '--runbook', 'bank', '--json');
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as {
      ok: boolean;
      primary: { missing: Array<{ key: string; fix: string; database?: string }> };
      backups: Array<{ backupId: string; verdict: string }>;
    };
    expect(report.ok).toBe(false);
    expect(report.primary.missing.filter((m) => m.key !== 'member:pg_monitor')).toEqual([
      expect.objectContaining({
        key: 'execute:pg_wal_replay_pause()',
        database: 'bank',
        fix: `GRANT EXECUTE ON FUNCTION pg_catalog.pg_wal_replay_pause() TO "${ROLE}";`,
      }),
    ]);
    expect(report.backups).toEqual([expect.objectContaining({ backupId: lacking.backupId, verdict: 'lacking' })]);

    // Granted on the primary: the backup still lacks it, so doctor still fails.
    await asSuperuser(report.primary.missing.find((m) => m.key === 'execute:pg_wal_replay_pause()')!.fix);
    const stillOld = await lifeboat('doctor', '--runbook', 'bank');
    expect(stillOld.stdout).toContain(
      `Result: the newest backup ${lacking.backupId} lacks 1 piece its restored copy needs`,
    );
    expect(stillOld.code).toBe(1);

    // A backup taken after the grant has it: doctor passes, and still shows the old one as lacking.
    const good = await takeBaseBackup({ runbook });
    const fixed = await lifeboat('doctor', '--runbook', 'bank');
    expect(fixed.stdout).toContain(`  ${lacking.backupId}  LACKING: `);
    expect(fixed.stdout).toContain(`  ${good.backupId}  ok: ${ROLE} had every piece a restored copy needs\n`);
    expect(fixed.stdout).toMatch(/Result: nothing missing\n$/);
    expect(fixed.code).toBe(0);
  });

  it('doctor tries the replication login pg_basebackup makes, and names the pg_hba.conf line it lacks', async () => {
    const hba = path.join(pg.dataDir, 'pg_hba.conf');
    const original = readFileSync(hba, 'utf8');
    writeFileSync(
      hba,
      original
        .split('\n')
        .filter((l) => !l.startsWith('host replication'))
        .join('\n'),
    );
    await pg.query('select pg_reload_conf()');
    try {
      const r = await lifeboat('doctor', '--runbook', 'bank');
      expect(r.stdout).toContain(
        [
          `  MISSING: a pg_hba.conf line letting ${ROLE} connect for replication from 127.0.0.1 (pg_basebackup) (connection to server at "127.0.0.1", port ${pg.port} failed: FATAL:  no pg_hba.conf entry for replication connection from host "127.0.0.1", user "${ROLE}", no encryption)`,
          '    needed by: lifeboat backup',
          '    fix:',
          '      # in pg_hba.conf on 127.0.0.1, before any line that would match first; then, as a superuser: SELECT pg_reload_conf();',
          `      host  replication  ${ROLE}  127.0.0.1/32  scram-sha-256`,
        ].join('\n'),
      );
      expect(r.stdout).toMatch(/Result: 1 piece missing on the primary\n$/);
      expect(r.code).toBe(1);
    } finally {
      writeFileSync(hba, original);
      await pg.query('select pg_reload_conf()');
    }
    expect((await lifeboat('doctor', '--runbook', 'bank')).code).toBe(0);
  });

  it('doctor says when it cannot reach the primary, and exits 1', async () => {
    await pg.pgCtl('stop', '-m', 'fast', '-w');
    try {
      const r = await lifeboat('doctor', '--runbook', 'bank');
      expect(r.stdout).toContain(`Privileges on the primary: NOT CHECKED, could not connect as ${ROLE}:\n  `);
      expect(r.stdout).toMatch(/Result: the primary could not be checked\n$/);
      expect(r.code).toBe(1);
    } finally {
      await pg.pgCtl('start', '-w', '-l', pg.logFile);
    }
  });

  it('doctor --repair-tables also checks what a repair of those tables needs, names each missing piece, and passes once lifeboat grants --repair-tables ran', async () => {
    // ledger.entries and ledger.accounts were granted for repairs above; ledger.limits was not.
    const doctor = (...more: string[]) =>
      lifeboat('doctor', '--runbook', 'bank', '--repair-tables', 'ledger.entries,ledger.limits', ...more);
    const before = await doctor('--json');
    const report = JSON.parse(before.stdout) as {
      ok: boolean;
      repairTables: string[];
      primary: { missing: Array<{ key: string; uses: string[]; fix: string }> };
      grants: string;
    };
    expect(report.repairTables).toEqual(['ledger.entries', 'ledger.limits']);
    const missing = report.primary.missing.filter((m) => !m.key.startsWith('member:pg_monitor'));
    expect(missing.map((m) => m.key)).toEqual(['repair:table:ledger.limits']);
    expect(missing[0]!.uses).toContain('repair-primary');
    expect(missing[0]!.fix).toContain('ON TABLE "ledger"."limits"');
    expect(report.grants).toBe('lifeboat grants --runbook bank --repair-tables ledger.entries,ledger.limits');
    expect(before.code).toBe(1);
    const text = await doctor();
    expect(text.stdout).toContain(', and repairs of ledger.entries, ledger.limits\n');
    expect(text.stdout).toContain("  repairs: a backup records none of a repair's grants;");
    expect(text.stdout).toContain(
      `All grants at once (safe to repeat): lifeboat grants --runbook bank --repair-tables ledger.entries,ledger.limits | psql`,
    );

    const grants = await lifeboat('grants', '--runbook', 'bank', '--repair-tables', 'ledger.entries,ledger.limits');
    await asSuperuser(grants.stdout);
    const after = await doctor('--json');
    expect(
      (JSON.parse(after.stdout) as typeof report).primary.missing.filter((m) => !m.key.startsWith('member:')),
    ).toEqual([]);
    expect(after.code).toBe(0);

    // A list that names no table is refused before anything is read.
    const empty = await lifeboat('doctor', '--runbook', 'bank', '--repair-tables', ' , ');
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toContain("--repair-tables names no table: ' , '");
  });
});
