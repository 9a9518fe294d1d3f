import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { People, personName, readReviewersFile, reviewSecret, signedToken } from '../../review/people.js';

const tmp = () => fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-people-'));

describe('review people', () => {
  it('names the person a token belongs to and nobody for any other token', () => {
    const people = new People([{ name: 'ann', token: 'a'.repeat(24) }, { name: 'bob', token: 'b'.repeat(24) }, { name: 'bob', token: 'c'.repeat(30) }]);
    expect(people.signIn).toBe(true);
    expect([people.who('a'.repeat(24)), people.who('b'.repeat(24)), people.who('c'.repeat(30))]).toEqual(['ann', 'bob', 'bob']);
    expect([people.who('a'.repeat(23)), people.who('a'.repeat(25)), people.who(''), people.who(undefined)]).toEqual([undefined, undefined, undefined, undefined]);
    expect(new People([]).signIn).toBe(false);
  });

  it('refuses short tokens, tokens with spaces, and one token for two people', () => {
    expect(() => new People([{ name: 'ann', token: 'short' }])).toThrow(/token of ann must be at least 16 visible ASCII characters/);
    expect(() => new People([{ name: 'ann', token: 'has a space in it, long' }])).toThrow(/without spaces/);
    expect(() => new People([{ name: 'ann', token: 'x'.repeat(20) }, { name: 'bob', token: 'x'.repeat(20) }])).toThrow(/ann and bob share a token; give each person their own/);
  });

  it('keeps names as plain text and refuses empty or overlong ones, saying where', () => {
    expect(personName('  ann\u001b[31m\u0007 ', '--as')).toBe('ann[31m');
    expect(() => personName('\u001b\u0007', '--reviewer')).toThrow(/--reviewer: a name is 1-100 characters of plain text/);
    expect(() => personName('x'.repeat(101), 'file')).toThrow(/file: a name/);
    expect(() => personName(42, '"by"')).toThrow(/"by": a name/);
  });

  it('signs a link per person with a secret created once, readable by its owner only', async () => {
    const home = await tmp();
    const secret = await reviewSecret(home);
    expect((await fs.stat(path.join(home, 'review-secret'))).mode & 0o777).toBe(0o600);
    expect(await reviewSecret(home)).toEqual(secret);
    expect(signedToken(secret, 'ann')).toBe(signedToken(await reviewSecret(home), 'ann'));
    expect(signedToken(secret, 'ann')).not.toBe(signedToken(secret, 'bob'));
    expect(signedToken(secret, 'ann')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await fs.chmod(path.join(home, 'review-secret'), 0o644);
    await expect(reviewSecret(home)).rejects.toThrow(/can be read by other users; chmod 600/);
  });

  it('reads reviewers files in YAML and JSON, and says what is wrong with a bad one', async () => {
    const dir = await tmp();
    const write = async (name: string, text: string) => {
      await fs.writeFile(path.join(dir, name), text);
      return path.join(dir, name);
    };
    expect(await readReviewersFile(await write('r.yaml', 'ann: tok-ann-0123456789\n"bob b": tok-bob-0123456789\n'))).toEqual([
      { name: 'ann', token: 'tok-ann-0123456789' }, { name: 'bob b', token: 'tok-bob-0123456789' },
    ]);
    expect(await readReviewersFile(await write('r.json', '{"cat": "tok-cat-0123456789"}'))).toEqual([{ name: 'cat', token: 'tok-cat-0123456789' }]);
    await expect(readReviewersFile(await write('list.yaml', '- ann\n- bob\n'))).rejects.toThrow(/list.yaml: map each name to a token/);
    await expect(readReviewersFile(await write('n.yaml', 'ann: 12\n'))).rejects.toThrow(/n.yaml: the token of ann must be text/);
    await expect(readReviewersFile(await write('bad.yaml', 'ann: [\n'))).rejects.toThrow(/bad.yaml: not YAML or JSON/);
    await expect(readReviewersFile(path.join(dir, 'missing.yaml'))).rejects.toThrow(/cannot read the reviewers file .*missing.yaml/);
  });
});
