/*
 * Unit tests for the CPU hotplug controller (cpu_hotplug.c): its registers
 * as the guest's AML drives them (selector, present bit, write-1-to-clear
 * insert event), the GED line that follows the pending events, and
 * cpu_hotplug_add()'s refusals. A VM object with no KVM behind it (fds of
 * -1) stands in, as in test_devices.c: vCPU creation then fails in KVM,
 * which is one of the paths under test, and interrupt-line ioctls fail
 * harmlessly (the controller's own view of the line is what is checked).
 * The AML side is tested in test_acpi.c; a real guest in
 * tests/system/21-linux-cpu-hotplug.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cpu_hotplug.h"
#include "ioport.h"
#include "topology.h"
#include "vcpu.h"
#include "vm.h"
#include "vm_lock.h"

#define SEL    (CPU_HOTPLUG_PORT + CPU_HOTPLUG_REG_SEL)
#define STATUS (CPU_HOTPLUG_PORT + CPU_HOTPLUG_REG_STATUS)

static void fake_vm(struct vm *vm, const char *topo)
{
	char err[256] = "";
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->stop_eventfd = -1;
	ioport_bus_init(&vm->io);
	if (topology_parse(topo, &vm->topo, err, sizeof(err)))
		fail_msg("topology %s: %s", topo, err);
	vm_lock_init(vm);
	vm->vcpus = calloc(vm->topo.maxcpus, sizeof(*vm->vcpus));
	assert_non_null(vm->vcpus);
	for (uint32_t i = 0; i < vm->topo.maxcpus; i++) {
		vm->vcpus[i].vm = vm;
		vm->vcpus[i].id = i;
		vm->vcpus[i].apic_id = topology_apic_id(&vm->topo, i);
		vm->vcpus[i].fd = -1;
		vcpu_lock_init(&vm->vcpus[i]);
	}
}

static void fake_vm_free(struct vm *vm)
{
	for (uint32_t i = 0; i < vm->topo.maxcpus; i++)
		vcpu_lock_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	vm_lock_destroy(vm);
	ioport_bus_free(&vm->io);
}

static uint32_t io(struct vm *vm, uint16_t port, unsigned size, bool wr, uint32_t val)
{
	ioport_dispatch(&vm->io, port, size, wr, &val);
	return val;
}

/* What the AML does: CSEL = i, then read the status byte. */
static uint32_t status_of(struct vm *vm, uint32_t vcpu)
{
	io(vm, SEL, 4, true, vcpu);
	return io(vm, STATUS, 1, false, 0xff);
}

static struct cpu_hotplug *create(struct vm *vm)
{
	char err[256] = "";
	struct cpu_hotplug *hp = cpu_hotplug_create(vm, err, sizeof(err));
	if (!hp)
		fail_msg("cpu_hotplug_create: %s", err);
	return hp;
}

static void test_boot_cpus_present(void **state)
{
	struct vm vm;
	fake_vm(&vm, "cpus=2,sockets=1,cores=4,threads=1,maxcpus=4");
	struct cpu_hotplug *hp = create(&vm);
	assert_int_equal(status_of(&vm, 0), CPU_HOTPLUG_PRESENT);
	assert_int_equal(status_of(&vm, 1), CPU_HOTPLUG_PRESENT);
	assert_int_equal(status_of(&vm, 2), 0);
	assert_int_equal(status_of(&vm, 3), 0);
	/* Beyond maxcpus: nothing there, and nothing to break. */
	assert_int_equal(status_of(&vm, 4), 0);
	assert_int_equal(status_of(&vm, 0xffffffff), 0);
	io(&vm, STATUS, 1, true, 0xff);
	assert_int_equal(status_of(&vm, 0xffffffff), 0);
	assert_false(cpu_hotplug_irq_asserted(hp));
	/* The unused ports of the block read 0 and ignore writes. */
	for (uint16_t p = STATUS + 1; p < CPU_HOTPLUG_PORT + CPU_HOTPLUG_PORT_LEN; p++) {
		io(&vm, p, 1, true, 0xff);
		assert_int_equal(io(&vm, p, 1, false, 0xff), 0);
	}
	cpu_hotplug_destroy(hp);
	/* The ports are registered on the bus: a second controller collides. */
	char err[256] = "";
	fake_vm_free(&vm);
	fake_vm(&vm, "2");
	hp = create(&vm);
	assert_null(cpu_hotplug_create(&vm, err, sizeof(err)));
	assert_non_null(strstr(err, "overlaps"));
	cpu_hotplug_destroy(hp);
	fake_vm_free(&vm);
}

