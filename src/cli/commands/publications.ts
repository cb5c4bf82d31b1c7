import type { Command } from 'commander';
import { PUBLICATION_STATUSES, type Publication, type PublicationStatus } from '../../domain/publication.js';
import { toApiPublication } from '../../http/routes/publications.js';
import { CliError, EXIT, withApp } from '../context.js';
import { printTable } from './accounts.js';

/** `social-oauth publications list|show`: read publications back (never their resumable state). */
export function registerPublications(program: Command): void {
  const publications = program.command('publications').description('read publications back');

  publications
    .command('list')
    .description('publications, newest first')
    .option('--account <accountId>', 'only this account')
    .option('--status <status>', `only this status (${PUBLICATION_STATUSES.join('|')})`)
    .option('--limit <n>', 'at most this many (default 50)', '50')
    .option('--json', 'print one JSON array')
    .action((options: { account?: string; status?: string; limit: string; json?: boolean }) => {
      if (
        options.status !== undefined &&
        !(PUBLICATION_STATUSES as readonly string[]).includes(options.status)
      ) {
        throw new CliError(`--status must be one of ${PUBLICATION_STATUSES.join(', ')}`, EXIT.usage);
      }
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new CliError('--limit must be a whole number from 1 to 1000', EXIT.usage);
      }
      return withApp(async (app) => {
        const page = await app.publications.list({
          accountId: options.account,
          status: options.status as PublicationStatus | undefined,
          limit,
        });
        if (options.json) {
          console.log(JSON.stringify(page.map(toApiPublication), null, 2));
          return;
        }
        if (page.length === 0) {
          console.log('no publications');
          return;
        }
        printTable(
          ['ID', 'ACCOUNT', 'PROVIDER', 'STATUS', 'PROGRESS', 'POST ID', 'CREATED AT'],
          page.map((p) => [
            p.id,
            p.accountId,
            p.provider,
            p.error ? `${p.status} (${p.error.code})` : p.status,
            progressOf(p),
            p.platformPostId ?? p.platformRef ?? '-',
            new Date(p.createdAt).toISOString(),
          ]),
        );
      });
    });

  publications
    .command('show')
    .description('one publication as JSON')
    .argument('<publicationId>')
    .action((id: string) =>
      withApp(async (app) => {
        const publication = await app.publications.get(id);
        if (!publication) throw new CliError(`No publication with id ${id}`, EXIT.usage);
        console.log(JSON.stringify(toApiPublication(publication), null, 2));
      }),
    );
}

function progressOf(publication: Publication): string {
  if (publication.totalBytes === null || publication.totalBytes === 0) return '-';
  return `${Math.floor((publication.bytesSent / publication.totalBytes) * 100)}%`;
}
