// A fake Slack on 127.0.0.1 for the approval-button tests: it is the
// channel's incoming webhook (records each message, gives it a ts and a
// response_url, as Slack does for a message with interactive blocks) and
// the response_url endpoint (replace_original replaces the message,
// response_type ephemeral is kept apart, as only the presser would see it).
// `press()` builds the block_actions interaction payload a button press
// sends, with the fields Slack documents
// (https://api.slack.com/reference/interaction-payloads/block-actions), form-encoded
// in a `payload` field and signed with the app's signing secret
// (https://api.slack.com/authentication/verifying-requests-from-slack).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signedHeaders } from '../../src/chatops/auth';
import { waitFor } from './ports';

export interface SlackBlock {
  type: string;
  block_id?: string;
  [k: string]: unknown;
}

export interface ChannelMessage {
  ts: string;
  text: string;
  blocks: SlackBlock[];
  /** Every version the message had, the first as posted. */
  versions: Array<{ text: string; blocks: SlackBlock[] }>;
  responseUrl: string;
}

export interface FakeSlack {
  /** http://127.0.0.1:<port>/: the prefix chat-ops may post response_urls under. */
  url: string;
  /** The incoming webhook: put it in the variable notify.slack.webhookUrlEnv names. */
  webhookUrl: string;
  /** Messages in the channel, in posting order. */
  messages: ChannelMessage[];
  /** Ephemeral responses (seen by the presser only), in arrival order. */
  ephemerals: Array<{ ts: string; text: string }>;
  /** Every POST to a response_url, in arrival order. */
  responses: Array<{ ts: string; body: Record<string, unknown> }>;
  waitForMessage(n: number): Promise<ChannelMessage>;
  /** The signed request a press of `actionId` on `message` by `user` sends, ready to POST. */
  press(p: {
    message: ChannelMessage;
    actionId: string;
    user: { id: string; name: string };
    secret: string;
    timestamp?: string;
  }): { body: string; headers: Record<string, string> };
  close(): Promise<void>;
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const messages: ChannelMessage[] = [];
  const ephemerals: FakeSlack['ephemerals'] = [];
  const responses: FakeSlack['responses'] = [];
  let seq = 0;
  let url = '';
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        res.writeHead(400, { 'Content-Type': 'text/plain' }).end('invalid_payload');
        return;
      }
      const path = req.url ?? '/';
      if (req.method === 'POST' && path === '/services/T0LIFEBOAT/B0APPROVALS/webhooksecret') {
        if (typeof body.text !== 'string' || !Array.isArray(body.blocks)) {
          res.writeHead(400, { 'Content-Type': 'text/plain' }).end('invalid_blocks');
          return;
        }
        seq += 1;
        const ts = `1764800000.${String(seq).padStart(6, '0')}`;
        // Slack gives every block without a block_id one of its own.
        const blocks = (body.blocks as SlackBlock[]).map((b, i) => ({
          ...b,
          block_id: b.block_id ?? `auto${seq}x${i}`,
        }));
        messages.push({
          ts,
          text: body.text,
          blocks,
          versions: [{ text: body.text, blocks }],
          responseUrl: `${url}actions/T0LIFEBOAT/${ts}/responsesecret`,
        });
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
        return;
      }
      const m = /^\/actions\/T0LIFEBOAT\/([\d.]+)\/responsesecret$/.exec(path);
      const message = m ? messages.find((x) => x.ts === m[1]) : undefined;
      if (req.method === 'POST' && message) {
        responses.push({ ts: message.ts, body });
        if (body.response_type === 'ephemeral') ephemerals.push({ ts: message.ts, text: String(body.text) });
        else if (body.replace_original === true) {
          message.text = String(body.text);
          message.blocks = (body.blocks as SlackBlock[] | undefined) ?? [];
          message.versions.push({ text: message.text, blocks: message.blocks });
        }
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
        return;
      }
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('no_service');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  let trigger = 0;
  return {
    url,
    webhookUrl: `${url}services/T0LIFEBOAT/B0APPROVALS/webhooksecret`,
    messages,
    ephemerals,
    responses,
    waitForMessage: (n) =>
      waitFor(`Slack message ${n}`, async () => messages[n - 1], { timeoutMs: 150_000, intervalMs: 100 }),
    press({ message, actionId, user, secret, timestamp }) {
      const actions = message.blocks.find((b) => b.type === 'actions');
      const button = ((actions?.elements as Array<Record<string, unknown>> | undefined) ?? []).find(
        (e) => e.action_id === actionId,
      );
      if (!actions || !button) throw new Error(`message ${message.ts} has no button ${actionId}`);
      trigger += 1;
      const payload = {
        type: 'block_actions',
        user: { id: user.id, username: user.name, name: user.name, team_id: 'T0LIFEBOAT' },
        api_app_id: 'A0LIFEBOAT',
        token: 'verification-token-unused',
        container: { type: 'message', message_ts: message.ts, channel_id: 'C0INCIDENT', is_ephemeral: false },
        trigger_id: `${trigger}.1764800000.0123456789abcdef`,
        team: { id: 'T0LIFEBOAT', domain: 'lifeboat-test' },
        enterprise: null,
        is_enterprise_install: false,
        channel: { id: 'C0INCIDENT', name: 'incidents' },
        message: {
          type: 'message',
          subtype: 'bot_message',
          text: message.text,
          ts: message.ts,
          bot_id: 'B0APPROVALS',
          blocks: message.blocks,
        },
        state: { values: {} },
        response_url: message.responseUrl,
        actions: [
          { ...button, block_id: actions.block_id, action_ts: `1764800${String(trigger).padStart(3, '0')}.000100` },
        ],
      };
      const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
      return {
        body,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...signedHeaders(secret, body, timestamp) },
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
