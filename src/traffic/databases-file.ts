// The pgbouncer databases file: the lines pgbouncer.ini includes under
// [databases], `name = key=value key=value ...`. One line is rewritten to
// point at the promoted instance; every other line, and every other key of
// that line (pool_size, user, password...), stays as it was.
//
// The old file is copied aside as `<file>.lifeboat-<timestamp>` and never
// deleted; the new one is written to a temporary name and renamed over the
// old, so pgbouncer never reads half a file. A line may hold a password, so
// nothing here ever shows a line's text: only host, port and dbname.
import { constants } from 'node:fs';
import { access, chmod, chown, copyFile, open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError, errorMessage } from '../errors';
import type { RestoredTarget } from './types';

type Pair = [key: string, value: string];

export interface DatabaseLine {
  /** The file as given, and as found after symlinks (the file rename must replace). */
  file: string;
  realFile: string;
  text: string;
  /** 0-based index of the database's line. */
  index: number;
  pairs: Pair[];
  current: { host?: string; port?: string; dbname?: string };
}

/** Splits `host=a port=5432 password='x y'` as pgbouncer does (loader.c: cstr_get_pair). */
export function parseConnstr(value: string): Pair[] | undefined {
  const pairs: Pair[] = [];
  let i = 0;
  const skipWs = () => {
    while (i < value.length && /\s/.test(value[i] ?? '')) i++;
  };
  for (;;) {
    skipWs();
    if (i >= value.length) return pairs;
    const keyStart = i;
    while (i < value.length && value[i] !== '=' && value[i] !== ' ') i++;
    const key = value.slice(keyStart, i);
    skipWs();
    if (key === '' || value[i] !== '=') return undefined;
    i++;
    skipWs();
    let v = '';
    if (value[i] === "'") {
      i++;
      for (;;) {
        if (i >= value.length) return undefined;
        if (value[i] === "'") {
          if (value[i + 1] === "'") {
            v += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += value[i];
        i++;
      }
    } else {
      const start = i;
      while (i < value.length && value[i] !== ' ') i++;
      v = value.slice(start, i);
    }
    if (v === '') return undefined;
    pairs.push([key, v]);
  }
}

export function formatConnstr(pairs: Pair[]): string {
  return pairs.map(([k, v]) => `${k}=${/^[^\s']+$/.test(v) ? v : `'${v.replace(/'/g, "''")}'`}`).join(' ');
}

/** `name = value` with the name bare or "double ""quoted""" (libusual's ini syntax). */
const LINE_RE = /^(\s*)("(?:[^"]|"")*"|[^\s=;#"[][^\s=]*)(\s*=\s*)(.*?)\s*$/;

function lineName(raw: string): string {
  return raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw;
}

function fail(what: string, hints: string[], cause?: unknown): LifeboatError {
  return new LifeboatError('TRAFFIC_SWITCH_FAILED', what, { hints, cause });
}

