/* The libfdt oracle for test/fdt/interop-libfdt-reader.test.ts: for each blob on stdin
 * ([u32 big-endian length][bytes])*, print one line: fdt_check_header,
 * fdt_check_full, then the node and property walk libfdt sees. */
#include <libfdt.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int readn(void *p, size_t n) { return fread(p, 1, n, stdin) == n; }

/* Names are printed in hex so damaged bytes cannot break the line format. */
static void hex(const char *s, int n) {
  for (int i = 0; i < n; i++) printf("%02x", (unsigned char)s[i]);
}

/* Old libfdt can fault on some damaged pre-v16 blobs: report, do not die. */
static sigjmp_buf recover;
static void on_fault(int sig) { siglongjmp(recover, sig); }

int main(void) {
  unsigned char lenb[4];
  signal(SIGSEGV, on_fault);
  signal(SIGBUS, on_fault);
  while (readn(lenb, 4)) {
    uint32_t len = ((uint32_t)lenb[0] << 24) | (lenb[1] << 16) | (lenb[2] << 8) | lenb[3];
    void *buf = malloc(len ? len : 1);
    if (!buf || !readn(buf, len)) return 2;
    if (sigsetjmp(recover, 1)) {
      printf(" CRASH\n");
      free(buf);
      continue;
    }
    int hdr = len >= 40 ? fdt_check_header(buf) : 99;
    int full = fdt_check_full(buf, len);
    printf("H%d F%d", hdr, full);
    if (hdr == 0 && fdt_totalsize(buf) <= len) {
      int depth = 0, off = 0, steps = 0;
      for (; off >= 0 && depth >= 0 && steps < 100000; off = fdt_next_node(buf, off, &depth), steps++) {
        int nl = 0;
        const char *name = fdt_get_name(buf, off, &nl);
        if (name) {
          printf(" N%d:%d:", off, depth);
          hex(name, nl);
        } else {
          printf(" N%d:%d:!%d", off, depth, nl);
        }
        int p = fdt_first_property_offset(buf, off);
        for (; p >= 0; p = fdt_next_property_offset(buf, p)) {
          const char *pn = NULL; int pl = 0;
          const void *v = fdt_getprop_by_offset(buf, p, &pn, &pl);
          if (v) {
            printf(" P%d:", p);
            hex(pn, strlen(pn));
            printf(":%d", pl);
          } else {
            printf(" P%d:!%d", p, pl);
          }
        }
        if (p != -FDT_ERR_NOTFOUND) printf(" p%d", p);
      }
      printf(" E%d:%d", off, depth);
    }
    printf("\n");
    free(buf);
  }
  return 0;
}
