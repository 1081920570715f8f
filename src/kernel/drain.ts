/**
 * Draining a server before an upgrade's exec: stop accepting (the preserved
 * duplicate keeps the socket and its backlog for the successor), let every
 * request already sent be answered, end the connections that are only
 * kept alive, and close what is left after a timeout.
 */
import { createRequire } from 'node:module';
import type { Server, Socket } from 'node:net';

/** How often a drain closes the connections that went idle (ms). */
const REAP_INTERVAL_MS = 20;

/**
 * Stops accepting and waits for the open connections to end, closing them
 * all after `timeoutMs`.
 *
 * Not http.Server.close(): it closes the idle connections at once, and
 * Node.js 26 counts as idle a connection accepted whose request has not
 * been read yet (nodejs/node#63470), whose client then sees ECONNRESET
 * although it sent its request in time. So the listening handle is closed
 * alone, and from the next turn of the event loop on, every
 * REAP_INTERVAL_MS, the idle connections that have carried a request
 * (keep-alive ones between requests) are closed: a connection that has
 * read nothing yet is left to send its request, however late its client
 * is, and is answered.
 */
export function drain(server: Server, timeoutMs: number): Promise<void> {
  if (!server.listening) return Promise.resolve();
  const http = server as HttpServer;
  return new Promise((resolve) => {
    let closed = false;
    let reaper: ReturnType<typeof setInterval> | null = null;
    const timer = setTimeout(() => http.closeAllConnections?.(), timeoutMs);
    netServerClose().call(server, () => {
      closed = true;
      clearTimeout(timer);
      if (reaper !== null) clearInterval(reaper);
      resolve();
    });
    if (http.closeIdleConnections === undefined) return;
    // Two turns: the first check phase may come before this turn's reads.
    setImmediate(() =>
      setImmediate(() => {
        if (closed) return;
        closeServedIdle(http);
        if (!closed) reaper = setInterval(() => closeServedIdle(http), REAP_INTERVAL_MS);
      }),
    );
  });
}

/** What a drain uses of an http.Server (a net.Server has none of it). */
interface HttpServer extends Server {
  closeIdleConnections?: () => void;
  closeAllConnections?: () => void;
}

/** An entry of http.Server's connection list: the parser of one connection. */
interface ListedConnection {
  socket?: Socket & { _httpMessage?: { finished?: boolean } | null };
}

/**
 * Closes the idle connections that have read something: kept alive
 * between requests. Node.js offers no call for that (closeIdleConnections
 * closes the unread ones too), so it goes through the server's own list,
 * under the symbol node names 'http.server.connections' (Node.js 20 to 26;
 * only 26 lists a connection that has read nothing as idle), with
 * closeIdleConnections' own test of a response still being written.
 * Where the list is not found, closeIdleConnections. On a TLS server
 * bytesRead counts the request's bytes, not the handshake's (Node.js 26: 0
 * after a handshake, 65 after one GET), so the same test holds there.
 */
function closeServedIdle(server: HttpServer): void {
  const list = connectionList(server);
  if (list === null) {
    server.closeIdleConnections?.();
    return;
  }
  for (const c of list.idle()) {
    const socket = c.socket;
    if (socket === undefined || socket.bytesRead === 0) continue;
    if (socket._httpMessage && !socket._httpMessage.finished) continue;
    socket.destroy();
  }
}

function connectionList(server: Server): { idle(): ListedConnection[] } | null {
  const key = Object.getOwnPropertySymbols(server).find(
    (s) => s.description === 'http.server.connections',
  );
  const list = key === undefined ? undefined : (server as unknown as Record<symbol, unknown>)[key];
  const idle = (list as { idle?: unknown } | undefined)?.idle;
  return typeof idle === 'function' ? (list as { idle(): ListedConnection[] }) : null;
}

/**
 * net.Server's own close: stops listening, without http.Server's closing of
 * idle connections (node:net on demand: a successor's boot needs none of it).
 */
function netServerClose(): Server['close'] {
  return (createRequire(import.meta.url)('node:net') as typeof import('node:net')).Server.prototype
    .close;
}
