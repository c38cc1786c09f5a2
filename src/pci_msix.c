/*
 * MSI-X: theory.
 *
 * State. Per vector, the guest's table entry (address, data, Vector Control)
 * and a pending bit; per function, MSI-X Enable and Function Mask in the
 * capability's Message Control, and Interrupt Disable in the command
 * register. A vector may deliver only when MSI-X is enabled, the function
 * is not masked and the vector is not masked; otherwise it is "masked".
 * When MSI-X is disabled the function signals through INTx instead.
 *
 * Masking (PCI 3.0, 6.8.2.9). An event on a masked vector is not lost and
 * not delivered: its pending bit is set. When the vector becomes unmasked
 * (its mask bit, the function mask, or both cleared) with its pending bit
 * set, the message is sent then, with the table's CURRENT address and data,
 * exactly once however many events arrived while masked, and the pending
 * bit is cleared. The PBA is read-only to software.
 *
 * Who keeps the pending bit. Without a backend, this model does: its own
 * bit per vector, and delivery is KVM_SIGNAL_MSI. With a backend (the
 * driver interface, vmm_drv.h), events reach KVM through an irqfd the
 * driver (or the kernel, for vhost) writes directly, so the pending state
 * lives in the irqfd's eventfd: while a vector is masked its irqfd is
 * detached from KVM, events accumulate in the eventfd counter, the PBA
 * reads that counter (backend->vector_pending) and unmasking re-attaches
 * the irqfd, which makes KVM deliver once and clear the counter. Events the
 * device model raises itself (pci_msix_notify) then go through the backend
 * too, so there is one pending state, never two.
 *
 * In step. After every guest write that can change a vector's message or
 * its effective mask, and after every Enable/Function Mask change, each
 * vector whose (address, data, masked) differs from what the backend was
 * last told is sent to it, and mode changes (MSI-X <-> INTx) are sent
 * before the vectors are unmasked (entering MSI-X) or after they are
 * masked (leaving it). A masked vector's new message is sent too (the
 * driver hears of every reprogramming), flagged masked: the backend
 * routes it only when the vector unmasks.
 *
 * INTx. Level-triggered, as PCI INTx is: the line is asserted while an
 * INTx event is pending, MSI-X is disabled and the command register's
 * Interrupt Disable bit is clear; the device model lowers it when the
 * guest acknowledges (pci_msix_intx_ack, typically an ISR register read).
 * The line is the slot's _PRT GSI, driven with vm_irq_line.
 *
 * Locking. One mutex per capability, a device lock (vm_lock.c, level c),
 * taken by vCPUs for table/PBA accesses (under the MMIO bus lock) and config
 * writes (under the PCI bus lock), by the driver interface's event thread
 * (pci_msix_notify in INTx mode) and by device models. KVM ioctls and the
 * backend's calls happen under it, so the line, the routes and the table
 * can never disagree; the backend must not call back into this model.
 */
#include "pci_msix.h"

#include <stdlib.h>
#include <string.h>

#include "irq_routing.h"
#include "vm.h"

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t entry_addr(const struct pci_msix *m, unsigned v)
{
	const uint8_t *e = m->table + v * PCI_MSIX_ENTRY_SIZE;
	return (uint64_t)get32(e + 4) << 32 | get32(e);
}

static uint32_t entry_data(const struct pci_msix *m, unsigned v)
{
	return get32(m->table + v * PCI_MSIX_ENTRY_SIZE + 8);
}

static bool entry_masked(const struct pci_msix *m, unsigned v)
{
	return m->table[v * PCI_MSIX_ENTRY_SIZE + 12] & PCI_MSIX_ENTRY_CTRL_MASK;
}

static bool effective_masked(const struct pci_msix *m, unsigned v)
{
	return !m->enabled || m->fmask || entry_masked(m, v);
}

