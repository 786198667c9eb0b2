// The pieces of `lifeboat chatops` that need no server: Slack's request
// signature (checked against the example in Slack's own documentation),
// the timestamp window, the replay guard, the per-user rate limit, the
// chat users table and the slash-command words.
import { describe, expect, it } from 'vitest';
import { MAX_SKEW_SECONDS, ReplayGuard, signRequest, verifySignature } from '../../src/chatops/auth';
import { parseCommandText } from '../../src/chatops/commands';
import { RateLimiter } from '../../src/chatops/rate-limit';
import { parseUsers } from '../../src/chatops/users';

// Slack's worked example ("Verifying requests from Slack").
const SLACK_SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const SLACK_TS = '1531420618';
const SLACK_BODY =
  'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
const SLACK_SIGNATURE = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503';

describe('Slack request signatures', () => {
  const body = Buffer.from(SLACK_BODY);
  const now = Number(SLACK_TS) + 10;

  it("computes the signature of Slack's documented example", () => {
    expect(signRequest(SLACK_SECRET, SLACK_TS, body)).toBe(SLACK_SIGNATURE);
  });

  it('accepts that request within five minutes of its timestamp', () => {
    expect(
      verifySignature(SLACK_SECRET, { timestamp: SLACK_TS, signature: SLACK_SIGNATURE }, body, now),
    ).toBeUndefined();
    expect(
      verifySignature(
        SLACK_SECRET,
        { timestamp: SLACK_TS, signature: SLACK_SIGNATURE },
        body,
        Number(SLACK_TS) - MAX_SKEW_SECONDS,
      ),
    ).toBeUndefined();
  });

  it('refuses a request without the headers, with another secret, or with a changed body, naming no secret', () => {
    expect(verifySignature(SLACK_SECRET, { timestamp: SLACK_TS }, body, now)).toEqual({
      why: 'missing-signature',
      message:
        'missing X-Slack-Request-Timestamp or X-Slack-Signature: requests must be signed with the signing secret',
    });
    const wrong = {
      why: 'bad-signature',
      message: 'X-Slack-Signature does not match the body: wrong signing secret, or the body was changed on the way',
    };
    expect(verifySignature('another-secret', { timestamp: SLACK_TS, signature: SLACK_SIGNATURE }, body, now)).toEqual(
      wrong,
    );
    expect(
      verifySignature(
        SLACK_SECRET,
        { timestamp: SLACK_TS, signature: SLACK_SIGNATURE },
        Buffer.from(SLACK_BODY.replace('text=', 'text=approve')),
        now,
      ),
    ).toEqual(wrong);
    expect(verifySignature(SLACK_SECRET, { timestamp: SLACK_TS, signature: 'v0=00' }, body, now)).toEqual(wrong);
    expect(
      verifySignature(SLACK_SECRET, { timestamp: 'yesterday', signature: SLACK_SIGNATURE }, body, now)?.message,
    ).toBe('X-Slack-Request-Timestamp is not a Unix time in seconds');
  });

  it('refuses a timestamp more than five minutes old or ahead, even with a good signature', () => {
    const old = verifySignature(
      SLACK_SECRET,
      { timestamp: SLACK_TS, signature: SLACK_SIGNATURE },
      body,
      Number(SLACK_TS) + 301,
    );
    expect(old).toEqual({
      why: 'stale-timestamp',
      message:
        "X-Slack-Request-Timestamp is 301 s old; at most 300 s either way is accepted (check the sender's clock)",
    });
    const ahead = verifySignature(
      SLACK_SECRET,
      { timestamp: SLACK_TS, signature: SLACK_SIGNATURE },
      body,
      Number(SLACK_TS) - 400,
    );
    expect(ahead?.message).toBe(
      "X-Slack-Request-Timestamp is 400 s in the future; at most 300 s either way is accepted (check the sender's clock)",
    );
  });
});

