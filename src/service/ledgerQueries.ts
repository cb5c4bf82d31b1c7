import type { OAuthEventType } from '../domain/ledger.js';
import type { LedgerPage, LedgerRepository } from '../store/ledgerRepository.js';

/** A page of the ledger, as the store returns it. */
export type EventPage = LedgerPage;

/** Reads of the OAuth ledger (append-only; its rows are written with the changes they record). */
export class LedgerQueries {
  constructor(private readonly ledger: LedgerRepository) {}

  /** Oldest first, a page at a time. */
  list(filter: {
    accountId?: string;
    type?: OAuthEventType;
    afterSeq?: number;
    limit?: number;
  }): Promise<EventPage> {
    return this.ledger.list(filter);
  }
}
