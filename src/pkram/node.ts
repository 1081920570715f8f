/**
 * A PKRAM node: a name and a list of objects, in one node page (layout in
 * abi.ts). Opened for saving by Pkram.prepareSave or for loading by
 * Pkram.prepareLoad; each phase is an explicit state, and a call in the wrong
 * one is EINVAL.
 */

import { NODE_OFF_NR_OBJS, NODE_OFF_OBJ, OBJ_OFF_NEXT, PKRAM_NODE_FL_SAVED } from './abi.js';
import { PkramError } from './errors.js';
import type { PkramHost } from './host.js';
import { type ObjectOwner, PkramObject, releaseObject } from './object.js';
import { pageWords, wordsU64 } from './stream.js';
import { type NodeWriter, sealNode } from './writer.js';

export type NodeState = 'saving' | 'saved' | 'discarded' | 'loading' | 'loaded';

/** What a node needs from the Pkram that made it. */
export interface NodeOwner extends PkramHost {
  /**
   * finishSave: relocates the node if it collides, preserves its blocks and
   * puts it on the node list; returns where its node page ended up and how
   * many folios relocation copied.
   * @throws PkramError EINVAL (a folio saved twice), ENOMEM (nothing changed).
   */
  nodeSaved(node: PkramNode, writer: NodeWriter): { pfn: number; relocated: number };
  /** discardSave: the name is free again. */
  nodeDiscarded(node: PkramNode): void;
}

export class PkramNode {
  readonly name: string;
  /** True when the node came from the predecessor: then PKRAM owns every folio in it. */
  readonly inherited: boolean;
  readonly #owner: NodeOwner;
  readonly #objects: ObjectOwner;
  #state: NodeState;
  #pfn: number;
  #writer: NodeWriter | null;
  #open: PkramObject | null = null;
  #relocated = 0;
  // Loading: the next object to hand out and how many are left.
  #nextObj = 0;
  #objsLeft = 0;

  /**
   * @internal Made by Pkram.prepareSave (with the writer holding its node
   * page) or Pkram.prepareLoad (writer null, pfn its node page).
   */
  constructor(
    owner: NodeOwner,
    name: string,
    inherited: boolean,
    writer: NodeWriter | null,
    pfn: number,
  ) {
    this.#owner = owner;
    this.name = name;
    this.inherited = inherited;
    this.#writer = writer;
    this.#pfn = writer?.pfn ?? pfn;
    this.#state = writer !== null ? 'saving' : 'loading';
    this.#objects = {
      host: owner,
      inherited,
      closed: (obj) => {
        if (this.#open === obj) this.#open = null;
      },
    };
    if (writer === null) {
      const w = pageWords(owner.device, pfn);
      this.#nextObj = wordsU64(w, NODE_OFF_OBJ / 4);
      this.#objsLeft = w[NODE_OFF_NR_OBJS / 4];
    }
  }

  get state(): NodeState {
    return this.#state;
  }

  /** pfn of the node page; it changes if finishSave moved the node out of an avoided range. */
  get pfn(): number {
    return this.#pfn;
  }

  /** Folios copied away from avoided ranges while saving (each counts once, whatever its order). */
  get relocatedFolios(): number {
    return (this.#writer?.relocatedFolios ?? 0) + this.#relocated;
  }

  /**
   * Starts a new object in this node.
   * @throws PkramError EINVAL (not saving, or an object is still open), ENOMEM, ENODEV.
   */
  prepareSaveObj(): PkramObject {
    this.#expect('saving', 'prepareSaveObj');
    this.#noOpenObject('prepareSaveObj');
    const writer = (this.#writer as NodeWriter).beginObject();
    this.#open = new PkramObject(this.#objects, writer.pfn, writer);
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
    const writer = this.#writer as NodeWriter;
    const saved = this.#owner.nodeSaved(this, writer);
    this.#relocated = writer.relocatedFolios + saved.relocated;
    this.#pfn = saved.pfn;
    sealNode(this.#owner.device, this.#pfn, PKRAM_NODE_FL_SAVED);
    this.#writer = null;
    this.#state = 'saved';
  }

  /**
   * Abandons the save: frees every page it allocated (node, objects, links,
   * data, relocated copies); the program's folios stay the program's.
   * @throws PkramError EINVAL (not saving), ENODEV.
   */
  discardSave(): void {
    this.#expect('saving', 'discardSave');
    this.#open?.finishSaveObj();
    const writer = this.#writer as NodeWriter;
    writer.freePages();
    this.#relocated = writer.relocatedFolios;
    this.#writer = null;
    this.#state = 'discarded';
    this.#owner.nodeDiscarded(this);
  }

  /**
   * The next object to load, or null when every object was handed out.
   * @throws PkramError EINVAL (not loading, or an object is still open), ENODEV.
   */
  prepareLoadObj(): PkramObject | null {
    this.#expect('loading', 'prepareLoadObj');
    this.#noOpenObject('prepareLoadObj');
    if (this.#objsLeft === 0) return null;
    const pfn = this.#takeObject();
    this.#open = new PkramObject(this.#objects, pfn, null);
    return this.#open;
  }

  /**
   * Ends the load and frees whatever was not loaded: an open object is
   * finished, objects not visited are released, then the node page.
   * @throws PkramError EINVAL (not loading), ENODEV.
   */
  finishLoad(): void {
    this.#expect('loading', 'finishLoad');
    this.#open?.finishLoadObj();
    while (this.#objsLeft > 0) releaseObject(this.#owner, this.#takeObject(), 0, this.inherited);
    this.#owner.free(this.#pfn, 0);
    this.#state = 'loaded';
  }

  #takeObject(): number {
    const pfn = this.#nextObj;
    this.#nextObj = wordsU64(pageWords(this.#owner.device, pfn), OBJ_OFF_NEXT / 4);
    this.#objsLeft--;
    return pfn;
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
    this.#owner.check();
    if (this.#state !== state) {
      throw new PkramError('EINVAL', `${op}: node "${this.name}" is ${this.#state}, not ${state}`);
    }
  }
}
