/* The VM object: KVM setup, guest memory, run state and cross-thread calls. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vm.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "pv_log.h"
#include "x86/vcpu.h"

#define VM_TSS_ADDRESS 0xfffbd000ULL
#define VM_IDENTITY_MAP_ADDRESS 0xfffbc000ULL

struct vm_main_call {
    void (*fn)(void *arg);
    void *arg;
    struct vm_main_call *next;
};

static bool on_main_thread(struct vm *vm)
{
    return pthread_equal(pthread_self(), vm->main_thread);
}

static void run_main_calls(evutil_socket_t fd, short events, void *arg)
{
    struct vm *vm = arg;
    (void)events;
    uint64_t count;
    if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        pv_log_warning("main-call eventfd read failed: %s", strerror(errno));
    for (;;) {
        pthread_mutex_lock(&vm->main_call_lock);
        struct vm_main_call *call = vm->main_calls_head;
        if (call) {
            vm->main_calls_head = call->next;
            if (!vm->main_calls_head)
                vm->main_calls_tail = NULL;
        }
        pthread_mutex_unlock(&vm->main_call_lock);
        if (!call)
            break;
        call->fn(call->arg);
        free(call);
    }
}

int vm_call_on_main(struct vm *vm, void (*fn)(void *arg), void *arg)
{
    struct vm_main_call *call = calloc(1, sizeof(*call));
    if (!call)
        return -ENOMEM;
    call->fn = fn;
    call->arg = arg;
    pthread_mutex_lock(&vm->main_call_lock);
    if (vm->main_calls_tail)
        vm->main_calls_tail->next = call;
    else
        vm->main_calls_head = call;
    vm->main_calls_tail = call;
    pthread_mutex_unlock(&vm->main_call_lock);
    uint64_t one = 1;
    if (write(vm->main_call_eventfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        return -errno;
    return 0;
}

static int set_memory_slot(struct vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *host,
                           struct pv_error *error)
{
    struct kvm_userspace_memory_region region = {
        .slot = slot,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)host,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return pv_error_set_errno(error, -errno, "cannot map guest memory slot %u", slot);
    return 0;
}

static int setup_memory(struct vm *vm, struct pv_error *error)
{
    vm->ram_size = vm->config->memory_bytes;
    vm->lowmem_size = vm->ram_size < VM_LOWMEM_LIMIT ? vm->ram_size : VM_LOWMEM_LIMIT;
    vm->highmem_size = vm->ram_size - vm->lowmem_size;
    /* Untouched pages cost nothing: the guest faults them in as it uses them. Plain 4 KiB
     * pages are faster than THP on this host (first-touch measurements). */
    vm->ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (vm->ram == MAP_FAILED) {
        vm->ram = NULL;
        return pv_error_set_errno(error, -errno, "cannot reserve %llu MiB of guest memory",
                                  (unsigned long long)(vm->ram_size >> 20));
    }
    madvise(vm->ram, vm->ram_size, MADV_NOHUGEPAGE);
    return 0;
}

static void memory_failed_on_main(void *arg)
{
    struct vm *vm = arg;
    vm->exit_status = 1;
    vm_request_shutdown(vm, false, "host-error");
}

static int create_pit(struct vm *vm, struct pv_error *error);

static void *register_memory_thread(void *arg)
{
    struct vm *vm = arg;
    struct pv_error error = {0};
    int rc = create_pit(vm, &error);
    if (rc == 0)
        rc = set_memory_slot(vm, 0, 0, vm->lowmem_size, vm->ram, &error);
    if (rc == 0 && vm->highmem_size)
        rc = set_memory_slot(vm, 1, VM_HIGHMEM_START, vm->highmem_size, vm->ram + vm->lowmem_size,
                             &error);
    if (rc < 0) {
        pv_log_error("%s", error.message);
        vm_call_on_main(vm, memory_failed_on_main, vm);
        return NULL;
    }
    pthread_mutex_lock(&vm->state_lock);
    vm->memory_ready = true;
    pthread_cond_broadcast(&vm->state_cond);
    pthread_mutex_unlock(&vm->state_lock);
    return NULL;
}

