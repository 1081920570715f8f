/** Lines of a child's stdout, one promise at a time. */
import type { Readable } from 'node:stream';

export function lines(stream: Readable): { next(): Promise<string> } {
  const ready: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const w = waiting.shift();
      if (w) w(line);
      else ready.push(line);
    }
  });
  return {
    next: () =>
      new Promise((resolve, reject) => {
        const l = ready.shift();
        if (l !== undefined) resolve(l);
        else {
          waiting.push(resolve);
          stream.once('end', () => reject(new Error('the child closed its stdout')));
        }
      }),
  };
}
