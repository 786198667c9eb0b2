// The options several `lifeboat` commands share, each declared once here:
// the groups (a runbook, a repository, a Temporal server, a recovery target,
// following a started run) and the single options whose name and meaning
// recur (--json, --no-wait, --incident, ...). A command passes its own help
// text where the option says something of its own there.
import { Option, type Command } from 'commander';

const RUNBOOK_HELP = 'runbook name (in --runbooks-dir) or path to a runbook YAML file';

/** The argument parser of an option that may be given again: its values, in order. */
export const repeatable = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export const runbookOption = (help = RUNBOOK_HELP) => new Option('--runbook <name|file>', help);

export const runbooksDirOption = (
  help = 'where runbook names are looked up (env LIFEBOAT_RUNBOOKS_DIR, default ./runbooks)',
) => new Option('--runbooks-dir <dir>', help);

export const jsonOption = (help = 'print the result as JSON') => new Option('--json', help);

export const noWaitOption = () => new Option('--no-wait', 'print the workflow id and return at once');

export const incidentOption = () =>
  new Option('--incident <id>', 'incident reference, e.g. INC-1234 (shown in the UI and the evidence)');

export const commentOption = () => new Option('--comment <text>', 'a comment kept with the decision');

export const fallbackRepoOption = () =>
  new Option(
    '--fallback-repo <url>',
    "with --repo: another repository of the runbook's, asked (in the order given) when --repo is unreachable, holds a damaged copy or lacks the file",
  ).argParser(repeatable);

/** --runbook and --runbooks-dir: the runbook a command works on. */
export const runbookOptions = (cmd: Command, runbookHelp = RUNBOOK_HELP) =>
  cmd.addOption(runbookOption(runbookHelp)).addOption(runbooksDirOption());

/** A runbook, or a repository given by its URL, and where that repository's secrets are. */
export const repoOptions = (cmd: Command) =>
  cmd
    .addOption(runbookOption())
    .option('--repo <url>', 'repository URL (file:///path or s3://bucket/prefix) instead of a runbook')
    .option('--cluster <name>', 'cluster name in the repository (with --repo)')
    .addOption(runbooksDirOption())
    .option(
      '--credentials-file <path>',
      "read the repository's secrets from this file (JSON, mode 0600, owned by the user running this) instead of the environment (env LIFEBOAT_CREDENTIALS_FILE)",
    )
    .option(
      '--encryption-key <id=VARIABLE>',
      "with --repo: an encrypted repository's key, as its id and the environment variable (or /path/to/file) holding it; " +
        'repeat for previous keys, the first is used to write (a runbook names its keys in repository.encryption)',
      repeatable,
    )
    .option('--read-unencrypted', 'with --encryption-key: also serve objects written before encryption was turned on');

// The Temporal CLI's names and its environment configuration
// (src/client/temporal-config.ts): flags, then TEMPORAL_* variables, then the profile.
export const temporalOptions = (cmd: Command) =>
  cmd
    .option(
      '--address <host:port>',
      "Temporal frontend (env TEMPORAL_ADDRESS, else the profile's address, default 127.0.0.1:7233)",
    )
    .option('--namespace <ns>', 'Temporal namespace (env TEMPORAL_NAMESPACE, else the profile\'s, default "default")')
    .option(
      '--profile <name>',
      'profile of the Temporal config file (env TEMPORAL_PROFILE, default "default"), as the Temporal CLI reads it',
    )
    .option(
      '--config-file <path>',
      'Temporal config file, TOML (env TEMPORAL_CONFIG_FILE, default ~/.config/temporalio/temporal.toml)',
    )
    .option(
      '--tls',
      'connect with TLS (env TEMPORAL_TLS; on by default with a TLS profile, a certificate or an API key in TEMPORAL_API_KEY)',
    )
    .option('--tls-cert-path <path>', 'client certificate for mTLS, PEM (env TEMPORAL_TLS_CLIENT_CERT_PATH)')
    .option('--tls-key-path <path>', 'client key for mTLS, PEM (env TEMPORAL_TLS_CLIENT_KEY_PATH)')
    .option(
      '--tls-ca-path <path>',
      "CA that signed the server's certificate, PEM (env TEMPORAL_TLS_SERVER_CA_CERT_PATH)",
    )
    .option('--tls-server-name <name>', 'server name to verify the certificate against (env TEMPORAL_TLS_SERVER_NAME)')
    .option(
      '--ui-url <url>',
      'Temporal Web UI address for links to a run (env LIFEBOAT_UI_URL; none for a server not on this machine)',
    );

/** The --to-... target of a recovery or a drill (src/cli/target-options.ts reads them). */
export const targetOptions = (cmd: Command) =>
  cmd
    .option(
      '--to-time <iso>',
      'recover up to this time, ISO 8601 with its zone: 2026-06-04T14:31:59Z or 2026-06-04T16:31:59+02:00',
    )
    .option('--to-name <name>', 'recover up to a restore point (pg_create_restore_point, lifeboat checkpoint)')
    .option('--to-lsn <lsn>', 'recover up to a WAL position, e.g. 0/3000060')
    .option('--to-xid <xid>', 'recover up to and including this transaction id')
    .option('--to-latest', 'recover to the end of the archived WAL');

/** A run the CLI starts (recover, repair): its id, and watching it to the end. */
export const startedRunOptions = (cmd: Command, kind: 'recover' | 'repair') =>
  cmd
    .option('--workflow-id <id>', `workflow id (default ${kind}-<runbook>-<time>)`)
    .option(
      '--follow',
      'after starting, watch it like `status --watch` until it ends; exit 0 when it completes, 1 when not',
    )
    .option('--interval <s>', 'with --follow: seconds between looks', '2')
    .addOption(jsonOption('print the started run (and with --follow each change) as JSON'));
