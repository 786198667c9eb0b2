// `lifeboat archive-push %p`: PostgreSQL's archive_command (shared/DESIGN.md §6).
//
// PostgreSQL starts this once per WAL file and waits, so start-up time is
// archive throughput: the marker check below runs before the repository,
// the runbook loader or the AWS SDK is loaded, and a file pushed ahead by an
// earlier call costs one read and one sha256, no network.
//
// Exit 0 only when the file is durably archived (or already was, with the
// same content). Any other exit makes PostgreSQL keep the file and retry.
import * as path from 'node:path';
import { errorMessage } from '../../errors';
import { checkWalFileName, pushAhead, pushWalFile } from '../../wal/push';
import { archiveTargetId, consumePushedMarker } from '../../wal/marker';
import { EXIT } from '../run';

export interface ArchivePushOptions {
  path: string;
  repo?: string;
  cluster?: string;
  runbook?: string;
  runbooksDir?: string;
  parallel?: string;
  ahead?: boolean;
}

export async function run(opts: ArchivePushOptions): Promise<number> {
  // %p is relative to the data directory, PostgreSQL's working directory.
  const file = path.resolve(opts.path);
  checkWalFileName(path.basename(file));
  const target = archiveTargetId(opts);
  if (consumePushedMarker(file, target)) return EXIT.ok;

  const { resolveRepoTarget, intOption } = await import('../context');
  const parallel = intOption(opts.parallel ?? '4', '--parallel');
  const { repo, cluster } = await resolveRepoTarget(opts);
  try {
    const ahead =
      opts.ahead !== false && parallel > 1
        ? pushAhead(repo, cluster, path.dirname(file), path.basename(file), parallel - 1, target).catch((error: unknown) => ({
            pushed: [],
            failed: [{ walFile: '(read-ahead)', error }],
          }))
        : undefined;
    try {
      await pushWalFile(repo, cluster, file);
    } finally {
      // PostgreSQL logs our stderr; one line per file it will ask about
      // again anyway, where the full error is reported.
      for (const f of (await ahead)?.failed ?? []) {
        process.stderr.write(`lifeboat archive-push: read-ahead of ${f.walFile} failed: ${firstLine(errorMessage(f.error))}\n`);
      }
    }
    return EXIT.ok;
  } finally {
    (repo as { destroy?: () => void }).destroy?.();
  }
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? '';
}
