/*
 * vCPU hot-add through ACPI, so an unmodified guest sees a new CPU appear.
 * (Interface fixed first so the control plane can call it; the
 * implementation and its theory statement are in cpu_hotplug.c.)
 */
#ifndef KHYVE_CPU_HOTPLUG_H
#define KHYVE_CPU_HOTPLUG_H

#include <stddef.h>

struct vm;
struct cpu_hotplug;

/* Register the hotplug controller's ports and interrupt on the VM. */
struct cpu_hotplug *cpu_hotplug_create(struct vm *vm, char *err, size_t errlen);
void cpu_hotplug_destroy(struct cpu_hotplug *hp);

/*
 * Bring the next vCPU (index = CPUs online so far) online in KVM and tell
 * the guest through ACPI that it is present. Returns the new vCPU's index,
 * or -1 with a one-line reason (e.g. maxcpus reached). Safe to call from
 * any thread except a vCPU thread.
 */
int cpu_hotplug_add(struct cpu_hotplug *hp, char *err, size_t errlen);

#endif
