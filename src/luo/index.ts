/**
 * The Live Update Orchestrator for processes: sessions of file descriptors
 * (memfds, files, TCP and Unix listeners) kept open across kexec. The
 * handover's FDT format (Linux's LUO ABI) is under `livekexec/luo/abi`.
 * @module livekexec/luo
 */

export type { NodeProps } from './_props.js';
export { LuoError, type LuoErrorCode } from './errors.js';
export type { FileLifecycleBound, HandoverFlb } from './flb.js';
export { type FileData, fileHandler } from './handler-file.js';
export { type MemfdData, memfdHandler, memfdName } from './handler-memfd.js';
export {
  type TcpListenerData,
  tcpListenerHandler,
  type UnixListenerData,
  unixListenerHandler,
} from './handler-socket.js';
export { defaultHandlers, type FileHandler, type FileIdentity } from './handlers.js';
export { LiveUpdate, type LiveUpdateOptions } from './liveupdate.js';
export { createMemfd, MEMFD_NAME_MAX, memfdRead, memfdSize, memfdWrite } from './memfd.js';
export { type LuoFile, LuoSession, type SessionDirection } from './session.js';
