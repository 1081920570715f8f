/**
 * A PKRAM node: a name and a list of objects, in one node page (layout in
 * abi.ts). Opened for saving by Pkram.prepareSave or for loading by
 * Pkram.prepareLoad; each phase is an explicit state, and a call in the wrong
 * one is EINVAL.
 */

import { type MemoryDevice, PAGE_SIZE } from '../memory/device.js';
import { getU64, setU64 } from './_u64.js';
import {
  NODE_OFF_FLAGS,
  NODE_OFF_MAGIC,
  NODE_OFF_NAME,
  NODE_OFF_NAME_LEN,
  NODE_OFF_NEXT,
  NODE_OFF_NR_OBJS,
  NODE_OFF_OBJ,
  OBJ_OFF_NEXT,
  PKRAM_NODE_FL_SAVED,
  PKRAM_NODE_MAGIC,
} from './abi.js';
import { PkramError } from './errors.js';
import { initObjectPage, PkramObject, releaseObject } from './object.js';
import type { Pkram } from './pkram.js';
import { sealPage } from './seal.js';

export type NodeState = 'saving' | 'saved' | 'discarded' | 'loading' | 'loaded';

/** Formats a fresh node page holding `name` (already checked: 1..256 bytes). */
export function initNodePage(device: MemoryDevice, pfn: number, name: Uint8Array): void {
  device.bytes(pfn * PAGE_SIZE, PAGE_SIZE).fill(0);
  const view = device.view(pfn * PAGE_SIZE, PAGE_SIZE);
  view.setUint32(NODE_OFF_MAGIC, PKRAM_NODE_MAGIC, true);
  view.setUint32(NODE_OFF_NAME_LEN, name.length, true);
  device.bytes(pfn * PAGE_SIZE + NODE_OFF_NAME, name.length).set(name);
}

/** Sets a node page's next-node pointer (the node list is linked at finalize) and reseals it. */
export function setNodeNext(device: MemoryDevice, pfn: number, next: number): void {
  setU64(device.view(pfn * PAGE_SIZE, PAGE_SIZE), NODE_OFF_NEXT, next);
  sealPage(device, pfn, 'node');
}

export class PkramNode {
  #state: NodeState;
  #open: PkramObject | null = null;
  #lastObj = 0;
  #nrObjs = 0;
  // Loading: the next object to hand out and how many are left.
  #nextObj = 0;
  #objsLeft = 0;
  /** Folios copied away from avoided ranges while saving (each counts once, whatever its order). */
  relocatedFolios = 0;

  /** @internal Made by Pkram.prepareSave / prepareLoad. */
  constructor(
    private readonly pkram: Pkram,
    /** pfn of the node page; changes if the node is rebuilt to avoid a range. */
    public pfn: number,
    readonly name: string,
    mode: 'save' | 'load',
    /** True when the node came from the predecessor: then PKRAM owns every folio in it. */
    readonly inherited: boolean,
  ) {
    this.#state = mode === 'save' ? 'saving' : 'loading';
    if (mode === 'load') {
      const view = pkram.device.view(pfn * PAGE_SIZE, PAGE_SIZE);
      this.#nextObj = getU64(view, NODE_OFF_OBJ);
      this.#objsLeft = view.getUint32(NODE_OFF_NR_OBJS, true);
    }
  }

  get state(): NodeState {
    return this.#state;
  }

