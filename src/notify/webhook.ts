// Notifications to the runbook's webhook (`notify.webhookUrlEnv`): a JSON
// POST that chat tools, pagers and our tests' HTTP servers all accept. The
// URL is a secret (it often carries a token), so it is read from the
// worker's environment and never written into a result or an error.
import type { Runbook } from '../runbook/schema';

/** What happened, for the people on call. `kind` is stable; bots switch on it. */
export type NotifyKind = 'drill-failed' | 'objective-missed' | 'archive-stale' | 'backup-failed' | 'escalation';

export interface NotifyEvent {
  kind: NotifyKind;
  workflowId: string;
  runId?: string;
  /** One line a human reads in the chat channel. */
  text: string;
  /** Anything structured the receiver may want (figures, step, error type). */
  details?: Record<string, unknown>;
}

export interface NotifyResult {
  delivered: boolean;
  detail: string;
}

/**
 * Posts `{ kind, runbook, workflowId, runId, text, details, at }`. No webhook
 * configured, or its variable unset on this worker, is an answer, not an
 * error (`delivered: false` says why); a webhook that does not answer 2xx
 * throws, so the activity is retried.
 */
export async function postWebhook(runbook: Runbook, event: NotifyEvent, now = new Date()): Promise<NotifyResult> {
  const env = runbook.notify?.webhookUrlEnv;
  if (!env) return { delivered: false, detail: `runbook ${runbook.name} has no notify.webhookUrlEnv: ${event.text}` };
  const url = process.env[env];
  if (!url) return { delivered: false, detail: `environment variable ${env} is not set on this worker` };
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...event, runbook: runbook.name, at: now.toISOString() }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    // The fetch error can quote the URL; name the variable instead.
    throw new Error(`the webhook in $${env} did not answer: ${(err as Error).name}`);
  }
  if (!res.ok) throw new Error(`the webhook in $${env} answered HTTP ${res.status}`);
  return { delivered: true, detail: `posted ${event.kind} to $${env} (HTTP ${res.status})` };
}
