import type { SetupData } from '../boot/bootblock.js';
import type { UpgradeOutcome } from '../memory/boot-record.js';

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
  /** Kexec boots since the last cold boot, this one included (0 for a cold boot), as upstream's kexec metadata counts them. */
  readonly kexecCount: number;
  /** The release of the generation that kexec'd into this one (its kexec metadata), when it said. */
  readonly previousRelease?: string;
  /**
   * A fallback boot: the successor of the handover this boot took failed
   * every try, and this, the last known-good program, booted the same
   * handover in its place.
   */
  readonly fellBackFrom?: UpgradeOutcome;
}
