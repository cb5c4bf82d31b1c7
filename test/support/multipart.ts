/** The body of `POST /v1/accounts/:id/publications` as a publishing engine sends it: metadata, then the file. */
export const MULTIPART_BOUNDARY = 'social-oauth-test-boundary-5b1f';
export const MULTIPART_CONTENT_TYPE = `multipart/form-data; boundary=${MULTIPART_BOUNDARY}`;

/** Everything before the file's bytes (tests that stream the file send this first). */
export function multipartHead(metadata: unknown, fileType = 'video/mp4'): Buffer {
  return Buffer.from(
    `--${MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="metadata"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(metadata)}\r\n` +
      `--${MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="video.mp4"\r\nContent-Type: ${fileType}\r\n\r\n`,
  );
}

export const multipartTail = Buffer.from(`\r\n--${MULTIPART_BOUNDARY}--\r\n`);

export function multipartVideo(metadata: unknown, content: Buffer): Buffer {
  return Buffer.concat([multipartHead(metadata), content, multipartTail]);
}
