// `lifeboat grants`, `doctor` (least privilege, issue 11) and `chatops` (chat
// bots deciding as mapped approvers, DESIGN.md §1, §4.2): who may do what.
import type { Command } from 'commander';
import { runCommand } from '../run';
import { jsonOption, runbookOptions, temporalOptions } from './options';

export function declareAccess(program: Command): void {
  runbookOptions(
    program
      .command('grants')
      .description(
        "print the exact SQL that gives the runbook's role (cluster.primary.user) what Lifeboat needs and nothing more, " +
          'each line with a comment saying why; nothing else goes to stdout. Run it as a superuser connected to the ' +
          "runbook's database on the primary, before the next base backup; safe to run again; it sets no password",
      )
      .addHelpText(
        'after',
        `
Example:
  lifeboat grants --runbook bank | psql -h db1 -U postgres -d bank -v ON_ERROR_STOP=1 -f -
  lifeboat doctor --runbook bank      # checks each piece as the role
  lifeboat backup --runbook bank      # a restored copy has the grants of its backup, not those made since
Role attributes (REPLICATION, CREATEROLE) and memberships (pg_signal_backend) hold in the whole cluster; EXECUTE on
functions and table privileges exist per database, so the script refuses to run in another database.
pg_basebackup also needs a pg_hba.conf line for replication, which no SQL can grant:
  host  replication  <role>  <worker address>/32  scram-sha-256
With --repair-tables, also what lifeboat repair needs for those tables (SELECT, INSERT, UPDATE, their sequences,
TEMPORARY, a schema for lifeboat_repair_audit); grant it before the backup a repair restores.`,
      )
      .option(
        '--repair-tables <t,...>',
        'also grant what lifeboat repair needs for these tables (comma-separated, e.g. public.orders,public.payments)',
      ),
  ).action((opts) => runCommand(() => import('../commands/grants'), opts));

  runbookOptions(
    program
      .command('doctor')
      .description(
        "connect to the primary as the runbook's role and name every privilege it lacks with the exact SQL that grants it, " +
          'and for every base backup whether the privileges recorded when it was taken let a restored copy do its part ' +
          "(invariants, sequence check, replay pause, gates re-asserted, outbox, the drill's smoke write); exits 0 when " +
          'nothing is missing, 1 when something is (or the newest backup lacks a piece)',
      )
      .addOption(jsonOption('print {ok, primary: {missing, notes}, backups} as JSON'))
      .addHelpText(
        'after',
        `
Run it after lifeboat grants and after every change to the runbook's invariants, capture queries or gates, and on a
schedule: a missing grant found on a Tuesday is not found during the incident. Recoveries and drills run the same
check in preflight and stop with PRIVILEGE_MISSING, touching nothing, when a piece is missing.
  lifeboat doctor --runbook bank --repair-tables ledger.entries,ledger.accounts   # and what a repair of them needs`,
      )
      .option(
        '--repair-tables <t,...>',
        'also check, on the primary, what lifeboat repair needs for these tables (as lifeboat grants --repair-tables grants it)',
      ),
  ).action((opts) => runCommand(() => import('../commands/doctor'), opts));

  temporalOptions(
    program
      .command('chatops')
      .description(
        'serve the HTTP endpoint for chat bots: Slack slash commands, the Approve / Reject buttons of the approval message and a JSON API send the `decide` update or read `status` ' +
          "as the approver the chat user is mapped to (--users); every POST must carry Slack's request signature",
      )
      .option('--port <port>', 'port to listen on (0: any free port)', '8787')
      .option('--host <host>', 'address to listen on; keep it on loopback behind a TLS proxy', '127.0.0.1')
      .option(
        '--users <file>',
        'chat user -> approver table, YAML or JSON: "slack:U024BE7LH: alice" lines, or a list of {chatUser, approver} (env LIFEBOAT_CHATOPS_USERS)',
      )
      .option(
        '--secret-env <name>',
        'the environment variable holding the signing secret (never a flag)',
        'LIFEBOAT_CHATOPS_SIGNING_SECRET',
      )
      .option('--rate <n>', 'requests a minute per chat user, beyond which 429', '20')
      .option('--command <name>', 'the slash command shown in help and usage lines', '/lifeboat')
      .option(
        '--redis-url-env <name>',
        'the environment variable holding a redis:// URL: replay guard and rate limit shared by every replica (without: in this process, run one replica)',
      )
      .addHelpText(
        'after',
        `
Endpoints:
  POST /slack/commands  a Slack slash command (form-encoded, user_id and text): approve|retry <workflowId> <step> [comment],
                        reject|skip|abort <workflowId> <step> <reason>, status <workflowId>, help
  POST /slack/interactions  the Slack app's interactivity Request URL: Approve / Reject pressed on the approval message
                        a runbook with notify.slack posts; the message is updated through its response_url
  POST /v1/decide       {"workflowId", "step", "decision", "user": "ops:bob", "comment"?, "reason"?}
  POST /v1/status       {"workflowId", "user"}
  GET  /healthz         {"ok": true, "temporal": true|false}; no signature needed
Every POST: X-Slack-Request-Timestamp (Unix seconds) and X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<raw body>">.
Answers, first failing check wins:
  401 unsigned, bad signature, timestamp more than 5 min off    409 the same signed request again (replay)
  400 malformed   429 over --rate (Retry-After)   403 unmapped chat user, or not an approver of the waiting step
  404 unknown run   409 run ended, or that step is not waiting   422 refused by the workflow   503 Temporal unreachable
  200 accepted ({"accepted": true, "state": ...})
/slack/commands answers usage mistakes and refusals with 200 and an ephemeral text, since Slack shows only a 200's
text; 401, 409 (replay), 429, and 400 for a form without user_id stay non-2xx. X-Lifeboat-Outcome names the outcome.
A slash command Temporal takes over 2.5 s to answer gets "follows" at once, and the outcome through its response_url.
With --redis-url-env, a Redis that does not answer refuses every request (503, or an ephemeral Slack text): fail closed.`,
      ),
  ).action((opts) => runCommand(() => import('../commands/chatops'), opts));
}
