/* Lifecycle operations of the API: define, undefine, start, destroy, shutdown, reboot,
 * suspend, resume, autostart (see domains.h). */
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console.h"
#include "domain.h"
#include "domain_alloc.h"
#include "domains_internal.h"
#include "json_util.h"
#include "pv_log.h"
#include "qmp_connection.h"
#include "store.h"
#include "tap_device.h"
#include "vmm_argv.h"

#define DESTROY_KILL_DELAY_MS 3000

/* -------------------------------------------------------------------- define --- */

/* The most guest RAM this host could ever map: the CPU's physical address width (guest
 * physical addresses must fit it, /proc/cpuinfo "address sizes") and half of x86-64's 47-bit
 * user address space (the VMM maps all guest RAM into its own), whichever is smaller. */
static uint64_t guest_memory_limit_kib(char *why, size_t size)
{
    unsigned bits = 0;
    FILE *cpuinfo = fopen("/proc/cpuinfo", "re");
    char line[256];
    while (cpuinfo && bits == 0 && fgets(line, sizeof(line), cpuinfo))
        if (sscanf(line, "address sizes : %u bits physical", &bits) != 1)
            bits = 0;
    if (cpuinfo)
        fclose(cpuinfo);
    uint64_t limit = UINT64_C(1) << (46 - 10); /* 64 TiB in KiB */
    snprintf(why, size, "half of the 128 TiB user address space the VMM maps guest RAM into");
    if (bits >= 32 && bits < 46) {
        limit = UINT64_C(1) << (bits - 10);
        snprintf(why, size, "the host CPU's %u-bit physical address space", bits);
    }
    return limit;
}

/* What a definition must satisfy beyond the schema, before it is stored. */
static int check_definition(const struct domain_definition *definition, struct pv_error *error)
{
    char why[128];
    uint64_t limit = guest_memory_limit_kib(why, sizeof(why));
    if (definition->memory_kib > limit || definition->current_memory_kib > limit)
        return pv_error_set(error, -EINVAL,
                            "memory of %" PRIu64 " KiB is more than this host can ever map for "
                            "a guest: the limit is %" PRIu64 " GiB (%s)",
                            definition->memory_kib, limit >> 20, why);
    for (size_t i = 0; i < definition->disk_count; i++) {
        const struct domain_disk *disk = &definition->disks[i];
        if (disk->hotplug_state != DOMAIN_HOTPLUG_ATTACHED)
            return pv_error_set(error, -EINVAL,
                                "disk %s: <plugvirt:hotplug> is status that plugvirtd reports in "
                                "live XML, not part of a definition; remove it",
                                disk->target_dev);
        for (size_t j = 0; j < i; j++) {
            const struct domain_disk *other = &definition->disks[j];
            if (disk->source && other->source && strcmp(disk->source, other->source) == 0 &&
                !(disk->readonly && other->readonly) && !(disk->shareable && other->shareable))
                return pv_error_set(error, -EBUSY,
                                    "disks %s and %s use the same source '%s'; mark both "
                                    "<shareable/> (or <readonly/>) to share it",
                                    other->target_dev, disk->target_dev, disk->source);
        }
    }
    for (size_t i = 0; i < definition->interface_count; i++)
        if (definition->interfaces[i].hotplug_state != DOMAIN_HOTPLUG_ATTACHED)
            return pv_error_set(error, -EINVAL,
                                "interface %s: <plugvirt:hotplug> is status that plugvirtd "
                                "reports in live XML, not part of a definition; remove it",
                                definition->interfaces[i].mac);
    return 0;
}

/* libvirt's rule: a managed tap named "vnet..." is a generated name; it is not kept, the next
 * start makes one again (a dumpxml of a running domain fed back to define stays startable). */
static void drop_generated_tap_names(struct domain_definition *definition)
{
    for (size_t i = 0; i < definition->interface_count; i++) {
        struct domain_interface *interface = &definition->interfaces[i];
        if (domains_is_generated_tap_name(interface)) {
            free(interface->target_dev);
            interface->target_dev = NULL;
        }
    }
}

