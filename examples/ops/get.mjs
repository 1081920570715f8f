// Prints GET http://127.0.0.1:<port>/ once it answers with a body matching
// <pattern> (a deploy is done), waiting up to 20 s. argv: <port> <pattern>
const [port, pattern] = process.argv.slice(2);
const deadline = Date.now() + 20_000;
for (;;) {
  try {
    const body = await (await fetch(`http://127.0.0.1:${port}/`)).text();
    if (new RegExp(pattern).test(body)) {
      process.stdout.write(body);
      break;
    }
  } catch {
    // not yet listening
  }
  if (Date.now() > deadline) throw new Error(`no answer matching ${pattern}`);
  await new Promise((r) => setTimeout(r, 100));
}
