/** The Live Update Orchestrator for processes: `livekexec/luo`. */

export * from './abi.js';
export * from './errors.js';
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
export {
  buildHandover,
  type HandoverFile,
  type HandoverSession,
  type LiveUpdateHandover,
  parseHandover,
  parseLiveUpdateHandover,
} from './handover.js';
export { LiveUpdate, type LiveUpdateOptions } from './liveupdate.js';
export { createMemfd, MEMFD_NAME_MAX, memfdRead, memfdSize, memfdWrite } from './memfd.js';
export {
  checkSessionName,
  checkToken,
  type LuoFile,
  LuoSession,
  type SessionDirection,
} from './session.js';
