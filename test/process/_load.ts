import http from 'node:http';
import { createServer } from 'node:net';

/**
 * `workers` loops of HTTP requests, each on a new connection, until stopped;
 * counts what succeeded and how each failure failed.
 */
export function requestLoop(
  port: number,
  workers = 1,
): { stop: () => Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const one = () =>
    new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ok++;
          else failed.push(`status ${res.statusCode}`);
          resolve();
        });
      });
      req.on('error', (err) => {
        failed.push((err as NodeJS.ErrnoException).code ?? err.message);
        resolve();
      });
    });
  const loops = Array.from({ length: workers }, async () => {
    while (running) await one();
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { ok, failed };
    },
  };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
