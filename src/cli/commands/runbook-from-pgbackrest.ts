// `lifeboat runbook from-pgbackrest --stanza <name> ...`: how a team whose
// cluster already archives with pgBackRest starts using Lifeboat without
// touching its archive_command (README "Moving from pgBackRest alone").
//   1. reads the primary's archive_mode and archive_command: the command must
//      already be `pgbackrest ... --stanza=<stanza> ... archive-push`, else it
//      refuses and says what it found (Lifeboat never changes it);
//   2. runs `pgbackrest info --output=json` for the stanza (as cluster.osUser)
//      and compares its system identifier with the primary's;
//   3. writes the runbook (engine: { kind: pgbackrest, stanza, configPath }),
//      never over an existing file, or prints it with --print;
//   4. runs `lifeboat check` and `lifeboat doctor` on it and lists what runs
//      on this engine today; the exit code is theirs.
// Nothing is written before 1 and 2 pass.
import { open } from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { PgBackRestEngine } from '../../engine/pgbackrest/engine';
import { LifeboatError, errorMessage } from '../../errors';
import { primaryClientConfig } from '../../pg/connect';
import { validateRunbookText } from '../../runbook/load';
import type { Runbook } from '../../runbook/schema';
import { EXIT } from '../run';
import { run as doctor } from './doctor';
import { engineCheck } from './engine-views';

export interface FromPgBackRestOptions {
  stanza: string;
  config?: string;
  name?: string;
  host: string;
  port: string;
  database: string;
  user: string;
  passwordEnv?: string;
  osUser: string;
  pgBin?: string;
  repository: string;
  restoreHost?: string;
  restoreDataDir: string;
  restorePort: string;
  rpoSeconds: string;
  rtoSeconds: string;
  out?: string;
  print?: boolean;
  check?: boolean;
  runbooksDir?: string;
}

/** What runs on a pgBackRest runbook today (every workflow and the warm standby), and what does not yet. */
export const ENGINE_WORKS = [
  'recoverToPointInTime (lifeboat recover): pgbackrest restore of the chosen backup, replay to the target, paused copy',
  'lifeboat backup --type full|diff|incr (and --schedule): pgbackrest backup',
  'lifeboat expire: pgbackrest expire, by the retention in its own configuration',
  'lifeboat backups, check, doctor: pgbackrest info, check and verify, the WAL chain from its listing',
  'lifeboat drill (and --schedule): pgbackrest restore into drill.dataDir, archive-mode off, a random target from its archive',
  'lifeboat checkpoint: the restore point through SQL, its segment waited for in the stanza (pgbackrest repo-ls)',
  'lifeboat repair: pgbackrest restore into drill.dataDir, archive-mode off, replayed to before (and on to after), compared and applied as always',
  'the warm standby (lifeboat standby build|status, its line in lifeboat check): pgbackrest restore --type=standby, archive-mode off, replaying through its archive-get; taken over by recoverToPointInTime, cloned by lifeboat drill --from-standby',
];
export const ENGINE_NOT_YET = ['archive-push/archive-get: pgBackRest keeps archiving as it does now'];

