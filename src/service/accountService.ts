import type { AccountListing, SocialAccount } from '../domain/account.js';
import type { Clock } from '../domain/clock.js';
import type { AccountRepository } from '../store/accountRepository.js';
import type { AccountListFilter } from '../store/accountTypes.js';
import { type ImportOutcome, importAccounts } from './accountImport.js';

/** The store's filter, as the service's callers name it. */
export type AccountFilter = AccountListFilter;

/**
 * The accounts as routes, commands and library callers see them: read one, list (never a token),
 * import, counts. Writes to a grant go through the token service and AccountLifecycle.
 */
export class AccountService {
  constructor(
    private readonly accounts: AccountRepository,
    private readonly clock: Clock,
  ) {}

  /** One account with its tokens, for this process's own use; null when there is none. */
  findById(id: string): Promise<SocialAccount | null> {
    return this.accounts.findById(id);
  }

  /** A page of accounts ordered by id, without their tokens (nothing is decrypted). */
  list(filter: AccountFilter = {}): Promise<AccountListing[]> {
    return this.accounts.list(filter);
  }

  /** JSON lines of accounts and tokens (see accountImport.ts): every line or none. */
  import(text: string): Promise<ImportOutcome> {
    return importAccounts(this.accounts, text, this.clock);
  }

  countActive(): Promise<number> {
    return this.accounts.countActive();
  }

  /** Per provider and status: the metrics' gauge. */
  countByStatus(): Promise<Array<{ provider: string; status: string; count: number }>> {
    return this.accounts.countByStatus();
  }
}