static void test_selector_register(void **state)
{
	struct vm vm;
	fake_vm(&vm, "cpus=1,maxcpus=4");
	struct cpu_hotplug *hp = create(&vm);
	io(&vm, SEL, 4, true, 0x12345678);
	assert_int_equal(io(&vm, SEL, 4, false, 0), 0x12345678);
	/* Narrower accesses read and replace only the bytes they cover. */
	assert_int_equal(io(&vm, SEL + 1, 1, false, 0), 0x56);
	assert_int_equal(io(&vm, SEL + 2, 2, false, 0), 0x1234);
	io(&vm, SEL + 2, 2, true, 0xabcd);
	assert_int_equal(io(&vm, SEL, 4, false, 0), 0xabcd5678);
	io(&vm, SEL, 1, true, 0x01);
	assert_int_equal(io(&vm, SEL, 4, false, 0), 0xabcd5601);
	/* A dword at +1 covers only the selector's last three bytes. */
	io(&vm, SEL + 1, 4, true, 0xffffffff);
	assert_int_equal(io(&vm, SEL, 4, false, 0), 0xffffff01);
	io(&vm, SEL, 4, true, 0);
	assert_int_equal(io(&vm, STATUS, 1, false, 0), CPU_HOTPLUG_PRESENT);
	cpu_hotplug_destroy(hp);
	fake_vm_free(&vm);
}

static void test_insert_event(void **state)
{
	struct vm vm;
	char err[256] = "";
	fake_vm(&vm, "cpus=2,sockets=1,cores=4,threads=1,maxcpus=4");
	struct cpu_hotplug *hp = create(&vm);

	assert_int_equal(cpu_hotplug_insert(hp, 2, err, sizeof(err)), 0);
	assert_true(cpu_hotplug_irq_asserted(hp));
	assert_int_equal(status_of(&vm, 2), CPU_HOTPLUG_PRESENT | CPU_HOTPLUG_INSERT);
	assert_int_equal(status_of(&vm, 3), 0);

	/* Writing the present bit (or 0) changes nothing: no unplug. */
	io(&vm, SEL, 4, true, 2);
	io(&vm, STATUS, 1, true, CPU_HOTPLUG_PRESENT);
	io(&vm, STATUS, 1, true, 0);
	assert_int_equal(status_of(&vm, 2), CPU_HOTPLUG_PRESENT | CPU_HOTPLUG_INSERT);
	/* Clearing another vCPU's (absent) event leaves this one pending. */
	io(&vm, SEL, 4, true, 3);
	io(&vm, STATUS, 1, true, CPU_HOTPLUG_INSERT);
	assert_true(cpu_hotplug_irq_asserted(hp));

	/* Second event before the guest handled the first: the line stays up
	 * until both are cleared, in whatever order. */
	assert_int_equal(cpu_hotplug_insert(hp, 3, err, sizeof(err)), 0);
	io(&vm, SEL, 4, true, 3);
	io(&vm, STATUS, 1, true, CPU_HOTPLUG_INSERT);   /* what "CINS = One" writes */
	assert_int_equal(status_of(&vm, 3), CPU_HOTPLUG_PRESENT);
	assert_true(cpu_hotplug_irq_asserted(hp));
	io(&vm, SEL, 4, true, 2);
	io(&vm, STATUS, 1, true, CPU_HOTPLUG_INSERT);
	assert_false(cpu_hotplug_irq_asserted(hp));
	assert_int_equal(status_of(&vm, 2), CPU_HOTPLUG_PRESENT);
	/* A second clear is harmless; present bits stay. */
	io(&vm, STATUS, 1, true, 0xff);
	assert_false(cpu_hotplug_irq_asserted(hp));
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(status_of(&vm, i), CPU_HOTPLUG_PRESENT);

	/* The same vCPU inserted twice counts once. */
	assert_int_equal(cpu_hotplug_insert(hp, 3, err, sizeof(err)), 0);
	assert_int_equal(cpu_hotplug_insert(hp, 3, err, sizeof(err)), 0);
	io(&vm, SEL, 4, true, 3);
	io(&vm, STATUS, 1, true, CPU_HOTPLUG_INSERT);
	assert_false(cpu_hotplug_irq_asserted(hp));

	assert_int_equal(cpu_hotplug_insert(hp, 4, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "maxcpus"));
	cpu_hotplug_destroy(hp);
	fake_vm_free(&vm);
}

