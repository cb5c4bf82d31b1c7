import type { OAuthEvent, OAuthEventType } from '../domain/ledger.js';
import type { LedgerRepository } from '../store/ledgerRepository.js';

export interface EventPage {
  events: OAuthEvent[];
  /** The seq to pass as `afterSeq` for the next page; null on the last page. */
  nextCursor: number | null;
}

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