void domains_define(struct domains *domains, const char *xml, domains_done_fn done, void *opaque)
{
    struct pv_error error = {0};
    struct domain_definition *definition = domains_parse_definition(domains, xml, &error);
    if (definition == NULL) {
        domains_reply_error(done, opaque, domains_xml_error_code(&error), "%s", error.message);
        return;
    }
    if (check_definition(definition, &error) < 0 ||
        domain_assign_addresses(definition, &error) < 0 ||
        domains_check_definition_macs(domains, definition, &error) < 0) {
        domains_reply_error(done, opaque, "invalid-argument", "%s", error.message);
        domain_definition_free(definition);
        return;
    }
    drop_generated_tap_names(definition);
    struct store_domain by_uuid, by_name;
    bool uuid_known = store_domain_get(domains->store, definition->uuid, &by_uuid, NULL) == 0 &&
                      strcasecmp(by_uuid.uuid, definition->uuid) == 0;
    if (!uuid_known && by_uuid.name == NULL)
        memset(&by_uuid, 0, sizeof(by_uuid));
    else if (!uuid_known)
        store_domain_clear(&by_uuid);
    bool name_known = store_domain_get(domains->store, definition->name, &by_name, NULL) == 0 &&
                      strcmp(by_name.name, definition->name) == 0;
    if (!name_known && by_name.name)
        store_domain_clear(&by_name);
    int rc = 0;
    if (uuid_known && strcmp(by_uuid.name, definition->name) != 0) {
        domains_reply_error(done, opaque, "domain-exists",
                            "domain '%s' is already defined with uuid %s", by_uuid.name,
                            definition->uuid);
        rc = -EEXIST;
    } else if (!uuid_known && name_known) {
        domains_reply_error(done, opaque, "domain-exists",
                            "domain '%s' already exists with uuid %s", definition->name,
                            by_name.uuid);
        rc = -EEXIST;
    }
    if (rc == 0) {
        char *persistent_xml = domain_xml_format(definition, false, &error);
        if (persistent_xml == NULL) {
            domains_reply_error(done, opaque, "internal", "%s", error.message);
            rc = -ENOMEM;
        } else if (uuid_known) {
            /* Redefinition (libvirt's behaviour): the new persistent definition is used
             * from the next start; a running VM keeps its live definition. */
            free(by_uuid.persistent_xml);
            by_uuid.persistent_xml = persistent_xml;
            by_uuid.persistent = true;
            rc = store_domain_put(domains->store, &by_uuid, &error);
        } else {
            struct store_domain row = {0};
            snprintf(row.uuid, sizeof(row.uuid), "%s", definition->uuid);
            row.name = definition->name;
            row.persistent_xml = persistent_xml;
            row.state = STORE_DOMAIN_SHUTOFF;
            row.persistent = true;
            rc = store_domain_add(domains->store, &row, &error);
            free(persistent_xml);
        }
        if (rc < 0 && rc != -EEXIST) {
            domains_reply_error(done, opaque, domains_store_error_code(rc), "%s", error.message);
        } else if (rc == -EEXIST) {
            domains_reply_error(done, opaque, "domain-exists", "%s", error.message);
        } else {
            domains_emit_event(domains, definition->uuid, definition->name, "lifecycle",
                               uuid_known ? "defined: updated" : "defined: added");
            struct json_writer writer;
            json_writer_init(&writer, false);
            json_writer_begin_object(&writer);
            json_writer_member_string(&writer, "uuid", definition->uuid);
            json_writer_member_string(&writer, "name", definition->name);
            json_writer_end_object(&writer);
            domains_reply_writer(done, opaque, &writer);
        }
    }
    if (uuid_known)
        store_domain_clear(&by_uuid);
    if (name_known)
        store_domain_clear(&by_name);
    domain_definition_free(definition);
}

