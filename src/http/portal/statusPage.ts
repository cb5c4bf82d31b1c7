import type { AccountListing } from '../../domain/account.js';
import type { ProviderName } from '../../domain/providerName.js';
import type { Publication } from '../../domain/publication.js';
import { grantEndsAt } from '../../domain/refreshPolicy.js';
import { capabilitiesOf } from '../../platforms/capabilities.js';
import { isProviderName, PROVIDER_NAMES, platform, platformLabel } from '../../platforms/registry.js';
import { type Html, html } from '../html.js';
import { describeConnectError } from '../routes/connect.js';

export interface StatusPageModel {
  ownerId: string;
  accounts: AccountListing[];
  configured: ReadonlySet<ProviderName>;
  csrfToken: string;
  /** Path prefix of form actions (the public base URL's path). */
  base: string;
  now: number;
  banner: { tone: 'success' | 'error' | 'info'; text: string } | null;
  /** Required scopes an account lacks (RequiredScopes.missingScopes). */
  missingScopesOf: (account: AccountListing) => string[];
  /** Issue 13: each account's most recent publications, newest first. */
  publications?: ReadonlyMap<string, readonly Publication[]>;
}

const PUBLICATION_LABELS: Record<Publication['status'], string> = {
  queued: 'Queued',
  uploading: 'Uploading',
  processing: 'Processing',
  published: 'Published',
  sent_to_inbox: 'Sent to inbox',
  failed: 'Failed',
  needs_reauth: 'Needs reconnect',
};

function publicationsList(account: AccountListing, model: StatusPageModel): Html | string {
  const recent = model.publications?.get(account.id) ?? [];
  if (recent.length === 0) return '';
  const row = (publication: Publication) => {
    const progress =
      publication.status === 'uploading' && publication.totalBytes
        ? ` ${Math.floor((publication.bytesSent / publication.totalBytes) * 100)}%`
        : '';
    const detail = publication.error
      ? html`<span class="error-text">${publication.error.code}: ${publication.error.message}</span>`
      : publication.platformPostId
        ? html`<span class="external">${publication.platformPostId}</span>`
        : '';
    return html`<li data-publication-id="${publication.id}" data-status="${publication.status}"><strong>${publication.request.title}</strong> <span class="badge badge-publication">${PUBLICATION_LABELS[publication.status]}${progress}</span> ${relativeTime(publication.createdAt, model.now)} ${detail}</li>`;
  };
  return html`<div class="publications"><dt>Recent publications</dt><ul>${recent.map(row)}</ul></div>`;
}

const STATUS_LABELS = { active: 'Active', needs_reauth: 'Needs reconnect', revoked: 'Revoked' } as const;

