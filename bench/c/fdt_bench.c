/*
 * The libfdt side of `npm run bench -- fdt`: builds a tree with libfdt's
 * sequential-write API and parses+walks it, timing each, so bench/fdt.bench.ts
 * can print our codec's throughput next to libfdt's from the same run.
 *
 * Tree shape (the TypeScript side builds the very same one):
 *   / { compatible; #address-cells; #size-cells;
 *       bus@N { compatible; reg; value;            N in 0..groups-1
 *           dev@M { compatible; reg; value; } ... M in 0..per_group-1
 *       } ... }
 *
 * usage: fdt_bench GROUPS PER_GROUP MILLISECONDS
 * prints: "build OPS_PER_S BYTES" and "walk OPS_PER_S CHECKSUM"
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libfdt.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define CHECK(x) do { int err_ = (x); if (err_ < 0) { \
	fprintf(stderr, "%s: %s\n", #x, fdt_strerror(err_)); exit(1); } } while (0)

static void props(void *fdt, uint32_t index)
{
	fdt32_t reg[2] = { cpu_to_fdt32(index), cpu_to_fdt32(0x1000) };
	CHECK(fdt_property_string(fdt, "compatible", "livekexec,bench-dev"));
	CHECK(fdt_property(fdt, "reg", reg, sizeof(reg)));
	CHECK(fdt_property_u32(fdt, "value", index * 7u));
}

static void build(void *buf, int size, int groups, int per_group)
{
	char name[32];

	CHECK(fdt_create(buf, size));
	CHECK(fdt_finish_reservemap(buf));
	CHECK(fdt_begin_node(buf, ""));
	CHECK(fdt_property_string(buf, "compatible", "livekexec,bench"));
	CHECK(fdt_property_u32(buf, "#address-cells", 1));
	CHECK(fdt_property_u32(buf, "#size-cells", 1));
	for (int g = 0; g < groups; g++) {
		snprintf(name, sizeof(name), "bus@%x", g);
		CHECK(fdt_begin_node(buf, name));
		props(buf, g);
		for (int d = 0; d < per_group; d++) {
			snprintf(name, sizeof(name), "dev@%x", d);
			CHECK(fdt_begin_node(buf, name));
			props(buf, d);
			CHECK(fdt_end_node(buf));
		}
		CHECK(fdt_end_node(buf));
	}
	CHECK(fdt_end_node(buf));
	CHECK(fdt_finish(buf));
}

/* Checks the header, then visits every node and property, reading names and values. */
static uint32_t walk(const void *fdt)
{
	uint32_t sum = 0;
	int len, node, prop;

	CHECK(fdt_check_header(fdt));
	for (node = 0; node >= 0; node = fdt_next_node(fdt, node, NULL)) {
		const char *name = fdt_get_name(fdt, node, &len);
		sum += (uint32_t)len + (uint8_t)name[0];
		fdt_for_each_property_offset(prop, fdt, node) {
			const char *pname;
			const uint8_t *val = fdt_getprop_by_offset(fdt, prop, &pname, &len);
			sum += (uint32_t)len + (uint8_t)pname[0] + (len > 0 ? val[len - 1] : 0);
		}
	}
	return sum;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s GROUPS PER_GROUP MILLISECONDS\n", argv[0]);
		return 2;
	}
	int groups = atoi(argv[1]), per_group = atoi(argv[2]);
	double limit = atoi(argv[3]) / 1000.0;
	int size = 64 + (groups * (per_group + 1) + 1) * 128 + 256;
	void *buf = malloc(size);
	volatile uint32_t sink = 0;
	long calls;
	double t0, el;

	build(buf, size, groups, per_group); /* warm up */
	for (calls = 0, t0 = now_s(); (el = now_s() - t0) < limit; calls++)
		build(buf, size, groups, per_group);
	printf("build %.1f %u\n", calls / el, fdt_totalsize(buf));

	sink += walk(buf);
	for (calls = 0, t0 = now_s(); (el = now_s() - t0) < limit; calls++)
		sink += walk(buf);
	printf("walk %.1f %u\n", calls / el, walk(buf));
	free(buf);
	return sink == 0xffffffffu;
}