/* ------------------------------------------------------------------ undefine --- */

static void delete_domain(struct domains *domains, const char *uuid, const char *name,
                          domains_done_fn done, void *opaque)
{
    struct pv_error error = {0};
    int rc = store_domain_delete(domains->store, uuid, &error);
    if (rc < 0) {
        domains_reply_error(done, opaque, domains_store_error_code(rc), "%s", error.message);
        return;
    }
    domains_emit_event(domains, uuid, name, "lifecycle", "undefined");
    domains_reply_ok(done, opaque, "{}");
}

struct undefine_request {
    struct domains *domains;
    char uuid[DOMAIN_UUID_STRING_LENGTH + 1];
    char *name;
    domains_done_fn done;
    void *opaque;
};

static void on_undefine_destroyed(void *opaque, const struct domains_result *result)
{
    struct undefine_request *request = opaque;
    if (result->code)
        request->done(request->opaque, result);
    else
        delete_domain(request->domains, request->uuid, request->name, request->done,
                      request->opaque);
    free(request->name);
    free(request);
}

void domains_undefine(struct domains *domains, const char *key, bool managed, domains_done_fn done,
                      void *opaque)
{
    struct store_domain row;
    if (domains_lookup(domains, key, &row, done, opaque) < 0)
        return;
    struct runtime *runtime = domains_find_runtime(domains, row.uuid);
    if (runtime && !managed) {
        domains_reply_error(done, opaque, "already-running",
                            "Requested operation is not valid: domain '%s' is running; destroy it "
                            "first or undefine with managed",
                            row.name);
    } else if (runtime) {
        struct undefine_request *request = calloc(1, sizeof(*request));
        if (request == NULL) {
            domains_reply_error(done, opaque, "internal", "out of memory");
        } else {
            request->domains = domains;
            snprintf(request->uuid, sizeof(request->uuid), "%s", row.uuid);
            request->name = strdup(row.name);
            request->done = done;
            request->opaque = opaque;
            domains_destroy(domains, row.uuid, on_undefine_destroyed, request);
        }
    } else {
        delete_domain(domains, row.uuid, row.name, done, opaque);
    }
    store_domain_clear(&row);
}

/* --------------------------------------------------------------------- start --- */

int domains_preflight_disk(const struct domain_disk *disk, struct pv_error *error)
{
    const char *target = disk->target_dev ? disk->target_dev : "?";
    if (disk->source == NULL)
        return pv_error_set(error, -EINVAL, "disk '%s' has no source", target);
    struct stat status;
    if (stat(disk->source, &status) < 0)
        return pv_error_set_errno(error, -errno, "disk '%s': cannot access source '%s'", target,
                                  disk->source);
    if (disk->type == DOMAIN_DISK_FILE && !S_ISREG(status.st_mode))
        return pv_error_set(error, -EINVAL, "disk '%s': source '%s' is not a regular file", target,
                            disk->source);
    if (disk->type == DOMAIN_DISK_BLOCK && !S_ISBLK(status.st_mode))
        return pv_error_set(error, -EINVAL, "disk '%s': source '%s' is not a block device", target,
                            disk->source);
    if (access(disk->source, disk->readonly ? R_OK : R_OK | W_OK) < 0)
        return pv_error_set_errno(error, -errno, "disk '%s': source '%s' is not %s", target,
                                  disk->source, disk->readonly ? "readable" : "read-writable");
    return 0;
}

