// Lifeboat's own repository behind the engine boundary (./types.ts): the
// functions that already do the work, unchanged, called through one object.
//   list        src/catalog/catalog.ts readCatalog (complete backups only)
//   choose      src/recovery/plan.ts chooseBackup
//   archive     src/catalog/chain-state.ts readChainState (as `lifeboat check`,
//               with tiered retention's window) + describeChainProblems
//   backup      src/backup/base-backup.ts takeBaseBackup (full only)
//   restore     src/restore/restore.ts restoreBaseBackup (claim, move aside,
//               extract, verify); the recovery settings follow in replay-wal
//   check       the repository's chain; the archiver itself is read from the
//               primary by `lifeboat check` (src/catalog/archiver.ts)
//   expire      the expireBackups workflow's plan and deletion (src/retention/expiry.ts):
//               a plan, then its approval; not driven from here
import { takeBaseBackup } from '../backup/base-backup';
import type { BackupMeta } from '../catalog/backup-meta';
import { isComplete, readCatalog } from '../catalog/catalog';
import { describeChainProblems } from '../catalog/chain';
import { readChainState } from '../catalog/chain-state';
import { LifeboatError } from '../errors';
import type { Target } from '../recovery/contract';
import { chooseBackup } from '../recovery/plan';
import type { Repository } from '../repository/types';
import { restoreBaseBackup } from '../restore/restore';
import { restoreSite } from '../restore/site';
import { clusterName, type Runbook } from '../runbook/schema';
import { archiveReport } from './archive-report';
import type {
  ArchiveReport,
  BackupEngine,
  EngineBackup,
  EngineRestoreRequest,
  EngineRestoreResult,
  TakeBackupOptions,
} from './types';

export function backupOfMeta(m: BackupMeta): EngineBackup {
  return {
    backupId: m.backupId,
    type: m.type,
    startTime: m.startTime,
    endTime: m.endTime,
    startLsn: m.startLsn,
    endLsn: m.endLsn,
    timeline: m.timeline,
    startWal: m.startWal,
    endWal: m.endWal,
    sizeBytes: m.sizeBytes,
    storedBytes: m.storedBytes,
  };
}

export class LifeboatEngine implements BackupEngine {
  readonly kind = 'lifeboat' as const;
  readonly label: string;
  private readonly cluster: string;

  constructor(
    private readonly runbook: Runbook,
    private readonly repo: Repository,
  ) {
    this.cluster = clusterName(runbook);
    this.label = `Lifeboat repository ${repo.url}`;
  }

  async listBackups(): Promise<EngineBackup[]> {
    return (await readCatalog(this.repo, this.cluster)).filter(isComplete).map((e) => backupOfMeta(e.meta));
  }

  chooseBackup(backups: readonly EngineBackup[], target: Target, backupId?: string) {
    return chooseBackup(backups, target, this.cluster, backupId);
  }

  async readArchive(): Promise<ArchiveReport> {
    // The catalog again, not `backups`: tiered retention's window needs the
    // entries as the retention plan reads them; the same reading as `lifeboat check`.
    const { complete, chain, window } = await readChainState(this.repo, this.cluster, this.runbook);
    return archiveReport(
      chain,
      describeChainProblems(chain, complete[complete.length - 1]?.backupId, `--runbook ${this.runbook.name}`),
      window ? [window.note] : [],
    );
  }

  async takeBackup(opts: TakeBackupOptions = {}): Promise<EngineBackup> {
    if (opts.type && opts.type !== 'full') {
      throw new LifeboatError('INPUT_INVALID', `Lifeboat's own engine takes full base backups only, not ${opts.type}`, {
        hints: [
          'leave the type out, or set engine: { kind: pgbackrest, stanza: ... } in the runbook for differential and incremental backups',
        ],
      });
    }
    const meta = await takeBaseBackup({
      runbook: this.runbook,
      onProgress: (p) =>
        opts.onProgress?.({
          ...(p.bytesTotal ? { percent: (100 * p.bytesDone) / p.bytesTotal } : {}),
          text: `${p.phase}: ${p.bytesDone} bytes`,
        }),
    });
    return backupOfMeta(meta);
  }

  async restore(req: EngineRestoreRequest): Promise<EngineRestoreResult> {
    if (!req.run) {
      throw new LifeboatError(
        'INPUT_INVALID',
        "Lifeboat's own engine restores for a workflow run only (it claims and marks the directory): run is missing",
        {
          hints: ['start a recovery or a drill; they call restore-base-backup'],
        },
      );
    }
    const site = restoreSite(this.runbook, req.run.instance);
    if (site.pg.dataDir !== req.dataDir) {
      throw new LifeboatError(
        'INPUT_INVALID',
        `Lifeboat's own engine restores into ${site.field}.dataDir (${site.pg.dataDir}), not ${req.dataDir}`,
        {
          hints: [`change ${site.field}.dataDir in the runbook`],
        },
      );
    }
    const result = await restoreBaseBackup(
      this.runbook,
      { ...req.run, backupId: req.backupId },
      {
        onProgress: req.onProgress ?? (() => undefined),
        ...(req.signal ? { signal: req.signal } : {}),
      },
    );
    return {
      dataDir: result.dataDir,
      bytes: result.bytes,
      files: result.files,
      finishedAt: result.finishedAt,
      recoverySettings: 'by-replay-wal',
      result,
    };
  }

  async check() {
    const report = await this.readArchive();
    return {
      ok: report.problems.length === 0,
      problems: report.problems,
      lines: report.timelines.map(
        (t) => `WAL timeline ${t.timeline}: ${t.first ? `${t.first} .. ${t.last} (${t.segmentCount})` : 'no segments'}`,
      ),
    };
  }

  async expire(): Promise<never> {
    throw new LifeboatError(
      'INPUT_INVALID',
      "Lifeboat's own retention runs as the expireBackups workflow: a plan, then its approval",
      {
        hints: [`lifeboat expire --runbook ${this.runbook.name}`],
      },
    );
  }
}