static int start_memory_registration(struct vm *vm, struct pv_error *error)
{
    int rc = pthread_create(&vm->memory_thread, NULL, register_memory_thread, vm);
    if (rc != 0)
        return pv_error_set_errno(error, -rc, "cannot start the memory registration thread");
    vm->memory_thread_started = true;
    return 0;
}

static void join_memory_registration(struct vm *vm)
{
    if (vm->memory_thread_started)
        pthread_join(vm->memory_thread, NULL);
    vm->memory_thread_started = false;
}

static int setup_irqchip(struct vm *vm, struct pv_error *error)
{
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_ADDRESS) < 0)
        return pv_error_set_errno(error, -errno, "KVM_SET_TSS_ADDR failed");
    uint64_t identity = VM_IDENTITY_MAP_ADDRESS;
    if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
        return pv_error_set_errno(error, -errno, "KVM_SET_IDENTITY_MAP_ADDR failed");
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return pv_error_set_errno(error, -errno, "KVM_CREATE_IRQCHIP failed");
    return 0;
}

/* The PIT, like the memory slots, may wait for an RCU grace period in the kernel (up to 3 ms
 * seen here); it is created on the memory thread, before any vCPU runs. */
static int create_pit(struct vm *vm, struct pv_error *error)
{
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return pv_error_set_errno(error, -errno, "KVM_CREATE_PIT2 failed");
    return 0;
}

/* ---- What the vCPU threads call (struct vcpu_host_ops) ---------------------- */

static bool vcpu_wait_runnable(void *opaque, struct vcpu *vcpu)
{
    struct vm *vm = opaque;
    pthread_mutex_lock(&vm->state_lock);
    while (!vm->shutdown_requested &&
           (vm->quiesce_depth > 0 || vm->run_state != VM_RUN_STATE_RUNNING || !vm->memory_ready)) {
        if (!vcpu->parked) {
            vcpu->parked = true;
            vm->parked_vcpus++;
            pthread_cond_broadcast(&vm->state_cond);
        }
        pthread_cond_wait(&vm->state_cond, &vm->state_lock);
    }
    if (vcpu->parked) {
        vcpu->parked = false;
        vm->parked_vcpus--;
    }
    bool keep_running = !vm->shutdown_requested;
    pthread_mutex_unlock(&vm->state_lock);
    return keep_running;
}

static void vcpu_guest_reset(void *opaque)
{
    vm_request_guest_reset(opaque);
}

static void vcpu_guest_shutdown(void *opaque)
{
    vm_request_shutdown(opaque, true, "guest-shutdown");
}

static void vcpu_internal_error(void *opaque)
{
    vm_report_internal_error(opaque);
}

static const struct vcpu_host_ops vm_vcpu_host_ops = {
    .wait_runnable = vcpu_wait_runnable,
    .guest_reset = vcpu_guest_reset,
    .guest_shutdown = vcpu_guest_shutdown,
    .internal_error = vcpu_internal_error,
};

int vm_create(struct vm *vm, struct vmm_config *config, struct event_base *event_base,
              struct pv_error *error)
{
    memset(vm, 0, sizeof(*vm));
    vm->config = config;
    vm->event_base = event_base;
    vm->kvm_fd = vm->vm_fd = vm->main_call_eventfd = -1;
    vm->main_thread = pthread_self();
    vm->run_state = VM_RUN_STATE_PRELAUNCH;
    vm->max_vcpus = config->max_cpus;
    pthread_mutex_init(&vm->state_lock, NULL);
    pthread_cond_init(&vm->state_cond, NULL);
    pthread_mutex_init(&vm->main_call_lock, NULL);

