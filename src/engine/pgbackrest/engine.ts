// pgBackRest behind the engine boundary (../types.ts), through its commands
// and their JSON output only, never its repository's files:
//   list        info --output=json (backups pgBackRest flagged with errors are left out)
//   choose      src/recovery/plan.ts chooseBackup, over backups ordered by end time
//   archive     info's min/max per archive id, and the WAL files themselves from
//               repo-ls --output=json (history files read with repo-get), judged
//               by the same continuity analysis as Lifeboat's own (./archive.ts)
//   backup      backup --type=full|diff|incr
//   restore     restore --set --type=time|name|lsn|xid|immediate|standby
//               --target-action=pause --target-timeline [--delta], and
//               --archive-mode=off unless the copy is to archive once promoted
//               (then archive_command is archive-push with its own --pg1-path)
//   check       check (the archiver reaches the repository) and verify
//               (its findings read in ./output.ts)
//   expire      expire (the stanza's own retention settings)
// Progress comes from its per-file console lines ("(440KB, 2.48%)").
import { appendFile, mkdir, readdir, readlink, rename, rmdir, symlink, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import type { HealthProblem } from '../../catalog/chain';
import { LifeboatError, errorMessage, isLifeboatError } from '../../errors';
import type { Target } from '../../recovery/contract';
import { chooseBackup } from '../../recovery/plan';
import { baseEnv, chownToUser } from '../../restore/os-user';
import { shellWord } from '../../restore/recovery-conf';
import type { PgBackRestSetting } from '../../runbook/engine';
import type {
  ArchiveReport,
  BackupEngine,
  EngineBackup,
  EngineCheckReport,
  EngineExpireOptions,
  EngineExpireResult,
  EngineRestoreRequest,
  EngineRestoreResult,
  TakeBackupOptions,
} from '../types';
import { stanzaArchive, walOf } from './archive';
import {
  pgBackRestEnv,
  progressOfLine,
  runPgBackRest,
  stanzaCommand,
  targetArgs,
  type PgBackRestTarget,
} from './command';
import { failureError, failureOfRepoStatus, onlyInEnvironmentError } from './errors';
import { INFO_STATUS, parseInfo, type StanzaInfo } from './info';
import { stanzaSegmentSize } from './segments';
import { expiredInLines, problemOf, verifyFindings } from './output';

export class PgBackRestEngine implements BackupEngine {
  readonly kind = 'pgbackrest' as const;
  readonly label: string;
  private readonly t: PgBackRestTarget;

  constructor(setting: PgBackRestSetting, opts: { osUser: string; bin?: string }) {
    this.t = {
      stanza: setting.stanza,
      osUser: opts.osUser,
      ...(setting.configPath ? { configPath: setting.configPath } : {}),
      ...(setting.repo !== undefined ? { repo: setting.repo } : {}),
      ...(opts.bin ? { bin: opts.bin } : {}),
    };
    this.delta = setting.delta ?? false;
    this.label = `pgBackRest stanza ${setting.stanza}${setting.repo !== undefined ? ` (repo ${setting.repo})` : ''}`;
  }

  private readonly delta: boolean;

  /** How hints name a command: "pgbackrest --config=... --stanza=main". */
  get command(): string {
    return this.cmd;
  }

  private get cmd(): string {
    return stanzaCommand(this.t);
  }

  /** `env`: instead of the worker's PGBACKREST_* variables (requireConfigAlone). */
  async info(env?: Record<string, string>): Promise<StanzaInfo> {
    const out = await runPgBackRest(this.t, 'info', ['--output=json'], { withRepo: true, ...(env ? { env } : {}) });
    const info = parseInfo(out, this.t.stanza);
    if (info.status.code === INFO_STATUS.missingStanzaPath || info.status.code === INFO_STATUS.missingStanzaData) {
      throw new LifeboatError(
        'REPOSITORY_INVALID',
        `pgBackRest has no stanza ${this.t.stanza}: ${info.status.message}`,
        {
          hints: [
            `is engine.stanza in the runbook the name of a [section] in ${this.t.configPath ?? 'pgbackrest.conf'}?`,
            `a new stanza is created with ${this.cmd} stanza-create (as the PostgreSQL OS user)`,
          ],
        },
      );
    }
    // A repository info could not read (TLS, keys): its own error, mapped as if the command had failed.
    const unread = info.repos.find((r) => r.status.code === INFO_STATUS.other);
    if (info.status.code === INFO_STATUS.other && unread)
      throw failureError('info', failureOfRepoStatus(unread.status.message));
    if (info.status.code !== INFO_STATUS.ok && info.status.code !== INFO_STATUS.noValidBackups) {
      throw new LifeboatError(
        'TOOL_FAILED',
        `pgBackRest reports stanza ${this.t.stanza} as not usable: ${info.status.message} (status ${info.status.code})`,
        {
          hints: [`${this.cmd} info says more`],
        },
      );
    }
    return info;
  }

  async listBackups(): Promise<EngineBackup[]> {
    return (await this.info()).backups;
  }

  chooseBackup(backups: readonly EngineBackup[], target: Target, backupId?: string) {
    const ordered = [...backups].sort((a, b) => (a.endTime < b.endTime ? -1 : a.endTime > b.endTime ? 1 : 0));
    return chooseBackup(ordered, target, this.t.stanza, backupId, { ordered: true });
  }

  async readArchive(backups?: readonly EngineBackup[]): Promise<ArchiveReport> {
    const info = await this.info();
    return stanzaArchive(this.t, info, backups ?? info.backups);
  }

  /** The WAL files of the current database's archive (repo-ls) and its history files' text (repo-get): what replay-wal needs to find the archive's end. */
  async walFiles(): Promise<{ files: string[]; histories: Record<string, string> }> {
    const info = await this.info();
    const { files, histories } = await walOf(this.t, info.archives[info.archives.length - 1]?.id);
    return { files: files.map((f) => f.name), histories };
  }

  /** The WAL segment size of the current database's archive, which pgBackRest's info does not give (./segments.ts). */
  async walSegmentSize(): Promise<number> {
    const info = await this.info();
    const archiveId = info.archives[info.archives.length - 1]?.id;
    const { files } = await walOf(this.t, archiveId);
    return stanzaSegmentSize(
      this.t,
      archiveId,
      files.map((f) => f.name),
    );
  }

  async takeBackup(opts: TakeBackupOptions = {}): Promise<EngineBackup> {
    const before = new Set((await this.info()).backups.map((b) => b.backupId));
    const type = opts.type ?? 'full';
    await runPgBackRest(this.t, 'backup', [`--type=${type}`], {
      withRepo: true,
      console: 'detail',
      fallback: 'BACKUP_FAILED',
      ...(opts.signal ? { signal: opts.signal } : {}),
      onLine: (line) => {
        const percent = progressOfLine(line);
        if (percent !== undefined)
          opts.onProgress?.({ percent, text: `pgbackrest backup --type=${type}: ${percent}%` });
      },
    });
    const made = (await this.info()).backups.filter((b) => !before.has(b.backupId));
    const newest = made[made.length - 1];
    if (!newest) {
      throw new LifeboatError(
        'BACKUP_FAILED',
        `pgbackrest backup --type=${type} succeeded, but pgbackrest info lists no new backup of stanza ${this.t.stanza}`,
        {
          hints: [`${this.cmd} info --output=json shows what it holds`],
        },
      );
    }
    return newest;
  }

  async restore(req: EngineRestoreRequest): Promise<EngineRestoreResult> {
    const backups = (await this.info()).backups;
    const backup = backups.find((b) => b.backupId === req.backupId);
    if (!backup) {
      throw new LifeboatError(
        'BACKUP_NOT_FOUND',
        `pgBackRest stanza ${this.t.stanza} holds no usable backup ${req.backupId}`,
        {
          hints: [`${this.cmd} info lists its backups (${backups.map((b) => b.backupId).join(', ') || 'none'})`],
        },
      );
    }
    await this.requireConfigAlone();
    const delta = req.delta ?? this.delta;
    await this.prepareDir(req.dataDir, delta);
    await clearTablespaceStage(req.dataDir);
    let files = 0;
    let last = 0;
    req.onProgress?.({ phase: 'preparing', bytes: 0, totalBytes: backup.sizeBytes });
    await runPgBackRest(
      this.t,
      'restore',
      [
        `--pg1-path=${req.dataDir}`,
        `--set=${backup.backupId}`,
        ...targetArgs(req),
        ...(req.archive ? [] : ['--archive-mode=off']),
        ...(delta ? ['--delta'] : []),
        // By default pgBackRest restores each tablespace at its recorded path: on the primary's host, the primary's own.
        `--tablespace-map-all=${tablespaceStage(req.dataDir)}`,
      ],
      {
        withRepo: true,
        console: 'detail',
        ...(req.signal ? { signal: req.signal } : {}),
        onLine: (line) => {
          const total = /file total = (\d+)/.exec(line);
          if (total) files = Number(total[1]);
          const percent = progressOfLine(line);
          if (percent === undefined || percent - last < 1) return;
          last = percent;
          req.onProgress?.({
            phase: 'downloading',
            bytes: Math.round((percent / 100) * backup.sizeBytes),
            totalBytes: backup.sizeBytes,
          });
        },
      },
    );
    await tablespacesInPlace(req.dataDir);
    // After pgBackRest's own recovery settings (postgresql.auto.conf: its restore_command and the target): where this copy listens.
    const settings = [...(req.settings ?? []), ...(req.archive ? this.archiveSettings(req.dataDir) : [])];
    if (settings.length)
      await appendFile(
        path.join(req.dataDir, 'postgresql.auto.conf'),
        `# Lifeboat: this copy's own settings\n${settings.join('\n')}\n`,
      );
    req.onProgress?.({ phase: 'done', bytes: backup.sizeBytes, totalBytes: backup.sizeBytes });
    return {
      dataDir: req.dataDir,
      bytes: backup.sizeBytes,
      files,
      finishedAt: new Date().toISOString(),
      recoverySettings: 'written',
    };
  }

  /**
   * How a promoted copy archives into the stanza: archive_mode on (during
   * recovery 'on' archives nothing; from the promotion on, the new timeline's
   * history file and segments) and archive-push with the copy's own
   * --pg1-path, not the configuration's (the old primary's directory): %p is
   * relative (pg_wal/...) and pgBackRest reads the cluster at pg1-path.
   */
  archiveSettings(dataDir: string): string[] {
    const words = [
      this.t.bin ?? 'pgbackrest',
      ...(this.t.configPath ? [`--config=${this.t.configPath}`] : []),
      `--pg1-path=${dataDir}`,
      `--stanza=${this.t.stanza}`,
      'archive-push',
    ];
    const command = `${words.map(shellWord).join(' ')} %p`;
    return ['archive_mode = on', `archive_command = '${command.replace(/'/g, "''")}'`];
  }

  /**
   * The restored copy's restore_command (pgbackrest archive-get) runs under
   * its postmaster, which Lifeboat gives no PGBACKREST_* variable (no secret
   * in a postmaster's environment: src/restore/os-user.ts postmasterEnv). A
   * stanza this worker reaches only through such variables (S3 keys, a cipher
   * passphrase) would restore, then fetch no WAL: refused before anything is
   * written. Without PGBACKREST_* variables there is nothing to compare.
   */
  private async requireConfigAlone(): Promise<void> {
    const names = Object.keys(pgBackRestEnv()).filter((k) => k.startsWith('PGBACKREST_'));
    if (names.length === 0) return;
    try {
      await this.info(baseEnv());
    } catch (err) {
      throw onlyInEnvironmentError(this.t.stanza, names, isLifeboatError(err) ? err.what : errorMessage(err));
    }
  }

  /** The directory pgBackRest restores into: created for the OS user; anything in it refused unless delta (pgBackRest refuses too, with [040]). */
  private async prepareDir(dataDir: string, delta: boolean): Promise<void> {
    const existing = await readdir(dataDir).catch((err: NodeJS.ErrnoException) =>
      err.code === 'ENOENT' ? undefined : Promise.reject(err),
    );
    if (existing === undefined) {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      await chownToUser(dataDir, this.t.osUser);
    } else if (existing.length > 0 && !delta) {
      throw new LifeboatError(
        'DATA_DIR_NOT_EMPTY',
        `${dataDir} is not empty: pgBackRest restores into an empty directory unless delta is on`,
        {
          hints: [
            'nothing was written',
            'move the directory aside (Lifeboat never deletes it), or set engine.delta: true in the runbook to have pgBackRest overwrite only changed files',
          ],
        },
      );
    }
  }

  async check(): Promise<EngineCheckReport> {
    const problems: HealthProblem[] = [];
    const lines: string[] = [];
    try {
      await runPgBackRest(this.t, 'check', []);
      lines.push(`${this.cmd} check: the archiver reaches the repository`);
    } catch (err) {
      problems.push(problemOf('pgbackrest-check', err));
    }
    try {
      const out = await runPgBackRest(this.t, 'verify', ['--output=text', '--verbose'], {
        withRepo: true,
        console: 'off',
      });
      const found = verifyFindings(out);
      lines.push(
        `${this.cmd} verify: ${found.length === 0 ? 'no damaged or missing file' : `${found.length} finding${found.length === 1 ? '' : 's'}`}`,
      );
      for (const f of found)
        problems.push({
          kind: 'pgbackrest-verify',
          message: `pgbackrest verify: ${f}`,
          hints: [`${this.cmd} verify --output=text --verbose shows every file it checked`],
        });
    } catch (err) {
      problems.push(problemOf('pgbackrest-verify', err));
    }
    try {
      const archive = await this.readArchive();
      problems.push(...archive.problems);
      for (const t of archive.timelines)
        lines.push(
          `WAL timeline ${t.timeline}: ${t.first ? `${t.first} .. ${t.last} (${t.segmentCount})` : 'no segments'}`,
        );
      lines.push(...archive.notes.map((n) => `note: ${n}`));
    } catch (err) {
      problems.push(problemOf('pgbackrest-archive', err));
    }
    return { ok: problems.length === 0, problems, lines };
  }

  /**
   * pgbackrest expire: the stanza's own retention (repoN-retention-full and
   * the like in its configuration) decides; Lifeboat names no backup. With
   * `dryRun`, pgBackRest's own --dry-run: its "[DRY-RUN]" lines say what it
   * would expire, nothing is removed.
   */
  async expire(opts: EngineExpireOptions = {}): Promise<EngineExpireResult> {
    const before = (await this.info()).backups.map((b) => b.backupId);
    const lines: string[] = [];
    await runPgBackRest(this.t, 'expire', opts.dryRun ? ['--dry-run'] : [], {
      withRepo: true,
      console: 'info',
      onLine: (l) => {
        if (/expire|remove/.test(l) && !/command (begin|end)/.test(l)) lines.push(l.replace(/^.*?INFO: /, ''));
      },
    });
    if (opts.dryRun) return { expired: expiredInLines(lines, before), lines };
    const after = new Set((await this.info()).backups.map((b) => b.backupId));
    return { expired: before.filter((id) => !after.has(id)), lines };
  }
}

/** Where pgBackRest restores a copy's tablespaces (--tablespace-map-all): beside the copy (it refuses a path in PGDATA), before they are moved into it. */
function tablespaceStage(dataDir: string): string {
  return `${dataDir}.lifeboat-tablespaces`;
}

/**
 * An earlier stage (a restore interrupted before its tablespaces were moved
 * in) is moved aside, never removed: pgBackRest refuses a tablespace
 * directory that holds files.
 */
async function clearTablespaceStage(dataDir: string): Promise<void> {
  const stage = tablespaceStage(dataDir);
  const left = await readdir(stage).catch(() => undefined);
  if (left === undefined) return;
  if (left.length === 0) await rmdir(stage);
  else await rename(stage, `${stage}-${new Date().toISOString().replace(/[-:.]/g, '')}`);
}

/**
 * Each tablespace pgBackRest restored into the stage moved to
 * pg_tblspc/<oid> itself, in place of its link, as a Lifeboat backup stores
 * them (src/backup/base-backup.ts): the copy is one directory, moved aside
 * whole, and never reaches the primary's location; the recovery block allows
 * in-place tablespaces (src/restore/recovery-conf.ts). A data directory that
 * is a mount point cannot take a rename from beside it: there the link to
 * the stage stays (still the copy's own files, not the primary's).
 */
async function tablespacesInPlace(dataDir: string): Promise<void> {
  const stage = tablespaceStage(dataDir);
  const links = path.join(dataDir, 'pg_tblspc');
  for (const oid of await readdir(links).catch(() => [] as string[])) {
    const link = path.join(links, oid);
    const points = await readlink(link).catch(() => undefined);
    if (!points || path.dirname(path.resolve(links, points)) !== stage) continue;
    const target = path.resolve(links, points);
    await unlink(link);
    try {
      await rename(target, link);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      await symlink(target, link);
    }
  }
  await rmdir(stage).catch(() => undefined);
}
