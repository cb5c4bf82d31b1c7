import { ERROR_CATALOG } from '../errorCatalog.js';
import { toErrorBody } from '../errorReply.js';

export interface PortalErrorPage {
  status: number;
  headers: Record<string, string>;
  title: string;
  text: string;
}

/**
 * What a person sees when a portal page fails: the status and headers the one catalog gives the
 * error (a database outage stays 503 with its Retry-After, a vanished account 404), with words for
 * people instead of a JSON body. Before issue 10, anything without its own statusCode became 400.
 */
export function portalErrorPage(error: unknown): PortalErrorPage {
  const body = toErrorBody(error);
  const status = ERROR_CATALOG[body.code];
  const title =
    status === 401
      ? 'This page has expired'
      : status === 404
        ? 'Not found'
        : status === 503 || status === 429
          ? 'Please try again shortly'
          : 'Something went wrong';
  const text =
    status === 401
      ? 'Status page links are short-lived. Ask the app that sent you here for a new one.'
      : status === 403
        ? 'The form was stale or came from another site. Reload the page and try again.'
        : body.message;
  return { status, headers: body.headers, title, text };
}
