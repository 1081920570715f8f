/**
 * File handlers: what LUO's `struct liveupdate_file_ops` is to the kernel.
 * One handler per kind of descriptor; the session asks each in turn whether
 * it can preserve an fd, then drives the chosen one through the lifecycle:
 *
 *   preserve -> (unpreserve | freeze -> (unfreeze | save ... exec ... load
 *            -> retrieve -> canFinish -> finish))
 *
 * Clearing and restoring FD_CLOEXEC is common to all and done by the session;
 * a handler's freeze only checks the file and records what changes while it
 * is open (position, size).
 */
import type { FdtWriter } from '../fdt/index.js';
import type { FileIdentity } from './_identity.js';
import type { NodeProps } from './_props.js';
import { fileHandler } from './handler-file.js';
import { memfdHandler } from './handler-memfd.js';
import { tcpListenerHandler, unixListenerHandler } from './handler-socket.js';

export type { FileIdentity } from './_identity.js';

export interface FileHandler<D extends FileIdentity = FileIdentity> {
  /** The compatible of its file nodes, e.g. "livekexec,luo-memfd-v1". */
  readonly compatible: string;
  /** Whether this handler can preserve `fd`. Never throws. */
  canPreserve(fd: number): boolean;
  /** Record what `fd` is. @throws LuoError ENOENT it changed since canPreserve */
  preserve(fd: number): D;
  /** Forget `fd`; it stays open and belongs to the caller again. */
  unpreserve(fd: number, data: D): void;
  /**
   * Just before the exec: check `fd` is still what was preserved and return
   * the data as of now.
   * @throws LuoError ESRCH it is not (the session turns this into EAGAIN)
   */
  freeze(fd: number, data: D): D;
  /** The exec did not happen. */
  unfreeze(fd: number, data: D): void;
  /**
   * In the successor: check the inherited `fd` is still what was preserved.
   * @returns the data, for the caller to use (address, size, position...)
   * @throws LuoError ESRCH it is closed or another file
   */
  retrieve(fd: number, data: D): D;
  /**
   * Optional: asked for every file of a session before any of them is
   * finished (the kernel's can_finish); false refuses the finish (EBUSY) and
   * nothing changes, so a handler can hold its files until what it needs
   * has been retrieved. Never throws.
   */
  canFinish?(fd: number, data: D, retrieved: boolean): boolean;
  /** The session is finished; `retrieved` says whether the program took the fd. */
  finish(fd: number, data: D, retrieved: boolean): void;
  /** Write its properties (identity included) into the open file node. */
  save(w: FdtWriter, data: D): void;
  /** Read them back. @throws LuoError EFAULT missing or malformed */
  load(p: NodeProps): D;
  /** One line for messages and status tools. */
  describe(data: D): string;
}

/** The handlers a LiveUpdate starts with, most specific first (a memfd is also a regular file). */
export function defaultHandlers(): FileHandler[] {
  return [
    tcpListenerHandler as FileHandler,
    unixListenerHandler as FileHandler,
    memfdHandler as FileHandler,
    fileHandler as FileHandler,
  ];
}
