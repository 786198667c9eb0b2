// The pgBackRest engine's pure parts: its info and repo-ls JSON (recorded
// from pgBackRest 2.45), its errors in Lifeboat's catalogue, the restore
// options a target becomes, verify's findings, and the runbook's engine block.
// test/integration/engine-pgbackrest.test.ts runs the real thing.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { failureError, parseFailure } from '../../src/engine/pgbackrest/errors';
import { parseInfo, walFilesOfRepoLs } from '../../src/engine/pgbackrest/info';
import { targetArgs } from '../../src/engine/pgbackrest/command';
import { PgBackRestEngine } from '../../src/engine/pgbackrest/engine';
import { verifyFindings } from '../../src/engine/pgbackrest/output';
import { pgBackRestEnv } from '../../src/engine/pgbackrest/command';
import { validateRunbookText } from '../../src/runbook/load';
import { engineSetting } from '../../src/runbook/engine';

// `pgbackrest info --output=json` of a stanza with a full and an incremental
// backup (2.45), as printed: one line, system-id a 64-bit integer.
const INFO = JSON.stringify([
  {
    archive: [
      {
        database: { id: 1, 'repo-key': 1 },
        id: '15-1',
        max: '000000010000000000000007',
        min: '000000010000000000000001',
      },
    ],
    backup: [
      {
        archive: { start: '000000010000000000000002', stop: '000000010000000000000002' },
        backrest: { format: 5, version: '2.45' },
        database: { id: 1, 'repo-key': 1 },
        error: false,
        info: { delta: 22992593, repository: { delta: 3043478, size: 3043478 }, size: 22992593 },
        label: '20261204-054111F',
        lsn: { start: '0/2000028', stop: '0/2000100' },
        prior: null,
        reference: null,
        timestamp: { start: 1796362871, stop: 1796362878 },
        type: 'full',
      },
      {
        archive: { start: '000000010000000000000007', stop: '000000010000000000000007' },
        backrest: { format: 5, version: '2.45' },
        database: { id: 1, 'repo-key': 1 },
        error: false,
        info: { delta: 1417482, repository: { delta: 162296, size: 3044017 }, size: 23000785 },
        label: '20261204-054111F_20261204-054124I',
        lsn: { start: '0/7000028', stop: '0/7000138' },
        prior: '20261204-054111F',
        reference: ['20261204-054111F'],
        timestamp: { start: 1796362884, stop: 1796362886 },
        type: 'incr',
      },
    ],
    cipher: 'none',
    db: [{ id: 1, 'repo-key': 1, 'system-id': 0, version: '15' }],
    name: 's',
    repo: [{ cipher: 'none', key: 1, status: { code: 0, message: 'ok' } }],
    status: { code: 0, lock: { backup: { held: false } }, message: 'ok' },
  },
]).replace('"system-id":0', '"system-id":7715319769853203491');

describe('pgbackrest info --output=json', () => {
  it('lists the backups with start and stop time, LSN and timeline, oldest first, and keeps the system identifier exact', () => {
    const info = parseInfo(INFO, 's');
    expect(info.backups).toEqual([
      {
        backupId: '20261204-054111F',
        type: 'full',
        startTime: '2026-12-04T05:41:11Z',
        endTime: '2026-12-04T05:41:18Z',
        startLsn: '0/2000028',
        endLsn: '0/2000100',
        timeline: 1,
        startWal: '000000010000000000000002',
        endWal: '000000010000000000000002',
        sizeBytes: 22992593,
        storedBytes: 3043478,
      },
      {
        backupId: '20261204-054111F_20261204-054124I',
        type: 'incr',
        startTime: '2026-12-04T05:41:24Z',
        endTime: '2026-12-04T05:41:26Z',
        startLsn: '0/7000028',
        endLsn: '0/7000138',
        timeline: 1,
        startWal: '000000010000000000000007',
        endWal: '000000010000000000000007',
        sizeBytes: 23000785,
        storedBytes: 162296,
        prior: '20261204-054111F',
      },
    ]);
    expect(info.archives).toEqual([{ id: '15-1', min: '000000010000000000000001', max: '000000010000000000000007' }]);
    expect(info.db).toEqual([{ id: 1, version: '15', systemId: '7715319769853203491' }]);
  });

  it('leaves out a backup pgBackRest flagged with errors, and names it', () => {
    const flagged = INFO.replace('"error":false,"info":{"delta":1417482', '"error":true,"info":{"delta":1417482');
    const info = parseInfo(flagged, 's');
    expect(info.backups.map((b) => b.backupId)).toEqual(['20261204-054111F']);
    expect(info.flagged).toEqual(['20261204-054111F_20261204-054124I']);
  });

  it('orders by end time, not by label: an incremental of an old full sorts by its own time', () => {
    const engine = new PgBackRestEngine({ kind: 'pgbackrest', stanza: 's' }, { osUser: 'postgres' });
    const full = (label: string, end: string) => ({
      ...parseInfo(INFO, 's').backups[0]!,
      backupId: label,
      endTime: end,
    });
    const backups = [
      full('20261204-050000F', '2026-12-04T05:01:00Z'),
      full('20261204-060000F', '2026-12-04T06:01:00Z'),
      full('20261204-050000F_20261204-070000I', '2026-12-04T07:01:00Z'),
    ];
    expect(engine.chooseBackup(backups, { time: '2026-12-04T07:30:00Z' }).backupId).toBe(
      '20261204-050000F_20261204-070000I',
    );
    expect(engine.chooseBackup(backups, { time: '2026-12-04T06:30:00Z' }).backupId).toBe('20261204-060000F');
    expect(() => engine.chooseBackup(backups, { time: '2026-12-04T05:00:30Z' })).toThrow(
      /no verified base backup of cluster s finished before/,
    );
  });
});

