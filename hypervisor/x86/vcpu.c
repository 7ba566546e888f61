/* vCPU threads: KVM_RUN and exit dispatch.
 *
 * A vCPU parks (outside KVM_RUN, holding no device lock) whenever the VM is
 * not running or is quiesced; vcpu_kick gets it out of KVM_RUN with a signal
 * plus kvm_run->immediate_exit so a kick that races with entry is not lost. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "x86/vcpu.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pv_log.h"
#include "x86/cpuid.h"

#define VCPU_KICK_SIGNAL SIGUSR1

static void kick_signal_handler(int signal_number)
{
    (void)signal_number; /* only interrupts KVM_RUN */
}

static int install_kick_handler(struct pv_error *error)
{
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = kick_signal_handler;
    sigemptyset(&action.sa_mask);
    if (sigaction(VCPU_KICK_SIGNAL, &action, NULL) < 0)
        return pv_error_set_errno(error, -errno, "cannot install the vCPU kick handler");
    return 0;
}

struct vcpu *vcpu_create(const struct vcpu_host *host, unsigned index, struct pv_error *error)
{
    struct vcpu *vcpu = calloc(1, sizeof(*vcpu));
    if (!vcpu) {
        pv_error_set(error, -ENOMEM, "out of memory for vCPU %u", index);
        return NULL;
    }
    vcpu->host = *host;
    vcpu->index = index;
    vcpu->fd = ioctl(host->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
    if (vcpu->fd < 0) {
        pv_error_set_errno(error, -errno, "KVM_CREATE_VCPU %u failed", index);
        free(vcpu);
        return NULL;
    }
    vcpu->run =
        mmap(NULL, (size_t)host->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
    if (vcpu->run == MAP_FAILED) {
        pv_error_set_errno(error, -errno, "cannot map kvm_run of vCPU %u", index);
        close(vcpu->fd);
        free(vcpu);
        return NULL;
    }
    if (cpuid_setup_vcpu(host->kvm_fd, vcpu->fd, index, host->max_vcpus, error) < 0)
        goto fail;
    if (ioctl(vcpu->fd, KVM_GET_LAPIC, &vcpu->initial_lapic) < 0) {
        pv_error_set_errno(error, -errno, "KVM_GET_LAPIC failed for vCPU %u", index);
        goto fail;
    }
    if (ioctl(vcpu->fd, KVM_GET_SREGS, &vcpu->initial_sregs) < 0) {
        pv_error_set_errno(error, -errno, "KVM_GET_SREGS failed for vCPU %u", index);
        goto fail;
    }
    return vcpu;
fail:
    munmap(vcpu->run, (size_t)host->mmap_size);
    close(vcpu->fd);
    free(vcpu);
    return NULL;
}

void vcpu_destroy(struct vcpu *vcpu)
{
    if (!vcpu)
        return;
    if (vcpu->thread_started)
        pthread_join(vcpu->thread, NULL);
    munmap(vcpu->run, (size_t)vcpu->host.mmap_size);
    close(vcpu->fd);
    free(vcpu);
}

void vcpu_kick(struct vcpu *vcpu)
{
    __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (vcpu->thread_started)
        pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

int vcpu_reset_state(struct vcpu *vcpu, struct pv_error *error)
{
    struct kvm_mp_state mp_state = {
        .mp_state = vcpu->index == 0 ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED,
    };
    if (ioctl(vcpu->fd, KVM_SET_SREGS, &vcpu->initial_sregs) < 0)
        return pv_error_set_errno(error, -errno, "KVM_SET_SREGS failed on reset");
    if (ioctl(vcpu->fd, KVM_SET_LAPIC, &vcpu->initial_lapic) < 0)
        return pv_error_set_errno(error, -errno, "KVM_SET_LAPIC failed on reset");
    if (ioctl(vcpu->fd, KVM_SET_MP_STATE, &mp_state) < 0)
        return pv_error_set_errno(error, -errno, "KVM_SET_MP_STATE failed on reset");
    struct kvm_regs regs;
    memset(&regs, 0, sizeof(regs));
    regs.rflags = 2;
    if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
        return pv_error_set_errno(error, -errno, "KVM_SET_REGS failed on reset");
    return 0;
}

static void handle_port_io(struct vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
    for (uint32_t i = 0; i < run->io.count; i++) {
        io_bus_access(vcpu->host.io_bus, IO_SPACE_PIO, run->io.port, data, run->io.size, is_write);
        data += run->io.size;
    }
}

static void report_internal_error(struct vcpu *vcpu)
{
    struct kvm_regs regs;
    struct kvm_run *run = vcpu->run;
    uint64_t rip = 0;
    if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) == 0)
        rip = regs.rip;
    pv_log_error("vCPU %u: KVM internal error (suberror %u) at rip=0x%" PRIx64
                 " data=%016llx %016llx %016llx",
                 vcpu->index, run->internal.suberror, rip,
                 run->internal.ndata > 0 ? (unsigned long long)run->internal.data[0] : 0ULL,
                 run->internal.ndata > 1 ? (unsigned long long)run->internal.data[1] : 0ULL,
                 run->internal.ndata > 2 ? (unsigned long long)run->internal.data[2] : 0ULL);
}

/* Waits while the VM wants vCPUs parked. Returns false when the thread must end. */
static bool wait_until_runnable(struct vcpu *vcpu)
{
    /* Cleared before the check: a kick after this point is seen by the check. */
    __atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    return vcpu->host.ops->wait_runnable(vcpu->host.opaque, vcpu);
}

static void *vcpu_thread_main(void *argument)
{
    struct vcpu *vcpu = argument;
    const struct vcpu_host *host = &vcpu->host;
    __atomic_store_n(&vcpu->thread_id, (int)gettid(), __ATOMIC_SEQ_CST);

    while (wait_until_runnable(vcpu)) {
        if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue; /* kicked, or an AP still waiting for SIPI */
            pv_log_error("vCPU %u: KVM_RUN failed: %s", vcpu->index, strerror(errno));
            host->ops->internal_error(host->opaque);
            continue;
        }
        struct kvm_run *run = vcpu->run;
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            handle_port_io(vcpu);
            break;
        case KVM_EXIT_MMIO:
            io_bus_access(host->io_bus, IO_SPACE_MMIO, run->mmio.phys_addr, run->mmio.data,
                          run->mmio.len, run->mmio.is_write);
            break;
        case KVM_EXIT_INTR:
            break;
        case KVM_EXIT_HLT:
            /* Only without an in-kernel LAPIC; we always have one. */
            break;
        case KVM_EXIT_SHUTDOWN:
            /* Triple fault: a PC resets. */
            pv_log_info("vCPU %u: triple fault, resetting", vcpu->index);
            host->ops->guest_reset(host->opaque);
            break;
        case KVM_EXIT_SYSTEM_EVENT:
            if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
                host->ops->guest_reset(host->opaque);
            else
                host->ops->guest_shutdown(host->opaque);
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            report_internal_error(vcpu);
            host->ops->internal_error(host->opaque);
            break;
        case KVM_EXIT_FAIL_ENTRY:
            pv_log_error("vCPU %u: entry failed, reason 0x%llx", vcpu->index,
                         (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            host->ops->internal_error(host->opaque);
            break;
        default:
            pv_log_error("vCPU %u: unhandled exit reason %u", vcpu->index, run->exit_reason);
            host->ops->internal_error(host->opaque);
            break;
        }
    }
    return NULL;
}

int vcpu_start_thread(struct vcpu *vcpu, struct pv_error *error)
{
    int rc = install_kick_handler(error);
    if (rc < 0)
        return rc;
    /* Block signals the main thread handles so they are not delivered here. */
    sigset_t blocked, previous;
    sigfillset(&blocked);
    sigdelset(&blocked, VCPU_KICK_SIGNAL);
    sigdelset(&blocked, SIGSEGV);
    sigdelset(&blocked, SIGBUS);
    sigdelset(&blocked, SIGFPE);
    sigdelset(&blocked, SIGILL);
    pthread_sigmask(SIG_SETMASK, &blocked, &previous);
    rc = pthread_create(&vcpu->thread, NULL, vcpu_thread_main, vcpu);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (rc != 0)
        return pv_error_set_errno(error, -rc, "cannot start the thread of vCPU %u", vcpu->index);
    vcpu->thread_started = true;
    char name[16];
    snprintf(name, sizeof(name), "CPU %u/KVM", vcpu->index);
    pthread_setname_np(vcpu->thread, name);
    return 0;
}
