import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { twinflowHome } from '../activities/home.js';
import { stripControls } from '../workflows/review-messages.js';

/**
 * Who is on the review page. Each person who may decide holds their own token; the server
 * takes their name from it, so assignees and approvers keep everyone else out. Tokens
 * come from `--token` (one person's), from links signed with a secret kept in
 * $TWINFLOW_HOME (the same link works after a restart), or from a file a team manages.
 */

export interface Person {
  name: string;
  token: string;
}

/** Thrown when a name, a token or a reviewers file cannot be used; the message says where and what to do. */
export class PeopleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeopleError';
  }
}

const MIN_TOKEN = 16;

/** A person's name as the audit records it: plain text, 1-100 characters. */
export function personName(raw: unknown, where: string): string {
  const name = typeof raw === 'string' ? stripControls(raw).trim() : '';
  if (!name || name.length > 100) throw new PeopleError(`${where}: a name is 1-100 characters of plain text`);
  return name;
}

/** The tokens of a server, looked up in constant time; empty in local mode. */
export class People {
  private readonly digests: Array<{ digest: Buffer; name: string }>;

  constructor(people: Person[]) {
    const names = new Map<string, string>();
    for (const p of people) {
      if (p.token.length < MIN_TOKEN || !/^[\x21-\x7e]+$/.test(p.token)) {
        throw new PeopleError(`the token of ${p.name} must be at least ${MIN_TOKEN} visible ASCII characters without spaces (e.g. openssl rand -base64 24)`);
      }
      const other = names.get(p.token);
      if (other !== undefined && other !== p.name) throw new PeopleError(`${other} and ${p.name} share a token; give each person their own`);
      names.set(p.token, p.name);
    }
    this.digests = [...names].map(([token, name]) => ({ digest: digest(token), name }));
  }

  get signIn(): boolean {
    return this.digests.length > 0;
  }

  /** The name `token` belongs to. Every token is compared, and in full, whatever matches. */
  who(token: string | undefined): string | undefined {
    if (token === undefined) return undefined;
    const given = digest(token);
    let found: string | undefined;
    for (const { digest: d, name } of this.digests) if (timingSafeEqual(d, given)) found = name;
    return found;
  }
}

// Digests have one length, so comparing them says nothing about a token's length.
const digest = (token: string) => createHash('sha256').update(token).digest();

/** The secret signed links are made with: created (mode 0600) on first use, then read. */
export async function reviewSecret(home = twinflowHome()): Promise<Buffer> {
  const file = path.join(home, 'review-secret');
  await fs.mkdir(home, { recursive: true });
  try {
    await fs.writeFile(file, randomBytes(32).toString('base64url'), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const mode = (await fs.stat(file)).mode & 0o077;
  if (mode && process.platform !== 'win32') throw new PeopleError(`${file} can be read by other users; chmod 600 ${file} (or delete it: every link changes)`);
  const secret = Buffer.from((await fs.readFile(file, 'utf8')).trim(), 'base64url');
  if (secret.length < 16) throw new PeopleError(`${file} holds no usable secret; delete it and a new one is made (every link changes)`);
  return secret;
}

/** The token of `name`'s signed link: the same for the same secret, different for anyone else. */
export function signedToken(secret: Buffer, name: string): string {
  return createHmac('sha256', secret).update(`twinflow-review-link\0${name}`).digest('base64url');
}

/** A reviewers file: YAML or JSON mapping each name to that person's token. */
export async function readReviewersFile(file: string): Promise<Person[]> {
  const text = await fs.readFile(file, 'utf8').catch(() => { throw new PeopleError(`cannot read the reviewers file ${file}`); });
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new PeopleError(`${file}: not YAML or JSON (${(err as Error).message.split('\n')[0]})`);
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new PeopleError(`${file}: map each name to a token, e.g. "ann: 4f0c...", one line each`);
  return Object.entries(data).map(([name, token]) => {
    if (typeof token !== 'string') throw new PeopleError(`${file}: the token of ${name} must be text`);
    return { name: personName(name, `${file}: ${JSON.stringify(name)}`), token };
  });
}
