// Sends a large body with the platform's own fetch from a process of its own (a client in the
// test's process shares its event loop with the server, which hides the race where the server
// closes while the client is still writing). Prints one JSON line per request.
// Usage: node bigBodyClient.mjs URL API_KEY BYTES COUNT MODE [CONTENT_TYPE]   (MODE: length | stream)
const [url, apiKey, bytesArg, countArg, mode, contentType = 'application/json'] = process.argv.slice(2);
const bytes = Number(bytesArg);
const body = () => {
  if (mode === 'length') return 'a'.repeat(bytes);
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
};
for (let i = 0; i < Number(countArg); i++) {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': contentType },
      body: body(),
      duplex: 'half',
    });
    const text = await response.text();
    console.log(JSON.stringify({ status: response.status, body: text.slice(0, 200) }));
  } catch (error) {
    console.log(JSON.stringify({ error: String(error.cause?.code ?? error.message) }));
  }
}
