import type { SetupData } from '../boot/bootblock.js';

/** How a generation came up. */
export type BootKind =
  /** No handover: a fresh device, or a handover that was refused (see `coldReason`). */
  | 'cold'
  /** From a boot block staged by its predecessor's kexec. */
  | 'kexec'
  /** A crash (kdump) kernel inside the crashkernel= area. */
  | 'crash';

export interface BootInfo {
  readonly kind: BootKind;
  /** Boots of this device so far, this one included. */
  readonly generation: number;
  /** This boot's id (32 hex digits). */
  readonly bootId: string;
  /** The predecessor's boot id, for a kexec boot. */
  readonly predecessorBootId?: string;
  /** Why a handover offered to this boot was refused (it then booted cold). */
  readonly coldReason?: string;
  /** Physical address of the boot block this boot consumed. */
  readonly bootBlock?: number;
  /** The boot block's setup_data entries (copies), for the subsystems. */
  readonly setupData: readonly SetupData[];
  /** The command line, as given. */
  readonly cmdline: string;
}
