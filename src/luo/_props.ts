/**
 * Typed reads of one node's properties from an untrusted handover FDT: each
 * missing or malformed property is a LuoError EFAULT naming the node.
 */
import { type Fdt, FdtError } from '../fdt/index.js';
import { LuoError } from './errors.js';

export class NodeProps {
  constructor(
    private readonly fdt: Fdt,
    readonly node: number,
    /** Where the node is, for messages ("session@0/file@1"). */
    readonly where: string,
  ) {}

  private fault(name: string, what: string): LuoError {
    return new LuoError('EFAULT', `corrupt handover: ${this.where}: ${name} ${what}`);
  }

  /** The raw value (a view into the blob). @throws LuoError EFAULT missing */
  bytes(name: string): Uint8Array {
    try {
      return this.fdt.getProp(this.node, name);
    } catch (e) {
      if (e instanceof FdtError) throw this.fault(name, `unreadable (${e.message})`);
      throw e;
    }
  }

  /** @throws LuoError EFAULT missing, not 4 bytes, or above `max` */
  u32(name: string, max = 0xffffffff): number {
    const v = this.bytes(name);
    if (v.length !== 4) throw this.fault(name, `is ${v.length} bytes, not 4`);
    const n = new DataView(v.buffer, v.byteOffset, 4).getUint32(0);
    if (n > max) throw this.fault(name, `= ${n} is above ${max}`);
    return n;
  }

  /** @throws LuoError EFAULT missing or not 8 bytes */
  u64(name: string): bigint {
    const v = this.bytes(name);
    if (v.length !== 8) throw this.fault(name, `is ${v.length} bytes, not 8`);
    return new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0);
  }

  /** One NUL-terminated UTF-8 string of 1..maxBytes bytes. @throws LuoError EFAULT */
  string(name: string, maxBytes = 4096): string {
    const v = this.bytes(name);
    if (v.length < 2 || v[v.length - 1] !== 0 || v.indexOf(0) !== v.length - 1) {
      throw this.fault(name, 'is not one non-empty NUL-terminated string');
    }
    if (v.length - 1 > maxBytes) throw this.fault(name, `is longer than ${maxBytes} bytes`);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(v.subarray(0, v.length - 1));
    } catch {
      throw this.fault(name, 'is not UTF-8');
    }
  }
}
