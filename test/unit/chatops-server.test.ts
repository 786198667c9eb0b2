// The chat-ops server's front door, in process, against the test run's real
// Temporal but no recovery run: what each kind of bad request gets (status,
// outcome header, the text a chat user or a bot reads), the rate limit, the
// health probe, and that neither a reply nor the log ever holds the secret,
// a signature or a body.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedHeaders } from '../../src/chatops/auth';
import { startChatopsServer, type ChatopsServer } from '../../src/chatops/server';
import { freePort, waitFor } from '../harness/ports';
import { startTestWebhook } from '../harness/webhook';
import { temporalAddress } from '../harness/services';

const SECRET = 'unit-secret-5f1c0a9e';
const USERS = new Map([
  ['slack:UALICE', 'alice'],
  ['ops:alice', 'alice'],
]);
const logs: string[] = [];
const replies: string[] = [];
let server: ChatopsServer;

beforeAll(async () => {
  server = await startChatopsServer({
    port: 0,
    secret: SECRET,
    users: USERS,
    temporal: { address: temporalAddress(), namespace: 'default' },
    ratePerMinute: 3,
    log: (l) => logs.push(l),
  });
});
afterAll(async () => {
  await server?.close();
});

async function post(path: string, body: string, headers: Record<string, string> = signedHeaders(SECRET, body)) {
  const contentType = path === '/slack/commands' ? 'application/x-www-form-urlencoded' : 'application/json';
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    body,
    headers: { 'Content-Type': contentType, ...headers },
  });
  const text = await res.text();
  replies.push(text);
  return {
    status: res.status,
    outcome: res.headers.get('x-lifeboat-outcome'),
    retryAfter: res.headers.get('retry-after'),
    body: JSON.parse(text) as Record<string, unknown>,
  };
}

// Slack makes every body unique with its trigger_id; without one, two equal
// commands in the same second would carry the same signature (a replay).
let trigger = 0;
const slackForm = (userId: string, text: string) =>
  new URLSearchParams({
    command: '/lifeboat',
    user_id: userId,
    user_name: 'someone',
    text,
    trigger_id: `${process.pid}.${++trigger}`,
  }).toString();

