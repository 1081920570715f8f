/**
 * The Live Update Orchestrator handover ABI: the only place its layout and
 * property names are written. A contract between a generation and its
 * successor: ANY change here bumps the `-vN` of the compatible it touches.
 *
 * The state is one FDT, in the boot block's setup_data (SETUP.LUO), or in the
 * environment of a bare execve:
 *
 *   / {
 *       compatible = "livekexec,luo-v1";      // "livekexec,luo-v2" when flb@ nodes follow
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
 *       flb@0 {                          // v2 only: one per file-lifecycle-bound state (flb.ts)
 *           compatible = "app,keys-v1";  // the FLB's, unique in the handover
 *           data = [...];                // what its save() returned at the exec
 *           count = /bits/ 64 <2>;       // preserved files linked to it: 1..the number of files
 *       };
 *   };
 *
 * A handover without FLBs is written as v1, exactly as before they existed,
 * so an older successor still reads it; only one that uses FLBs needs a
 * reader of v2 (this one reads both).
 *
 * Independent of KHO, on purpose. Linux keeps LUO's FDT and its session,
 * file and FLB arrays in KHO-preserved memory (kho_alloc_preserve, a KHO
 * subtree), so LUO is off when KHO is. Here a descriptor needs no preserved
 * memory: it survives the execve because freeze clears FD_CLOEXEC, and its
 * description is this small FDT in the boot block. Tying LUO to KHO would
 * make a `kho=off` successor, or one whose KHO revival is refused (it boots
 * cold), also close the service's listening sockets and memfds: a KHO
 * failure would cost refused connections on top of the memory state. So
 * `kho=off` turns off memory preservation only; sessions still cross.
 *
 * Mapping to Linux's LUO ABI (include/linux/kho/abi/luo.h): sessions by
 * name with files by u64 token, as there; "livekexec,luo-vN" is ours (the
 * kernel's is a binary header and arrays in preserved memory); a file node
 * carries the descriptor number it keeps across the execve, where the kernel
 * re-creates the file from its handler's u64 handle; an flb@ node holds
 * what the kernel's luo_flb_ser holds (compatible, data, count), its data
 * bytes in place of the kernel's u64 handle.
 *
 * Handler properties:
 *   tcp-listener-v1   family <4|6>, address "127.0.0.1" | "::1", port <u32 0..65535>
 *   unix-listener-v1  sun-path [bytes of sun_path, no trailing NUL; abstract starts with 0]
 *   memfd-v1          name "x", size /bits/ 64, position /bits/ 64 (both as at freeze)
 *   file-v1           path "/var/x" (for messages), position /bits/ 64 (as at freeze)
 */

export const LUO_COMPATIBLE = 'livekexec,luo-v1';
/** The same layout plus flb@ nodes. */
export const LUO_COMPATIBLE_V2 = 'livekexec,luo-v2';
export const LUO_TCP_LISTENER_COMPATIBLE = 'livekexec,luo-tcp-listener-v1';
export const LUO_UNIX_LISTENER_COMPATIBLE = 'livekexec,luo-unix-listener-v1';
export const LUO_MEMFD_COMPATIBLE = 'livekexec,luo-memfd-v1';
export const LUO_FILE_COMPATIBLE = 'livekexec,luo-file-v1';

/**
 * Longest session name: 64 bytes of UTF-8, not counting a terminator.
 * Linux's LIVEUPDATE_SESSION_NAME_LENGTH is also 64 but counts the NUL of a
 * fixed char array, so the kernel takes at most 63 bytes. Decided on
 * purpose: here a name is an FDT string property (its NUL is the format's,
 * outside the 64), no fixed array exists, and earlier releases handed over
 * 64-byte names: lowering the limit would refuse, in the successor,
 * re-creating the very sessions it just retrieved. A name of exactly 64
 * bytes is the one that would not fit the kernel's /dev/liveupdate.
 */
export const LUO_SESSION_NAME_MAX = 64;
/** Node name prefixes; the unit address is the index in hex. */
export const LUO_SESSION_NODE = 'session';
export const LUO_FILE_NODE = 'file';
export const LUO_FLB_NODE = 'flb';
/** Most FLBs a LiveUpdate registers and a handover carries. */
export const LUO_FLB_MAX = 64;
/** Longest FLB compatible, in bytes of printable ASCII. */
export const LUO_FLB_COMPATIBLE_MAX = 64;
/** Longest file handler compatible (a file node's), in bytes. */
export const LUO_HANDLER_COMPATIBLE_MAX = 64;

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
export const PROP_DATA = 'data';
export const PROP_COUNT = 'count';

/** Largest descriptor number accepted (an int). */
export const LUO_FD_MAX = 0x7fffffff;
/** sizeof(sun_path) on Linux. */
export const LUO_SUN_PATH_MAX = 108;
/** Largest u64. */
export const LUO_U64_MAX = 0xffffffffffffffffn;
