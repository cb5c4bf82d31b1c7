import type { RefreshSettings } from '../config.js';
import type { SocialAccount } from '../domain/account.js';
import type { Clock } from '../domain/clock.js';
import type { NewOAuthEvent } from '../domain/ledger.js';
import type { Logger } from '../domain/logger.js';
import type { ProviderName } from '../domain/providerName.js';
import type { OAuthRefreshResult } from '../domain/token.js';
import type { Provider } from '../platforms/provider.js';
import type { AccountRepository } from '../store/accountRepository.js';
import type { LedgerRepository } from '../store/ledgerRepository.js';
import type { OutboundGate } from './outboundGate.js';
import type { RefreshJournal } from './refreshJournal.js';

export interface EnsureResult {
  account: SocialAccount;
  /** null when the stored token was good enough and nothing was refreshed (the seed's contract). */
  result: OAuthRefreshResult | null;
}

export interface EnsureOptions {
  /** Refresh when the token expires within this many seconds (default: config). */
  thresholdSeconds?: number;
  /** The token must still be valid at this time (epoch ms): warm-up for a scheduled post. */
  validAt?: number | null;
}

/** Told after a ledger event has been committed, never before: save first, then announce. */
export type OAuthEventListener = (event: NewOAuthEvent, account: SocialAccount) => void;

export interface TokenServiceDeps {
  accounts: AccountRepository;
  ledger: LedgerRepository;
  providers: Partial<Record<ProviderName, Provider>>;
  clock: Clock;
  settings: RefreshSettings;
  logger: Logger;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Names this process in refresh leases. */
  instanceId?: string;
  /** Per-platform concurrency and rate limits on calls to the platform (none when absent). */
  outbound?: OutboundGate;
  /** Keeps issued tokens the database refused until a later save (none: they are lost, and flagged). */
  journal?: RefreshJournal;
}

export interface RefreshOptions {
  /**
   * Refresh only if the account is still at this version: the background refresher claimed it at
   * that version, and a newer one means someone refreshed (or reconnected) it since. `result` is
   * then null, and the platform is not called.
   */
  expectedVersion?: number;
}

/** The refresh lease this process holds on an account, as far as it knows. */
export interface HeldLease {
  /** When it lapses unless renewed (epoch ms). */
  until: number;
  /** Set once a save released it in the same statement. */
  released: boolean;
}
