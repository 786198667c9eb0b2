// `lifeboat archive-push %p`: PostgreSQL's archive_command (shared/DESIGN.md §6).
//
// PostgreSQL starts this once per WAL file and waits, so start-up time is
// archive throughput. A file that the read-ahead pusher (src/wal/ahead.ts)
// already archived is answered from its marker, in bin/lifeboat before this
// module loads, or below before the repository or the AWS SDK is loaded.
//
// Exit 0 only when the file is durably archived (or already was, with the
// same content). Any other exit makes PostgreSQL keep the file and retry.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { checkWalFileName, pushWalFile } from '../../wal/push';
import { archiveTargetId, consumePushedMarker, markerDir } from '../../wal/marker';
import { EXIT } from '../run';

export interface ArchivePushOptions {
  path: string;
  repo?: string;
  cluster?: string;
  runbook?: string;
  runbooksDir?: string;
  parallel?: string;
  ahead?: boolean;
  encryptionKey?: string[];
  readUnencrypted?: boolean;
  credentialsFile?: string;
}

/** The archive target as options for the pusher process, exactly as this call got it. */
function targetArgv(opts: ArchivePushOptions): string[] {
  const argv: string[] = [];
  if (opts.runbook) argv.push('--runbook', opts.runbook);
  if (opts.runbooksDir) argv.push('--runbooks-dir', opts.runbooksDir);
  if (opts.repo) argv.push('--repo', opts.repo);
  if (opts.cluster) argv.push('--cluster', opts.cluster);
  // Key names only: the pusher inherits this process's environment.
  for (const spec of opts.encryptionKey ?? []) argv.push('--encryption-key', spec);
  if (opts.readUnencrypted) argv.push('--read-unencrypted');
  // A path, not a secret; absolute, since the pusher does not run where PostgreSQL runs this.
  if (opts.credentialsFile) argv.push('--credentials-file', path.resolve(opts.credentialsFile));
  return argv;
}

export async function run(opts: ArchivePushOptions): Promise<number> {
  // %p is relative to the data directory, PostgreSQL's working directory.
  const file = path.resolve(opts.path);
  const walFile = path.basename(file);
  const pgWalDir = path.dirname(file);
  checkWalFileName(walFile);
  const target = archiveTargetId(opts);
  if (consumePushedMarker(file, target)) return EXIT.ok;

  const { resolveRepoTarget, intOption } = await import('../context');
  const parallel = intOption(opts.parallel ?? '4', '--parallel');
  // Read-ahead only where PostgreSQL keeps archive_status: a real pg_wal.
  const ahead = opts.ahead !== false && parallel > 1 && existsSync(path.join(pgWalDir, 'archive_status'));
  let claimed = false;
  if (ahead) {
    const { claim, ensurePusher, waitForClaim } = await import('../../wal/ahead');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(markerDir(pgWalDir), { recursive: true, mode: 0o700 });
    ensurePusher(pgWalDir, target, [...targetArgv(opts), '--parallel', String(parallel)]);
    // The pusher may be archiving this very file: wait for it rather than push twice.
    await waitForClaim(pgWalDir, walFile);
    if (consumePushedMarker(file, target)) return EXIT.ok;
    claimed = claim(pgWalDir, walFile);
  }
  let repo: Awaited<ReturnType<typeof resolveRepoTarget>>['repo'] | undefined;
  let closeOthers: (() => void) | undefined;
  try {
    const target = await resolveRepoTarget(opts, 'archive');
    repo = target.repo;
    if (target.runbook && target.runbook.repositories.length > 1) {
      // Every repository of the runbook, by its repositoryPolicy (src/wal/push-repositories.ts).
      const { archiverFor } = await import('../../wal/push-repositories');
      const { queueDirOf } = await import('../../wal/catchup');
      const archiver = await archiverFor(target, queueDirOf(pgWalDir), (line) =>
        process.stderr.write(`lifeboat archive-push: ${line}\n`),
      );
      closeOthers = archiver.close;
      await archiver.push(file);
      // An upload given up on (a frozen store: connection open, no answer)
      // would hold this process until the SDK's socket timeout; everything
      // PostgreSQL relies on is written and fsynced by now.
      setTimeout(() => process.exit(), 1000).unref();
    } else {
      await pushWalFile(repo, target.cluster, file);
    }
    return EXIT.ok;
  } finally {
    if (claimed) (await import('../../wal/ahead')).release(pgWalDir, walFile);
    (repo as { destroy?: () => void } | undefined)?.destroy?.();
    closeOthers?.();
  }
}