describe('lifeboat chatops before any workflow is reached', () => {
  it('answers /healthz without a signature: up, and Temporal reachable', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, temporal: true });
  });

  it('refuses unsigned, badly signed and stale requests with 401, and a replay with 409', async () => {
    const body = JSON.stringify({ workflowId: 'recover-x', user: 'ops:alice' });
    expect(await post('/v1/status', body, {})).toEqual({
      status: 401,
      outcome: 'missing-signature',
      retryAfter: null,
      body: {
        error: 'missing-signature',
        message:
          'missing X-Slack-Request-Timestamp or X-Slack-Signature: requests must be signed with the signing secret',
      },
    });
    const forged = await post('/v1/status', body, signedHeaders('not-the-secret', body));
    expect([forged.status, forged.outcome, forged.body.message]).toEqual([
      401,
      'bad-signature',
      'X-Slack-Signature does not match the body: wrong signing secret, or the body was changed on the way',
    ]);
    const old = String(Math.floor(Date.now() / 1000) - 600);
    const stale = await post('/v1/status', body, signedHeaders(SECRET, body, old));
    expect([stale.status, stale.outcome]).toEqual([401, 'stale-timestamp']);
    expect(stale.body.message).toMatch(
      /^X-Slack-Request-Timestamp is 6\d\d s old; at most 300 s either way is accepted \(check the sender's clock\)$/,
    );

    const headers = signedHeaders(SECRET, body);
    expect((await post('/v1/status', body, headers)).status).toBe(404); // no such run: it got through
    expect(await post('/v1/status', body, headers)).toMatchObject({
      status: 409,
      outcome: 'replayed',
      body: {
        error: 'replayed',
        message:
          'this signed request was already received: a request is taken once (send a new one, with a new timestamp)',
      },
    });
  });

  it('answers malformed bodies with 400, an unmapped user with 403, an unknown run with 404', async () => {
    expect(await post('/v1/decide', '{"workflowId": "recover-x"')).toMatchObject({
      status: 400,
      body: { error: 'malformed', message: 'the body is not JSON' },
    });
    const noReason = await post(
      '/v1/decide',
      JSON.stringify({ workflowId: 'recover-x', step: 'approve-fence', decision: 'reject', user: 'ops:alice' }),
    );
    expect(noReason).toMatchObject({
      status: 400,
      body: {
        message:
          'reject needs a reason, which the audit log and the evidence keep: decision reject <workflowId> <step> <reason...>',
      },
    });
    const stranger = await post(
      '/v1/decide',
      JSON.stringify({ workflowId: 'recover-x', step: 'approve-fence', decision: 'approve', user: 'ops:mallory' }),
    );
    expect(stranger).toMatchObject({
      status: 403,
      outcome: 'unmapped-user',
      body: {
        message:
          "ops:mallory is not in Lifeboat's chat users table, so it cannot act as an approver: ask whoever runs lifeboat chatops to map it to your approver name (--users)",
      },
    });
    const unknown = await post(
      '/v1/decide',
      JSON.stringify({ workflowId: 'recover-nope', step: 'approve-fence', decision: 'approve', user: 'ops:alice' }),
    );
    expect(unknown).toMatchObject({
      status: 404,
      outcome: 'unknown-workflow',
      body: {
        accepted: false,
        message: 'no recovery run recover-nope (lifeboat recover prints the id, recover-<runbook>-<time>)',
      },
    });
  });

  it('answers Slack with 200 and an ephemeral text for help, usage mistakes and strangers', async () => {
    const help = await post('/slack/commands', slackForm('UALICE', 'help'));
    expect(help.status).toBe(200);
    expect(help.body.response_type).toBe('ephemeral');
    expect(help.body.text).toContain(
      '/lifeboat approve <workflowId> <step> [comment]   approve a step awaiting approval',
    );
    expect(help.body.text).toContain('you are slack:UALICE, deciding as alice');
    expect(await post('/slack/commands', slackForm('UMALLORY', 'approve recover-x approve-fence'))).toMatchObject({
      status: 200,
      outcome: 'unmapped-user',
      body: {
        response_type: 'ephemeral',
        text: "slack:UMALLORY (someone) is not in Lifeboat's chat users table, so it cannot act as an approver: ask whoever runs lifeboat chatops to map it to your approver name (--users)",
      },
    });
    expect(await post('/slack/commands', slackForm('UALICE', 'reject recover-x approve-fence'))).toMatchObject({
      status: 200,
      outcome: 'malformed',
      body: {
        response_type: 'ephemeral',
        text: 'reject needs a reason, which the audit log and the evidence keep: /lifeboat reject <workflowId> <step> <reason...>',
      },
    });
  });

  it('limits each chat user to --rate requests a minute: then 429 with Retry-After', async () => {
    // slack:UALICE has used 2 of 3 above; slack:UOTHER has its own bucket.
    expect((await post('/slack/commands', slackForm('UALICE', 'help'))).status).toBe(200);
    const limited = await post('/slack/commands', slackForm('UALICE', 'help'));
    expect(limited.status).toBe(429);
    expect(limited.outcome).toBe('rate-limited');
    expect(Number(limited.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(limited.body.message).toBe(
      `slack:UALICE sent more than 3 requests a minute; try again in ${limited.retryAfter} s`,
    );
    expect((await post('/slack/commands', slackForm('UOTHER', 'help'))).status).toBe(200);
  });

  it('answers unknown paths with 404 and wrong methods with 405', async () => {
    expect((await fetch(`${server.url}/v1/approve`, { method: 'POST' })).status).toBe(404);
    const get = await fetch(`${server.url}/v1/decide`);
    expect([get.status, get.headers.get('allow')]).toEqual([405, 'POST']);
  });

  it('logs one line per request with the chat user and the outcome, and never the secret, a signature or a body', () => {
    const logged = (re: RegExp) =>
      expect(
        logs.filter((l) => re.test(l)),
        `${re} in\n${logs.join('\n')}`,
      ).toHaveLength(1);
    logged(
      /^chatops POST \/v1\/decide 403 unmapped-user chatUser=ops:mallory decision=approve step=approve-fence workflowId=recover-x \d+ms$/,
    );
    logged(/^chatops POST \/slack\/commands 429 rate-limited chatUser=slack:UALICE \d+ms$/);
    logged(/^chatops POST \/v1\/status 401 bad-signature \d+ms$/);
    logged(
      /^chatops POST \/slack\/commands 200 unmapped-user chatUser=slack:UMALLORY decision=approve step=approve-fence workflowId=recover-x \d+ms$/,
    );
    logged(
      /^chatops POST \/v1\/decide 404 unknown-workflow chatUser=ops:alice approver=alice decision=approve step=approve-fence workflowId=recover-nope \d+ms$/,
    );
    for (const text of [...logs, ...replies]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toMatch(/v0=[0-9a-f]{64}/);
    }
    // A body is JSON or a form; a log line is neither.
    for (const line of logs) expect(line).not.toMatch(/[{}&"]/);
  });

  it('with Temporal out of reach: /healthz still answers 200 with temporal false, and a request gets 503 with why', async () => {
    const nowhere = await startChatopsServer({
      port: 0,
      secret: SECRET,
      users: USERS,
      temporal: { address: `127.0.0.1:${await freePort()}`, namespace: 'default' },
      log: () => undefined,
    });
    try {
      const health = await fetch(`${nowhere.url}/healthz`);
      expect([health.status, await health.json()]).toEqual([200, { ok: true, temporal: false }]);
      const body = JSON.stringify({ workflowId: 'recover-x', user: 'ops:alice' });
      const res = await fetch(`${nowhere.url}/v1/status`, {
        method: 'POST',
        body,
        headers: signedHeaders(SECRET, body),
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('x-lifeboat-outcome')).toBe('temporal-unavailable');
      expect(((await res.json()) as { message: string }).message).toMatch(/^Temporal did not answer/);
    } finally {
      await nowhere.close();
    }
  });

  it('answers a slow slash command at once and sends the outcome to its response_url, only under the allowed prefix', async () => {
    const hook = await startTestWebhook();
    const slow = await startChatopsServer({
      port: 0,
      secret: SECRET,
      users: USERS,
      temporal: { address: temporalAddress(), namespace: 'default' },
      // Every Temporal call is "slow" against 0 ms: a real round trip always loses to the timer.
      slackReplyWithinMs: 0,
      slackResponseUrlPrefix: hook.url,
      log: (l) => logs.push(l),
    });
    try {
      const send = async (responseUrl: string) => {
        const body = new URLSearchParams({
          user_id: 'UALICE',
          command: '/dr',
          text: 'status recover-gone',
          response_url: responseUrl,
          trigger_id: `${process.pid}.${++trigger}`,
        }).toString();
        const res = await fetch(`${slow.url}/slack/commands`, {
          method: 'POST',
          body,
          headers: signedHeaders(SECRET, body),
        });
        return [res.status, res.headers.get('x-lifeboat-outcome'), await res.json()];
      };
      expect(await send(`${hook.url}/T1/B2/token`)).toEqual([
        200,
        'deferred',
        {
          response_type: 'ephemeral',
          text: 'status of recover-gone: Temporal is slow to answer; the outcome follows here shortly',
        },
      ]);
      const followUp = await hook.waitFor();
      expect(followUp.path).toBe('/hook/T1/B2/token');
      expect(followUp.body).toEqual({
        response_type: 'ephemeral',
        text: 'status of recover-gone: refused: no recovery run recover-gone (lifeboat recover prints the id, recover-<runbook>-<time>)',
      });
      await waitFor('the follow-up log line', async () =>
        logs.some((l) =>
          l.startsWith('chatops follow-up /slack/commands unknown-workflow delivered 204 chatUser=slack:UALICE'),
        )
          ? true
          : undefined,
      );
      // Anywhere else: answered inline, however long it takes.
      expect(await send('http://127.0.0.1:9/elsewhere')).toEqual([
        200,
        'unknown-workflow',
        {
          response_type: 'ephemeral',
          text: 'status of recover-gone: refused: no recovery run recover-gone (lifeboat recover prints the id, recover-<runbook>-<time>)',
        },
      ]);
      expect(hook.received).toHaveLength(1);
    } finally {
      await slow.close();
      await hook.close();
    }
  });
});