void domains_start(struct domains *domains, const char *key, domains_done_fn done, void *opaque)
{
    struct store_domain row;
    if (domains_lookup(domains, key, &row, done, opaque) < 0)
        return;
    struct pv_error error = {0};
    struct domain_definition *definition = NULL;
    struct runtime *runtime = NULL;
    char **argv = NULL;
    int *nic_fds = NULL;
    unsigned nic_fd_count = 0;
    if (domains_find_runtime(domains, row.uuid)) {
        domains_reply_error(done, opaque, "already-running",
                            "Requested operation is not valid: domain is already running");
        goto out;
    }
    if (row.persistent_xml == NULL) {
        domains_reply_error(done, opaque, "internal", "domain '%s' has no definition", row.name);
        goto out;
    }
    definition = domains_parse_definition(domains, row.persistent_xml, &error);
    if (definition == NULL) {
        domains_reply_error(done, opaque, domains_xml_error_code(&error), "stored definition: %s",
                            error.message);
        goto out;
    }
    if (domain_assign_addresses(definition, &error) < 0 ||
        domain_assign_aliases(definition, &error) < 0) {
        domains_reply_error(done, opaque, "invalid-argument", "%s", error.message);
        goto out;
    }
    const char *emulator = definition->emulator ? definition->emulator : domains->config->vmm_path;
    if (emulator == NULL || access(emulator, X_OK) < 0) {
        domains_reply_error(done, opaque, "preflight-failed", "emulator '%s' is not executable: %s",
                            emulator ? emulator : "(none)", strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < definition->disk_count; i++) {
        if (domains_preflight_disk(&definition->disks[i], &error) < 0 ||
            domains_check_disk_sharing(domains, row.uuid, &definition->disks[i], &error) < 0) {
            domains_reply_error(done, opaque, "preflight-failed", "%s", error.message);
            goto out;
        }
    }
    runtime = runtime_new(domains, row.uuid, row.name);
    if (runtime == NULL) {
        domains_reply_error(done, opaque, "internal", "out of memory");
        goto out;
    }
    char directory[PATH_MAX - 32];
    domains_directory(domains, row.name, directory, sizeof(directory));
    int rc = domains_make_directory(directory, 0700);
    if (rc < 0) {
        domains_reply_error(done, opaque, "internal", "cannot create %s: %s", directory,
                            strerror(-rc));
        goto out;
    }
    unlink(runtime->qmp_path);
    unlink(runtime->pidfile_path);
    char serial_path[PATH_MAX], serial_log[PATH_MAX];
    snprintf(serial_path, sizeof(serial_path), "%s/serial.sock", directory);
    snprintf(serial_log, sizeof(serial_log), "%s/serial.log", directory);
    struct vmm_argv_paths paths = {
        .emulator = emulator,
        .qmp_socket = runtime->qmp_path,
        .serial_socket = serial_path,
        .serial_log = serial_log,
        .pidfile = runtime->pidfile_path,
    };
    if (tap_device_open_definition(definition, &nic_fds, &nic_fd_count, &error) < 0) {
        domains_reply_error(done, opaque, "preflight-failed", "%s", error.message);
        goto out;
    }
    argv = vmm_argv_build(definition, &paths, &error);
    if (argv == NULL) {
        domains_reply_error(done, opaque,
                            strncmp(error.message, "unsupported", 11) == 0 ? "unsupported"
                                                                           : "internal",
                            "%s", error.message);
        goto out;
    }
    runtime->console =
        console_create(domains->base, row.name, directory, definition, false, &error);
    if (runtime->console == NULL) {
        domains_reply_error(done, opaque, "preflight-failed", "%s", error.message);
        goto out;
    }
    char *line = vmm_argv_to_string(argv);
    pv_log_info("domain %s: starting %s", row.name, line ? line : argv[0]);
    free(line);
    if (runtime_spawn_vmm(runtime, argv, nic_fds, nic_fd_count, &error) < 0) {
        domains_reply_error(done, opaque, "internal", "%s", error.message);
        goto out;
    }
    runtime->start_time = runtime_process_start_time(runtime->pid);
    runtime->live = definition;
    definition = NULL;
    runtime->state = STORE_DOMAIN_PAUSED;
    runtime->next = domains->runtimes;
    domains->runtimes = runtime;
    struct runtime *started = runtime;
    runtime = NULL;
    if (runtime_add_waiter(&started->start_waiters, started, done, opaque) < 0) {
        domains_reply_error(done, opaque, "internal", "out of memory");
        started->destroying = true;
    }
    if (domains_save(domains, started, NULL, &error) < 0)
        pv_log_error("domain %s: %s", started->name, error.message);
    if (runtime_watch(started, &error) < 0 || runtime_connect(started, &error) < 0) {
        pv_log_error("domain %s: %s", started->name, error.message);
        char message[700];
        snprintf(message, sizeof(message), "%s", error.message);
        runtime_free_waiter_list(&started->start_waiters, "internal", message);
        started->destroying = started->start_failed = true;
        if (started->pidfd >= 0)
            runtime_kill(started, SIGKILL);
        else
            kill(started->pid, SIGKILL);
    }
out:
    /* The VMM holds the taps now (or the start failed): the daemon's copies go, so a tap
     * vanishes with the VMM. */
    tap_device_close_fds(nic_fds, nic_fd_count);
    vmm_argv_free(argv);
    if (runtime)
        runtime_free(runtime);
    if (definition)
        domain_definition_free(definition);
    store_domain_clear(&row);
}

/* ---------------------------------------------------------- destroy/shutdown --- */

static void on_kill_timer(evutil_socket_t fd, short what, void *opaque)
{
    struct runtime *runtime = opaque;
    pv_log_warning("domain %s: the VMM did not exit, sending SIGKILL", runtime->name);
    runtime_kill(runtime, SIGKILL);
}

static void on_quit_reply(struct domains *domains, const char *uuid,
                          const struct qmp_connection_reply *reply, void *context)
{
    struct runtime *runtime = domains_find_runtime(domains, uuid);
    if (runtime && !runtime->stopping && reply->status < 0)
        runtime_kill(runtime, SIGTERM);
}

void domains_destroy(struct domains *domains, const char *key, domains_done_fn done, void *opaque)
{
    struct runtime *runtime = domains_running_runtime(domains, key, done, opaque);
    if (runtime == NULL)
        return;
    if (runtime_add_waiter(&runtime->stop_waiters, runtime, done, opaque) < 0) {
        domains_reply_error(done, opaque, "internal", "out of memory");
        return;
    }
    if (runtime->destroying)
        return;
    runtime->destroying = true;
    if (runtime->qmp && runtime->qmp_ready)
        runtime_execute(runtime, "quit", NULL, 1000, on_quit_reply, NULL);
    else
        runtime_kill(runtime, SIGTERM);
    runtime->kill_timer = evtimer_new(domains->base, on_kill_timer, runtime);
    struct timeval delay = {DESTROY_KILL_DELAY_MS / 1000, (DESTROY_KILL_DELAY_MS % 1000) * 1000};
    if (runtime->kill_timer)
        evtimer_add(runtime->kill_timer, &delay);
}

static void on_shutdown_timeout(evutil_socket_t fd, short what, void *opaque)
{
    struct waiter *waiter = opaque;
    struct runtime *runtime = waiter->runtime;
    for (struct waiter **link = &runtime->stop_waiters; *link; link = &(*link)->next) {
        if (*link == waiter) {
            *link = waiter->next;
            break;
        }
    }
    event_free(waiter->timer);
    domains_reply_error(waiter->done, waiter->opaque, "timeout",
                        "the guest did not shut down in time (domain '%s' is still running)",
                        runtime->name);
    free(waiter);
}

struct shutdown_request {
    domains_done_fn done;
    void *opaque;
    int timeout_s;
};

static void on_powerdown_reply(struct domains *domains, const char *uuid,
                               const struct qmp_connection_reply *reply, void *context)
{
    struct shutdown_request *request = context;
    struct runtime *runtime = domains_find_runtime(domains, uuid);
    if (reply->status < 0 && !(runtime == NULL || runtime->stopping)) {
        domains_reply_qmp_failure(request->done, request->opaque, "system_powerdown", reply);
    } else if (request->timeout_s < 0 || runtime == NULL || runtime->stopping) {
        domains_reply_ok(request->done, request->opaque, "{}");
    } else if (runtime_add_waiter(&runtime->stop_waiters, runtime, request->done, request->opaque) <
               0) {
        domains_reply_error(request->done, request->opaque, "internal", "out of memory");
    } else {
        struct waiter *waiter = runtime->stop_waiters;
        waiter->timer = evtimer_new(domains->base, on_shutdown_timeout, waiter);
        struct timeval delay = {request->timeout_s, 0};
        if (waiter->timer)
            evtimer_add(waiter->timer, &delay);
    }
    free(request);
}

void domains_shutdown(struct domains *domains, const char *key, int timeout_s, domains_done_fn done,
                      void *opaque)
{
    struct runtime *runtime = domains_running_runtime(domains, key, done, opaque);
    if (runtime == NULL)
        return;
    struct shutdown_request *request = calloc(1, sizeof(*request));
    if (request == NULL) {
        domains_reply_error(done, opaque, "internal", "out of memory");
        return;
    }
    request->done = done;
    request->opaque = opaque;
    request->timeout_s = timeout_s;
    domains_emit_event(domains, runtime->uuid, runtime->name, "lifecycle", "shutdown: requested");
    runtime_execute(runtime, "system_powerdown", NULL, 0, on_powerdown_reply, request);
}

/* ----------------------------------------------------- reboot/suspend/resume --- */

/* reboot / suspend / resume: one QMP command each. */
static void on_simple_reply(struct domains *domains, const char *uuid,
                            const struct qmp_connection_reply *reply, void *context)
{
    struct simple_request *request = context;
    if (reply->status < 0) {
        domains_reply_qmp_failure(request->done, request->opaque, request->step, reply);
    } else {
        struct runtime *runtime = domains_find_runtime(domains, uuid);
        if (runtime && strcmp(request->step, "stop") == 0)
            runtime_set_state(runtime, STORE_DOMAIN_PAUSED, "suspended");
        else if (runtime && strcmp(request->step, "cont") == 0)
            runtime_set_state(runtime, STORE_DOMAIN_RUNNING, "resumed");
        domains_reply_ok(request->done, request->opaque, "{}");
    }
    free(request);
}

static void simple_command(struct domains *domains, const char *key, const char *command,
                           domains_done_fn done, void *opaque)
{
    struct runtime *runtime = domains_running_runtime(domains, key, done, opaque);
    if (runtime == NULL)
        return;
    struct simple_request *request = calloc(1, sizeof(*request));
    if (request == NULL) {
        domains_reply_error(done, opaque, "internal", "out of memory");
        return;
    }
    request->done = done;
    request->opaque = opaque;
    snprintf(request->step, sizeof(request->step), "%s", command);
    runtime_execute(runtime, command, NULL, 0, on_simple_reply, request);
}

void domains_reboot(struct domains *domains, const char *key, domains_done_fn done, void *opaque)
{
    simple_command(domains, key, "system_reset", done, opaque);
}

void domains_suspend(struct domains *domains, const char *key, domains_done_fn done, void *opaque)
{
    simple_command(domains, key, "stop", done, opaque);
}

void domains_resume(struct domains *domains, const char *key, domains_done_fn done, void *opaque)
{
    simple_command(domains, key, "cont", done, opaque);
}

/* ----------------------------------------------------------------- autostart --- */

void domains_set_autostart(struct domains *domains, const char *key, bool enabled,
                           domains_done_fn done, void *opaque)
{
    struct store_domain row;
    if (domains_lookup(domains, key, &row, done, opaque) < 0)
        return;
    row.autostart = enabled;
    struct pv_error error = {0};
    if (store_domain_put(domains->store, &row, &error) < 0)
        domains_reply_error(done, opaque, "internal", "%s", error.message);
    else
        domains_reply_ok(done, opaque, "{}");
    store_domain_clear(&row);
}
