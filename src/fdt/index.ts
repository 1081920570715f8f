/** The Flattened Device Tree codec: `livekexec/fdt`. */

export * from './dts.js';
export * from './edit.js';
export * from './errors.js';
export * from './format.js';
export * from './header.js';
export * from './read.js';
export * from './values.js';
export * from './write.js';