describe('the replay guard', () => {
  it('takes a signature once while its timestamp is acceptable, and forgets it afterwards', () => {
    const guard = new ReplayGuard();
    expect(guard.firstUse('v0=aa', '1000', 1000)).toBe(true);
    expect(guard.firstUse('v0=aa', '1000', 1001)).toBe(false);
    expect(guard.firstUse('v0=bb', '1000', 1001)).toBe(true);
    expect(guard.firstUse('v0=aa', '1000', 1000 + MAX_SKEW_SECONDS)).toBe(false);
    // Past the window the timestamp check refuses it; the guard need not remember it.
    guard.firstUse('v0=cc', '1400', 1000 + MAX_SKEW_SECONDS + 1);
    expect(guard.size).toBe(1);
  });
});

describe('the rate limit per chat user', () => {
  it('allows N requests a minute in a burst, then says how long to wait, and refills over the minute', () => {
    let now = 0;
    const limiter = new RateLimiter(3, () => now);
    expect([limiter.take('slack:U1'), limiter.take('slack:U1'), limiter.take('slack:U1')]).toEqual([0, 0, 0]);
    expect(limiter.take('slack:U1')).toBe(20);
    expect(limiter.take('slack:U2')).toBe(0);
    now = 19_000;
    expect(limiter.take('slack:U1')).toBe(1);
    now = 20_000;
    expect(limiter.take('slack:U1')).toBe(0);
    expect(limiter.take('slack:U1')).toBe(20);
  });
});

describe('the chat users table', () => {
  it('reads a YAML mapping and a list of {chatUser, approver}', () => {
    expect([...parseUsers('slack:U024BE7LH: alice\nslack:U0G9QF9C6: bob\n', 'users.yaml')]).toEqual([
      ['slack:U024BE7LH', 'alice'],
      ['slack:U0G9QF9C6', 'bob'],
    ]);
    expect([...parseUsers('[{"chatUser": "teams:29:1abc", "approver": "carol"}]', 'users.json')]).toEqual([
      ['teams:29:1abc', 'carol'],
    ]);
  });

  it('refuses a chat user without its platform and a user mapped twice, naming the file', () => {
    expect(() => parseUsers('U024BE7LH: alice\n', 'users.yaml')).toThrow(
      'users.yaml: U024BE7LH: expected <platform>:<id>, e.g. slack:U024BE7LH\nHINT: one line per chat user, e.g. "slack:U024BE7LH: alice" (YAML), or a list of { chatUser, approver }',
    );
    expect(() =>
      parseUsers(
        '- { chatUser: "slack:U1", approver: alice }\n- { chatUser: "slack:U1", approver: bob }\n',
        'users.yaml',
      ),
    ).toThrow('users.yaml: slack:U1 is mapped twice (alice and bob)');
  });
});

describe('slash-command words', () => {
  it('reads a decision with its comment, status and help', () => {
    expect(parseCommandText('approve recover-orders-1 approve-fence  looks right to me')).toEqual({
      ok: true,
      value: {
        kind: 'decide',
        workflowId: 'recover-orders-1',
        step: 'approve-fence',
        decision: 'approve',
        text: 'looks right to me',
      },
    });
    expect(parseCommandText('status recover-orders-1')).toEqual({
      ok: true,
      value: { kind: 'status', workflowId: 'recover-orders-1' },
    });
    expect(parseCommandText('')).toEqual({ ok: true, value: { kind: 'help' } });
  });

  it('says what is wrong: a reject without a reason, an unknown step or command', () => {
    expect(parseCommandText('reject recover-orders-1 approve-fence', '/dr')).toEqual({
      ok: false,
      message:
        'reject needs a reason, which the audit log and the evidence keep: /dr reject <workflowId> <step> <reason...>',
    });
    expect(parseCommandText('approve recover-orders-1 fence')).toMatchObject({
      ok: false,
      message: expect.stringMatching(
        /^unknown step "fence": expected one of preflight, capture-forensics, approve-fence, /,
      ) as unknown,
    });
    expect(parseCommandText('promote recover-orders-1')).toEqual({
      ok: false,
      message:
        'unknown command "promote": expected approve, reject, retry, skip, abort, status or help (/lifeboat help)',
    });
    expect(parseCommandText('approve recover-orders-1')).toEqual({
      ok: false,
      message: 'usage: /lifeboat approve <workflowId> <step> [comment...]',
    });
  });
});
