/** A worker thread running emulated cases, so that a hang can be ended from outside. */
import { parentPort } from 'node:worker_threads';
import { runEmulatedCase } from './emulated.js';
import { describeError } from './outcome.js';

export interface Job {
  family: string;
  seed: number;
  index: number;
}

parentPort?.on('message', (job: Job) => {
  try {
    parentPort?.postMessage(runEmulatedCase(job.family, job.seed, job.index));
  } catch (err) {
    // The harness itself failed: an unacceptable outcome too, never a silent pass.
    parentPort?.postMessage({
      outcome: 'untyped',
      fault: 'none (harness)',
      detail: describeError(err),
    });
  }
});