    int rc = io_bus_init(&vm->io_bus, error);
    if (rc < 0)
        return rc;

    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0) {
        rc = pv_error_set_errno(error, -errno, "cannot open /dev/kvm");
        goto fail;
    }
    int api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        rc = pv_error_set(error, -ENOTSUP, "KVM API version %d, expected %d", api, KVM_API_VERSION);
        goto fail;
    }
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        rc = pv_error_set_errno(error, -errno, "KVM_CREATE_VM failed");
        goto fail;
    }
    vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vm->vcpu_mmap_size <= 0) {
        rc = pv_error_set_errno(error, -errno, "KVM_GET_VCPU_MMAP_SIZE failed");
        goto fail;
    }
    if ((rc = setup_irqchip(vm, error)) < 0 || (rc = setup_memory(vm, error)) < 0)
        goto fail;

    vm->main_call_eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (vm->main_call_eventfd < 0) {
        rc = pv_error_set_errno(error, -errno, "cannot create an eventfd");
        goto fail;
    }
    vm->main_call_event =
        event_new(event_base, vm->main_call_eventfd, EV_READ | EV_PERSIST, run_main_calls, vm);
    if (!vm->main_call_event || event_add(vm->main_call_event, NULL) < 0) {
        rc = pv_error_set(error, -ENOMEM, "cannot register the main-call event");
        goto fail;
    }
    if ((rc = start_memory_registration(vm, error)) < 0)
        goto fail;

    struct vcpu_host vcpu_host = {
        .kvm_fd = vm->kvm_fd,
        .vm_fd = vm->vm_fd,
        .mmap_size = vm->vcpu_mmap_size,
        .max_vcpus = vm->max_vcpus,
        .io_bus = &vm->io_bus,
        .ops = &vm_vcpu_host_ops,
        .opaque = vm,
    };
    for (unsigned i = 0; i < config->cpus; i++) {
        vm->vcpus[i] = vcpu_create(&vcpu_host, i, error);
        if (!vm->vcpus[i]) {
            rc = error ? error->code : -EIO;
            goto fail;
        }
        vm->vcpu_count++;
    }
    return 0;
fail:
    vm_destroy(vm);
    return rc;
}

void vm_stop_vcpus(struct vm *vm)
{
    pthread_mutex_lock(&vm->state_lock);
    vm->shutdown_requested = true;
    pthread_cond_broadcast(&vm->state_cond);
    pthread_mutex_unlock(&vm->state_lock);
    for (unsigned i = 0; i < VMM_MAX_VCPUS; i++) {
        if (vm->vcpus[i])
            vcpu_kick(vm->vcpus[i]);
    }
    for (unsigned i = 0; i < VMM_MAX_VCPUS; i++) {
        if (vm->vcpus[i] && vm->vcpus[i]->thread_started) {
            pthread_join(vm->vcpus[i]->thread, NULL);
            vm->vcpus[i]->thread_started = false;
        }
    }
}

void vm_destroy(struct vm *vm)
{
    vm_stop_vcpus(vm);
    join_memory_registration(vm);
    for (unsigned i = 0; i < VMM_MAX_VCPUS; i++) {
        vcpu_destroy(vm->vcpus[i]);
        vm->vcpus[i] = NULL;
    }
    if (vm->main_call_event)
        event_free(vm->main_call_event);
    vm->main_call_event = NULL;
    while (vm->main_calls_head) {
        struct vm_main_call *next = vm->main_calls_head->next;
        free(vm->main_calls_head);
        vm->main_calls_head = next;
    }
    vm->main_calls_tail = NULL;
    if (vm->main_call_eventfd >= 0)
        close(vm->main_call_eventfd);
    if (vm->ram)
        munmap(vm->ram, vm->ram_size);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    vm->ram = NULL;
    vm->vm_fd = vm->kvm_fd = vm->main_call_eventfd = -1;
    io_bus_destroy(&vm->io_bus);
}

void *vm_guest_pointer(struct vm *vm, uint64_t gpa, uint64_t length)
{
    if (gpa + length < gpa)
        return NULL;
    if (gpa + length <= vm->lowmem_size)
        return vm->ram + gpa;
    if (gpa >= VM_HIGHMEM_START && gpa + length <= VM_HIGHMEM_START + vm->highmem_size)
        return vm->ram + vm->lowmem_size + (gpa - VM_HIGHMEM_START);
    return NULL;
}

int vm_set_irq_line(struct vm *vm, unsigned gsi, int level)
{
    struct kvm_irq_level irq = {.irq = gsi, .level = level};
    if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
        return -errno;
    return 0;
}

