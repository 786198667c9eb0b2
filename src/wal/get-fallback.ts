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
  /** Who fetched it: restore_command (absent, as before) or the prefetcher, ahead of replay (src/restore/prefetch.ts). */
  via?: 'prefetcher';
}

export async function fetchFromRepositories(
  first: Repository,
  fallbackUrls: string[],
  open: (url: string) => Promise<Repository>,
  cluster: string,
  walFile: string,
  /** Leave the fallbacks `open` returned open: the prefetcher keeps them for its whole life. */
  { keepOpen = false }: { keepOpen?: boolean } = {},
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
    if (!keepOpen) for (const r of opened) (r as { destroy?: () => void }).destroy?.();
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

/**
 * The prefetcher's reader with --fallback-repo: each file from the first
 * repository, else from the next that serves it intact, as archive-get
 * does; one another repository served is recorded in the data directory
 * (`dataDir`, when the prefetcher runs in one) with via: prefetcher, since
 * archive-get then takes it from the spool and never asks. The fallbacks
 * are opened once and kept (`close` releases them).
 */
export function fallbackReader(
  fallbackUrls: string[],
  open: (url: string) => Promise<Repository>,
  dataDir: string | undefined,
): { read: (repo: Repository, cluster: string, walFile: string) => Promise<Fetched | undefined>; close: () => void } {
  const cache = new Map<string, Promise<Repository>>();
  const openOnce = (url: string) => {
    let p = cache.get(url);
    if (!p) {
      p = open(url);
      // A failed open is tried again next time (the store may be back).
      p.catch(() => cache.delete(url));
      cache.set(url, p);
    }
    return p;
  };
  return {
    read: async (repo, cluster, walFile) => {
      const got = await fetchFromRepositories(repo, fallbackUrls, openOnce, cluster, walFile, { keepOpen: true });
      if (got && got.source.servedBy !== repo.url && dataDir)
        await recordWalSource(dataDir, { ...got.source, via: 'prefetcher' });
      return got?.fetched;
    },
    close: () => {
      for (const p of cache.values())
        void p.then(
          (r) => (r as { destroy?: () => void }).destroy?.(),
          () => undefined,
        );
    },
  };
}

/** What replay-wal puts in its result: the files other repositories served, in the order they were fetched. */
export async function readWalSources(dataDir: string): Promise<WalSource[]> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, WAL_SOURCES_FILE), 'utf8');
  } catch {
    return [];
  }
  // One per file: the prefetcher and restore_command may both have fetched
  // one (PostgreSQL asked before the spool had it); the first line says who served it first.
  const out = new Map<string, WalSource>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const source = JSON.parse(line) as WalSource;
      if (!out.has(source.walFile)) out.set(source.walFile, source);
    } catch {
      /* a line cut by a crash */
    }
  }
  return [...out.values()];
}
