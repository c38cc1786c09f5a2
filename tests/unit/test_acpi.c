/*
 * Unit tests for the ACPI tables (acpi.c).
 *
 * Each topology is built into a malloc'd guest RAM image at the real boot
 * layout addresses, then checked twice:
 *   - by this file's own reading of the tables (pointers from the RSDP down,
 *     checksums, every MADT entry against topology_apic_id(), FADT fields);
 *   - by ACPICA itself, the code Linux runs: iasl disassembles every table,
 *     the disassembly is compiled back and must reproduce our bytes, and
 *     acpiexec loads the set into the ACPICA interpreter and evaluates \_S5,
 *     the processors' _STA/_MAT, the root bridge's _CRS/_PRT/_OSC and the
 *     UART's _CRS; and runs the CPU hotplug event end to end (the GED's
 *     _EVT, the scan, the Notify to each hot-pluggable processor) against
 *     acpiexec's stand-in for the controller's ports. iasl and acpiexec
 *     come with acpica-tools; without them the tests FAIL rather than
 *     skip, because they are the point.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "acpi.h"
#include "boot_layout.h"
#include "cpu_hotplug.h"
#include "memmap.h"
#include "topology.h"

#define GUEST_RAM_SIZE 0x100000   /* the first MiB holds the whole layout */
#define WINDOW         (BOOT_ACPI_TABLES_END - BOOT_ACPI_TABLES_GPA)

/* --- Guest memory and building ------------------------------------------ */

struct guest {
	uint8_t *ram;
	struct mem_segment seg;
	struct memmap map;
};

static void guest_init(struct guest *g, size_t size)
{
	g->ram = malloc(size);
	assert_non_null(g->ram);
	memset(g->ram, 0xee, size);   /* anything the builder leaves is visible */
	g->seg = (struct mem_segment){ .gpa = 0, .len = size, .hva = g->ram };
	g->map = (struct memmap){ .segs = &g->seg, .nsegs = 1 };
}

static void guest_free(struct guest *g) { free(g->ram); }

static struct topology topo(const char *arg)
{
	struct topology t;
	char err[256] = "";
	if (topology_parse(arg, &t, err, sizeof(err)))
		fail_msg("topology '%s': %s", arg, err);
	return t;
}