struct pci_msix *pci_msix_create(struct vm *vm, struct pci_device *dev, unsigned cap_off,
				 unsigned nvec, unsigned bar, uint32_t table_off,
				 uint32_t pba_off, uint32_t intx_gsi)
{
	if (nvec == 0 || nvec > PCI_MSIX_MAX_VECTORS || bar > 5 || (table_off | pba_off) & 7 ||
	    cap_off < 0x40 || cap_off + PCI_MSIX_CAP_SIZE > PCI_CFG_SIZE || cap_off & 3)
		return NULL;
	struct pci_msix *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->table = calloc(nvec, PCI_MSIX_ENTRY_SIZE);
	m->pending = calloc((nvec + 63) / 64, sizeof(uint64_t));
	m->told = calloc(nvec, sizeof(*m->told));
	if (!m->table || !m->pending || !m->told) {
		free(m->table);
		free(m->pending);
		free(m->told);
		free(m);
		return NULL;
	}
	m->vm = vm;
	m->dev = dev;
	m->cap_off = cap_off;
	m->nvec = nvec;
	m->bar = bar;
	m->table_off = table_off;
	m->pba_off = pba_off;
	m->intx_gsi = intx_gsi;
	m->mode = PCI_IRQ_INTX;
	pthread_mutex_init(&m->lock, NULL);
	for (unsigned v = 0; v < nvec; v++) {
		m->table[v * PCI_MSIX_ENTRY_SIZE + 12] = PCI_MSIX_ENTRY_CTRL_MASK;
		m->told[v].masked = true;
	}

	/* The capability, first in the list. */
	dev->cfg[cap_off] = PCI_CAP_ID_MSIX;
	dev->cfg[cap_off + 1] = dev->cfg[PCI_CAP_PTR];
	dev->cfg[PCI_CAP_PTR] = (uint8_t)cap_off;
	pci_set16(dev, PCI_STATUS, pci_cfg_read(dev, PCI_STATUS, 2) | PCI_STATUS_CAP_LIST);
	pci_set16(dev, cap_off + PCI_MSIX_CTRL, (uint16_t)(nvec - 1));
	pci_set32(dev, cap_off + 4, table_off | bar);
	pci_set32(dev, cap_off + 8, pba_off | bar);
	dev->wmask[cap_off + PCI_MSIX_CTRL + 1] = (PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK) >> 8;
	dev->cfg[PCI_INTERRUPT_PIN] = 1;   /* INTA */
	dev->cfg[PCI_INTERRUPT_LINE] = (uint8_t)intx_gsi;
	return m;
}

void pci_msix_destroy(struct pci_msix *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->table);
	free(m->pending);
	free(m->told);
	free(m);
}

static void deliver(struct pci_msix *m, unsigned v)
{
	uint64_t addr = entry_addr(m, v);
	uint32_t data = entry_data(m, v);
	m->delivered++;
	if (m->test_deliver)
		m->test_deliver(m->test_arg, addr, data);
	else
		irq_signal_msi(m->vm->vm_fd, addr, data);
}

static void set_line(struct pci_msix *m)
{
	bool level = m->intx_pending && m->mode == PCI_IRQ_INTX && !m->intx_disable;
	if (level == m->intx_level)
		return;
	m->intx_level = level;
	if (m->test_line)
		m->test_line(m->test_arg, level);
	else
		vm_irq_line(m->vm, m->intx_gsi, level);
}

static bool test_pending(const struct pci_msix *m, unsigned v)
{
	return m->pending[v / 64] >> (v % 64) & 1;
}

/*
 * Bring the backend (or the model's own delivery) in step with the table
 * and control bits. Under the lock.
 */
static void sync_state(struct pci_msix *m, bool force)
{
	enum pci_irq_mode mode = m->enabled ? PCI_IRQ_MSIX : PCI_IRQ_INTX;
	bool mode_changed = mode != m->mode;
	m->mode = mode;
	/* Entering MSI-X: tell the backend first, then unmask. */
	if ((mode_changed || force) && mode == PCI_IRQ_MSIX && m->backend)
		m->backend->mode_update(m->backend_arg, mode);
	if (mode_changed && mode == PCI_IRQ_MSIX)
		m->intx_pending = false;   /* INTx is not used while MSI-X is on */
	for (unsigned v = 0; v < m->nvec; v++) {
		struct pci_msix_told now = { entry_addr(m, v), entry_data(m, v),
					     effective_masked(m, v) };
		struct pci_msix_told *t = &m->told[v];
		bool changed = now.masked != t->masked || now.addr != t->addr ||
			       now.data != t->data;
		if (!changed && !force)
			continue;
		*t = now;
		if (m->backend)
			m->backend->vector_update(m->backend_arg, v, now.addr, now.data, now.masked);
		if (!now.masked && test_pending(m, v)) {
			m->pending[v / 64] &= ~(1ull << (v % 64));
			if (m->backend)
				m->backend->vector_signal(m->backend_arg, v);
			else
				deliver(m, v);
		}
	}
	/* Leaving MSI-X: every vector is masked by now. */
	if ((mode_changed || force) && mode == PCI_IRQ_INTX && m->backend)
		m->backend->mode_update(m->backend_arg, mode);
	set_line(m);
}

void pci_msix_cfg_write(struct pci_msix *m, unsigned off, unsigned size)
{
	unsigned ctrl = m->cap_off + PCI_MSIX_CTRL;
	bool touches_ctrl = off < ctrl + 2 && ctrl < off + size;
	bool touches_cmd = off < PCI_COMMAND + 2 && PCI_COMMAND < off + size;
	if (!touches_ctrl && !touches_cmd)
		return;
	/* The bus lock is held: the config bytes are stable. */
	uint32_t c = pci_cfg_read(m->dev, ctrl, 2);
	uint32_t cmd = pci_cfg_read(m->dev, PCI_COMMAND, 2);
	pthread_mutex_lock(&m->lock);
	m->enabled = c & PCI_MSIX_CTRL_ENABLE;
	m->fmask = c & PCI_MSIX_CTRL_FMASK;
	m->intx_disable = cmd & PCI_COMMAND_INTX_DISABLE;
	sync_state(m, false);
	pthread_mutex_unlock(&m->lock);
}

