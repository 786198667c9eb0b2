// archive-get with several repositories (runbook `repositories:`): the
// restored postmaster's restore_command names the first with --repo and the
// others, in runbook order, with --fallback-repo. Each WAL file is asked of
// the first; when it is unreachable, damaged (a sha256 that does not match,
// an object that does not decode) or lacks the file, the next is asked.
//
// "Not in the archive" (exit 1, the end of recovery) only when every
// repository answered that it lacks the file. One that could not be asked,
// or held a damaged copy, while no other served it, fails the call (exit
// 255): ending recovery early there would silently lose transactions.
//
// Who served what is left in the data directory (.lifeboat-wal-sources.jsonl,
// one line per file not served by the first) so replay-wal can put it in the
// evidence.
import { appendFile, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { errorMessage, withContext } from '../errors';
import type { Repository } from '../repository/types';
import { fetchWalFileWithRetry, type Fetched } from './get';

export const WAL_SOURCES_FILE = '.lifeboat-wal-sources.jsonl';

export interface WalSource {
  walFile: string;
  /** URL of the repository that served it. */
  servedBy: string;
  /** Repositories asked before it, and why they did not serve it. */
  skipped: Array<{ url: string; reason: string }>;
}

export async function fetchFromRepositories(
  first: Repository,
  fallbackUrls: string[],
  open: (url: string) => Promise<Repository>,
  cluster: string,
  walFile: string,
): Promise<{ fetched: Fetched; source: WalSource } | undefined> {
  const skipped: WalSource['skipped'] = [];
  let firstError: unknown;
  const opened: Repository[] = [];
  try {
    for (const [i, url] of [first.url, ...fallbackUrls].entries()) {
      let repo: Repository;
      try {
        repo = i === 0 ? first : await open(url);
        if (i > 0) opened.push(repo);
        // With somewhere else to go, an unreachable repository costs one retry, not four.
        const got = await fetchWalFileWithRetry(repo, cluster, walFile, fallbackUrls.length > 0 ? { attempts: 2 } : {});
        if (got) return { fetched: got, source: { walFile, servedBy: i === 0 ? first.url : url, skipped } };
        skipped.push({ url, reason: 'not there' });
      } catch (err) {
        firstError ??= err;
        skipped.push({ url, reason: errorMessage(err).split('\n', 1)[0] ?? '' });
      }
    }
  } finally {
    for (const r of opened) (r as { destroy?: () => void }).destroy?.();
  }
  if (firstError === undefined) return undefined;
  if (fallbackUrls.length === 0) throw firstError;
  throw withContext(
    `no repository could serve ${walFile} (${skipped.map((s) => `${s.url}: ${s.reason}`).join('; ')})`,
    firstError,
  );
}

/** Records, in the data directory PostgreSQL runs archive-get in, a file another repository than the first served. */
export async function recordWalSource(dataDir: string, source: WalSource): Promise<void> {
  await appendFile(path.join(dataDir, WAL_SOURCES_FILE), `${JSON.stringify(source)}\n`, { mode: 0o600 });
}

/** What replay-wal puts in its result: the files other repositories served, in order. */
export async function readWalSources(dataDir: string): Promise<WalSource[]> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, WAL_SOURCES_FILE), 'utf8');
  } catch {
    return [];
  }
  const out: WalSource[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as WalSource);
    } catch {
      /* a line cut by a crash */
    }
  }
  return out;
}