/** "in 1 h 58 min", "3 min ago": what a person wants to read, not an ISO timestamp. */
export function relativeTime(targetMs: number, nowMs: number): string {
  const delta = targetMs - nowMs;
  const abs = Math.abs(delta);
  const minutes = Math.round(abs / 60_000);
  let text: string;
  if (abs < 60_000) text = 'less than a minute';
  else if (minutes < 60) text = `${minutes} min`;
  else if (minutes < 48 * 60) text = `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  else text = `${Math.round(minutes / 1440)} days`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

function csrfField(token: string): Html {
  return html`<input type="hidden" name="csrf" value="${token}">`;
}

function accountRow(account: AccountListing, model: StatusPageModel): Html {
  const expires =
    account.status !== 'active'
      ? '—'
      : account.expiresAt === null
        ? 'no expiry given'
        : account.expiresAt <= model.now
          ? `expired ${relativeTime(account.expiresAt, model.now)}`
          : relativeTime(account.expiresAt, model.now);
  const lastRefresh =
    account.lastRefreshAt === null ? 'never' : relativeTime(account.lastRefreshAt, model.now);
  const missing = account.status === 'active' ? model.missingScopesOf(account) : [];
  const capabilities = capabilitiesOf(account.provider);
  // A Google app in "Testing" status: the connection dies on a fixed day whatever we refresh.
  const grantEnd =
    account.status === 'active'
      ? grantEndsAt(
          {
            hasCredential: account.hasRefreshToken,
            refreshTokenExpiresAt: account.refreshTokenExpiresAt,
          },
          capabilities,
        )
      : null;
  const action = (path: string, label: string, className: string) =>
    html`<form method="post" action="${model.base}/portal/accounts/${account.id}/${path}">${csrfField(model.csrfToken)}<button type="submit" class="${className}">${label}</button></form>`;
  const reconnect = html`<form method="post" action="${model.base}/portal/connect">${csrfField(model.csrfToken)}<input type="hidden" name="provider" value="${account.provider}"><button type="submit" class="${account.status === 'active' ? '' : 'primary'}">Reconnect</button></form>`;
  return html`<div class="account" data-account-id="${account.id}" data-status="${account.status}">
  <div>
    <div class="account-title">
      <strong>${account.displayName ?? account.externalAccountId}</strong>
      <span class="badge badge-${account.status}">${STATUS_LABELS[account.status]}</span>
      <span class="external">${account.externalAccountId}</span>
    </div>
    <dl class="facts">
      <div><dt>Token expires</dt><dd>${expires}</dd></div>
      <div><dt>Last refresh</dt><dd>${lastRefresh}</dd></div>
      <div><dt>Last error</dt><dd class="${account.lastError ? 'error-text' : ''}">${account.lastError ?? 'none'}</dd></div>
      ${grantEnd === null ? '' : html`<div data-fact="grant-ends"><dt>Connection ends</dt><dd class="error-text">${grantEnd <= model.now ? `ended ${relativeTime(grantEnd, model.now)}` : relativeTime(grantEnd, model.now)} (${new Date(grantEnd).toISOString().slice(0, 16).replace('T', ' ')} UTC): the platform ends it then whatever is refreshed (a Google app in Testing status). Reconnect before then.</dd></div>`}
      ${missing.length === 0 ? '' : html`<div data-fact="missing-scopes"><dt>Missing permissions</dt><dd class="error-text">${missing.join(', ')}: posting will fail. Reconnect and leave every permission ticked.</dd></div>`}
    </dl>
    ${publicationsList(account, model)}
  </div>
  <div class="actions">
    ${model.configured.has(account.provider) ? reconnect : ''}
    ${account.status === 'active' ? action('refresh', 'Refresh', '') : ''}
    ${account.status !== 'revoked' ? action('revoke', 'Revoke', 'danger') : ''}
  </div>
</div>`;
}

function platformCard(provider: ProviderName, model: StatusPageModel): Html {
  const accounts = model.accounts.filter((account) => account.provider === provider);
  const label = platformLabel(provider);
  const connect = model.configured.has(provider)
    ? html`<form method="post" action="${model.base}/portal/connect">${csrfField(model.csrfToken)}<input type="hidden" name="provider" value="${provider}"><button type="submit" class="primary" data-connect="${provider}">Connect ${label}</button></form>`
    : html`<button type="button" disabled title="Not configured on this service">Not available</button>`;
  return html`<section class="card platform" data-provider="${provider}">
  <div class="platform-head">
    <div class="platform-name"><span class="logo logo-${provider}" aria-hidden="true">${platform(provider).logoLetters}</span>${label}</div>
    ${connect}
  </div>
  ${accounts.length === 0 ? html`<p class="empty">No ${label} account connected yet.</p>` : accounts.map((a) => accountRow(a, model))}
</section>`;
}

export function statusPageBody(model: StatusPageModel): Html {
  return html`<header class="top">
  <div>
    <h1>Connected accounts</h1>
    <p>Accounts this service keeps signed in for <span class="owner">${model.ownerId}</span></p>
  </div>
</header>
${model.banner ? html`<div class="banner banner-${model.banner.tone}" role="status">${model.banner.text}</div>` : ''}
<div class="platforms">
${PROVIDER_NAMES.map((provider) => platformCard(provider, model))}
</div>
<footer class="foot">This page is private to you and expires shortly. Tokens are never shown here.</footer>`;
}

/** The banner for the outcome the connect flow or an action sent us back with. */
export function bannerFor(query: Record<string, string | undefined>): StatusPageModel['banner'] {
  const provider = query.provider as ProviderName | undefined;
  const label = provider && isProviderName(provider) ? platformLabel(provider) : 'The account';
  if (query.status === 'connected') return { tone: 'success', text: `${label} account connected.` };
  if (query.status === 'reconnected') return { tone: 'success', text: `${label} account reconnected.` };
  if (query.status === 'error')
    return {
      tone: 'error',
      text: `${label} was not connected. ${describeConnectError(query.error, query.missing)}`,
    };
  if (query.notice === 'revoked') return { tone: 'info', text: 'Access revoked and tokens deleted.' };
  if (query.notice === 'refreshed') return { tone: 'success', text: 'Token refreshed.' };
  if (query.notice === 'refresh_failed')
    return { tone: 'error', text: 'The refresh did not succeed; see the last error.' };
  return null;
}
