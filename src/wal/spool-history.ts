// Timeline history files in the prefetch spool (src/wal/spool.ts Spool), so
// that PostgreSQL's history probes are answered by bin/lifeboat without Node.
//
// At start-up (and, in standby mode, every wal_retrieve_retry_interval while
// it waits for WAL) PostgreSQL asks restore_command for the history file of
// its timeline T and then probes T+1, T+2, ... until one is missing: a
// nonzero exit means "not in the archive". The follower (Spool.follow) makes
// the same walk every HISTORY_REFRESH_MS: a history file the archive has is
// fetched, verified and spooled like a segment; for the first one it does
// not have it writes `<name>.absent`, holding the archive target, whose
// mtime is the moment the answer stops being trusted (the probe's start +
// ABSENT_TTL_MS). bin/lifeboat answers exit 1 for that name only while the
// marker's mtime is still ahead of a file it touches (`: > .now`, then
// `[ marker -nt .now ]`: no clock and no process in sh).
//
// Why a short life is safe: a history file archived after the probe (another
// copy promoted in the meantime) is hidden at most ABSENT_TTL_MS after the
// last probe that missed it. A live follower probes again every
// HISTORY_REFRESH_MS and replaces the marker as soon as the file is there; a
// follower that died or hangs on the store cannot renew it, so the marker
// expires and every probe goes to Node, which asks the repository. PostgreSQL
// itself rescans for a new timeline only every 5 s while waiting, so a
// promotion elsewhere is noticed at most ABSENT_TTL_MS later than without
// the marker: a restore started that much earlier would have seen the same.
// A system clock set back while a marker lives stretches its life by as
// much; a marker never makes a file appear, only a probe fail.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { historyFileName } from './names';

export const HISTORY_REFRESH_MS = 5_000;
export const ABSENT_TTL_MS = 15_000;
/** Timelines walked past the replay's own at most: PostgreSQL stops at the first gap too. */
const MAX_PROBES = 32;
const ABSENT_SUFFIX = '.absent';

/** What of the spool this needs (Spool in src/wal/spool.ts). */
export interface HistorySpool {
  readonly dir: string;
  readonly target: string;
  store(walFile: string, fetched: { content: Buffer; sha256: string }): Promise<void>;
}

/**
 * Walks the history files from `timeline` up: spools those the archive has
 * (fetched and verified by `fetch`), marks the first it lacks as absent and
 * drops every other absent marker. A failed fetch throws before any marker
 * is written: the old one then expires by itself.
 */
export async function refreshHistories(
  spool: HistorySpool,
  fetch: (walFile: string) => Promise<{ content: Buffer; sha256: string } | undefined>,
  timeline: number,
  now: () => number = Date.now,
): Promise<string | undefined> {
  const startedAt = now();
  const names = new Set(await fs.readdir(spool.dir));
  // Timeline 1 has no history file; PostgreSQL never asks for it.
  for (let tli = Math.max(2, timeline); tli < Math.max(2, timeline) + MAX_PROBES; tli++) {
    const name = historyFileName(tli);
    if (names.has(name) && names.has(`${name}.sha256`)) continue;
    const got = await fetch(name);
    if (got) {
      await fs.rm(path.join(spool.dir, `${name}${ABSENT_SUFFIX}`), { force: true });
      await spool.store(name, got);
      continue;
    }
    await writeAbsent(spool, name, startedAt + ABSENT_TTL_MS);
    await Promise.all(
      [...names]
        .filter((n) => n.endsWith(ABSENT_SUFFIX) && n !== `${name}${ABSENT_SUFFIX}`)
        .map((n) => fs.rm(path.join(spool.dir, n), { force: true })),
    );
    return name;
  }
  return undefined;
}

/**
 * `<name>.absent` with the target inside and its expiry as mtime, appearing
 * whole (rename). A marker already there for this target only gets its new
 * expiry: no new directory entry every few seconds, which could make a
 * removal of the spool under a live follower fail (ENOTEMPTY).
 */
async function writeAbsent(spool: HistorySpool, name: string, expiresAt: number): Promise<void> {
  const file = path.join(spool.dir, `${name}${ABSENT_SUFFIX}`);
  const expires = new Date(expiresAt);
  if ((await fs.readFile(file, 'utf8').catch(() => '')) === `${spool.target}\n`) {
    await fs.utimes(file, expires, expires);
    return;
  }
  const tmp = `${file}.tmp`;
  try {
    await fs.writeFile(tmp, `${spool.target}\n`, { mode: 0o600 });
    await fs.utimes(tmp, expires, expires);
    await fs.rename(tmp, file);
  } finally {
    await fs.rm(tmp, { force: true });
  }
}
