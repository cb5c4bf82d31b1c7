import type { FastifyReply } from 'fastify';
import { type Html, html } from '../html.js';

/**
 * Our HTML pages load nothing but our own stylesheet, run no script and cannot be framed
 * (clickjacking a Revoke button). form-action is left out on purpose: Chrome applies it to the
 * redirect chain after a submit, and Connect ends on the platform's consent page.
 */
export const PAGE_CSP =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

export const STYLESHEET_PATH = '/assets/portal.css';

export function renderPage(title: string, body: Html): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${title}</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
<main class="page">
${body}
</main>
</body>
</html>
`.value;
}

export function sendPage(reply: FastifyReply, status: number, title: string, body: Html): FastifyReply {
  return (
    reply
      .status(status)
      .header('content-security-policy', PAGE_CSP)
      // With no-referrer, browsers send `Origin: null` on form posts and the origin check fails.
      .header('referrer-policy', 'same-origin')
      .type('text/html; charset=utf-8')
      .send(renderPage(title, body))
  );
}

/** A page that says what went wrong and what to do next, for people who followed a link. */
export function sendMessagePage(
  reply: FastifyReply,
  status: number,
  message: { title: string; text: string; tone: 'error' | 'success' | 'info' },
): FastifyReply {
  return sendPage(
    reply,
    status,
    message.title,
    html`<section class="card message message-${message.tone}">
  <h1>${message.title}</h1>
  <p>${message.text}</p>
</section>`,
  );
}