/* What machine.c passes, with a 64-bit window added to exercise QWordMemory. */
static struct acpi_config config_for(const struct topology *t)
{
	return (struct acpi_config){
		.topo = t,
		.sleep_ctl_port = 0x600,
		.reset_port = 0xcf9,
		.reset_value = 0x06,
		.s5_sleep_type = 5,
		.ioapic_addr = 0xfec00000,
		.lapic_addr = 0xfee00000,
		.ioapic_id = 0,
		.ioapic_gsis = 24,
		.pci_mmio32_base = 0xc0000000,
		.pci_mmio32_end = 0xfec00000,
		.pci_mmio64_base = 0x8000000000ULL,
		.pci_mmio64_end = 0x10000000000ULL,
		.pci_intx_gsi_base = 16,
		.cpu_hotplug_port = CPU_HOTPLUG_PORT,
		.cpu_hotplug_gsi = CPU_HOTPLUG_GSI,
	};
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static uint8_t sum_bytes(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

struct tables {
	const uint8_t *rsdp, *xsdt, *fadt, *madt, *dsdt;
	size_t used;
};

/* A table at gpa: inside the window, right signature, whole, checksum 0. */
static const uint8_t *table_at(const struct guest *g, uint64_t gpa, const char *sig)
{
	if (gpa < BOOT_ACPI_TABLES_GPA || gpa + 36 > BOOT_ACPI_TABLES_END)
		fail_msg("%s at 0x%llx is outside the table window", sig, (unsigned long long)gpa);
	const uint8_t *t = g->ram + gpa;
	if (memcmp(t, sig, 4) != 0)
		fail_msg("table at 0x%llx is '%.4s', want %s", (unsigned long long)gpa, t, sig);
	uint32_t len = rd32(t + 4);
	if (len < 36 || gpa + len > BOOT_ACPI_TABLES_END)
		fail_msg("%s length %u runs out of the window", sig, len);
	if (sum_bytes(t, len) != 0)
		fail_msg("%s checksum is wrong (sum 0x%02x)", sig, sum_bytes(t, len));
	assert_memory_equal(t + 10, "KHYVE ", 6);
	assert_memory_equal(t + 16, "KHYVEVM ", 8);
	return t;
}

/* Build, then follow the pointers from the RSDP as an OS would. */
static struct tables build_and_walk(struct guest *g, const struct acpi_config *c)
{
	struct tables tb = { 0 };
	char err[256] = "";
	if (acpi_build_sized(c, &g->map, BOOT_RSDP_GPA, BOOT_ACPI_TABLES_GPA,
			     BOOT_ACPI_TABLES_END, &tb.used, err, sizeof(err)))
		fail_msg("acpi_build: %s", err);
	assert_true(tb.used <= WINDOW);

	/* RSDP: ACPI 2.0+ form, both checksums, XSDT only. */
	const uint8_t *r = g->ram + BOOT_RSDP_GPA;
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(sum_bytes(r, 20), 0);
	assert_int_equal(sum_bytes(r, 36), 0);
	assert_int_equal(r[15], 2);
	assert_memory_equal(r + 9, "KHYVE ", 6);
	assert_int_equal(rd32(r + 16), 0);    /* no RSDT */
	assert_int_equal(rd32(r + 20), 36);
	tb.rsdp = r;

	tb.xsdt = table_at(g, rd64(r + 24), "XSDT");
	uint32_t xlen = rd32(tb.xsdt + 4);
	assert_int_equal(xlen, 36 + 2 * 8);
	tb.fadt = table_at(g, rd64(tb.xsdt + 36), "FACP");
	tb.madt = table_at(g, rd64(tb.xsdt + 44), "APIC");
	tb.dsdt = table_at(g, rd64(tb.fadt + 140), "DSDT");
	assert_int_equal(tb.dsdt[8], 2);      /* 64-bit AML integers */

	/* No two tables overlap, and all lie within what acpi_build reported. */
	const uint8_t *all[4] = { tb.xsdt, tb.fadt, tb.madt, tb.dsdt };
	for (int i = 0; i < 4; i++) {
		size_t off = (size_t)(all[i] - (g->ram + BOOT_ACPI_TABLES_GPA));
		assert_true(off + rd32(all[i] + 4) <= tb.used);
		for (int j = 0; j < 4; j++)
			if (i != j)
				assert_true(all[i] + rd32(all[i] + 4) <= all[j] ||
					    all[j] + rd32(all[j] + 4) <= all[i]);
	}
	return tb;
}

/* --- Our own reading of FADT and MADT ----------------------------------- */

static void check_gas_io8(const uint8_t *gas, uint16_t port)
{
	assert_int_equal(gas[0], 1);          /* SystemIO */
	assert_int_equal(gas[1], 8);          /* bit width */
	assert_int_equal(gas[2], 0);          /* bit offset */
	assert_int_equal(gas[3], 1);          /* byte access */
	assert_int_equal(rd64(gas + 4), port);
}

static void check_fadt(const struct tables *tb, const struct acpi_config *c)
{
	const uint8_t *f = tb->fadt;
	assert_int_equal(rd32(f + 4), 276);
	assert_int_equal(f[8], 6);            /* revision */
	assert_int_equal(f[131], 3);          /* minor version: ACPI 6.3 */
	uint32_t flags = rd32(f + 112);
	assert_true(flags & (1u << 20));      /* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10));      /* RESET_REG_SUP */
	assert_true(flags & (1u << 4));       /* PWR_BUTTON: none fixed */
	uint16_t boot_arch = rd16(f + 109);
	assert_true(boot_arch & (1u << 5));   /* CMOS RTC not present */
	assert_true(boot_arch & (1u << 2));   /* VGA not present */
	assert_false(boot_arch & (1u << 1));  /* no 8042 */
	check_gas_io8(f + 116, c->reset_port);
	assert_int_equal(f[128], c->reset_value);
	check_gas_io8(f + 244, c->sleep_ctl_port);   /* SLEEP_CONTROL_REG */
	check_gas_io8(f + 256, c->sleep_ctl_port);   /* SLEEP_STATUS_REG */
	/* Hardware-reduced: no FACS, no SCI, no PM blocks; DSDT via X_DSDT only. */
	assert_int_equal(rd32(f + 36), 0);
	assert_int_equal(rd32(f + 40), 0);
	assert_int_equal(rd16(f + 46), 0);
	assert_int_equal(rd32(f + 56), 0);
	assert_int_equal(rd32(f + 64), 0);
	assert_int_equal(rd64(f + 132), 0);
	assert_int_equal(rd64(f + 172 + 4), 0);
}

/* How many MADT processor entries of each kind the topology should give. */
static void expected_cpu_entries(const struct topology *t, uint32_t *lapics, uint32_t *x2apics)
{
	*lapics = *x2apics = 0;
	for (uint32_t i = 0; i < t->maxcpus; i++) {
		if (topology_apic_id(t, i) >= 255 || i >= 255)
			(*x2apics)++;
		else
			(*lapics)++;
	}
}

static void check_madt(const struct tables *tb, const struct acpi_config *c)
{
	const struct topology *t = c->topo;
	const uint8_t *m = tb->madt;
	uint32_t len = rd32(m + 4);
	assert_int_equal(m[8], 5);                  /* revision: Online Capable exists */
	assert_int_equal(rd32(m + 36), c->lapic_addr);
	assert_int_equal(rd32(m + 40), 1);          /* PCAT_COMPAT */

	uint32_t next_cpu = 0, ioapics = 0, isos = 0, nmis = 0, x2nmis = 0;
	uint32_t want_lapic, want_x2apic;
	expected_cpu_entries(t, &want_lapic, &want_x2apic);
	size_t off = 44;
	while (off < len) {
		const uint8_t *e = m + off;
		assert_true(off + 2 <= len && e[1] >= 2 && off + e[1] <= len);
		uint32_t want_flags = next_cpu < t->cpus ? 1u : 2u;   /* Enabled / Online Capable */
		switch (e[0]) {
		case 0:   /* Processor Local APIC */
			assert_int_equal(e[1], 8);
			assert_true(next_cpu < t->maxcpus);
			assert_int_equal(e[2], next_cpu);                          /* UID */
			assert_int_equal(e[3], topology_apic_id(t, next_cpu));
			assert_true(topology_apic_id(t, next_cpu) < 255);
			assert_int_equal(rd32(e + 4), want_flags);
			next_cpu++;
			break;
		case 9:   /* Processor Local x2APIC */
			assert_int_equal(e[1], 16);
			assert_true(next_cpu < t->maxcpus);
			assert_int_equal(rd32(e + 4), topology_apic_id(t, next_cpu));
			assert_true(topology_apic_id(t, next_cpu) >= 255 || next_cpu >= 255);
			assert_int_equal(rd32(e + 8), want_flags);
			assert_int_equal(rd32(e + 12), next_cpu);                  /* UID */
			next_cpu++;
			break;
		case 1:   /* I/O APIC */
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], c->ioapic_id);
			assert_int_equal(rd32(e + 4), c->ioapic_addr);
			assert_int_equal(rd32(e + 8), 0);
			ioapics++;
			break;
		case 2:   /* Interrupt Source Override: IRQ0 -> GSI2, edge, high */
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0);
			assert_int_equal(e[3], 0);
			assert_int_equal(rd32(e + 4), 2);
			assert_int_equal(rd16(e + 8), 0x0005);
			isos++;
			break;
		case 4:   /* Local APIC NMI on LINT1 for all processors */
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1);
			nmis++;
			break;
		case 10:  /* Local x2APIC NMI */
			assert_int_equal(e[1], 12);
			assert_int_equal(rd32(e + 4), 0xffffffff);
			assert_int_equal(e[8], 1);
			x2nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u at offset %zu", e[0], off);
		}
		off += e[1];
	}
	assert_int_equal(off, len);
	assert_int_equal(next_cpu, t->maxcpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 1);
	assert_int_equal(nmis, 1);
	assert_int_equal(x2nmis, want_x2apic ? 1 : 0);
}