/*
 * What \_SB.CSCN does, against the registers: walk the hot-pluggable vCPUs,
 * collect and clear the pending inserts. Returns a bit mask of them.
 */
static uint32_t scan(struct vm *vm, uint32_t from, uint32_t to)
{
	uint32_t found = 0;
	for (uint32_t i = from; i < to; i++) {
		io(vm, SEL, 4, true, i);
		if (io(vm, STATUS, 1, false, 0) & CPU_HOTPLUG_INSERT) {
			found |= 1u << i;
			io(vm, STATUS, 1, true, CPU_HOTPLUG_INSERT);
		}
	}
	return found;
}

static void test_scan_protocol(void **state)
{
	struct vm vm;
	char err[256] = "";
	fake_vm(&vm, "cpus=1,maxcpus=8");
	struct cpu_hotplug *hp = create(&vm);
	assert_int_equal(scan(&vm, 1, 8), 0);
	cpu_hotplug_insert(hp, 5, err, sizeof(err));
	cpu_hotplug_insert(hp, 2, err, sizeof(err));
	assert_true(cpu_hotplug_irq_asserted(hp));
	assert_int_equal(scan(&vm, 1, 8), (1u << 2) | (1u << 5));
	assert_false(cpu_hotplug_irq_asserted(hp));
	assert_int_equal(scan(&vm, 1, 8), 0);
	cpu_hotplug_destroy(hp);
	fake_vm_free(&vm);
}

static void test_add_refusals(void **state)
{
	struct vm vm;
	char err[256] = "";
	fake_vm(&vm, "cpus=2,sockets=1,cores=4,threads=1,maxcpus=4");
	struct cpu_hotplug *hp = create(&vm);

	/* Before vm_run() has started the boot vCPUs. */
	assert_int_equal(cpu_hotplug_add(hp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "still starting"));

	/* KVM refuses the vCPU (no KVM here): the guest is told nothing. */
	atomic_store(&vm.online_vcpus, 2);
	assert_int_equal(cpu_hotplug_add(hp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "KVM_CREATE_VCPU 2"));
	assert_int_equal(status_of(&vm, 2), 0);
	assert_false(cpu_hotplug_irq_asserted(hp));

	/* maxcpus reached: refused, and the message says so. */
	atomic_store(&vm.online_vcpus, 4);
	assert_int_equal(cpu_hotplug_add(hp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "maxcpus"));
	assert_null(strchr(err, '\n'));
	assert_false(cpu_hotplug_irq_asserted(hp));

	/* Never from a vCPU thread: it would freeze itself. */
	atomic_store(&vm.online_vcpus, 2);
	vm.vcpus[1].self = pthread_self();
	atomic_store(&vm.vcpus[1].kickable, true);
	assert_int_equal(cpu_hotplug_add(hp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "vCPU thread"));
	atomic_store(&vm.vcpus[1].kickable, false);

	cpu_hotplug_destroy(hp);
	cpu_hotplug_destroy(NULL);
	fake_vm_free(&vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boot_cpus_present),
		cmocka_unit_test(test_selector_register),
		cmocka_unit_test(test_insert_event),
		cmocka_unit_test(test_scan_protocol),
		cmocka_unit_test(test_add_refusals),
	};
	return cmocka_run_group_tests_name("cpu_hotplug", tests, NULL, NULL);
}
