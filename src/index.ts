/**
 * livekexec: Kexec HandOver for processes. The public API; every subsystem is
 * also reachable through its documented subpath export (see package.json).
 */
export * as fdt from './fdt/index.js';