/** The stanza and configuration file an archive_command passes to pgbackrest archive-push; undefined when it is not one. */
export function pgBackRestPush(command: string): { stanza?: string; config?: string } | undefined {
  const words = command.trim().split(/\s+/);
  const bin = words.findIndex((w) => path.basename(w) === 'pgbackrest');
  if (bin < 0 || !words.slice(bin + 1).includes('archive-push')) return undefined;
  const option = (name: string): string | undefined => {
    for (let i = bin + 1; i < words.length; i++) {
      const w = words[i]!;
      if (w.startsWith(`--${name}=`)) return w.slice(name.length + 3).replace(/^['"]|['"]$/g, '');
      if (w === `--${name}`) return words[i + 1];
    }
    return undefined;
  };
  const stanza = option('stanza');
  const config = option('config');
  return { ...(stanza ? { stanza } : {}), ...(config ? { config } : {}) };
}

/** A YAML scalar for an option's text: plain when it reads back as the same string, else quoted (no option can add a key). */
const str = (v: string) =>
  /^[A-Za-z_/][A-Za-z0-9_./-]*$/.test(v) && !/^(true|false|null)$/i.test(v) ? v : JSON.stringify(v);
/** A whole number as a number; anything else quoted, so the schema names the field. */
const num = (v: string) => (/^\d+$/.test(v) ? v : JSON.stringify(v));

export function runbookYaml(o: FromPgBackRestOptions, name: string, configPath: string | undefined): string {
  const primary = [
    `host: ${str(o.host)}`,
    `port: ${num(o.port)}`,
    `database: ${str(o.database)}`,
    `user: ${str(o.user)}`,
    ...(o.passwordEnv ? [`passwordEnv: ${str(o.passwordEnv)}`] : []),
  ].join(', ');
  const engine = [
    `kind: pgbackrest`,
    `stanza: ${str(o.stanza)}`,
    ...(configPath ? [`configPath: ${str(configPath)}`] : []),
  ];
  return `# Written by lifeboat runbook from-pgbackrest; see runbooks/orders.example.yaml for
# every field (gates, capture, invariants, approvals, drill) and add yours.
# Secrets never go here: passwordEnv names a variable; pgBackRest's keys stay in
# its own configuration.
name: ${str(name)}
cluster:
  primary: { ${primary} }
  pgBin: ${str(o.pgBin ?? '/usr/lib/postgresql/15/bin')}
  osUser: ${str(o.osUser)}
# The base backups and the WAL archive are pgBackRest's; archive_command is left as it is.
engine: { ${engine.join(', ')} }
# Lifeboat's own repository: evidence, audit logs and recovery overlays only.
repository: { url: ${JSON.stringify(o.repository)} }
restore: { host: ${str(o.restoreHost ?? hostname())}, dataDir: ${str(o.restoreDataDir)}, port: ${num(o.restorePort)}, mode: side-by-side }
objectives: { rpoSeconds: ${num(o.rpoSeconds)}, rtoSeconds: ${num(o.rtoSeconds)} }
`;
}

/** archive_mode, archive_command and the system identifier, read from the primary. */
async function readPrimary(runbook: Runbook): Promise<{ mode: string; command: string; systemId: string }> {
  const client = new Client(primaryClientConfig(runbook));
  const p = runbook.cluster.primary;
  try {
    await client.connect();
  } catch (err) {
    throw new LifeboatError(
      'PG_UNREACHABLE',
      `cannot connect to the primary ${p.user}@${p.host}:${p.port}/${p.database}`,
      {
        hints: [errorMessage(err), 'check --host, --port, --database, --user and --password-env'],
        cause: err,
      },
    );
  }
  try {
    const { rows } = await client.query<{ mode: string; command: string; system_id: string }>(
      `select current_setting('archive_mode') as mode, current_setting('archive_command') as command,
              (select system_identifier::text from pg_control_system()) as system_id`,
    );
    return { mode: rows[0]!.mode, command: rows[0]!.command, systemId: rows[0]!.system_id };
  } finally {
    await client.end().catch(() => undefined);
  }
}

function refuse(what: string, hints: string[]): never {
  throw new LifeboatError('INPUT_INVALID', what, { hints: ['nothing was written', ...hints] });
}

export async function run(o: FromPgBackRestOptions): Promise<number> {
  const name = o.name ?? o.stanza;
  const out = o.print
    ? undefined
    : (o.out ?? path.join(o.runbooksDir ?? process.env.LIFEBOAT_RUNBOOKS_DIR ?? 'runbooks', `${name}.yaml`));
  // A first look at the file, so a refusal comes before the primary is asked; the write itself uses 'wx'.
  if (out) {
    const exists = await open(out, 'r').then(
      (f) => f.close().then(() => true),
      () => false,
    );
    if (exists)
      refuse(`${out} exists: from-pgbackrest never overwrites a runbook`, [
        `choose another file with --out, or move ${out} aside`,
      ]);
  }

  const draft = validateRunbookText(runbookYaml(o, name, o.config), out ?? 'the runbook');
  if (!draft.ok) refuse(`the options make a runbook that is not valid:\n${draft.errors.join('\n')}`, ['see --help']);
  const primary = await readPrimary(draft.runbook);
  const where = `the primary ${o.host}:${o.port}`;
  if (primary.mode === 'off')
    refuse(`${where} has archive_mode = off: no WAL reaches pgBackRest, so nothing can be replayed`, [
      `set archive_mode = on and archive_command = 'pgbackrest --stanza=${o.stanza} archive-push %p' (a restart), then run this again`,
    ]);
  const push = pgBackRestPush(primary.command);
  if (!push)
    refuse(
      `${where} does not archive with pgBackRest: its archive_command is ${JSON.stringify(primary.command)}, expected pgbackrest --stanza=${o.stanza} archive-push %p`,
      [
        'this command is for a cluster that already archives to a pgBackRest stanza; Lifeboat does not change archive_command',
        'for a cluster archiving with Lifeboat itself, copy runbooks/orders.example.yaml instead (no engine: block)',
      ],
    );
  if (push.stanza !== o.stanza)
    refuse(
      `${where} archives to pgBackRest stanza ${push.stanza ?? '(none named)'}, not ${o.stanza}: its archive_command is ${JSON.stringify(primary.command)}`,
      [push.stanza ? `run again with --stanza ${push.stanza}` : 'name the stanza in archive_command (--stanza=<name>)'],
    );
  const configPath = o.config ?? push.config;
  const notes: string[] = [];
  if (o.config && push.config && push.config !== o.config)
    notes.push(
      `the primary pushes with --config=${push.config}, the runbook reads ${o.config}: both must describe the same repository`,
    );

  const text = runbookYaml(o, name, configPath);
  const checked = validateRunbookText(text, out ?? 'the runbook');
  if (!checked.ok) refuse(`the runbook is not valid:\n${checked.errors.join('\n')}`, ['see --help']);
  const runbook = checked.runbook;
  const engine = new PgBackRestEngine(
    { kind: 'pgbackrest', stanza: o.stanza, ...(configPath ? { configPath } : {}) },
    { osUser: o.osUser },
  );
  const info = await engine.info();
  const db = info.db[info.db.length - 1];
  if (db && db.systemId !== primary.systemId)
    refuse(
      `pgBackRest stanza ${o.stanza} holds the backups of database system ${db.systemId}, but ${where} is system ${primary.systemId}`,
      ['is --config the configuration the primary archives with?'],
    );

  if (!out) {
    process.stdout.write(text);
    process.stderr.write(
      `not checked (--print): save it as runbooks/${name}.yaml, then lifeboat check --runbook ${name}\n`,
    );
    return EXIT.ok;
  }
  const file = await open(out, 'wx').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') refuse(`${out} exists: from-pgbackrest never overwrites a runbook`, []);
    throw new LifeboatError('INPUT_INVALID', `cannot write ${out}: ${err.message}`, { hints: ['nothing was written'] });
  });
  await file.writeFile(text).finally(() => file.close());
  const lines = [
    `wrote ${out} (runbook ${name}, engine pgbackrest, stanza ${o.stanza}${configPath ? `, config ${configPath}` : ''})`,
    `archive_command left as it is: ${primary.command}`,
    `pgbackrest info: ${info.backups.length} backup${info.backups.length === 1 ? '' : 's'}, system ${primary.systemId}`,
    ...notes.map((n) => `note: ${n}`),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  let code: number = EXIT.ok;
  if (o.check !== false) {
    process.stdout.write(`lifeboat check --runbook ${name}:\n`);
    code = await engineCheck(runbook, {});
    // The role's privileges, as lifeboat doctor reads them (pgBackRest's backups listed, not judged).
    process.stdout.write(`\nlifeboat doctor --runbook ${name}:\n`);
    code = Math.max(code, await doctor({ runbook: out }));
  }
  process.stdout.write(
    `\nruns on this engine now:\n${ENGINE_WORKS.map((l) => `  - ${l}\n`).join('')}` +
      `not yet:\n${ENGINE_NOT_YET.map((l) => `  - ${l}\n`).join('')}` +
      `next: add gates, invariants and approvals from runbooks/orders.example.yaml, then lifeboat runbook validate ${out}\n`,
  );
  return code;
}
