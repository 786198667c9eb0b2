// A pgBackRest stanza's WAL archive, for the engine's readArchive and
// walFiles (./engine.ts): the current database's archive id from info, its
// files from repo-ls --output=json, its history files' text from repo-get,
// judged by the same continuity analysis as Lifeboat's own archive
// (src/catalog/chain.ts). pgBackRest 2.45's verify counts damaged files but
// does not report a segment missing between two present ones; this does.
import { analyzeChain, describeChainProblems, type HealthProblem } from '../../catalog/chain';
import { archiveReport } from '../archive-report';
import type { ArchiveReport, EngineBackup } from '../types';
import { runPgBackRest, stanzaCommand, type PgBackRestTarget } from './command';
import { walFilesOfRepoLs, type StanzaInfo } from './info';
import { stanzaSegmentSize } from './segments';

/** The archive of `info`'s current database, for the backups `list`. */
export async function stanzaArchive(
  t: PgBackRestTarget,
  info: StanzaInfo,
  list: readonly EngineBackup[],
): Promise<ArchiveReport> {
  // The current database's archive id: the last one (a stanza-upgrade adds one per major version).
  const current = info.archives[info.archives.length - 1];
  const notes: string[] = info.archives
    .slice(0, -1)
    .map((a) => `archive ${a.id} (an older database of the stanza) not checked: ${a.min ?? '?'} .. ${a.max ?? '?'}`);
  const { files, histories } = await walOf(t, current?.id);
  // pgBackRest does not report the WAL segment size: read from a segment (./segments.ts).
  const walSegmentSize = await stanzaSegmentSize(
    t,
    current?.id,
    files.map((f) => f.name),
  );
  const chain = analyzeChain({
    walSegmentSize,
    walFiles: files.map((f) => f.name),
    histories,
    backups: list.map((b) => ({
      backupId: b.backupId,
      timeline: b.timeline,
      startWal: b.startWal,
      startLsn: b.startLsn,
      endWal: b.endWal,
    })),
  });
  const segments = files.filter((f) => /^[0-9A-F]{24}$/.test(f.name)).map((f) => f.name);
  if (current && (current.min !== segments[0] || current.max !== segments[segments.length - 1])) {
    notes.push(
      `pgbackrest info gives archive ${current.id} as ${current.min ?? 'empty'} .. ${current.max ?? 'empty'}, its listing ${segments[0] ?? 'empty'} .. ${segments[segments.length - 1] ?? 'empty'}`,
    );
  }
  const problems = describeChainProblems(chain, list[list.length - 1]?.backupId).map((p) => ownHints(t, p));
  return archiveReport(chain, problems, notes);
}

/** The WAL files of archive `archiveId` (repo-ls) and its history files' text (repo-get). */
export async function walOf(
  t: PgBackRestTarget,
  archiveId: string | undefined,
): Promise<{ files: ReturnType<typeof walFilesOfRepoLs>; histories: Record<string, string> }> {
  const files = archiveId
    ? walFilesOfRepoLs(
        await runPgBackRest(t, 'repo-ls', ['--recurse', '--output=json', `archive/${t.stanza}/${archiveId}`], {
          withRepo: true,
        }),
      )
    : [];
  const histories: Record<string, string> = {};
  for (const f of files.filter((x) => /^[0-9A-F]{8}\.history$/.test(x.name))) {
    try {
      histories[f.name] = await runPgBackRest(t, 'repo-get', [`archive/${t.stanza}/${archiveId!}/${f.name}`], {
        withRepo: true,
      });
    } catch {
      // Left out: the chain check reports it as unreadable.
    }
  }
  return { files, histories };
}

/** The chain's hints name Lifeboat's archive-push and backup; here the stanza's own commands do that work. */
function ownHints(t: PgBackRestTarget, p: HealthProblem): HealthProblem {
  const cmd = stanzaCommand(t);
  return {
    ...p,
    hints: p.hints.map((h) =>
      h
        .replace(/lifeboat archive-push (\S+) .*$/, `${cmd} archive-push $1`)
        .replace(/\(lifeboat backup [^)]*\)/, `(${cmd} backup --type=full)`),
    ),
  };
}
