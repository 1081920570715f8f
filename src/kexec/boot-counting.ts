/**
 * A/B boot counting of a pending handover, as systemd-boot counts the tries
 * of a new entry (`+N-M`) and GRUB falls back to the old one: the
 * predecessor's exec starts try 1 with the boot block; each failed try
 * either starts the next (a retry of the successor) or, once the tries are
 * spent, marks the trial "falling back" so that the next boot of the same
 * block is the last known-good program; a try marked good ends the trial.
 * Pure functions over the device's boot record (memory/boot-record.ts).
 */
import type { BootCounting, KexecCommand } from '../boot/kexec-metadata.js';
import type { BootRecord, TrialRecord, UpgradeOutcome } from '../memory/boot-record.js';

/** The record the predecessor's exec writes with the pending boot block: try 1 of `counting`. */
export function trialStarted(
  record: BootRecord,
  bootBlock: number,
  counting: BootCounting,
  pid: number,
  now: number,
  base: { generation: number; bootId: string },
): BootRecord {
  const trial: TrialRecord = {
    state: 'on-trial',
    bootBlock,
    baseGeneration: base.generation,
    baseBootId: base.bootId,
    tries: 1,
    maxTries: counting.tries,
    pid,
    deadlineMs: counting.deadlineMs,
    started: now,
    release: '',
    reason: '',
  };
  return { ...record, trial };
}

/**
 * A try of the trial on `bootBlock` failed for `reason`.
 * @returns the record to write and what boots next: the successor again
 *   (`retry`, its try counted), or the fallback; null when the record holds
 *   no trial of that block on trial (nothing to count; the fallback failing
 *   too leaves the handover pending).
 */
export function tryFailed(
  record: BootRecord,
  bootBlock: number,
  reason: string,
  pid: number,
): { record: BootRecord; next: 'retry' | 'fallback' } | null {
  const t = record.trial;
  // The fallback itself failing is no try: nothing is left to boot (the handover stays pending).
  if (t === null || t.bootBlock !== bootBlock || t.state !== 'on-trial') return null;
  if (t.tries < t.maxTries) {
    return {
      record: { ...record, trial: { ...t, tries: t.tries + 1, pid, reason } },
      next: 'retry',
    };
  }
  return {
    record: { ...record, trial: { ...t, state: 'falling-back', pid, reason } },
    next: 'fallback',
  };
}

/** The outcome a fallback boot records: the successor is marked bad, with why. */
export function fellBack(
  t: TrialRecord,
  successor: KexecCommand | null,
  now: number,
): UpgradeOutcome {
  return {
    outcome: 'fell-back',
    successor: t.release !== '' ? t.release : commandText(successor),
    tries: t.tries,
    reason: t.reason !== '' ? t.reason : 'no reason recorded',
    at: now,
  };
}

/** The outcome a successor marked good records. */
export function markedGood(t: TrialRecord, release: string, now: number): UpgradeOutcome {
  return { outcome: 'good', successor: release, tries: t.tries, reason: '', at: now };
}

/** A command as one line, for people: its argv after the node binary and its options. */
export function commandText(c: KexecCommand | null): string {
  if (c === null) return 'unknown';
  const script = c.argv.findIndex((a, i) => i > 0 && !a.startsWith('-'));
  return (script > 0 ? c.argv.slice(script) : c.argv).join(' ');
}
