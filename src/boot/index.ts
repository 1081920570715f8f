/** The boot layer: command line and early parameters, boot block, memblock. */
export * from './abi.js';
export * from './bootblock.js';
export * from './cmdline.js';
export * from './errors.js';
export * from './memblock.js';
export * from './memparse.js';
export * from './params.js';