/* Write mask of the table, per byte of an entry. */
static uint8_t table_wmask(unsigned byte_in_entry)
{
	if (byte_in_entry == 0)
		return 0xfc;                       /* address bits 1:0 read as 0 */
	if (byte_in_entry < 12)
		return 0xff;
	if (byte_in_entry == 12)
		return PCI_MSIX_ENTRY_CTRL_MASK;   /* the rest of Vector Control is reserved */
	return 0;
}

bool pci_msix_bar_access(struct pci_msix *m, uint64_t off, unsigned size, bool is_write,
			 uint64_t *val)
{
	uint64_t table_len = (uint64_t)m->nvec * PCI_MSIX_ENTRY_SIZE;
	uint64_t pba_len = (uint64_t)(m->nvec + 63) / 64 * 8;
	bool in_table = off >= m->table_off && off - m->table_off < table_len;
	bool in_pba = off >= m->pba_off && off - m->pba_off < pba_len;
	if (!in_table && !in_pba)
		return false;
	bool good = (size == 4 || size == 8) && (off & (size - 1)) == 0;
	if (!good) {
		if (!is_write)
			*val = ~0ull;
		return true;
	}
	pthread_mutex_lock(&m->lock);
	if (in_table) {
		uint64_t o = off - m->table_off;
		if (is_write) {
			for (unsigned i = 0; i < size; i++) {
				uint8_t wm = table_wmask((unsigned)((o + i) % PCI_MSIX_ENTRY_SIZE));
				uint8_t *b = &m->table[o + i];
				*b = (uint8_t)((*b & ~wm) | ((uint8_t)(*val >> (8 * i)) & wm));
			}
			sync_state(m, false);
		} else {
			uint64_t v = 0;
			for (unsigned i = 0; i < size; i++)
				v |= (uint64_t)m->table[o + i] << (8 * i);
			*val = v;
		}
	} else if (!is_write) {
		uint64_t o = off - m->pba_off;
		uint64_t v = 0;
		for (unsigned i = 0; i < size * 8; i++) {
			unsigned vec = (unsigned)(o * 8 + i);
			if (vec >= m->nvec)
				break;
			bool p = test_pending(m, vec) ||
				 (m->backend && m->mode == PCI_IRQ_MSIX && m->told[vec].masked &&
				  m->backend->vector_pending(m->backend_arg, vec));
			v |= (uint64_t)p << i;
		}
		*val = v;
	}
	pthread_mutex_unlock(&m->lock);
	return true;
}

void pci_msix_notify(struct pci_msix *m, unsigned v)
{
	if (v >= m->nvec)
		return;
	pthread_mutex_lock(&m->lock);
	if (m->mode == PCI_IRQ_INTX) {
		m->intx_pending = true;
		set_line(m);
	} else if (m->backend) {
		m->backend->vector_signal(m->backend_arg, v);
	} else if (effective_masked(m, v)) {
		m->pending[v / 64] |= 1ull << (v % 64);
	} else {
		deliver(m, v);
	}
	pthread_mutex_unlock(&m->lock);
}

void pci_msix_intx_notify(struct pci_msix *m)
{
	pthread_mutex_lock(&m->lock);
	if (m->mode == PCI_IRQ_INTX) {
		m->intx_pending = true;
		set_line(m);
	}
	pthread_mutex_unlock(&m->lock);
}

void pci_msix_intx_ack(struct pci_msix *m)
{
	pthread_mutex_lock(&m->lock);
	m->intx_pending = false;
	set_line(m);
	pthread_mutex_unlock(&m->lock);
}

bool pci_msix_intx_asserted(struct pci_msix *m)
{
	pthread_mutex_lock(&m->lock);
	bool l = m->intx_level;
	pthread_mutex_unlock(&m->lock);
	return l;
}

bool pci_msix_pending(struct pci_msix *m, unsigned v)
{
	uint64_t val = 0;
	pci_msix_bar_access(m, m->pba_off + v / 64 * 8, 8, false, &val);
	return val >> (v % 64) & 1;
}

void pci_msix_set_backend(struct pci_msix *m, const struct pci_msix_backend *ops, void *arg)
{
	pthread_mutex_lock(&m->lock);
	m->backend = ops;
	m->backend_arg = arg;
	if (ops)
		sync_state(m, true);
	pthread_mutex_unlock(&m->lock);
}