describe('pgbackrest repo-ls --output=json', () => {
  it('names WAL files as PostgreSQL does, one name per segment', () => {
    const ls = JSON.stringify({
      '.': { type: 'path' },
      '0000000100000000': { type: 'path' },
      '0000000100000000/000000010000000000000001-4809a3b9262adea12f69ed47e6fa0ab3eed9e6d6.gz': {
        type: 'file',
        size: 1396606,
        time: 1796362872,
      },
      '0000000100000000/000000010000000000000002.00000028.backup': { type: 'file', size: 371, time: 1796362878 },
      '0000000100000000/000000010000000000000003-240f541c095b5b56a11112bfa50b48ed69fed7ff.lz4': {
        type: 'file',
        size: 44162,
        time: 1796362881,
      },
      '0000000100000000/000000010000000000000003-1111111111111111111111111111111111111111.lz4': {
        type: 'file',
        size: 44160,
        time: 1796362890,
      },
      '0000000100000000/000000010000000000000004.partial-7081028190e96f2b9e553064545507967bd9e46c.gz': {
        type: 'file',
        size: 10,
        time: 1796362882,
      },
      '00000002.history': { type: 'file', size: 42, time: 1796362883 },
      'archive.info': { type: 'file', size: 253, time: 1796362886 },
    });
    expect(walFilesOfRepoLs(ls).map((f) => f.name)).toEqual([
      '000000010000000000000001',
      '000000010000000000000002.00000028.backup',
      '000000010000000000000003',
      '000000010000000000000004.partial',
      '00000002.history',
    ]);
  });
});

describe("pgBackRest's errors", () => {
  it("map into Lifeboat's catalogue with pgBackRest's code, text and hints kept in the hints", () => {
    const stderr = [
      "ERROR: [040]: unable to restore to path '/tmp/r1' because it contains files",
      '       HINT: try using --delta if this is what you intended.',
    ].join('\n');
    const f = parseFailure(stderr, 40);
    expect(f).toEqual({
      code: 40,
      text: "unable to restore to path '/tmp/r1' because it contains files",
      hints: ['try using --delta if this is what you intended.'],
    });
    const err = failureError('restore', f);
    expect(err.code).toBe('DATA_DIR_NOT_EMPTY');
    expect(err.hints.slice(0, 2)).toEqual([
      "pgBackRest error [040]: unable to restore to path '/tmp/r1' because it contains files",
      'pgBackRest: try using --delta if this is what you intended.',
    ]);
    expect(
      failureError('restore', parseFailure('ERROR: [038]: unable to restore while PostgreSQL is running', 38)).code,
    ).toBe('PG_RUNNING');
    expect(failureError('restore', parseFailure('ERROR: [075]: backup set nonesuch is not valid', 75)).code).toBe(
      'BACKUP_NOT_FOUND',
    );
    // A code Lifeboat does not name: the caller's default, still with pgBackRest's words.
    const other = failureError('backup', parseFailure('P00  ERROR: [099]: something new', 99), 'BACKUP_FAILED');
    expect([other.code, other.hints[0]]).toEqual(['BACKUP_FAILED', 'pgBackRest error [099]: something new']);
    // Nothing pgBackRest-shaped printed: the exit code and the last words.
    expect(parseFailure('Segmentation fault\n', 139)).toEqual({ code: 139, text: 'Segmentation fault', hints: [] });
  });

  it('pgBackRest gets PATH, locale and PGBACKREST_* variables, nothing else of the worker', () => {
    const env = pgBackRestEnv({
      PATH: '/bin',
      PGBACKREST_REPO1_CIPHER_PASS: 'x',
      ORDERS_PG_PASSWORD: 'secret',
      AWS_SECRET_ACCESS_KEY: 'k',
    });
    expect(env.PGBACKREST_REPO1_CIPHER_PASS).toBe('x');
    for (const k of Object.keys(env))
      expect(['PATH', 'LANG', 'LC_ALL', 'TZ', 'PGBACKREST_REPO1_CIPHER_PASS']).toContain(k);
  });
});

