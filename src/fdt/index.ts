/**
 * The Flattened Device Tree codec: read (Fdt), write (FdtWriter), edit in
 * place (FdtEditor), print as DTS, decode property values. The format's
 * constants (tokens, header offsets, limits) are under `livekexec/fdt/abi`.
 * @module livekexec/fdt
 */
export {
  type DtsValueType,
  formatProperty,
  formatReservation,
  formatValue,
  guessValueType,
  toDts,
} from './dts.js';
export { FdtEditor, type FdtEditorOptions, type FdtNodeRef } from './edit.js';
export { FDT_ERR, FdtError, type FdtErrorCode } from './errors.js';
export { Fdt, type FdtProperty, type Reservation, type WalkEntry } from './read.js';
export {
  decodeCells,
  decodeReg,
  decodeString,
  decodeStringList,
  decodeU32,
  decodeU64,
  type FdtInt,
  type RegEntry,
} from './values.js';
export { FdtWriter, type FdtWriterOptions, type FdtWriterPhase } from './write.js';
