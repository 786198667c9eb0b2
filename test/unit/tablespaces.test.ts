// Tablespaces outside the data directory: pg_basebackup maps each into the
// backup's scratch directory (src/backup/base-backup.ts), and a copy whose
// pg_tblspc holds directories gets allow_in_place_tablespaces in Lifeboat's
// block of postgresql.auto.conf (src/restore/recovery-conf.ts).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { tablespaceMapping } from '../../src/backup/base-backup';
import { inPlaceTablespaces, recoveryLines, writeRecoveryBlock } from '../../src/restore/recovery-conf';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-tablespaces-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('maps a tablespace into the scratch directory, an = in a path escaped as pg_basebackup reads it', () => {
  expect(tablespaceMapping({ oid: '16384', name: 'fast', location: '/srv/pg=fast' }, '/scratch/c-1')).toBe(
    '--tablespace-mapping=/srv/pg\\=fast=/scratch/c-1/tablespaces/16384',
  );
});

it('allows in-place tablespaces only in a copy whose pg_tblspc holds a directory', async () => {
  const lines = recoveryLines({
    port: 5433,
    listenAddress: '127.0.0.1',
    socketDir: '/tmp',
    restoreCommand: 'true',
    target: { latest: true },
    workflowId: 'wf',
  });
  const data = path.join(dir, 'data');
  mkdirSync(path.join(data, 'pg_tblspc'), { recursive: true });
  // A link (a tablespace elsewhere, as PostgreSQL makes them): nothing added.
  symlinkSync('/srv/elsewhere', path.join(data, 'pg_tblspc', '16500'));
  expect(await inPlaceTablespaces(data)).toEqual([]);
  await writeRecoveryBlock(data, lines, os.userInfo().username);
  expect(readFileSync(path.join(data, 'postgresql.auto.conf'), 'utf8')).not.toContain('allow_in_place_tablespaces');
  // A directory (a Lifeboat backup's tablespace): allowed, inside the block.
  mkdirSync(path.join(data, 'pg_tblspc', '16384'));
  expect(await inPlaceTablespaces(data)).toEqual(['16384']);
  await writeRecoveryBlock(data, lines, os.userInfo().username);
  const conf = readFileSync(path.join(data, 'postgresql.auto.conf'), 'utf8').trimEnd().split('\n');
  expect(conf.slice(-3)).toEqual([
    '# tablespaces 16384 are directories inside this data directory, not links',
    'allow_in_place_tablespaces = on',
    '# lifeboat recovery end',
  ]);
});
