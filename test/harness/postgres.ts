// The tests' PostgreSQL: a fresh primary per test file (src/dev/scratch-primary.ts,
// which the benchmarks share: bench/ may not import test/), and the stopping
// and removal of the restored copies a test leaves.
import { existsSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { asOsUser } from '../../src/dev/sandbox-pg';
import { PG_BIN } from '../../src/dev/scratch-primary';
import { stopPrefetcher } from '../../src/restore/prefetch';

export {
  PG_BIN,
  postgresTempDir,
  startPrimary,
  switchAndWaitArchived,
  type Primary,
  type PrimaryOptions,
} from '../../src/dev/scratch-primary';

export function asPostgres(bin: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  return asOsUser('postgres', bin, args, env);
}

/**
 * Stops the postmaster of a restored copy a test left running (a paused copy
 * after a rejection, a promoted one after a scenario). The directory is the
 * test's own; only the process is stopped here, the harness removes the rest.
 */
export async function stopRestoredCopy(runbook: {
  cluster: { pgBin: string };
  restore: { dataDir: string };
}): Promise<void> {
  if (!existsSync(path.join(runbook.restore.dataDir, 'postmaster.pid'))) return;
  await asPostgres(`${runbook.cluster.pgBin}/pg_ctl`, [
    '-D',
    runbook.restore.dataDir,
    'stop',
    '-m',
    'immediate',
    '-w',
  ]).catch(() => undefined);
}

/**
 * Stops and removes a test's restored copy and what was moved aside beside it
 * (`<dataDir>.*`), all in the test's own state directory: the postmaster
 * (immediate), then replay-wal's WAL prefetcher, then the files. With the
 * promise API's removal, which tolerates files another process removes
 * meanwhile: Node 24's rmSync stops at the first such file without an error
 * and leaves the rest, which the next case met as a directory not its own.
 * Throws when anything is left.
 */
export async function clearRestoredCopies(dataDir: string): Promise<void> {
  const parent = path.dirname(dataDir);
  if (!existsSync(parent)) return;
  for (const e of readdirSync(parent).filter(
    (n) => n === path.basename(dataDir) || n.startsWith(`${path.basename(dataDir)}.`),
  )) {
    const p = path.join(parent, e);
    if (existsSync(path.join(p, 'postmaster.pid')))
      await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', p, '-m', 'immediate', '-w']).catch(() => '');
    await stopPrefetcher(p);
    await rm(p, { recursive: true, force: true });
    if (existsSync(p))
      throw new Error(`test cleanup: ${p} is still there after its removal (${readdirSync(p).length} entries)`);
  }
}