/* --- ACPICA's reading --------------------------------------------------- */

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("cannot read %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	assert_non_null(s);
	size_t got = fread(s, 1, (size_t)n, f);
	s[got] = '\0';
	fclose(f);
	return s;
}

static uint8_t *read_bytes(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot read %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *p = malloc((size_t)n + 1);
	assert_non_null(p);
	*len = fread(p, 1, (size_t)n, f);
	fclose(f);
	return p;
}

static void write_bytes(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n)
		fail_msg("cannot write %s", path);
	fclose(f);
}

/* Run a shell command in dir, output to dir/log; returns the exit status. */
static int run_in(const char *dir, const char *cmd, const char *log)
{
	char line[2048];
	if ((size_t)snprintf(line, sizeof(line), "cd '%s' && %s >'%s' 2>&1", dir, cmd, log) >=
	    sizeof(line))
		fail_msg("command too long: %s", cmd);
	int st = system(line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void require_tool(const char *tool)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	if (system(cmd) != 0)
		fail_msg("%s not found: these tests validate the tables with ACPICA; "
			 "install acpica-tools (scripts/ensure-deps check does)", tool);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Fail on any line ACPICA flags, quoting it. allow: a line that is fine. */
static void assert_clean_log(const char *what, const char *dir, const char *log,
			     const char *allow)
{
	static const char *const bad[] = { "Error", "Warning", "Exception", "Incorrect",
					   "Invalid", "failed", "Unknown", "Outstanding" };
	for (const char *line = log; *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		char buf[512];
		snprintf(buf, sizeof(buf), "%.*s", (int)(n < sizeof(buf) - 1 ? n : sizeof(buf) - 1),
			 line);
		if (!(allow && strstr(buf, allow)) && !strstr(buf, "0 Errors, 0 Warnings"))
			for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
				if (strstr(buf, bad[i]))
					fail_msg("%s: ACPICA says \"%s\" (files kept in %s)", what,
						 buf, dir);
		line = end ? end + 1 : line + n;
	}
}

/*
 * iasl 20200925 (Debian 12) disassembles an x2APIC entry's flags as a
 * number but recompiles them from the decoded bits, of which it knows only
 * Enabled: the Online Capable bit (ACPI 6.3) is lost on the way back. What
 * we expect from the recompilation is therefore our MADT without that bit
 * in x2APIC entries; check_madt() checks the bit itself.
 */
static void forget_x2apic_online_capable(uint8_t *madt, size_t len)
{
	for (size_t off = 44; off + 2 <= len && madt[off + 1] >= 2; off += madt[off + 1])
		if (madt[off] == 9 && off + 16 <= len)
			madt[off + 8] &= (uint8_t)~0x02;
}

/*
 * iasl -d on a table, then compile the disassembly back (-oa: no
 * optimisation, so the compiler re-emits what the disassembly says) and
 * compare byte for byte. Only the header's checksum and compiler ID and
 * revision may differ (the compiler stamps its own). Returns the disassembly
 * (caller frees).
 */
static char *iasl_round_trip(const char *dir, const char *name, const uint8_t *table)
{
	uint32_t len = rd32(table + 4);
	char file[64], cmd[256], log[64], dsl[512], aml[512];
	snprintf(file, sizeof(file), "%s.dat", name);
	write_bytes(dir, file, table, len);

	snprintf(cmd, sizeof(cmd), "iasl -d %s", file);
	snprintf(log, sizeof(log), "%s.disasm.log", name);
	int rc = run_in(dir, cmd, log);
	snprintf(dsl, sizeof(dsl), "%s/%s", dir, log);
	char *text = read_text(dsl);
	if (rc != 0)
		fail_msg("iasl -d %s exited %d (files kept in %s):\n%s", file, rc, dir, text);
	if (!strstr(text, "Disassembly completed") && !strstr(text, "Formatted output"))
		fail_msg("iasl -d %s did not complete (files kept in %s):\n%s", file, dir, text);
	assert_clean_log("iasl -d", dir, text, NULL);
	free(text);

	snprintf(cmd, sizeof(cmd), "iasl -oa -p re_%s %s.dsl", name, name);
	snprintf(log, sizeof(log), "%s.compile.log", name);
	rc = run_in(dir, cmd, log);
	snprintf(dsl, sizeof(dsl), "%s/%s", dir, log);
	text = read_text(dsl);
	if (rc != 0 || !strstr(text, "0 Errors, 0 Warnings, 0 Remarks"))
		fail_msg("recompiling %s.dsl: exit %d (files kept in %s):\n%s", name, rc, dir, text);
	free(text);

	snprintf(aml, sizeof(aml), "%s/re_%s.aml", dir, name);
	size_t relen;
	uint8_t *re = read_bytes(aml, &relen);
	if (relen != len)
		fail_msg("%s: iasl recompiled %zu bytes from the disassembly, we wrote %u "
			 "(files kept in %s)", name, relen, len, dir);
	uint8_t *want = malloc(len);
	assert_non_null(want);
	memcpy(want, table, len);
	if (memcmp(table, "APIC", 4) == 0)
		forget_x2apic_online_capable(want, len);
	for (size_t i = 0; i < len; i++) {
		bool stamped = i == 9 || (i >= 28 && i < 36);   /* checksum, compiler */
		if (stamped)
			continue;
		if (re[i] != want[i])
			fail_msg("%s byte %zu: ours 0x%02x, iasl's recompilation 0x%02x "
				 "(files kept in %s)", name, i, table[i], re[i], dir);
	}
	free(re);
	free(want);

	snprintf(dsl, sizeof(dsl), "%s/%s.dsl", dir, name);
	return read_text(dsl);
}

/* Text after the first occurrence of marker, up to the next "Evaluating". */
static const char *section(const char *log, const char *marker, char *buf, size_t n)
{
	const char *p = strstr(log, marker);
	if (!p)
		return NULL;
	const char *end = strstr(p + strlen(marker), "Evaluating");
	size_t len = end ? (size_t)(end - p) : strlen(p);
	snprintf(buf, n, "%.*s", (int)(len < n - 1 ? len : n - 1), p);
	return buf;
}

static void expect_in_section(const char *dir, const char *log, const char *marker,
			      const char *needle)
{
	static char buf[1 << 16];
	if (!section(log, marker, buf, sizeof(buf)))
		fail_msg("acpiexec output lacks '%s' (files kept in %s)", marker, dir);
	if (!strstr(buf, needle))
		fail_msg("acpiexec: after '%s' expected '%s', got:\n%s", marker, needle, buf);
}

/*
 * The _PRT as ACPICA's routing-table code decodes it: 32 slots x 4 pins,
 * pin P of slot S to GSI base + (S + P) % 4, no link devices.
 */
static void check_prt(const char *dir, const char *log, unsigned gsi_base)
{
	const char *p = strstr(log, "Evaluating _PRT");
	if (!p)
		fail_msg("acpiexec did not evaluate _PRT (files kept in %s)", dir);
	unsigned n = 0;
	while ((p = strstr(p, "] PCI IRQ Routing Table Package"))) {
		unsigned long long addr;
		unsigned pin, gsi;
		const char *a = strstr(p, "Address : "), *pi = strstr(p, "Pin : "),
			   *src = strstr(p, "Source : "), *idx = strstr(p, "Source Index : ");
		if (!a || !pi || !src || !idx || sscanf(a, "Address : %llx", &addr) != 1 ||
		    sscanf(pi, "Pin : %x", &pin) != 1 || sscanf(idx, "Source Index : %x", &gsi) != 1)
			fail_msg("cannot parse _PRT entry %u (files kept in %s)", n, dir);
		unsigned slot = n / 4;
		if (addr != ((unsigned long long)slot << 16 | 0xffff) || pin != n % 4 ||
		    gsi != gsi_base + (slot + pin) % 4 || strncmp(src, "Source : [NULL", 14) != 0)
			fail_msg("_PRT entry %u: address 0x%llx pin %u GSI %u; want slot %u pin %u "
				 "GSI %u", n, addr, pin, gsi, slot, n % 4, gsi_base + (slot + n % 4) % 4);
		n++;
		p++;
	}
	assert_int_equal(n, 32 * 4);
}

/*
 * A test SSDT for acpiexec, whose SystemIO "ports" are plain zeroed memory:
 * \TSET writes the controller's status byte (what the device model would
 * answer for the selected vCPU), \TGET reads it back, \TSEL reads the
 * selector, \TWAI sleeps half a second (acpiexec runs each Notify's
 * handler on a thread of its own: TWAI lets them finish before we count).
 * Compiled with iasl into dir/hptest.aml.
 */
static void compile_hotplug_helper(const char *dir)
{
	static const char asl[] =
		"DefinitionBlock (\"\", \"SSDT\", 2, \"KHYVE \", \"HPTEST\", 1)\n"
		"{\n"
		"    External (\\_SB.CPHP.PRST, OpRegionObj)\n"
		"    External (\\_SB.CPHP.CSEL, FieldUnitObj)\n"
		"    Field (\\_SB.CPHP.PRST, ByteAcc, NoLock, Preserve)\n"
		"    {\n"
		"        Offset (0x04),\n"
		"        TSTS,   8\n"
		"    }\n"
		"    Method (\\TSET, 1, NotSerialized) { TSTS = Arg0 }\n"
		"    Method (\\TGET, 0, NotSerialized) { Return (TSTS) }\n"
		"    Method (\\TSEL, 0, NotSerialized) { Return (\\_SB.CPHP.CSEL) }\n"
		"    Method (\\TWAI, 0, NotSerialized) { Sleep (500) }\n"
		"}\n";
	write_bytes(dir, "hptest.asl", (const uint8_t *)asl, sizeof(asl) - 1);
	int rc = run_in(dir, "iasl hptest.asl", "hptest.log");
	char path[512];
	snprintf(path, sizeof(path), "%s/hptest.log", dir);
	char *text = read_text(path);
	if (rc != 0 || !strstr(text, "0 Errors"))
		fail_msg("compiling the hotplug test SSDT: exit %d (files kept in %s):\n%s", rc,
			 dir, text);
	free(text);
}

/*
 * The hot-add event end to end in ACPICA: with the status byte at 0 a
 * processor is absent; with present + insert pending (3), the GED's _EVT
 * for our GSI runs the scan, which sends exactly one Device Check to every
 * hot-pluggable processor (acpiexec's status byte is one byte for all
 * vCPUs, so all of them look pending) and clears each event by writing the
 * insert bit alone (WriteAsZeros: the byte reads 0x02 afterwards). An _EVT
 * for another GSI does nothing.
 */
static void check_hotplug_event(const char *dir, const struct acpi_config *c, const char *last)
{
	const struct topology *t = c->topo;
	bool events = t->cpus < t->maxcpus;
	char cmd[1024], events_cmd[256] = "";
	if (events)
		snprintf(events_cmd, sizeof(events_cmd),
			 "evaluate \\TSET 3; evaluate \\_SB.GED_._EVT %u; evaluate \\TWAI; "
			 "evaluate \\TGET; evaluate \\TSEL; evaluate \\_SB.GED_._EVT %u; "
			 "evaluate \\TWAI",
			 c->cpu_hotplug_gsi, c->cpu_hotplug_gsi + 1);
	snprintf(cmd, sizeof(cmd),
		 "timeout 120 acpiexec -b '"
		 "evaluate \\TSET 0; evaluate \\_SB.%s._STA; %s"
		 "' dsdt.dat facp.dat apic.dat hptest.aml",
		 last, events_cmd);
	int rc = run_in(dir, cmd, "acpiexec-hotplug.log");
	char path[512];
	snprintf(path, sizeof(path), "%s/acpiexec-hotplug.log", dir);
	char *log = read_text(path);
	if (rc != 0)
		fail_msg("acpiexec exited %d (files kept in %s):\n%s", rc, dir, log);
	/*
	 * Right after _EVT returns, acpiexec may still hold the Notify requests
	 * its handler threads have not finished; what matters is that nothing
	 * is left at exit.
	 */
	assert_clean_log("acpiexec", dir, log,
			 "Outstanding allocations after evaluation of \\_SB.GED_._EVT");
	assert_non_null(strstr(log, "ACPI: No outstanding allocations"));

	char marker[64], want[128];
	snprintf(marker, sizeof(marker), "Evaluation of \\_SB.%s._STA returned", last);
	expect_in_section(dir, log, marker, "[Integer] = 0000000000000000");

	uint32_t hotpluggable = t->maxcpus - t->cpus;
	assert_int_equal(count(log, "Received a System Notify on ["), hotpluggable);
	assert_int_equal(count(log, "Value 0x01 (Device Check)"), hotpluggable);
	for (uint32_t i = t->cpus; i < t->maxcpus; i++) {
		snprintf(want, sizeof(want), "Notify on [%c%03X]", "CDEFGHIJKLMNOPQR"[i >> 12],
			 i & 0xfff);
		if (count(log, want) != 1)
			fail_msg("acpiexec: expected one '%s' (files kept in %s)", want, dir);
	}
	if (events) {
		expect_in_section(dir, log, "Evaluation of \\TGET returned",
				  "[Integer] = 0000000000000002");
		snprintf(want, sizeof(want), "[Integer] = %016X", t->maxcpus - 1);
		expect_in_section(dir, log, "Evaluation of \\TSEL returned", want);
	}
	free(log);
}

static void check_with_acpica(const struct tables *tb, const struct acpi_config *c)
{
	const struct topology *t = c->topo;
	require_tool("iasl");
	require_tool("acpiexec");
	const char *tmp = getenv("TMPDIR");
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/khyve-acpi-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		fail_msg("mkdtemp %s failed", dir);

	/* Every table through the disassembler and back. */
	char *xsdt = iasl_round_trip(dir, "xsdt", tb->xsdt);
	char *fadt = iasl_round_trip(dir, "facp", tb->fadt);
	char *madt = iasl_round_trip(dir, "apic", tb->madt);
	char *dsdt = iasl_round_trip(dir, "dsdt", tb->dsdt);

	assert_int_equal(count(xsdt, "ACPI Table Address"), 2);
	assert_non_null(strstr(fadt, "Hardware Reduced (V5) : 1"));
	assert_non_null(strstr(fadt, "Reset Register Supported (V2) : 1"));
	assert_non_null(strstr(fadt, "CMOS RTC Not Present (V5) : 1"));
	assert_non_null(strstr(fadt, "Space ID : 01 [SystemIO]"));

	uint32_t want_lapic, want_x2apic;
	expected_cpu_entries(t, &want_lapic, &want_x2apic);
	assert_int_equal(count(madt, "[Processor Local APIC]"), want_lapic);
	assert_int_equal(count(madt, "[Processor Local x2APIC]"), want_x2apic);
	assert_int_equal(count(madt, "[I/O APIC]"), 1);
	assert_int_equal(count(madt, "[Interrupt Source Override]"), 1);

	assert_non_null(strstr(dsdt, "Name (\\_S5, Package (0x04)"));
	assert_non_null(strstr(dsdt, "Device (PCI0)"));
	assert_non_null(strstr(dsdt, "EisaId (\"PNP0A08\")"));
	assert_non_null(strstr(dsdt, "EisaId (\"PNP0A03\")"));
	assert_non_null(strstr(dsdt, "Name (_PRT, Package (0x80)"));
	assert_non_null(strstr(dsdt, "Method (_OSC, 4"));
	assert_non_null(strstr(dsdt, "Device (COM1)"));
	assert_non_null(strstr(dsdt, "EisaId (\"PNP0501\")"));
	assert_non_null(strstr(dsdt, "IRQNoFlags ()\n                    {4}"));
	assert_int_equal(count(dsdt, "Name (_HID, \"ACPI0007\""), t->maxcpus);
	assert_int_equal(count(dsdt, "Name (_MAT, Buffer"), t->maxcpus);
	bool hotplug = c->cpu_hotplug_port != 0;
	bool events = hotplug && t->cpus < t->maxcpus;
	if (hotplug) {
		/* Every _STA asks the controller; the event device only if needed. */
		assert_int_equal(count(dsdt, "Return (\\_SB.CPHP.CSTA ("), t->maxcpus);
		assert_int_equal(count(dsdt, "Return (0x0F)"), 0);
		assert_non_null(strstr(dsdt, "Device (CPHP)"));
		assert_non_null(strstr(dsdt, "EisaId (\"PNP0C02\")"));
		char want[128];
		snprintf(want, sizeof(want), "OperationRegion (PRST, SystemIO, 0x%04X, 0x%02X)",
			 c->cpu_hotplug_port, CPU_HOTPLUG_PORT_LEN);
		assert_non_null(strstr(dsdt, want));
		assert_non_null(strstr(dsdt, "Field (PRST, DWordAcc, NoLock, WriteAsZeros)"));
		assert_non_null(strstr(dsdt, "Mutex (CPLK, 0x00)"));
		assert_int_equal(count(dsdt, "\"ACPI0013\""), events ? 1 : 0);
		assert_int_equal(count(dsdt, "Method (CSCN, 0"), events ? 1 : 0);
		assert_int_equal(count(dsdt, "Notify (\\_SB."), t->maxcpus - t->cpus);
		if (events) {
			assert_non_null(strstr(dsdt, "Interrupt (ResourceConsumer, Level, ActiveHigh, "
						     "Exclusive, ,, )"));
			snprintf(want, sizeof(want), "0x%08X,", c->cpu_hotplug_gsi);
			assert_non_null(strstr(dsdt, want));
			assert_non_null(strstr(dsdt, "Method (_EVT, 1"));
		}
	} else {
		assert_int_equal(count(dsdt, "Return (0x0F)"), t->cpus);
		assert_int_equal(count(dsdt, "Return (Zero)"), t->maxcpus - t->cpus);
		assert_null(strstr(dsdt, "CPHP"));
		assert_null(strstr(dsdt, "ACPI0013"));
	}

	/*
	 * Load the set into ACPICA's interpreter and evaluate what Linux will.
	 * The last processor is the one most likely to be wrong (x2APIC, or not
	 * present yet).
	 */
	char last[8], cmd[1024];
	uint32_t li = t->maxcpus - 1;
	snprintf(last, sizeof(last), "%c%03X", "CDEFGHIJKLMNOPQR"[li >> 12], li & 0xfff);
	/*
	 * acpiexec backs SystemIO with plain memory, zeroed: with a hotplug
	 * controller, hptest.aml sets the status byte there (\TSET) to what
	 * the device model would answer, so here every processor is present.
	 */
	if (hotplug)
		compile_hotplug_helper(dir);
	snprintf(cmd, sizeof(cmd),
		 "timeout 120 acpiexec -b '"
		 "%s"
		 "evaluate \\_S5; "
		 "evaluate \\_SB.C000._STA; evaluate \\_SB.C000._UID; "
		 "evaluate \\_SB.%s._STA; evaluate \\_SB.%s._UID; evaluate \\_SB.%s._MAT; "
		 "resources \\_SB.PCI0; resources \\_SB.COM1; "
		 "evaluate \\_SB.PCI0._OSC (5B 4D DB 33 F7 1F 1C 40 96 57 74 41 C0 3D D7 66) 1 3 "
		 "(00 00 00 00 1F 01 00 00 1D 00 00 00)"
		 "' dsdt.dat facp.dat apic.dat%s",
		 hotplug ? "evaluate \\TSET 1; " : "", last, last, last,
		 hotplug ? " hptest.aml" : "");
	int rc = run_in(dir, cmd, "acpiexec.log");
	char path[512];
	snprintf(path, sizeof(path), "%s/acpiexec.log", dir);
	char *log = read_text(path);
	if (rc != 0)
		fail_msg("acpiexec exited %d (files kept in %s):\n%s", rc, dir, log);
	/* `resources` also tries _SRS, which a fixed device rightly lacks. */
	assert_clean_log("acpiexec", dir, log, "AcpiSetCurrentResources failed: AE_NOT_FOUND");
	assert_non_null(strstr(log, hotplug ? "2 ACPI AML tables successfully acquired and loaded"
					    : "1 ACPI AML tables successfully acquired and loaded"));

	char want[128];
	snprintf(want, sizeof(want), "[Integer] = %016X", c->s5_sleep_type);
	expect_in_section(dir, log, "Evaluation of \\_S5 returned", "Contains 4 Elements");
	expect_in_section(dir, log, "Evaluation of \\_S5 returned", want);
	expect_in_section(dir, log, "Evaluation of \\_SB.C000._STA returned",
			  "[Integer] = 000000000000000F");
	expect_in_section(dir, log, "Evaluation of \\_SB.C000._UID returned",
			  "[Integer] = 0000000000000000");
	snprintf(path, sizeof(path), "Evaluation of \\_SB.%s._STA returned", last);
	expect_in_section(dir, log, path, hotplug || t->cpus == t->maxcpus
				  ? "[Integer] = 000000000000000F"
				  : "[Integer] = 0000000000000000");
	snprintf(path, sizeof(path), "Evaluation of \\_SB.%s._UID returned", last);
	snprintf(want, sizeof(want), "[Integer] = %016X", li);
	expect_in_section(dir, log, path, want);
	/* _MAT: the MADT entry, Enabled, with this vCPU's APIC ID. */
	uint32_t apic = topology_apic_id(t, li);
	snprintf(path, sizeof(path), "Evaluation of \\_SB.%s._MAT returned", last);
	if (apic >= 255 || li >= 255)
		snprintf(want, sizeof(want), "09 10 00 00 %02X %02X %02X %02X 01 00 00 00",
			 apic & 0xff, (apic >> 8) & 0xff, (apic >> 16) & 0xff, apic >> 24);
	else
		snprintf(want, sizeof(want), "00 08 %02X %02X 01 00 00 00", li, apic);
	expect_in_section(dir, log, path, want);
	/* The root bridge's windows and routing as ACPICA's resource code sees them. */
	check_prt(dir, log, c->pci_intx_gsi_base);
	expect_in_section(dir, log, "Evaluating _CRS", "Address Minimum : C0000000");
	expect_in_section(dir, log, "Evaluating _CRS", "Address Maximum : FEBFFFFF");
	expect_in_section(dir, log, "Evaluating _CRS", "Address Minimum : 0000008000000000");
	expect_in_section(dir, log, "Evaluation of \\_SB.PCI0._OSC returned",
			  "00 00 00 00 1F 01 00 00 1D 00 00 00");
	assert_non_null(strstr(log, "Interrupt List : 4"));
	free(log);
	if (hotplug)
		check_hotplug_event(dir, c, last);

	free(xsdt);
	free(fadt);
	free(madt);
	free(dsdt);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* --- Tests -------------------------------------------------------------- */

static size_t build_and_check_config(const char *topo_arg, bool hotplug)
{
	struct topology t = topo(topo_arg);
	struct acpi_config c = config_for(&t);
	if (!hotplug)
		c.cpu_hotplug_port = 0;
	struct guest g;
	guest_init(&g, GUEST_RAM_SIZE);
	struct tables tb = build_and_walk(&g, &c);
	check_fadt(&tb, &c);
	check_madt(&tb, &c);
	check_with_acpica(&tb, &c);
	print_message("      -c %s: %zu bytes of ACPI tables (DSDT %u, MADT %u)\n", topo_arg,
		      tb.used, rd32(tb.dsdt + 4), rd32(tb.madt + 4));
	guest_free(&g);
	return tb.used;
}

static size_t build_and_check(const char *topo_arg) { return build_and_check_config(topo_arg, true); }

static void test_one_cpu(void **state) { build_and_check("1"); }

static void test_two_sockets(void **state) { build_and_check("4,sockets=2,cores=2,threads=1"); }

static void test_hotpluggable(void **state) { build_and_check("cpus=2,maxcpus=8"); }

/* The system test's machine: 2 of 4 cores of one socket. */
static void test_hotplug_one_socket(void **state)
{
	build_and_check("cpus=2,sockets=1,cores=4,threads=1,maxcpus=4");
}

/* Without a hotplug controller, presence is fixed at boot. */
static void test_no_hotplug_controller(void **state)
{
	build_and_check_config("cpus=2,maxcpus=8", false);
	build_and_check_config("4,sockets=2,cores=2,threads=1", false);
}

/* Sparse APIC IDs (3 cores take 2 bits): IDs pass 255 at index 192. */
static void test_sparse_ids_switch_to_x2apic(void **state)
{
	struct topology t = topo("sockets=100,cores=3");
	assert_true(topology_apic_id(&t, 191) < 255);
	assert_true(topology_apic_id(&t, 192) >= 255);
	build_and_check("cpus=150,sockets=100,cores=3,maxcpus=300");
}

static void test_300_cpus_x2apic(void **state) { build_and_check("300"); }

static void test_1024_cpus_fit(void **state)
{
	size_t used = build_and_check("1024");
	assert_true(used <= 256 * 1024);
}

static void test_too_big_for_window(void **state)
{
	struct topology t = topo("8192");
	struct acpi_config c = config_for(&t);
	struct guest g;
	guest_init(&g, GUEST_RAM_SIZE);
	char err[256] = "";
	assert_int_equal(acpi_build(&c, &g.map, BOOT_RSDP_GPA, BOOT_ACPI_TABLES_GPA,
				    BOOT_ACPI_TABLES_END, err, sizeof(err)), -1);
	if (!strstr(err, "8192 possible vCPUs need") || !strstr(err, "window [0xa0000, 0xe0000)"))
		fail_msg("unclear error: %s", err);
	assert_null(strchr(err, '\n'));
	/* Nothing was written on failure. */
	for (size_t i = BOOT_ACPI_TABLES_GPA; i < BOOT_RSDP_GPA + 36; i++)
		if (g.ram[i] != 0xee)
			fail_msg("guest byte 0x%zx changed by a failed build", i);

	/* A small window fails the same way for a small machine. */
	t = topo("4");
	c = config_for(&t);
	assert_int_equal(acpi_build(&c, &g.map, BOOT_RSDP_GPA, BOOT_ACPI_TABLES_GPA,
				    BOOT_ACPI_TABLES_GPA + 1024, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "holds 1024"));
	guest_free(&g);
}

static void build_bad(const struct acpi_config *c, const struct memmap *map, uint64_t rsdp,
		      const char *needle)
{
	char err[256] = "";
	assert_int_equal(acpi_build(c, map, rsdp, BOOT_ACPI_TABLES_GPA, BOOT_ACPI_TABLES_END,
				    err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_bad_config(void **state)
{
	struct topology t = topo("4");
	struct guest g;
	guest_init(&g, GUEST_RAM_SIZE);
	struct acpi_config c;

	c = config_for(&t), c.s5_sleep_type = 8;
	build_bad(&c, &g.map, BOOT_RSDP_GPA, "SLP_TYP");
	c = config_for(&t), c.sleep_ctl_port = 0;
	build_bad(&c, &g.map, BOOT_RSDP_GPA, "non-zero");
	c = config_for(&t), c.pci_intx_gsi_base = 21;
	build_bad(&c, &g.map, BOOT_RSDP_GPA, "not IOAPIC pins");
	c = config_for(&t), c.pci_mmio32_end = c.pci_mmio32_base;
	build_bad(&c, &g.map, BOOT_RSDP_GPA, "32-bit MMIO window");
	c = config_for(&t), c.pci_mmio32_end = 0x100001000ULL;
	build_bad(&c, &g.map, BOOT_RSDP_GPA, "above 4 GiB");
	c = config_for(&t), c.pci_mmio64_base = 0x10000000000ULL;
	build_bad(&c, &g.map, BOOT_RSDP_GPA, "64-bit MMIO window");
	c = config_for(&t), c.cpu_hotplug_gsi = 17;
	build_bad(&c, &g.map, BOOT_RSDP_GPA, "not a free IOAPIC pin");
	c = config_for(&t), c.cpu_hotplug_gsi = 24;
	build_bad(&c, &g.map, BOOT_RSDP_GPA, "not a free IOAPIC pin");
	c = config_for(&t), c.cpu_hotplug_port = 0xfffc;
	build_bad(&c, &g.map, BOOT_RSDP_GPA, "run past 0xffff");
	c = config_for(&t), c.topo = NULL;
	build_bad(&c, &g.map, BOOT_RSDP_GPA, "cpus");
	c = config_for(&t);
	build_bad(&c, &g.map, BOOT_ACPI_TABLES_GPA + 0x100, "overlaps");

	/* Memory that is not RAM: a map that ends inside the window. */
	struct mem_segment short_seg = { .gpa = 0, .len = BOOT_ACPI_TABLES_GPA + 0x100,
					 .hva = g.ram };
	struct memmap short_map = { .segs = &short_seg, .nsegs = 1 };
	build_bad(&c, &short_map, BOOT_RSDP_GPA, "not guest RAM");

	/* No 64-bit window: no QWordMemory, and ACPICA still accepts it. */
	c = config_for(&t);
	c.pci_mmio64_base = c.pci_mmio64_end = 0;
	struct tables tb = build_and_walk(&g, &c);
	const uint8_t *d = tb.dsdt;
	for (uint32_t i = 0; i + 2 < rd32(d + 4); i++)
		assert_false(d[i] == 0x8a && d[i + 1] == 0x2b && d[i + 2] == 0x00);
	guest_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_cpu),
		cmocka_unit_test(test_two_sockets),
		cmocka_unit_test(test_hotpluggable),
		cmocka_unit_test(test_hotplug_one_socket),
		cmocka_unit_test(test_no_hotplug_controller),
		cmocka_unit_test(test_sparse_ids_switch_to_x2apic),
		cmocka_unit_test(test_300_cpus_x2apic),
		cmocka_unit_test(test_1024_cpus_fit),
		cmocka_unit_test(test_too_big_for_window),
		cmocka_unit_test(test_bad_config),
	};
	return cmocka_run_group_tests_name("acpi", tests, NULL, NULL);
}