int vm_signal_msi(struct vm *vm, uint64_t address, uint32_t data)
{
    struct kvm_msi msi = {
        .address_lo = (uint32_t)address,
        .address_hi = (uint32_t)(address >> 32),
        .data = data,
    };
    if (ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
        return -errno;
    return 0;
}

void vm_add_event_listener(struct vm *vm, vm_event_listener_fn callback, void *opaque)
{
    if (vm->listener_count < sizeof(vm->listeners) / sizeof(vm->listeners[0])) {
        vm->listeners[vm->listener_count].callback = callback;
        vm->listeners[vm->listener_count].opaque = opaque;
        vm->listener_count++;
    }
}

struct pending_event {
    struct vm *vm;
    char *name;
    char *data_json;
};

static void deliver_event(struct vm *vm, const char *name, const char *data_json)
{
    for (unsigned i = 0; i < vm->listener_count; i++)
        vm->listeners[i].callback(vm->listeners[i].opaque, name, data_json);
}

static void deliver_pending_event(void *arg)
{
    struct pending_event *event = arg;
    deliver_event(event->vm, event->name, event->data_json);
    free(event->name);
    free(event->data_json);
    free(event);
}

void vm_emit_event(struct vm *vm, const char *event_name, const char *data_json)
{
    /* On the main thread deliver at once, so an event precedes the command reply
     * that caused it, as in QEMU. */
    if (on_main_thread(vm)) {
        deliver_event(vm, event_name, data_json);
        return;
    }
    struct pending_event *event = calloc(1, sizeof(*event));
    if (!event)
        return;
    event->vm = vm;
    event->name = strdup(event_name);
    event->data_json = data_json ? strdup(data_json) : NULL;
    if (!event->name || (data_json && !event->data_json) ||
        vm_call_on_main(vm, deliver_pending_event, event) < 0) {
        pv_log_warning("dropped event %s: out of memory", event_name);
        free(event->name);
        free(event->data_json);
        free(event);
    }
}

static void set_run_state(struct vm *vm, enum vm_run_state state)
{
    pthread_mutex_lock(&vm->state_lock);
    vm->run_state = state;
    pthread_cond_broadcast(&vm->state_cond);
    pthread_mutex_unlock(&vm->state_lock);
}

enum vm_run_state vm_get_run_state(struct vm *vm)
{
    pthread_mutex_lock(&vm->state_lock);
    enum vm_run_state state = vm->run_state;
    pthread_mutex_unlock(&vm->state_lock);
    return state;
}

const char *vm_run_state_name(enum vm_run_state state)
{
    switch (state) {
    case VM_RUN_STATE_PRELAUNCH:
        return "prelaunch";
    case VM_RUN_STATE_RUNNING:
        return "running";
    case VM_RUN_STATE_PAUSED:
        return "paused";
    case VM_RUN_STATE_SHUTDOWN:
        return "shutdown";
    case VM_RUN_STATE_INTERNAL_ERROR:
        return "internal-error";
    }
    return "unknown";
}

/* Counts vCPU threads that exist, i.e. the ones that must park. */
static unsigned started_vcpus(struct vm *vm)
{
    unsigned count = 0;
    for (unsigned i = 0; i < VMM_MAX_VCPUS; i++)
        if (vm->vcpus[i] && vm->vcpus[i]->thread_started)
            count++;
    return count;
}

static void kick_all(struct vm *vm)
{
    for (unsigned i = 0; i < VMM_MAX_VCPUS; i++)
        if (vm->vcpus[i])
            vcpu_kick(vm->vcpus[i]);
}

/* Waits until every started vCPU is parked. Caller holds state_lock. */
static void wait_all_parked_locked(struct vm *vm)
{
    unsigned expected = started_vcpus(vm);
    while (vm->parked_vcpus < expected && !vm->shutdown_requested)
        pthread_cond_wait(&vm->state_cond, &vm->state_lock);
}

void vm_quiesce(struct vm *vm)
{
    pthread_mutex_lock(&vm->state_lock);
    vm->quiesce_depth++;
    pthread_mutex_unlock(&vm->state_lock);
    kick_all(vm);
    pthread_mutex_lock(&vm->state_lock);
    wait_all_parked_locked(vm);
    pthread_mutex_unlock(&vm->state_lock);
}

void vm_unquiesce(struct vm *vm)
{
    pthread_mutex_lock(&vm->state_lock);
    if (vm->quiesce_depth > 0)
        vm->quiesce_depth--;
    pthread_cond_broadcast(&vm->state_cond);
    pthread_mutex_unlock(&vm->state_lock);
}

int vm_start(struct vm *vm, struct pv_error *error)
{
    for (unsigned i = 0; i < VMM_MAX_VCPUS; i++) {
        if (!vm->vcpus[i] || vm->vcpus[i]->thread_started)
            continue;
        int rc = vcpu_start_thread(vm->vcpus[i], error);
        if (rc < 0)
            return rc;
    }
    if (!vm->config->start_paused)
        set_run_state(vm, VM_RUN_STATE_RUNNING);
    return 0;
}

int vm_pause(struct vm *vm, struct pv_error *error)
{
    (void)error;
    enum vm_run_state state = vm_get_run_state(vm);
    if (state != VM_RUN_STATE_RUNNING)
        return 0; /* QEMU: stop on a stopped VM is a no-op without event */
    set_run_state(vm, VM_RUN_STATE_PAUSED);
    vm_quiesce(vm); /* returns once no vCPU runs guest code */
    vm_unquiesce(vm);
    vm_emit_event(vm, "STOP", NULL);
    return 0;
}

int vm_resume(struct vm *vm, struct pv_error *error)
{
    enum vm_run_state state = vm_get_run_state(vm);
    if (state == VM_RUN_STATE_RUNNING)
        return 0;
    if (state == VM_RUN_STATE_SHUTDOWN)
        return pv_error_set(error, -EINVAL, "Resetting the Virtual Machine is required");
    if (state == VM_RUN_STATE_INTERNAL_ERROR)
        return pv_error_set(error, -EINVAL, "Resetting the Virtual Machine is required");
    set_run_state(vm, VM_RUN_STATE_RUNNING);
    vm_emit_event(vm, "RESUME", NULL);
    return 0;
}

static int reset_machine(struct vm *vm, struct pv_error *error)
{
    vm_quiesce(vm);
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < VMM_MAX_VCPUS; i++)
        if (vm->vcpus[i])
            rc = vcpu_reset_state(vm->vcpus[i], error);
    /* The machine then reloads the kernel and sets the boot vCPU's entry state. */
    if (rc == 0 && vm->reset_hook)
        rc = vm->reset_hook(vm, error);
    vm_unquiesce(vm);
    return rc;
}

