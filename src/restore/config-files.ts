// Server configuration a restored copy needs but a base backup may lack.
//
// pg_basebackup copies the data directory. Packaged installs (Debian and
// Ubuntu's pg_createcluster) keep postgresql.conf, pg_hba.conf and
// pg_ident.conf in /etc/postgresql/<version>/<cluster>, so their backups hold
// none of them, and PostgreSQL refuses to start without postgresql.conf
// ("could not access the server configuration file") or pg_hba.conf. The
// runbook can name copies on the restore host (restore.confFile,
// restore.hbaFile); what is still missing is written minimal, and said so.
import { chownSync, existsSync, promises as fs, statSync } from 'node:fs';
import * as path from 'node:path';
import { LifeboatError } from '../errors';
import type { Runbook } from '../runbook/schema';

/**
 * Settings that name other files or directories: copied from the primary's
 * postgresql.conf they would point the restored copy at the primary's data
 * directory or at includes that are not there. They are commented out.
 */
const PATH_SETTINGS =
  /^\s*(data_directory|hba_file|ident_file|external_pid_file|config_file|include_dir|include_if_exists|include)\b/;

export interface ConfigOutcome {
  /** One line per file Lifeboat supplied, for the step's summary and the evidence. */
  notes: string[];
}

/** Checks the runbook's files before anything is touched: a typo must not cost a restore. */
export function checkConfigSources(runbook: Runbook): void {
  for (const [field, file] of [
    ['restore.confFile', runbook.restore.confFile],
    ['restore.hbaFile', runbook.restore.hbaFile],
  ] as const) {
    if (file && !(existsSync(file) && statSync(file).isFile())) {
      throw new LifeboatError(
        'RUNBOOK_INVALID',
        `${field} names ${file}, which is not a file on restore host ${runbook.restore.host}`,
        {
          hints: [
            "copy the primary's file there (it is read when a backup has none of its own), or remove the field",
            'nothing was moved or changed',
          ],
        },
      );
    }
  }
}

export async function ensureServerConfig(dataDir: string, runbook: Runbook): Promise<ConfigOutcome> {
  const notes: string[] = [];
  const owner = statSync(dataDir);
  const write = async (name: string, text: string) => {
    const file = path.join(dataDir, name);
    await fs.writeFile(file, text, { mode: 0o600 });
    chownSync(file, owner.uid, owner.gid);
  };
  if (!existsSync(path.join(dataDir, 'pg_hba.conf'))) {
    const source = runbook.restore.hbaFile;
    if (!source) {
      throw new LifeboatError(
        'RUNBOOK_INVALID',
        `the base backup restored into ${dataDir} has no pg_hba.conf, so PostgreSQL cannot start there`,
        {
          hints: [
            'packaged installs keep it outside the data directory (Debian: /etc/postgresql/<version>/<cluster>/pg_hba.conf)',
            `put a copy on restore host ${runbook.restore.host} and name it in the runbook as restore.hbaFile, then retry this step (the restored files are kept and reused)`,
          ],
        },
      );
    }
    await write('pg_hba.conf', await fs.readFile(source, 'utf8'));
    notes.push(`pg_hba.conf from ${source}`);
  }
  if (!existsSync(path.join(dataDir, 'pg_ident.conf'))) {
    await write('pg_ident.conf', '# Written by Lifeboat: the base backup had no pg_ident.conf.\n');
    notes.push('pg_ident.conf written empty');
  }
  if (!existsSync(path.join(dataDir, 'postgresql.conf'))) {
    const source = runbook.restore.confFile;
    const header = `# Written by Lifeboat: the base backup had no postgresql.conf${source ? `; settings copied from ${source}` : ''}.\n# Lifeboat's recovery settings are in postgresql.auto.conf, which wins.\n`;
    const body = source
      ? (await fs.readFile(source, 'utf8'))
          .split('\n')
          .map((line) =>
            PATH_SETTINGS.test(line) ? `# disabled by Lifeboat (names a path of the primary): ${line}` : line,
          )
          .join('\n')
      : '';
    await write('postgresql.conf', header + body);
    notes.push(
      source
        ? `postgresql.conf from ${source} (path settings disabled)`
        : "postgresql.conf written minimal: the primary's settings (memory, archive_command, preload libraries) are not carried over; name them in restore.confFile",
    );
  }
  return { notes };
}
