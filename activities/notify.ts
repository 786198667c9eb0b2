// Notifications (DESIGN.md §1: a failed drill notifies). One activity for
// every kind of event; workflows call it with a few retries and record what
// happened, and a notifier that keeps failing never fails the run.
import { postWebhook, type NotifyEvent, type NotifyResult } from '../src/notify/webhook';
import { loadRunbook } from '../src/runbook/load';
import { lifeboatActivity } from './failure';

/**
 * Posts the event to the runbook's webhook; throws (and is retried) when the
 * webhook does not answer 2xx. Run twice: the receiver may get one event
 * twice, which a notification can afford.
 */
export async function notify(input: { runbook: string; event: NotifyEvent }): Promise<NotifyResult> {
  return lifeboatActivity(async () => postWebhook(await loadRunbook(input.runbook), input.event));
}