  /**
   * Starts a new object in this node.
   * @throws PkramError EINVAL (not saving, or an object is still open), ENOMEM, ENODEV.
   */
  prepareSaveObj(): PkramObject {
    this.#expect('saving', 'prepareSaveObj');
    this.#noOpenObject('prepareSaveObj');
    const device = this.pkram.device;
    const pfn = this.pkram._allocPage();
    initObjectPage(device, pfn);
    if (this.#lastObj === 0) setU64(this.#view(), NODE_OFF_OBJ, pfn);
    else {
      // The previous object was sealed when it was finished; linking it changes it.
      setU64(device.view(this.#lastObj * PAGE_SIZE, PAGE_SIZE), OBJ_OFF_NEXT, pfn);
      sealPage(device, this.#lastObj, 'object');
    }
    this.#lastObj = pfn;
    this.#nrObjs++;
    this.#view().setUint32(NODE_OFF_NR_OBJS, this.#nrObjs, true);
    this.#open = new PkramObject(
      this.pkram,
      pfn,
      'save',
      this.inherited,
      (o) => this.#closed(o),
      (n) => {
        this.relocatedFolios += n;
      },
    );
    return this.#open;
  }

  /**
   * Ends the save: the node joins the preserved set (relocating anything that
   * collides with an avoided range first).
   * @throws PkramError EINVAL (not saving, an object is open, a folio saved twice),
   *   EEXIST (KHO or a pool took a page of the node since: the node stays open),
   *   ENOMEM (the node stays open: discardSave or retry), ENODEV.
   */
  finishSave(): void {
    this.#expect('saving', 'finishSave');
    this.#noOpenObject('finishSave');
    this.pkram._nodeSaved(this);
    this.#view().setUint32(NODE_OFF_FLAGS, PKRAM_NODE_FL_SAVED, true);
    sealPage(this.pkram.device, this.pfn, 'node');
    this.#state = 'saved';
  }

  /**
   * Abandons the save: frees every page it allocated (node, objects, links,
   * data, relocated copies); the program's folios stay the program's.
   * @throws PkramError EINVAL (not saving), ENODEV.
   */
  discardSave(): void {
    this.#expect('saving', 'discardSave');
    this.#open?._close();
    this.pkram._freeNodePages(this.pfn, false);
    this.#state = 'discarded';
    this.pkram._nodeDiscarded(this);
  }

  /**
   * The next object to load, or null when every object was handed out.
   * @throws PkramError EINVAL (not loading, or an object is still open), ENODEV.
   */
  prepareLoadObj(): PkramObject | null {
    this.#expect('loading', 'prepareLoadObj');
    this.#noOpenObject('prepareLoadObj');
    if (this.#objsLeft === 0) return null;
    const pfn = this.#nextObj;
    this.#nextObj = getU64(this.pkram.device.view(pfn * PAGE_SIZE, PAGE_SIZE), OBJ_OFF_NEXT);
    this.#objsLeft--;
    this.#open = new PkramObject(
      this.pkram,
      pfn,
      'load',
      this.inherited,
      (o) => this.#closed(o),
      () => {},
    );
    return this.#open;
  }

  /**
   * Ends the load and frees whatever was not loaded: an open object is
   * finished, objects not visited are released, then the node page.
   * @throws PkramError EINVAL (not loading), ENODEV.
   */
  finishLoad(): void {
    this.#expect('loading', 'finishLoad');
    this.#open?._close();
    const device = this.pkram.device;
    while (this.#objsLeft > 0) {
      const pfn = this.#nextObj;
      this.#nextObj = getU64(device.view(pfn * PAGE_SIZE, PAGE_SIZE), OBJ_OFF_NEXT);
      this.#objsLeft--;
      releaseObject(this.pkram, pfn, 0, this.inherited);
    }
    this.pkram._free(this.pfn, 0);
    this.#state = 'loaded';
    this.pkram._nodeLoaded(this);
  }

  #closed(obj: PkramObject): void {
    if (this.#open === obj) this.#open = null;
  }

  #view(): DataView {
    return this.pkram.device.view(this.pfn * PAGE_SIZE, PAGE_SIZE);
  }

  #noOpenObject(op: string): void {
    if (this.#open !== null) {
      throw new PkramError(
        'EINVAL',
        `${op}: node "${this.name}" still has object ${this.#open.pfn} open`,
      );
    }
  }

  #expect(state: NodeState, op: string): void {
    this.pkram._check();
    if (this.#state !== state) {
      throw new PkramError('EINVAL', `${op}: node "${this.name}" is ${this.#state}, not ${state}`);
    }
  }
}
