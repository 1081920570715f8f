/**
 * The Live Update Orchestrator handover ABI: the only place its layout and
 * property names are written. A contract between a generation and its
 * successor: ANY change here bumps the `-vN` of the compatible it touches.
 *
 * The state is one FDT (the lead places it in a KHO subtree, or in the
 * environment of a bare execve):
 *
 *   / {
 *       compatible = "livekexec,luo-v1";
 *       session@0 {                      // one per outgoing session, in creation order
 *           name = "my-service";         // 1..64 bytes of UTF-8 (not a node name)
 *           file@0 {                     // one per preserved descriptor
 *               compatible = "livekexec,luo-tcp-listener-v1";
 *               token = /bits/ 64 <7>;   // the caller's u64 key, unique in the session
 *               fd = <5>;                // descriptor number, left open across execve
 *               fd-flags = <1>;          // F_GETFD flags before freeze (FD_CLOEXEC)
 *               dev = /bits/ 64 <...>;   // st_dev and st_ino: the open file's identity
 *               ino = /bits/ 64 <...>;
 *               ...                      // the handler's own properties, below
 *           };
 *       };
 *   };
 *
 * Handler properties:
 *   tcp-listener-v1   family <4|6>, address "127.0.0.1" | "::1", port <u32 0..65535>
 *   unix-listener-v1  sun-path [bytes of sun_path, no trailing NUL; abstract starts with 0]
 *   memfd-v1          name "x", size /bits/ 64, position /bits/ 64 (both as at freeze)
 *   file-v1           path "/var/x" (for messages), position /bits/ 64 (as at freeze)
 */

export const LUO_COMPATIBLE = 'livekexec,luo-v1';
export const LUO_TCP_LISTENER_COMPATIBLE = 'livekexec,luo-tcp-listener-v1';
export const LUO_UNIX_LISTENER_COMPATIBLE = 'livekexec,luo-unix-listener-v1';
export const LUO_MEMFD_COMPATIBLE = 'livekexec,luo-memfd-v1';
export const LUO_FILE_COMPATIBLE = 'livekexec,luo-file-v1';

/** Longest session name, in bytes of UTF-8 (Linux's LIVEUPDATE_SESSION_NAME_LENGTH). */
export const LUO_SESSION_NAME_MAX = 64;
/** Node name prefixes; the unit address is the index in hex. */
export const LUO_SESSION_NODE = 'session';
export const LUO_FILE_NODE = 'file';

export const PROP_COMPATIBLE = 'compatible';
export const PROP_NAME = 'name';
export const PROP_TOKEN = 'token';
export const PROP_FD = 'fd';
export const PROP_FD_FLAGS = 'fd-flags';
export const PROP_DEV = 'dev';
export const PROP_INO = 'ino';
export const PROP_FAMILY = 'family';
export const PROP_ADDRESS = 'address';
export const PROP_PORT = 'port';
export const PROP_SUN_PATH = 'sun-path';
export const PROP_SIZE = 'size';
export const PROP_POSITION = 'position';
export const PROP_PATH = 'path';

/** Largest descriptor number accepted (an int). */
export const LUO_FD_MAX = 0x7fffffff;
/** sizeof(sun_path) on Linux. */
export const LUO_SUN_PATH_MAX = 108;
/** Largest u64. */
export const LUO_U64_MAX = 0xffffffffffffffffn;