int vm_reset(struct vm *vm, struct pv_error *error)
{
    int rc = reset_machine(vm, error);
    if (rc < 0)
        return rc;
    vm_emit_event(vm, "RESET", "{\"guest\": false, \"reason\": \"host-qmp-system-reset\"}");
    enum vm_run_state state = vm_get_run_state(vm);
    if (state == VM_RUN_STATE_SHUTDOWN || state == VM_RUN_STATE_INTERNAL_ERROR)
        set_run_state(vm, VM_RUN_STATE_PAUSED);
    return 0;
}

static void guest_reset_on_main(void *arg)
{
    struct vm *vm = arg;
    if (vm->no_reboot) {
        vm_request_shutdown(vm, true, "guest-reset");
        return;
    }
    struct pv_error error = {0};
    if (reset_machine(vm, &error) < 0) {
        pv_log_error("guest reset failed: %s", error.message);
        vm_report_internal_error(vm);
        return;
    }
    vm_emit_event(vm, "RESET", "{\"guest\": true, \"reason\": \"guest-reset\"}");
}

static void unquiesce_on_main(void *arg)
{
    vm_unquiesce(arg);
}

void vm_request_guest_reset(struct vm *vm)
{
    /* The vCPU parks on its next loop while the main thread resets. */
    pthread_mutex_lock(&vm->state_lock);
    vm->quiesce_depth++;
    pthread_mutex_unlock(&vm->state_lock);
    if (vm_call_on_main(vm, guest_reset_on_main, vm) < 0)
        pv_log_error("cannot schedule the guest reset");
    vm_call_on_main(vm, unquiesce_on_main, vm);
}

