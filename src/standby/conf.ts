// The warm standby's recovery settings: the same delimited block replay-wal
// writes (src/restore/recovery-conf.ts), for "the end of the archive" (no
// target, standby.signal: PostgreSQL keeps asking restore_command for the
// next segment instead of promoting), plus recovery_min_apply_delay. Its
// restore_command is Lifeboat's archive-get, or the one the runbook's engine
// wrote with its restore (pgBackRest's archive-get).
//
// When a recovery takes the standby over, replay-wal replaces the block
// whole, so the delay goes with it and the target comes in.
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { encryptionArgs, restoreEncryption } from '../repository/keys';
import { fallbackRepoArgs } from '../repository/multi';
import { engineRestoreCommand } from '../restore/engine-replay';
import { writeOwnedFile } from '../restore/os-user';
import { BLOCK_END, recoveryLines, shellWord, writeRecoveryBlock, writeSignalFile } from '../restore/recovery-conf';
import { clusterName, type Runbook } from '../runbook/schema';
import { engineSetting } from '../runbook/engine';
import { lifeboatCommand } from '../tools';

/** The identity a standby's marker and claim carry where a recovery's carry its workflow id. */
export function standbyOwner(runbook: Runbook): string {
  return `lifeboat-standby-${runbook.name}`;
}

/** Lifeboat's own restore_command: archive-get from the runbook's repositories (as replay-wal writes it). */
export function lifeboatRestoreCommand(runbook: Runbook): string {
  const cluster = clusterName(runbook);
  return `${lifeboatCommand()} archive-get %f %p --repo ${shellWord(runbook.repository.url)} --cluster ${shellWord(cluster)}${[...encryptionArgs(restoreEncryption(runbook.repositories)), ...fallbackRepoArgs(runbook)].map((a) => ` ${shellWord(a)}`).join('')}`;
}

/**
 * The restore_command of the standby in `dataDir`: Lifeboat's archive-get,
 * or the one the runbook's engine wrote with its restore (pgBackRest:
 * `pgbackrest ... --pg1-path=<dataDir> ... archive-get %f "%p"`, outside
 * Lifeboat's block), which replay-wal reads again once a recovery takes the
 * standby over (src/restore/engine-replay.ts).
 */
export async function standbyRestoreCommand(runbook: Runbook, dataDir: string): Promise<string> {
  return engineSetting(runbook).kind === 'lifeboat' ? lifeboatRestoreCommand(runbook) : engineRestoreCommand(dataDir);
}

export function standbyLines(
  runbook: Runbook,
  s: { port: number; socketDir: string; delaySeconds: number; restoreCommand?: string },
): string[] {
  const lines = recoveryLines({
    port: s.port,
    // Loopback only: nothing but Lifeboat may reach the standby and take it for the database.
    listenAddress: '127.0.0.1',
    socketDir: s.socketDir,
    restoreCommand: s.restoreCommand ?? lifeboatRestoreCommand(runbook),
    target: { latest: true },
    workflowId: standbyOwner(runbook),
    // A standby must never archive: promoted by mistake it would push a
    // timeline of its own into the production repository.
    archiveOff: true,
  });
  const end = lines.indexOf(BLOCK_END);
  // recovery_min_apply_delay holds back only commit records, by the time in
  // the record (the primary's clock) against the standby's: WAL keeps
  // arriving, commits become visible `delay` after they happened.
  lines.splice(end, 0, `recovery_min_apply_delay = '${s.delaySeconds}s'`);
  return lines;
}

/** Writes the standby's block into postgresql.auto.conf and standby.signal; true when the settings changed. */
export async function writeStandbyConf(
  runbook: Runbook,
  dataDir: string,
  s: { port: number; socketDir: string; delaySeconds: number },
  osUser: string,
): Promise<boolean> {
  await writeSignalFile(dataDir, 'standby', osUser);
  const restoreCommand = await standbyRestoreCommand(runbook, dataDir);
  return writeRecoveryBlock(dataDir, standbyLines(runbook, { ...s, restoreCommand }), osUser);
}

/** What marks the line below in the standby's pg_hba.conf. */
const CLONE_HBA_COMMENT = '# lifeboat: drills clone the standby with pg_basebackup over loopback, as the runbook role';

/**
 * A drill asked to use the standby clones it with pg_basebackup over
 * 127.0.0.1 as the runbook's role (src/drill/from-standby.ts). The standby's
 * pg_hba.conf is the primary's, which allows that role's replication
 * connections from the backup host, not necessarily from loopback; so one
 * line is appended (last: any line of the primary's that matches first still
 * decides). md5 also accepts a password stored as SCRAM. Only the standby's
 * own copy of the file, which listens on loopback only, is changed. True
 * when it was added (the standby must reload it).
 */
export async function ensureCloneHba(dataDir: string, role: string, osUser: string): Promise<boolean> {
  const file = path.join(dataDir, 'pg_hba.conf');
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined || text.includes(CLONE_HBA_COMMENT)) return false;
  const name = /^[a-z_][a-z0-9_]*$/.test(role) ? role : `"${role}"`;
  await writeOwnedFile(
    file,
    `${text.trimEnd()}\n${CLONE_HBA_COMMENT}\nhost replication ${name} 127.0.0.1/32 md5\n`,
    osUser,
  );
  return true;
}

/** "1h", "10m 5s", "20s", "no delay": a delay as an operator reads it. */
export function formatDelay(seconds: number): string {
  if (seconds === 0) return 'no delay';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', s ? `${s}s` : ''].filter(Boolean).join(' ');
}
