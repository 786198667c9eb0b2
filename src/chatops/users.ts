// The table from chat users to approver names (`lifeboat chatops --users`).
// A chat user is `<platform>:<id>`: Slack's slash commands arrive as
// `slack:<user_id>` (the stable id, not the display name, which anyone can
// change); the JSON endpoint names the user the same way. The approver name
// is what the runbook's `approvals` lists and what the audit log records.
// Either form, YAML or JSON:
//   slack:U024BE7LH: alice            # a mapping
//   - { chatUser: slack:U024BE7LH, approver: alice }   # or a list
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { LifeboatError, errorMessage } from '../errors';

const chatUser = z
  .string()
  .trim()
  .regex(/^[a-z][a-z0-9-]*:\S+$/, { error: 'expected <platform>:<id>, e.g. slack:U024BE7LH' });
const approver = z.string().trim().min(1).max(100);

// Two schemas, chosen by the shape, so an error names the bad entry rather
// than "matches neither form".
const UsersMapping = z.record(chatUser, approver);
const UsersList = z.array(z.strictObject({ chatUser, approver }));

export type UserTable = ReadonlyMap<string, string>;

export function parseUsers(text: string, source: string): UserTable {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new LifeboatError('INPUT_INVALID', `${source}: not YAML or JSON: ${errorMessage(err)}`, {
      hints: [FORMAT_HINT],
    });
  }
  const parsed = Array.isArray(raw) ? UsersList.safeParse(raw) : UsersMapping.safeParse(raw ?? {});
  if (!parsed.success) {
    // A bad key comes as "Invalid key in record" around the key schema's own words.
    const words = (i: z.core.$ZodIssue): string =>
      i.code === 'invalid_key' && i.issues[0] ? i.issues[0].message : i.message;
    const issues = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(top)'}: ${words(i)}`).join('; ');
    throw new LifeboatError('INPUT_INVALID', `${source}: ${issues}`, { hints: [FORMAT_HINT] });
  }
  const entries = Array.isArray(parsed.data)
    ? parsed.data.map((e) => [e.chatUser, e.approver] as const)
    : Object.entries(parsed.data);
  const table = new Map<string, string>();
  for (const [user, name] of entries) {
    if (table.has(user) && table.get(user) !== name) {
      throw new LifeboatError('INPUT_INVALID', `${source}: ${user} is mapped twice (${table.get(user)} and ${name})`);
    }
    table.set(user, name);
  }
  return table;
}

export function loadUsers(file: string): UserTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LifeboatError('INPUT_INVALID', `cannot read the chat users file ${file}: ${errorMessage(err)}`, {
      hints: [FORMAT_HINT],
    });
  }
  const table = parseUsers(text, file);
  if (table.size === 0) {
    throw new LifeboatError('INPUT_INVALID', `${file} maps no chat user: every request would be refused`, {
      hints: [FORMAT_HINT],
    });
  }
  return table;
}

const FORMAT_HINT = 'one line per chat user, e.g. "slack:U024BE7LH: alice" (YAML), or a list of { chatUser, approver }';
