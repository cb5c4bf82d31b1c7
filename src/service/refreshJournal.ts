import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TokenCipher } from '../crypto/tokenCipher.js';
import type { ProviderName } from '../domain/providerName.js';
import type { TokenUpdate } from '../store/accountRepository.js';

/**
 * Tokens a platform has issued that the database has not (yet) accepted.
 *
 * Once TikTok has answered a refresh, the refresh token we sent is spent: the new one exists only
 * in this process's memory until it is committed. When the database refuses that commit for longer
 * than we may hold the account (a long outage, a full disk, a lost permission), the tokens are
 * written here, encrypted with the token keyring and fsynced, and a later save (at the next start,
 * or before the next refresh of the account) stores them with a compare-and-set on the account's
 * version. A process that exits in between loses nothing.
 *
 * One file per account, in DATA_DIR/refresh-journal/; a newer entry replaces an older one.
 */
export interface JournalEntry {
  accountId: string;
  provider: ProviderName;
  /** The version the tokens were refreshed from: a save is a compare-and-set on it. */
  expectedVersion: number;
  /** The credential the refresh spent (refresh token, or Instagram's access token). */
  spentCredential: string | null;
  update: TokenUpdate;
  /** Non-secret detail for the ledger row written when the tokens are finally stored. */
  detail: Record<string, unknown>;
  /** When the platform's answer arrived (epoch ms). */
  receivedAt: number;
  /**
   * The process that held the refresh lease (absent in older entries). Its lease is released when
   * the entry is stored, whichever process stores it: otherwise, on PostgreSQL where leases follow
   * the database's clock, the next refresh after a restart would wait out a lease nobody holds.
   */
  leaseOwner?: string;
}

interface JournalFile {
  format: 1;
  accountId: string;
  sealed: string;
}

export class RefreshJournal {
  private ready: Promise<void> | null = null;

  constructor(
    readonly directory: string,
    private readonly cipher: TokenCipher,
  ) {}

  /** Written and fsynced (file and folder) before this resolves. */
  async write(entry: JournalEntry): Promise<void> {
    await this.ensureDirectory();
    const file: JournalFile = {
      format: 1,
      accountId: entry.accountId,
      sealed: this.cipher.encrypt(JSON.stringify(entry), {
        accountId: entry.accountId,
        field: 'refresh_journal',
      }),
    };
    const path = this.pathOf(entry.accountId);
    const temporary = `${path}.${process.pid}.tmp`;
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(JSON.stringify(file));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    await this.syncDirectory();
  }

  /**
   * The entry waiting for this account, or null when none can be read (a file we cannot open counts
   * as none, as before: the refresh goes on). A file that is there but not ours, or does not
   * decrypt, throws.
   */
  async read(accountId: string): Promise<JournalEntry | null> {
    let text: string;
    try {
      text = await readFile(this.pathOf(accountId), 'utf8');
    } catch {
      return null;
    }
    const file = JSON.parse(text) as JournalFile;
    if (file.format !== 1 || file.accountId !== accountId)
      throw new Error('refresh journal entry is not ours');
    return JSON.parse(
      this.cipher.decrypt(file.sealed, { accountId, field: 'refresh_journal' }),
    ) as JournalEntry;
  }

  /** Account ids with an entry waiting. */
  async accountIds(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const ids: string[] = [];
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      try {
        const file = JSON.parse(await readFile(join(this.directory, name), 'utf8')) as JournalFile;
        if (typeof file.accountId === 'string') ids.push(file.accountId);
      } catch {
        // A file another process is renaming into place, or not ours: the next replay sees it.
      }
    }
    return ids;
  }

  /** Removes the entry, but only if it is still the one that was settled (not a newer one). */
  async remove(accountId: string, settled?: JournalEntry): Promise<void> {
    if (settled !== undefined) {
      const current = await this.read(accountId).catch(() => null);
      if (current !== null && current.receivedAt !== settled.receivedAt) return;
    }
    await rm(this.pathOf(accountId), { force: true });
  }

  private pathOf(accountId: string): string {
    // Account ids may come from an import: hashed into a safe file name.
    return join(this.directory, `${createHash('sha256').update(accountId).digest('hex').slice(0, 40)}.json`);
  }

  private ensureDirectory(): Promise<void> {
    this.ready ??= mkdir(this.directory, { recursive: true, mode: 0o700 }).then(
      () => undefined,
      (error: unknown) => {
        this.ready = null;
        throw error;
      },
    );
    return this.ready;
  }

  private async syncDirectory(): Promise<void> {
    // The rename is durable only once the folder is: without this a power cut can undo it.
    const handle = await open(this.directory, 'r');
    try {
      await handle.sync();
    } catch {
      // Some file systems refuse fsync on a folder; the file itself is synced.
    } finally {
      await handle.close();
    }
  }
}
