/** Every fault family of the suite, and how one case of each runs. */
import { Worker } from 'node:worker_threads';
import type { CaseResult } from './outcome.js';
import { KILL_MODES, runKill, runProcessDamage } from './real.js';
import { REGION_FAMILIES } from './regions.js';
import type { Job } from './worker.js';

export interface Family {
  name: string;
  /** Cases per round of the runner: emulated cases take milliseconds, process cases a second. */
  burst: number;
  run(seed: number, index: number): Promise<CaseResult>;
}

/**
 * Emulated cases run in a worker thread, so that a case that never ends
 * (a loop over damaged metadata) is ended from outside and counted as a hang.
 */
export class EmulatedRunner {
  #worker: Worker | null = null;

  constructor(readonly timeoutMs: number) {}

  run(job: Job): Promise<CaseResult> {
    // Closing a scenario's memfd from a worker draws a warning about unmanaged descriptors.
    if (this.#worker === null)
      this.#worker = new Worker(new URL('./worker.js', import.meta.url), {
        execArgv: ['--no-warnings'],
      });
    const worker = this.#worker;
    return new Promise((resolve) => {
      const done = (r: CaseResult, dead: boolean) => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        if (dead) {
          void worker.terminate();
          this.#worker = null;
        }
        resolve(r);
      };
      const onMessage = (r: CaseResult) => done(r, false);
      const onError = (err: Error) =>
        done({ outcome: 'untyped', fault: 'unknown (the worker died)', detail: String(err) }, true);
      const timer = setTimeout(
        () =>
          done(
            {
              outcome: 'hang',
              fault: 'unknown (see the case)',
              detail: `no result within ${this.timeoutMs} ms`,
            },
            true,
          ),
        this.timeoutMs,
      );
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.postMessage(job);
    });
  }

  close(): void {
    void this.#worker?.terminate();
    this.#worker = null;
  }
}

export function allFamilies(emulated: EmulatedRunner, processTimeoutMs: number): Family[] {
  return [
    ...REGION_FAMILIES.map((name) => ({
      name,
      burst: 8,
      run: (seed: number, index: number) => emulated.run({ family: name, seed, index }),
    })),
    {
      name: 'process-damage',
      burst: 1,
      run: (seed: number, index: number) => runProcessDamage(seed, index, processTimeoutMs),
    },
    ...KILL_MODES.map((mode) => ({
      name: `kill-${mode}`,
      burst: 1,
      run: (seed: number, index: number) => runKill(mode, seed, index, processTimeoutMs),
    })),
  ];
}
