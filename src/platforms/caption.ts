import type { PublishRequest } from '../publishing/platformPublisher.js';

/** Instagram and TikTok have one caption: the title, then the description after a blank line. */
export function captionOf(request: Pick<PublishRequest, 'title' | 'description'>): string {
  const description = request.description?.trim() ?? '';
  return description === '' ? request.title : `${request.title}\n\n${description}`;
}
