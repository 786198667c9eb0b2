// The README shows the storage identities' IAM policies; the integration
// tests create MinIO users from docs/iam/*.json. This keeps the two equal.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..', '..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

describe('the IAM policies in the README', () => {
  it.each(['archive', 'backup', 'restore', 'expire', 'worker'])('show docs/iam/%s.json exactly', (role) => {
    const file = readFileSync(path.join(root, 'docs', 'iam', `${role}.json`), 'utf8').trimEnd();
    const block = new RegExp(
      `<code>docs/iam/${role}\\.json</code></summary>\\n\\n\`\`\`json\\n([\\s\\S]*?)\\n\`\`\``,
    ).exec(readme);
    expect(block, `README has no json block for docs/iam/${role}.json`).not.toBeNull();
    expect(block?.[1]).toBe(file);
    expect(() => JSON.parse(file) as unknown).not.toThrow();
  });

  it('never give the archive, backup or worker identity a delete or a governance bypass', () => {
    for (const role of ['archive', 'backup', 'worker']) {
      const text = readFileSync(path.join(root, 'docs', 'iam', `${role}.json`), 'utf8');
      expect(text).not.toMatch(/s3:Delete|BypassGovernance|s3:\*/);
    }
  });
});
