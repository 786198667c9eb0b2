// Markers of WAL files that a read-ahead push archived before PostgreSQL
// asked for them (pg_wal/.lifeboat-pushed/<name>). PostgreSQL calls
// archive_command for one file at a time, and for a file already pushed the
// whole call is this check: bin/lifeboat (sh) answers a marker hit without
// starting Node, and archive-push checks again before loading anything else.
//
// A marker holds the file's identity when it was pushed (device, inode, size,
// modification time in ns), its sha256 and the archive target. PostgreSQL
// never rewrites a WAL file it has marked ready, so an unchanged identity
// means unchanged bytes and the 16 MB need not be hashed again; any write
// would change the modification time, and a recycled segment is a new name.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const PUSHED_MARKER_DIR = '.lifeboat-pushed';

/** Where archive-push sends WAL, as written in archive_command; markers are valid only for the same target. */
export function archiveTargetId(opts: { repo?: string; runbook?: string; cluster?: string }): string {
  return opts.runbook
    ? `runbook=${opts.runbook} cluster=${opts.cluster ?? ''}`
    : `repo=${opts.repo ?? ''} cluster=${opts.cluster ?? ''}`;
}

export function markerDir(pgWalDir: string): string {
  return path.join(pgWalDir, PUSHED_MARKER_DIR);
}

/**
 * dev:ino:size:mtime (seconds.nanoseconds) of a file, or undefined when it
 * cannot be read. The form is GNU stat's `%d:%i:%s:%.9Y`, so bin/lifeboat
 * can check a marker without starting Node.
 */
export function fileIdentity(file: string): string | undefined {
  try {
    const st = fs.statSync(file, { bigint: true });
    const sec = st.mtimeNs / 1_000_000_000n;
    const nsec = (st.mtimeNs % 1_000_000_000n).toString().padStart(9, '0');
    return `${st.dev}:${st.ino}:${st.size}:${sec}.${nsec}`;
  } catch {
    return undefined;
  }
}

export function markerText(identity: string, sha256: string, target: string): string {
  return `${identity} ${sha256} ${target}\n`;
}

export async function writeMarker(pgWalDir: string, walFile: string, text: string): Promise<void> {
  const dir = markerDir(pgWalDir);
  const tmp = path.join(dir, `.${walFile}.${process.pid}.tmp`);
  await fs.promises.writeFile(tmp, text, { mode: 0o600 });
  await fs.promises.rename(tmp, path.join(dir, walFile));
}

/**
 * True when a read-ahead push already archived exactly this file for the
 * same target. The marker is used once and removed either way: a file that
 * does not match is pushed (and checked against the archive) normally.
 */
export function consumePushedMarker(file: string, target: string): boolean {
  const marker = path.join(markerDir(path.dirname(file)), path.basename(file));
  let text: string;
  try {
    text = fs.readFileSync(marker, 'utf8');
  } catch {
    return false;
  }
  fs.rmSync(marker, { force: true });
  const [identity, sha, ...rest] = text.trim().split(' ');
  if (!identity || !sha || rest.join(' ') !== target) return false;
  return fileIdentity(file) === identity;
}