static void internal_error_on_main(void *arg)
{
    struct vm *vm = arg;
    if (vm_get_run_state(vm) == VM_RUN_STATE_INTERNAL_ERROR)
        return;
    set_run_state(vm, VM_RUN_STATE_INTERNAL_ERROR);
    vm_emit_event(vm, "STOP", NULL);
}

void vm_report_internal_error(struct vm *vm)
{
    pthread_mutex_lock(&vm->state_lock);
    vm->run_state = VM_RUN_STATE_INTERNAL_ERROR;
    pthread_mutex_unlock(&vm->state_lock);
    vm_call_on_main(vm, internal_error_on_main, vm);
}

int vm_powerdown(struct vm *vm, struct pv_error *error)
{
    if (!vm->power_button_hook)
        return pv_error_set(error, -ENODEV, "this machine has no ACPI power button");
    vm_emit_event(vm, "POWERDOWN", NULL);
    vm->power_button_hook(vm);
    return 0;
}

struct shutdown_request {
    struct vm *vm;
    bool by_guest;
    const char *reason;
};

static void shutdown_on_main(void *arg)
{
    struct shutdown_request *request = arg;
    struct vm *vm = request->vm;
    /* -no-shutdown (libvirt passes it): a guest power-off only stops the vCPUs, so
     * the management layer can still query the VM, reset it or quit it. */
    bool keep_process = request->by_guest && vm->no_shutdown;
    pthread_mutex_lock(&vm->state_lock);
    bool already = keep_process ? vm->run_state == VM_RUN_STATE_SHUTDOWN : vm->shutdown_requested;
    if (!keep_process)
        vm->shutdown_requested = true;
    vm->run_state = VM_RUN_STATE_SHUTDOWN;
    pthread_cond_broadcast(&vm->state_cond);
    pthread_mutex_unlock(&vm->state_lock);
    if (!already) {
        char data[128];
        snprintf(data, sizeof(data), "{\"guest\": %s, \"reason\": \"%s\"}",
                 request->by_guest ? "true" : "false", request->reason);
        vm_emit_event(vm, "SHUTDOWN", data);
        kick_all(vm);
        if (keep_process) {
            vm_emit_event(vm, "STOP", NULL);
            free(request);
            return;
        }
        /* A short grace period lets monitors flush the SHUTDOWN event. */
        struct timeval grace = {0, 20000};
        event_base_loopexit(vm->event_base, &grace);
    }
    free(request);
}

void vm_request_shutdown(struct vm *vm, bool by_guest, const char *reason)
{
    struct shutdown_request *request = calloc(1, sizeof(*request));
    if (!request) {
        event_base_loopbreak(vm->event_base);
        return;
    }
    request->vm = vm;
    request->by_guest = by_guest;
    request->reason = reason; /* string literals only */
    if (on_main_thread(vm))
        shutdown_on_main(request);
    else if (vm_call_on_main(vm, shutdown_on_main, request) < 0)
        free(request);
}

unsigned vm_get_vcpu_info(struct vm *vm, struct vm_vcpu_info *info, unsigned max)
{
    unsigned count = 0;
    for (unsigned i = 0; i < VMM_MAX_VCPUS && count < max; i++) {
        struct vcpu *vcpu = vm->vcpus[i];
        if (!vcpu)
            continue;
        info[count].index = vcpu->index;
        /* No vCPU ioctl here: it would wait for KVM_RUN to return. A thread that was
         * just created may not have published its TID yet: wait for it (briefly) here
         * rather than at start-up, so start-up does not pay for it. */
        int thread_id = 0;
        for (int wait = 0; wait < 20000 && vcpu->thread_started; wait++) {
            thread_id = __atomic_load_n(&vcpu->thread_id, __ATOMIC_SEQ_CST);
            if (thread_id)
                break;
            usleep(50);
        }
        info[count].thread_id = thread_id;
        count++;
    }
    return count;
}
