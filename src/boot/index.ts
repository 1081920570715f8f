/**
 * The boot layer: the command line and its early parameters, memparse,
 * memblock. The boot block (what one generation hands the next: command
 * line, memory map, setup_data) is livekexec's own on-device format, read by
 * boot(); its layout (src/boot/abi.ts) is not exported.
 * @module livekexec/boot
 */
export type { SetupData } from './bootblock.js';
export {
  Cmdline,
  type CmdlineParam,
  type ParsedCmdline,
  parameq,
  parseCmdline,
} from './cmdline.js';
export { BootError, type BootErrorCode } from './errors.js';
export { type FreeRange, Memblock } from './memblock.js';
export type { MemblockRegion, RegionList } from './memblock-regions.js';
export { type MemparseResult, memparse, memparseExact } from './memparse.js';
export {
  defaultEarlyParams,
  type EarlyParamDef,
  EarlyParams,
  type EarlyParamValues,
} from './params.js';
