import { show } from './base/errors.js';
import { Kernel, type KernelPlatform } from './kernel/kernel.js';
import { KexecError } from './kexec/errors.js';
import type { LoadedImage } from './kexec/kexec.js';
import type { PhysRange } from './kexec/placement.js';
import { PAGE_SIZE } from './memory/device.js';
import { DeviceError } from './memory/errors.js';
import { formatDevice } from './memory/header.js';
import { HeapDevice } from './memory/heap.js';

export interface MachineOptions {
  /** Memory size in bytes (a multiple of 4096). */
  size: number;
  /** NUMA nodes the memory is split into, equally (default 1). */
  nodes?: number;
  name?: string;
  /** The release every generation reports in its kexec metadata (default ''). */
  release?: string;
  /** Publish each generation's status into a status area, as a real process does (default false). */
  status?: boolean;
}

/**
 * An emulated machine: a heap device as its memory and the very kernel code
 * a real process runs. `kernel.kexec.exec()` returns the successor booted on
 * the same memory, so a handover can be rehearsed thousands of times a second.
 */
export class Machine implements KernelPlatform {
  readonly device: HeapDevice;
  readonly nodes: readonly PhysRange[];
  readonly release: string;
  #kernel: Kernel | null = null;
  readonly #status: boolean;

  private constructor(device: HeapDevice, nodes: number, status: boolean, release: string) {
    this.device = device;
    this.#status = status;
    this.nodes = splitNodes(device.size, nodes);
    this.release = release;
  }

  /**
   * A machine with fresh, formatted memory.
   * @throws DeviceError EINVAL for a bad size, node count or name.
   */
  static create(options: MachineOptions): Machine {
    if (typeof options !== 'object' || options === null) {
      throw new DeviceError(
        'EINVAL',
        `Machine.create takes { size, nodes? }, got ${show(options)}`,
      );
    }
    const nodes = options.nodes ?? 1;
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > 64) {
      throw new DeviceError('EINVAL', `nodes must be an integer in 1..64, got ${show(nodes)}`);
    }
    if (options.name !== undefined && typeof options.name !== 'string') {
      throw new DeviceError('EINVAL', `name must be a string, got ${show(options.name)}`);
    }
    const device = new HeapDevice(options.size, { name: options.name });
    formatDevice(device);
    return new Machine(device, nodes, options.status === true, options.release ?? '');
  }

  /** The running generation, if any. */
  get kernel(): Kernel | null {
    return this.#kernel;
  }

  /**
   * Cold boots (a reset: the running generation, if any, is gone; memory
   * keeps its contents, as after a warm reset).
   * @throws BootError for a bad command line; the machine then has no kernel.
   */
  boot(cmdline = ''): Kernel {
    this.#kernel?.retire('a reset of the machine');
    this.#kernel = null;
    this.#kernel = Kernel.boot({
      device: this.device,
      cmdline,
      platform: this,
      nodes: this.nodes,
      release: this.release,
      status: this.#status,
    });
    return this.#kernel;
  }

  /** The platform side of kexec: boots the successor from the committed boot block. */
  execute(image: LoadedImage): Kernel {
    if (
      typeof image !== 'object' ||
      image === null ||
      typeof image.segment !== 'object' ||
      image.segment === null
    ) {
      throw new KexecError('EINVAL', `execute takes a loaded image, got ${show(image)}`);
    }
    const old = this.#kernel;
    const next = Kernel.boot({
      device: this.device,
      cmdline: image.cmdline,
      bootBlock: image.segment.base,
      platform: this,
      nodes: this.nodes,
      release: this.release,
      status: this.#status,
    });
    old?.retire(`generation ${next.generation}`);
    this.#kernel = next;
    return next;
  }

  /** A crash kernel took over (Kernel.panic tells the platform). */
  adopt(kernel: Kernel): void {
    this.#kernel = kernel;
  }
}

function splitNodes(size: number, n: number): PhysRange[] {
  const pages = size / PAGE_SIZE;
  const per = Math.floor(pages / n);
  const out: PhysRange[] = [];
  for (let i = 0; i < n; i++) {
    const first = i * per;
    const count = i === n - 1 ? pages - first : per;
    out.push({ base: first * PAGE_SIZE, size: count * PAGE_SIZE });
  }
  return out;
}
