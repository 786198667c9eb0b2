// Which repository served a restore (runbook `repositories:`), for the
// evidence of a recovery or drill: the base backup's repository when it was
// not the first, and the WAL files other repositories served. Pure: the
// workflows build their evidence with it.

/** RestoreResult.repository: the repository a base backup came from when it was not the first. */
export interface BackupRepositorySource {
  name: string;
  url: string;
  /** partial: where what was extracted from that repository before it failed went (moved aside, never deleted). */
  skipped: Array<{ name: string; url: string; reason: string; partial?: string }>;
}

/** One of ReplayResult.walFromOtherRepositories. */
export interface WalRepositorySource {
  walFile: string;
  servedBy: string;
  skipped: Array<{ url: string; reason: string }>;
  /** Fetched ahead of replay by the prefetcher (absent: by restore_command itself). */
  via?: 'prefetcher';
}

export interface RepositorySources {
  /** The repository the base backup came from, and those passed over; absent: the first served it. */
  baseBackup?: BackupRepositorySource;
  /** WAL files a repository other than the first served; absent: the first served every file. */
  wal?: WalRepositorySource[];
}

export function repositorySources(
  restored?: { repository?: BackupRepositorySource | undefined },
  replay?: { walFromOtherRepositories?: WalRepositorySource[] | undefined },
): RepositorySources | undefined {
  const out: RepositorySources = {
    ...(restored?.repository ? { baseBackup: restored.repository } : {}),
    ...(replay?.walFromOtherRepositories?.length ? { wal: replay.walFromOtherRepositories } : {}),
  };
  return out.baseBackup || out.wal ? out : undefined;
}

/** The same in the evidence's notes, one line each. */
export function repositorySourceNotes(s: RepositorySources | undefined): string[] {
  if (!s) return [];
  const notes: string[] = [];
  if (s.baseBackup) {
    notes.push(
      `base backup served by repository ${s.baseBackup.name} (${s.baseBackup.url}); passed over: ${s.baseBackup.skipped.map((k) => `${k.name} (${k.url}): ${k.reason}${k.partial ? ` (what it gave is kept in ${k.partial})` : ''}`).join('; ')}`,
    );
  }
  for (const w of s.wal ?? []) {
    notes.push(
      `WAL ${w.walFile} served by ${w.servedBy}${w.via ? ` (fetched ahead by the ${w.via})` : ''}; passed over: ${w.skipped.map((k) => `${k.url}: ${k.reason}`).join('; ')}`,
    );
  }
  return notes;
}