describe('restore options for a target', () => {
  it('pause at time, name, lsn and xid; the end of the archive is a standby that never promotes', () => {
    expect(targetArgs({ target: { time: '2026-12-04T05:41:30.123Z' } })).toEqual([
      '--type=time',
      '--target=2026-12-04 05:41:30.123+00:00',
      '--target-action=pause',
      '--target-timeline=latest',
    ]);
    expect(targetArgs({ target: { name: 'before-migration' }, targetTimeline: 2 })).toEqual([
      '--type=name',
      '--target=before-migration',
      '--target-action=pause',
      '--target-timeline=2',
    ]);
    expect(targetArgs({ target: { lsn: '0/9000170' } })).toEqual([
      '--type=lsn',
      '--target=0/9000170',
      '--target-action=pause',
      '--target-timeline=latest',
    ]);
    expect(targetArgs({ target: { xid: '800' }, targetTimeline: 'current' })).toEqual([
      '--type=xid',
      '--target=800',
      '--target-action=pause',
      '--target-timeline=current',
    ]);
    expect(targetArgs({ target: { latest: true } })).toEqual(['--type=standby', '--target-timeline=latest']);
    expect(targetArgs({ target: { latest: true }, immediate: true })).toEqual([
      '--type=immediate',
      '--target-action=pause',
      '--target-timeline=current',
    ]);
  });
});

describe('pgbackrest verify --output=text --verbose', () => {
  it('reports only what is wrong, naming the archive or backup', () => {
    const text = [
      'stanza: s',
      'status: error',
      '  archiveId: 15-1, total WAL checked: 6, total valid WAL: 5',
      '    missing: 0, checksum invalid: 1, size invalid: 0, other: 0',
      '  backup: 20261204-054111F, status: valid, total files checked: 964, total valid files: 964',
      '    missing: 0, checksum invalid: 0, size invalid: 0, other: 0',
    ].join('\n');
    expect(verifyFindings(text)).toEqual(['stanza status: error', 'archiveId: 15-1: checksum invalid 1']);
    expect(
      verifyFindings(text.replace('status: error', 'status: ok').replace('checksum invalid: 1', 'checksum invalid: 0')),
    ).toEqual([]);
  });
});

describe('engine: in a runbook', () => {
  const EXAMPLE = readFileSync(path.resolve(__dirname, '../../runbooks/orders.example.yaml'), 'utf8');
  const LINE =
    'restore: { host: db-recovery-1, dataDir: /var/lib/postgresql/15/recovery, port: 5433, mode: side-by-side }';
  const withEngine = (yaml: string) => {
    if (!EXAMPLE.includes(LINE)) throw new Error('the example runbook no longer has its restore line');
    return validateRunbookText(EXAMPLE.replace(LINE, `${LINE}\nengine: ${yaml}`), 'orders.yaml');
  };

  it("is Lifeboat's own when left out; a pgBackRest stanza with config path, repo index and delta", () => {
    const plain = validateRunbookText(EXAMPLE, 'orders.yaml');
    expect(plain.ok && plain.runbook.engine).toBeUndefined();
    expect(plain.ok && engineSetting(plain.runbook)).toEqual({ kind: 'lifeboat' });
    const r = withEngine(
      '{ kind: pgbackrest, stanza: main, configPath: /etc/pgbackrest/pgbackrest.conf, repo: 2, delta: false }',
    );
    expect(r.ok && r.runbook.engine).toEqual({
      kind: 'pgbackrest',
      stanza: 'main',
      configPath: '/etc/pgbackrest/pgbackrest.conf',
      repo: 2,
      delta: false,
    });
  });

  it('refuses bad values naming the field, and has no place for a secret', () => {
    const errors = (yaml: string) => {
      const r = withEngine(yaml);
      return r.ok ? [] : r.errors.map((e) => e.replace(/^orders\.yaml:\d+: /, ''));
    };
    expect(errors('{ kind: pgbackrest }')).toEqual([
      expect.stringMatching(/^engine\.stanza: expected the pgBackRest stanza name/) as string,
    ]);
    expect(errors('{ kind: pgbackrest, stanza: "main stanza" }')).toEqual([
      expect.stringMatching(/^engine\.stanza: expected the pgBackRest stanza name: letters, digits/) as string,
    ]);
    expect(errors('{ kind: pgbackrest, stanza: main, configPath: pgbackrest.conf }')).toEqual([
      expect.stringMatching(
        /^engine\.configPath: expected the pgBackRest configuration file as an absolute path/,
      ) as string,
    ]);
    expect(errors('{ kind: pgbackrest, stanza: main, repo: 0 }')).toEqual([
      expect.stringMatching(
        /^engine\.repo: expected the pgBackRest repository index, an integer from 1 to 256/,
      ) as string,
    ]);
    expect(errors('{ kind: barman }')).toEqual([
      expect.stringMatching(
        /^engine(\.kind)?: expected a mapping with kind: lifeboat \(the default\) or kind: pgbackrest/,
      ) as string,
    ]);
    // Secrets stay in pgbackrest.conf or PGBACKREST_* variables: the block has no field for one, and the value is not echoed.
    expect(errors('{ kind: pgbackrest, stanza: main, cipherPass: hunter2 }')).toEqual([
      'engine.cipherPass: unknown field',
    ]);
  });
});
