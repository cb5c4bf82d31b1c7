import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEnv } from '../support/app.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { eventually, reservePort } from './harness.js';

const run = promisify(execFile);

async function cli(args: string[], env: NodeJS.ProcessEnv) {
  try {
    const { stdout, stderr } = await run(process.execPath, ['dist/cli/main.js', ...args], {
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Runs a long-lived command; `output()` is everything it printed so far. */
function background(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ['dist/cli/main.js', ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    output: () => output,
    async stop(): Promise<number | null> {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

for (const factory of DATABASES) {
  describe(`api-keys and serve commands (${factory.kind})`, () => {
    let database: TestDatabase;
    let env: NodeJS.ProcessEnv;

    beforeAll(async () => {
      database = await factory.create();
      env = testEnv(database);
      // On PostgreSQL, commands other than serve/worker expect the schema to be current.
      expect((await cli(['migrate', 'up'], env)).code).toBe(0);
    });
    afterAll(async () => {
      await database?.drop();
    });

    it('creates a key with --json, lists it without the key, and revokes it', async () => {
      const created = await cli(['api-keys', 'create', '--name', 'publisher', '--json'], env);
      expect(created.code).toBe(0);
      const { key, id } = JSON.parse(created.stdout);
      expect(key).toMatch(/^sok_[0-9a-f]{12}_/);
      const listed = await cli(['api-keys', 'list', '--json'], env);
      expect(listed.stdout).not.toContain(key);
      expect(JSON.parse(listed.stdout)).toContainEqual(
        expect.objectContaining({ id, name: 'publisher', revoked_at: null }),
      );
      expect((await cli(['api-keys', 'revoke', id], env)).code).toBe(0);
      expect((await cli(['api-keys', 'revoke', id], env)).code).toBe(2);
    });

    it('serves on HOST/PORT, answers with a created key, and stops cleanly on SIGTERM', async () => {
      const { key } = JSON.parse((await cli(['api-keys', 'create', '--json'], env)).stdout);
      const port = await reservePort();
      const server = background(['serve'], { ...env, HOST: '127.0.0.1', PORT: String(port) });
      try {
        const health = await eventually(async () => {
          const response = await fetch(`http://127.0.0.1:${port}/health`);
          return response.json();
        }, 15_000);
        expect(health).toEqual({ status: 'ok', database: factory.kind });
        const accounts = await fetch(`http://127.0.0.1:${port}/v1/accounts`, {
          headers: { authorization: `Bearer ${key}` },
        });
        expect(accounts.status).toBe(200);
      } finally {
        expect(await server.stop()).toBe(0);
      }
    });
  });
}

describe('start command on the embedded default without credentials (sandbox)', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'social-oauth-start-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('says SANDBOX MODE, prints a first API key once, and serves the API with it', async () => {
    const port = await reservePort();
    const env = {
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: '',
      TOKEN_ENCRYPTION_KEYS: '',
    };
    const first = background(['start'], env);
    let key: string;
    try {
      key = await eventually(() => {
        const match = /(sok_[0-9a-f]{12}_[A-Za-z0-9_-]{43})/.exec(first.output());
        if (!match) throw new Error('no key yet');
        return match[1]!;
      }, 60_000);
      expect(first.output()).toContain('SANDBOX MODE');
      const accounts = await fetch(`http://127.0.0.1:${port}/v1/accounts`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(accounts.status).toBe(200);
      const body = (await accounts.json()) as { accounts: unknown[] };
      expect(body.accounts).toHaveLength(3);
      await publishSampleVideoEverywhere(first.output(), port, key);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    // A second start keeps the key it printed and does not print another one.
    const second = background(['start'], env);
    try {
      await eventually(() => {
        if (!second.output().includes('listening on')) throw new Error('not yet');
      }, 60_000);
      expect(second.output()).not.toMatch(/sok_[0-9a-f]{12}_/);
      const again = await fetch(`http://127.0.0.1:${port}/v1/accounts`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(again.status).toBe(200);
    } finally {
      expect(await second.stop()).toBe(0);
    }
    // Two starts of the whole service: generous on a loaded two-core machine.
  }, 180_000);
});

/**
 * The sandbox prints how to publish its sample video to each sample account: doing so must post on
 * every simulated platform (regression: the Instagram sample account's id, `sample-instagram`, was
 * not a numeric Instagram user id, so its container request answered 404 and the post failed).
 */
async function publishSampleVideoEverywhere(output: string, port: number, key: string): Promise<void> {
  const printed = [
    ...output.matchAll(/-F file=@(\S+) .*\/v1\/accounts\/([0-9a-f-]{36})\/publications\s+# (\w+)/g),
  ];
  expect(printed.map((match) => match[3]).sort()).toEqual(['instagram', 'tiktok', 'youtube']);
  // The command for another shell names an account whose platform takes bytes: for Instagram,
  // `publish` would serve the file itself on the port this service holds.
  const shell = /from another shell: .*publish ([0-9a-f-]{36}) /.exec(output);
  const instagram = printed.find((match) => match[3] === 'instagram')![2];
  expect(shell?.[1]).toBeDefined();
  expect(shell?.[1]).not.toBe(instagram);
  const authorization = `Bearer ${key}`;
  const ids = new Map<string, string>();
  for (const [, file, accountId, provider] of printed) {
    const form = new FormData();
    form.append(
      'metadata',
      new Blob([JSON.stringify({ title: 'Hello from the sandbox' })], { type: 'application/json' }),
    );
    form.append('file', new Blob([readFileSync(file!)], { type: 'video/mp4' }), 'sample-video.mp4');
    const created = await fetch(`http://127.0.0.1:${port}/v1/accounts/${accountId}/publications`, {
      method: 'POST',
      headers: { authorization },
      body: form,
    });
    expect(created.status).toBe(202);
    ids.set(provider!, ((await created.json()) as { publication: { id: string } }).publication.id);
  }
  for (const [provider, id] of ids) {
    const publication = await eventually(async () => {
      const answer = await fetch(`http://127.0.0.1:${port}/v1/publications/${id}`, {
        headers: { authorization },
      });
      const { publication } = (await answer.json()) as {
        publication: { status: string; platform_post_id: string | null; error: unknown };
      };
      const settled = ['published', 'sent_to_inbox', 'failed', 'needs_reauth'].includes(publication.status);
      // YouTube's upload is done at `processing`; it is published once YouTube has processed it.
      if (!settled && !(provider === 'youtube' && publication.status === 'processing')) {
        throw new Error(`${provider} still ${publication.status}`);
      }
      return publication;
    }, 60_000);
    // TikTok's SELF_ONLY post has no public id; YouTube may still be processing its upload.
    expect({ provider, status: publication.status, error: publication.error }).toEqual({
      provider,
      status: provider === 'youtube' ? expect.stringMatching(/^(processing|published)$/) : 'published',
      error: null,
    });
  }
}