/** Reads the file and finds the database's line; fails (before anything is paused) when it cannot be rewritten. */
export async function readDatabaseLine(file: string, database: string): Promise<DatabaseLine> {
  let realFile: string;
  let text: string;
  try {
    realFile = await realpath(file);
    text = await readFile(realFile, 'utf8');
  } catch (err) {
    throw fail(
      `cannot read the pgbouncer databases file ${file}: ${errorMessage(err)}`,
      [
        'traffic.pgbouncer.databasesFile must be the file pgbouncer.ini includes under [databases] (%include <file>)',
        'resume-traffic runs on the worker of traffic.pgbouncer.host (default: restore.host): the file must be on that host',
      ],
      err,
    );
  }
  const lines = text.split('\n');
  const found: number[] = [];
  lines.forEach((line, i) => {
    const m = LINE_RE.exec(line);
    if (m && lineName(m[2] ?? '') === database) found.push(i);
  });
  const [index] = found;
  if (index === undefined) {
    throw fail(`the pgbouncer databases file ${file} has no line for database ${database}`, [
      `add one such as: ${database} = host=<old primary> port=5432 dbname=<database>`,
      'or set traffic.pgbouncer.databasesFile to the file that holds it',
    ]);
  }
  if (found.length > 1) {
    throw fail(
      `the pgbouncer databases file ${file} has ${found.length} lines for database ${database} (lines ${found.map((i) => i + 1).join(', ')})`,
      ['pgbouncer uses the last one; leave one line per database so it is clear which is switched'],
    );
  }
  const m = LINE_RE.exec(lines[index] ?? '');
  const pairs = m ? parseConnstr(m[4] ?? '') : undefined;
  if (!pairs) {
    // Not the line itself: it may hold a password.
    throw fail(
      `line ${index + 1} of ${file} (database ${database}) is not a list of key=value settings that Lifeboat can rewrite`,
      ['check its quoting: values with spaces go in single quotes, a quote inside is doubled'],
    );
  }
  const get = (k: string) => pairs.find(([key]) => key === k)?.[1];
  // rename() needs to create a file in the directory; root passes this check
  // anyway, a worker running as another user fails here rather than after PAUSE.
  try {
    await access(path.dirname(realFile), constants.W_OK);
  } catch (err) {
    throw fail(
      `cannot write in ${path.dirname(realFile)}, the directory of the pgbouncer databases file ${file}: ${errorMessage(err)}`,
      [
        'the worker of the traffic host needs write access to that directory (the file is replaced by rename, atomically)',
      ],
      err,
    );
  }
  return {
    file,
    realFile,
    text,
    index,
    pairs,
    current: { host: get('host'), port: get('port'), dbname: get('dbname') },
  };
}

export function pointsAt(line: DatabaseLine, t: RestoredTarget): boolean {
  return line.current.host === t.host && line.current.port === String(t.port) && line.current.dbname === t.database;
}

/** The file's text with the database's line pointing at the target. */
export function rewrittenText(line: DatabaseLine, t: RestoredTarget): string {
  const wanted: Pair[] = [
    ['host', t.host],
    ['port', String(t.port)],
    ['dbname', t.database],
  ];
  const pairs = line.pairs.map(([k, v]): Pair => [k, wanted.find(([w]) => w === k)?.[1] ?? v]);
  for (const w of wanted) if (!pairs.some(([k]) => k === w[0])) pairs.push(w);
  const lines = line.text.split('\n');
  const old = lines[line.index] ?? '';
  const m = LINE_RE.exec(old);
  const cr = old.endsWith('\r') ? '\r' : '';
  lines[line.index] = `${m?.[1] ?? ''}${m?.[2] ?? ''}${m?.[3] ?? ' = '}${formatConnstr(pairs)}${cr}`;
  return lines.join('\n');
}

/** 20260604T143159Z: sorts by time, no characters a shell or a copy tool trips on. */
export function fileStamp(at = new Date()): string {
  return at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/**
 * Copies the file aside, then replaces it atomically with `text`, keeping
 * its owner and mode (pgbouncer, running as its own user, must still read
 * it). Returns where the old file was kept.
 */
export async function replaceDatabasesFile(line: DatabaseLine, text: string, stamp = fileStamp()): Promise<string> {
  const file = line.realFile;
  const st = await stat(file);
  // Same second, or a clock gone back: never overwrite an earlier copy.
  let kept = `${file}.lifeboat-${stamp}`;
  for (let n = 2; ; n++) {
    try {
      await copyFile(file, kept, constants.COPYFILE_EXCL);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n > 100) throw err;
      kept = `${file}.lifeboat-${stamp}-${n}`;
    }
  }
  await keepOwnerAndMode(kept, st);

  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.lifeboat-tmp-${process.pid}`);
  try {
    const fh = await open(tmp, 'w', st.mode & 0o7777);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await keepOwnerAndMode(tmp, st);
    await rename(tmp, file);
  } catch (err) {
    // The temporary file is ours (our name, our pid); the original is untouched.
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  // The rename is durable once the directory entry is.
  const dir = await open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return kept;
}

async function keepOwnerAndMode(file: string, st: { uid: number; gid: number; mode: number }): Promise<void> {
  const mine = await stat(file);
  if (mine.uid !== st.uid || mine.gid !== st.gid) await chown(file, st.uid, st.gid);
  // After chown: it clears set-id bits.
  await chmod(file, st.mode & 0o7777);
}
