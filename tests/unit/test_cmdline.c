#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "x86/cpu_models.h"
#include "cmdline.h"
#include "options/machine_options.h"
#include "vmm_config.h"

#define MAX_WORDS 64

struct parsed {
    struct vmm_config config;
    struct pv_error error;
    bool exit_early;
    int rc;
    char *output; /* what help/version printed */
};

/* Splits `line` on spaces into an argv after "plugvirt-vmm". */
static int split_line(const char *line, char *buffer, size_t size, char **argv)
{
    snprintf(buffer, size, "%s", line);
    int argc = 0;
    argv[argc++] = "plugvirt-vmm";
    for (char *word = strtok(buffer, " "); word && argc < MAX_WORDS; word = strtok(NULL, " "))
        argv[argc++] = word;
    argv[argc] = NULL;
    return argc;
}

static void parse_argv(struct parsed *result, int argc, char **argv)
{
    memset(result, 0, sizeof(*result));
    size_t output_size = 0;
    FILE *output = open_memstream(&result->output, &output_size);
    cr_assert_not_null(output);
    result->rc = vmm_config_parse_to(&result->config, argc, argv, &result->exit_early, output,
                                     &result->error);
    fclose(output);
}

static void parse_line(struct parsed *result, const char *line)
{
    char buffer[2048];
    char *argv[MAX_WORDS + 1];
    int argc = split_line(line, buffer, sizeof(buffer), argv);
    parse_argv(result, argc, argv);
}

static void release(struct parsed *result)
{
    vmm_config_free(&result->config);
    free(result->output);
}

static void expect_ok(struct parsed *result, const char *line)
{
    parse_line(result, line);
    cr_assert_eq(result->rc, 0, "'%s' failed: %s", line, result->error.message);
}

static void expect_error(const char *line, const char *message_part)
{
    struct parsed result;
    parse_line(&result, line);
    cr_assert_lt(result.rc, 0, "'%s' was accepted", line);
    cr_assert(strstr(result.error.message, message_part), "'%s': message '%s' lacks '%s'", line,
              result.error.message, message_part);
    release(&result);
}

Test(cmdline, defaults)
{
    struct parsed result;
    expect_ok(&result, "-kernel guest.elf");
    struct vmm_config *config = &result.config;
    cr_assert_str_eq(config->machine_type, "pc");
    cr_assert_str_eq(config->cpu_model, "host");
    cr_assert_eq(config->memory_bytes, UINT64_C(128) << 20);
    cr_assert_eq(config->cpus, 1);
    cr_assert_eq(config->max_cpus, 1);
    cr_assert_str_eq(config->kernel_path, "guest.elf");
    cr_assert_str_eq(config->kernel_cmdline, "");
    cr_assert_eq(config->serial.kind, CHARDEV_KIND_NONE);
    cr_assert_eq(config->monitor_count, 0);
    cr_assert_not(result.exit_early);
    release(&result);
}

Test(cmdline, launch_line)
{
    struct parsed result;
    expect_ok(&result, "-display none -no-user-config -m 2048 -nodefaults -monitor stdio "
                       "-machine pc,accel=kvm,usb=off -smp 1,maxcpus=2 -cpu IvyBridge-IBRS "
                       "-qmp unix:/tmp/x.sock,server=on,wait=off -kernel guest.elf");
    struct vmm_config *config = &result.config;
    cr_assert_eq(config->memory_bytes, UINT64_C(2048) << 20);
    cr_assert(config->nodefaults);
    cr_assert_eq(config->cpus, 1);
    cr_assert_eq(config->max_cpus, 2);
    cr_assert_eq(config->sockets * config->cores * config->threads, 2);
    cr_assert_str_eq(config->cpu_model, "IvyBridge-IBRS");
    cr_assert_eq(config->monitor_count, 2);
    cr_assert_eq(config->monitors[0].mode, MONITOR_MODE_HMP);
    cr_assert_eq(config->monitors[0].transport.kind, CHARDEV_KIND_STDIO);
    cr_assert_eq(config->monitors[1].mode, MONITOR_MODE_QMP);
    cr_assert_eq(config->monitors[1].transport.kind, CHARDEV_KIND_UNIX_SERVER);
    cr_assert_str_eq(config->monitors[1].transport.path, "/tmp/x.sock");
    cr_assert_not(config->monitors[1].transport.wait);
    cr_assert_eq(config->serial.kind, CHARDEV_KIND_NONE);
    cr_assert_str_eq(config->kernel_path, "guest.elf");
    release(&result);
}

Test(cmdline, libvirt_line)
{
    struct parsed result;
    expect_ok(&result,
              "-name guest=demo,debug-threads=on -S -machine pc,usb=off,dump-guest-core=off "
              "-accel kvm -cpu host -m size=131072k -overcommit mem-lock=off "
              "-smp 2,sockets=2,cores=1,threads=1 -no-user-config -nodefaults "
              "-chardev socket,id=charmonitor,path=/x/qmp.sock,server=on,wait=off "
              "-mon chardev=charmonitor,id=monitor,mode=control -rtc base=utc -no-shutdown "
              "-boot strict=on -kernel k");
    struct vmm_config *config = &result.config;
    cr_assert_str_eq(config->name, "demo");
    cr_assert(config->start_paused);
    cr_assert(config->no_shutdown);
    cr_assert_not(config->no_reboot);
    cr_assert_str_eq(config->cpu_model, "host");
    cr_assert_eq(config->memory_bytes, UINT64_C(128) << 20);
    cr_assert_eq(config->cpus, 2);
    cr_assert_eq(config->max_cpus, 2);
    cr_assert_eq(config->sockets, 2);
    cr_assert_eq(config->cores, 1);
    cr_assert_eq(config->threads, 1);
    cr_assert_eq(config->monitor_count, 1);
    const struct monitor_spec *monitor = &config->monitors[0];
    cr_assert_eq(monitor->mode, MONITOR_MODE_QMP);
    cr_assert_eq(monitor->transport.kind, CHARDEV_KIND_UNIX_SERVER);
    cr_assert_str_eq(monitor->transport.path, "/x/qmp.sock");
    cr_assert_str_eq(monitor->transport.id, "charmonitor");
    cr_assert_not(monitor->transport.wait);
    cr_assert_eq(config->chardev_count, 1);
    cr_assert(config->chardevs[0].claimed);
    cr_assert_eq(config->chardev_arg_count, 1);
    cr_assert_str_eq(config->chardev_args[0],
                     "socket,id=charmonitor,path=/x/qmp.sock,server=on,wait=off");
    cr_assert_eq(config->serial.kind, CHARDEV_KIND_NONE);
    release(&result);
}

Test(cmdline, double_dash_spelling)
{
    struct parsed result;
    expect_ok(&result, "--m 256 --smp 2 --no-reboot --kernel k");
    cr_assert_eq(result.config.memory_bytes, UINT64_C(256) << 20);
    cr_assert_eq(result.config.cpus, 2);
    cr_assert(result.config.no_reboot);
    release(&result);
}

Test(cmdline, memory_forms)
{
    struct {
        const char *line;
        uint64_t bytes;
    } cases[] = {
        {"-m 128", UINT64_C(128) << 20},     {"-m 2G", UINT64_C(2) << 30},
        {"-m size=2048", UINT64_C(2) << 30}, {"-m 512M", UINT64_C(512) << 20},
        {"-m 1.5G", UINT64_C(3) << 29},      {"-m 1000k", UINT64_C(1000) << 10},
        {"-m 1001k", UINT64_C(1008) << 10}, /* rounded up to 8 KiB as QEMU does */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parsed result;
        expect_ok(&result, cases[i].line);
        cr_assert_eq(result.config.memory_bytes, cases[i].bytes, "'%s' gave %llu", cases[i].line,
                     (unsigned long long)result.config.memory_bytes);
        release(&result);
    }
    struct parsed result;
    expect_ok(&result, "-m size=1G,slots=4,maxmem=8G");
    cr_assert_eq(result.config.memory_max_bytes, UINT64_C(8) << 30);
    cr_assert_eq(result.config.memory_slots, 4);
    release(&result);
}

Test(cmdline, vmm_parse_memory_size)
{
    uint64_t bytes = 0;
    struct pv_error error = {0};
    cr_assert_eq(vmm_parse_memory_size("128", &bytes, &error), 0);
    cr_assert_eq(bytes, UINT64_C(128) << 20);
    cr_assert_eq(vmm_parse_memory_size("128M", &bytes, &error), 0);
    cr_assert_eq(bytes, UINT64_C(128) << 20);
    cr_assert_eq(vmm_parse_memory_size("2G", &bytes, &error), 0);
    cr_assert_eq(bytes, UINT64_C(2) << 30);
    cr_assert_eq(vmm_parse_memory_size("2GB", &bytes, &error), 0);
    cr_assert_eq(bytes, UINT64_C(2) << 30);
    cr_assert_eq(vmm_parse_memory_size("512k", &bytes, &error), 0);
    cr_assert_eq(bytes, UINT64_C(512) << 10);
    cr_assert_eq(vmm_parse_memory_size("512K", &bytes, &error), 0);
    cr_assert_eq(vmm_parse_memory_size("1T", &bytes, &error), 0);
    cr_assert_eq(bytes, UINT64_C(1) << 40);
    const char *bad[] = {"0", "0G", "", "abc", "12Q", "-5", "99999999999999T", "1e3", "2G ", "G"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        error.message[0] = '\0';
        cr_assert_lt(vmm_parse_memory_size(bad[i], &bytes, &error), 0, "'%s' accepted", bad[i]);
        cr_assert_neq(error.message[0], '\0');
    }
}

Test(cmdline, smp_topology)
{
    struct {
        const char *line;
        unsigned cpus, max_cpus, sockets, cores, threads;
    } cases[] = {
        {"-smp 4", 4, 4, 1, 4, 1},
        {"-smp cpus=2", 2, 2, 1, 2, 1},
        {"-smp 1,maxcpus=2", 1, 2, 1, 2, 1},
        {"-smp 2,sockets=2,cores=1,threads=1", 2, 2, 2, 1, 1},
        {"-smp 2,maxcpus=8,sockets=2,cores=2,threads=2", 2, 8, 2, 2, 2},
        {"-smp sockets=2,cores=2", 4, 4, 2, 2, 1},
        {"-smp 4,sockets=2", 4, 4, 2, 2, 1},
        {"-smp 4,cores=2", 4, 4, 2, 2, 1},
        {"-smp 8,sockets=2,cores=2", 8, 8, 2, 2, 2},
        {"-smp 2,maxcpus=4,sockets=4,dies=1,cores=1,threads=1", 2, 4, 4, 1, 1},
        {"-smp 64", 64, 64, 1, 64, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parsed result;
        expect_ok(&result, cases[i].line);
        struct vmm_config *config = &result.config;
        cr_assert_eq(config->cpus, cases[i].cpus, "%s: cpus %u", cases[i].line, config->cpus);
        cr_assert_eq(config->max_cpus, cases[i].max_cpus, "%s: maxcpus %u", cases[i].line,
                     config->max_cpus);
        cr_assert_eq(config->sockets, cases[i].sockets, "%s: sockets %u", cases[i].line,
                     config->sockets);
        cr_assert_eq(config->cores, cases[i].cores, "%s: cores %u", cases[i].line, config->cores);
        cr_assert_eq(config->threads, cases[i].threads, "%s: threads %u", cases[i].line,
                     config->threads);
        release(&result);
    }
}

Test(cmdline, smp_errors)
{
    expect_error("-smp 2,maxcpus=1", "-smp: maxcpus (1) must be >= cpus (2)");
    expect_error("-smp 2,maxcpus=4,sockets=2,cores=1,threads=1",
                 "-smp: sockets (2) * cores (1) * threads (1) = 2 does not match maxcpus (4)");
    expect_error("-smp 65", "-smp: maxcpus (65) exceeds the maximum of 64");
    expect_error("-smp 1,maxcpus=128", "-smp: maxcpus (128)");
    expect_error("-smp 0", "-smp: cpus must be greater than zero");
    expect_error("-smp 2,cores=0", "-smp: cores must be greater than zero");
    expect_error("-smp 2,dies=2", "-smp: dies=2");
    expect_error("-smp two", "-smp: parameter 'cpus'");
    expect_error("-smp 2,books=1", "-smp: invalid parameter 'books'");
    expect_error("-smp 3,cores=2", "-smp: sockets (1) * cores (2) * threads (1) = 2");
    expect_error("-smp sockets=65536,threads=65536", "-smp:");
}

Test(cmdline, nographic_mux)
{
    struct parsed result;
    expect_ok(&result, "-nographic -kernel k");
    struct vmm_config *config = &result.config;
    cr_assert(config->nographic);
    cr_assert_eq(config->serial.kind, CHARDEV_KIND_MUX_STDIO);
    cr_assert_eq(config->monitor_count, 1);
    cr_assert_eq(config->monitors[0].mode, MONITOR_MODE_HMP);
    cr_assert_eq(config->monitors[0].transport.kind, CHARDEV_KIND_MUX_STDIO);
    release(&result);
}

Test(cmdline, nographic_with_qmp_keeps_serial_on_stdio)
{
    struct parsed result;
    expect_ok(&result, "-nographic -qmp unix:/tmp/q,server,nowait");
    struct vmm_config *config = &result.config;
    cr_assert_eq(config->serial.kind, CHARDEV_KIND_STDIO);
    cr_assert_eq(config->monitor_count, 1);
    cr_assert_eq(config->monitors[0].mode, MONITOR_MODE_QMP);
    cr_assert_eq(config->monitors[0].transport.kind, CHARDEV_KIND_UNIX_SERVER);
    cr_assert_not(config->monitors[0].transport.wait);
    release(&result);
}

Test(cmdline, nographic_with_serial_puts_monitor_on_stdio)
{
    struct parsed result;
    expect_ok(&result, "-nographic -serial file:/tmp/console.log");
    struct vmm_config *config = &result.config;
    cr_assert_eq(config->serial.kind, CHARDEV_KIND_FILE);
    cr_assert_str_eq(config->serial.path, "/tmp/console.log");
    cr_assert_eq(config->monitor_count, 1);
    cr_assert_eq(config->monitors[0].mode, MONITOR_MODE_HMP);
    cr_assert_eq(config->monitors[0].transport.kind, CHARDEV_KIND_STDIO);
    release(&result);
}

Test(cmdline, nographic_nodefaults_has_nothing)
{
    struct parsed result;
    expect_ok(&result, "-nographic -nodefaults");
    cr_assert_eq(result.config.serial.kind, CHARDEV_KIND_NONE);
    cr_assert_eq(result.config.monitor_count, 0);
    release(&result);
}

Test(cmdline, nographic_with_isa_serial_device)
{
    struct parsed result;
    expect_ok(&result, "-nographic -chardev pty,id=s0 -device isa-serial,chardev=s0");
    cr_assert_eq(result.config.serial.kind, CHARDEV_KIND_NONE);
    cr_assert_eq(result.config.monitor_count, 1);
    cr_assert_eq(result.config.monitors[0].transport.kind, CHARDEV_KIND_STDIO);
    cr_assert_eq(result.config.device_arg_count, 1);
    cr_assert_str_eq(result.config.device_args[0], "isa-serial,chardev=s0");
    release(&result);
}

Test(cmdline, serial_forms)
{
    struct {
        const char *line;
        enum chardev_kind kind;
        const char *path;
    } cases[] = {
        {"-serial stdio", CHARDEV_KIND_STDIO, NULL},
        {"-serial null", CHARDEV_KIND_NULL, NULL},
        {"-serial none", CHARDEV_KIND_NONE, NULL},
        {"-serial pty", CHARDEV_KIND_PTY, NULL},
        {"-serial file:/tmp/a,b", CHARDEV_KIND_FILE, "/tmp/a,b"},
        {"-serial unix:/tmp/s,server=on,wait=off", CHARDEV_KIND_UNIX_SERVER, "/tmp/s"},
        {"-serial unix:/tmp/s", CHARDEV_KIND_UNIX_CLIENT, "/tmp/s"},
        {"-serial unix:/tmp/a,,b,server,nowait", CHARDEV_KIND_UNIX_SERVER, "/tmp/a,b"},
        {"-chardev file,id=c0,path=/tmp/f -serial chardev:c0", CHARDEV_KIND_FILE, "/tmp/f"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parsed result;
        expect_ok(&result, cases[i].line);
        cr_assert_eq(result.config.serial.kind, cases[i].kind, "%s", cases[i].line);
        if (cases[i].path)
            cr_assert_str_eq(result.config.serial.path, cases[i].path, "%s", cases[i].line);
        release(&result);
    }
}

Test(cmdline, serial_server_waits_by_default)
{
    struct parsed result;
    expect_ok(&result, "-serial unix:/tmp/s,server=on");
    cr_assert_eq(result.config.serial.kind, CHARDEV_KIND_UNIX_SERVER);
    cr_assert(result.config.serial.wait);
    release(&result);
}

Test(cmdline, serial_mon_stdio_adds_hmp)
{
    struct parsed result;
    expect_ok(&result, "-serial mon:stdio -qmp unix:/tmp/q,server=on,wait=off");
    cr_assert_eq(result.config.serial.kind, CHARDEV_KIND_MUX_STDIO);
    cr_assert_eq(result.config.monitor_count, 2);
    cr_assert_eq(result.config.monitors[0].mode, MONITOR_MODE_HMP);
    cr_assert_eq(result.config.monitors[0].transport.kind, CHARDEV_KIND_MUX_STDIO);
    release(&result);
}

Test(cmdline, monitor_forms)
{
    struct parsed result;
    expect_ok(&result, "-qmp stdio -monitor unix:/tmp/h,server,nowait -monitor none "
                       "-qmp-pretty unix:/tmp/p,server=on,wait=off");
    struct vmm_config *config = &result.config;
    cr_assert_eq(config->monitor_count, 3);
    cr_assert_eq(config->monitors[0].mode, MONITOR_MODE_QMP);
    cr_assert_eq(config->monitors[0].transport.kind, CHARDEV_KIND_STDIO);
    cr_assert_eq(config->monitors[1].mode, MONITOR_MODE_HMP);
    cr_assert_eq(config->monitors[1].transport.kind, CHARDEV_KIND_UNIX_SERVER);
    cr_assert_eq(config->monitors[2].mode, MONITOR_MODE_QMP);
    cr_assert(config->monitors[2].pretty);
    cr_assert_not(config->monitors[0].pretty);
    release(&result);
}

Test(cmdline, mon_with_chardevs)
{
    struct parsed result;
    expect_ok(&result, "-chardev stdio,id=con,mux=on -serial chardev:con -mon chardev=con "
                       "-chardev socket,id=q,path=/tmp/q,server=on,wait=off "
                       "-mon q,mode=control,pretty=on -chardev null,id=n -chardev pty,id=p");
    struct vmm_config *config = &result.config;
    cr_assert_eq(config->serial.kind, CHARDEV_KIND_MUX_STDIO);
    cr_assert_eq(config->monitor_count, 2);
    cr_assert_eq(config->monitors[0].mode, MONITOR_MODE_HMP);
    cr_assert_eq(config->monitors[0].transport.kind, CHARDEV_KIND_MUX_STDIO);
    cr_assert_eq(config->monitors[1].mode, MONITOR_MODE_QMP);
    cr_assert(config->monitors[1].pretty);
    cr_assert_str_eq(config->monitors[1].transport.path, "/tmp/q");
    cr_assert_eq(config->chardev_count, 4);
    const struct chardev_definition *null_chardev = vmm_config_find_chardev(config, "n");
    cr_assert_not_null(null_chardev);
    cr_assert_eq(null_chardev->spec.kind, CHARDEV_KIND_NULL);
    cr_assert_not(null_chardev->claimed);
    cr_assert_eq(vmm_config_find_chardev(config, "p")->spec.kind, CHARDEV_KIND_PTY);
    cr_assert_null(vmm_config_find_chardev(config, "nope"));
    release(&result);
}

Test(cmdline, chardev_defined_after_use)
{
    struct parsed result;
    expect_ok(
        &result,
        "-mon chardev=late,mode=control -chardev socket,id=late,path=/tmp/l,server=on,wait=off");
    cr_assert_eq(result.config.monitors[0].transport.kind, CHARDEV_KIND_UNIX_SERVER);
    release(&result);
}

/* QEMU's logfile=/logappend= on any chardev; -serial chardev:ID keeps them. */
Test(cmdline, chardev_logfile)
{
    struct parsed result;
    expect_ok(&result, "-chardev socket,id=s,path=/tmp/s.sock,server=on,wait=off,"
                       "logfile=/tmp/serial.log,logappend=on -serial chardev:s");
    cr_assert_str_eq(result.config.serial.log_path, "/tmp/serial.log");
    cr_assert(result.config.serial.log_append);
    release(&result);
    expect_error("-chardev null,id=n,logappend=on", "logappend=on needs logfile=");
    expect_error("-chardev null,id=n,logfile=/tmp/x,logappend=maybe", "logappend");
}

Test(cmdline, machine_and_accelerator)
{
    struct parsed result;
    expect_ok(&result, "-M pc-i440fx-8.2 -enable-kvm -accel kvm -machine accel=kvm:tcg");
    cr_assert_str_eq(result.config.machine_type, "pc");
    release(&result);
    expect_ok(&result, "-machine type=pc,mem-merge=off,vmport=off");
    release(&result);
}

Test(cmdline, cpu_models_and_features)
{
    struct parsed result;
    expect_ok(&result, "-cpu Haswell-noTSX,+vmx,-hle,kvm=off,level=13,pdpe1gb");
    struct vmm_config *config = &result.config;
    cr_assert_str_eq(config->cpu_model, "Haswell-noTSX");
    cr_assert_eq(config->cpu_feature_count, 5);
    cr_assert_str_eq(config->cpu_features[0], "+vmx");
    cr_assert_str_eq(config->cpu_features[1], "-hle");
    cr_assert_str_eq(config->cpu_features[2], "-kvm");
    cr_assert_str_eq(config->cpu_features[3], "level=13");
    cr_assert_str_eq(config->cpu_features[4], "+pdpe1gb");
    release(&result);

    const char *names[] = {"qemu64",
                           "kvm64",
                           "Nehalem",
                           "Westmere",
                           "SandyBridge",
                           "IvyBridge",
                           "Haswell",
                           "Broadwell",
                           "Skylake-Client",
                           "Skylake-Server",
                           "Cascadelake-Server",
                           "Icelake-Server",
                           "EPYC",
                           "EPYC-Rome",
                           "EPYC-Milan",
                           "host",
                           "max",
                           "base"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        cr_assert_not_null(cpu_model_find(names[i]), "%s missing", names[i]);
    cr_assert_eq(cpu_model_find("EPYC-Milan")->family, 25);
    cr_assert_eq(cpu_model_find("IvyBridge-IBRS")->model, 58);
    cr_assert(cpu_model_find("max")->host_passthrough);
    cr_assert_null(cpu_model_find("ivybridge"));
}

Test(cmdline, cpu_help_exits_early)
{
    struct parsed result;
    parse_line(&result, "-m 256 -cpu help -bogus");
    cr_assert_eq(result.rc, 0, "%s", result.error.message);
    cr_assert(result.exit_early);
    cr_assert(strstr(result.output, "IvyBridge-IBRS"));
    cr_assert(strstr(result.output, "EPYC-Milan"));
    release(&result);
}

Test(cmdline, version_and_help)
{
    struct parsed result;
    parse_line(&result, "--version");
    cr_assert_eq(result.rc, 0);
    cr_assert(result.exit_early);
    cr_assert(strncmp(result.output, "QEMU emulator version 8.2.0 (plugvirt-vmm ", 42) == 0, "%s",
              result.output);
    cr_assert_eq(strchr(result.output, '\n') != NULL, true);
    release(&result);

    const char *spellings[] = {"-h", "-help", "--help"};
    for (size_t i = 0; i < 3; i++) {
        parse_line(&result, spellings[i]);
        cr_assert_eq(result.rc, 0);
        cr_assert(result.exit_early);
        cr_assert(strstr(result.output, "-smp"));
        cr_assert(strstr(result.output, "-chardev"));
        release(&result);
    }
    parse_line(&result, "-machine help");
    cr_assert(result.exit_early);
    cr_assert(strstr(result.output, "pc"));
    release(&result);
}

Test(cmdline, strings_and_flags)
{
    struct parsed result;
    expect_ok(&result, "-kernel a -kernel b -initrd i -append console=ttyS0 -pidfile /tmp/p "
                       "-daemonize -dump-acpi-tables /tmp/acpi -uuid "
                       "c7a5fdbd-edaf-9455-926a-d65c16db1809 -name plain -serial null "
                       "-no-hpet -msg timestamp=on -sandbox off -vga none -net none "
                       "-nodefconfig -global kvm-pit.lost_tick_policy=delay "
                       "-rtc base=utc,driftfix=slew -overcommit mem-lock=off,cpu-pm=off");
    struct vmm_config *config = &result.config;
    cr_assert_str_eq(config->kernel_path, "b");
    cr_assert_str_eq(config->initrd_path, "i");
    cr_assert_str_eq(config->kernel_cmdline, "console=ttyS0");
    cr_assert_str_eq(config->pidfile, "/tmp/p");
    cr_assert(config->daemonize);
    cr_assert_str_eq(config->acpi_dump_dir, "/tmp/acpi");
    cr_assert_str_eq(config->uuid, "c7a5fdbd-edaf-9455-926a-d65c16db1809");
    cr_assert_str_eq(config->name, "plain");
    release(&result);
}

Test(cmdline, append_with_spaces_and_device_args_verbatim)
{
    char *argv[] = {"plugvirt-vmm",
                    "-append",
                    "console=ttyS0 root=/dev/vda rw",
                    "-device",
                    "virtio-blk-pci,drive=d0,id=disk0",
                    "-blockdev",
                    "{\"driver\":\"file\",\"filename\":\"/tmp/a,b\",\"node-name\":\"f\"}",
                    "-drive",
                    "file=/tmp/x.img,if=none,id=d0",
                    NULL};
    struct parsed result;
    parse_argv(&result, 9, argv);
    cr_assert_eq(result.rc, 0, "%s", result.error.message);
    struct vmm_config *config = &result.config;
    cr_assert_str_eq(config->kernel_cmdline, "console=ttyS0 root=/dev/vda rw");
    cr_assert_eq(config->device_arg_count, 1);
    cr_assert_str_eq(config->device_args[0], argv[4]);
    cr_assert_eq(config->blockdev_arg_count, 1);
    cr_assert_str_eq(config->blockdev_args[0], argv[6]);
    cr_assert_eq(config->drive_arg_count, 1);
    cr_assert_str_eq(config->drive_args[0], argv[8]);
    release(&result);
}

Test(cmdline, bad_lines_name_the_option)
{
    struct {
        const char *line;
        const char *message;
    } cases[] = {
        {"-foo", "unknown option '-foo'"},
        {"--foo", "unknown option '--foo'"},
        {"-m", "option '-m' needs an argument"},
        {"--kernel", "option '-kernel' needs an argument"},
        {"disk.img", "unexpected argument 'disk.img'"},
        {"-", "unexpected argument '-'"},
        {"-m 0", "-m: memory size must be greater than zero"},
        {"-m lots", "-m:"},
        {"-m 2G,bogus=1", "-m: invalid parameter 'bogus'"},
        {"-m 2G,maxmem=1G", "-m: maxmem"},
        {"-m 2G,slots=2", "-m: slots needs maxmem"},
        {"-machine q35", "-machine: unsupported machine type 'q35'"},
        {"-M pc-q35-8.2", "-M: unsupported machine type 'pc-q35-8.2'"},
        {"-machine pc,accel=tcg", "-machine: accelerator 'tcg' is not supported"},
        {"-machine pc,usb=on", "-machine: usb=on is not supported"},
        {"-machine pc,foo=bar", "-machine: invalid parameter 'foo'"},
        {"-accel tcg", "-accel: accelerator 'tcg' is not supported"},
        {"-cpu Pentium9000", "-cpu: unknown CPU model 'Pentium9000'"},
        {"-cpu host,+", "-cpu: invalid feature '+'"},
        {"-cpu host,a/b=1", "-cpu: invalid feature 'a/b=1'"},
        {"-serial tcp:localhost:4444", "-serial: 'tcp:localhost:4444' is not supported"},
        {"-serial vc", "-serial: 'vc' is not supported"},
        {"-serial stdio -serial null", "-serial: only one serial port is supported"},
        {"-serial unix:/tmp/s,wait=off", "-serial: wait= is only valid with server=on"},
        {"-serial unix:/tmp/s,server=on,telnet=on", "-serial: invalid parameter 'telnet'"},
        {"-serial file:", "-serial: file: needs a path"},
        {"-serial chardev:missing", "-serial: chardev 'missing' not found"},
        {"-qmp none", "-qmp: 'none' is not supported"},
        {"-qmp mon:stdio", "-qmp: 'mon:stdio' is not supported"},
        {"-monitor stdio -serial stdio", "-monitor: stdio is already used by -serial"},
        {"-nographic -monitor stdio", "stdio is already used"},
        {"-qmp stdio -daemonize", "-qmp: cannot use stdio with -daemonize"},
        {"-nographic -daemonize", "-nographic cannot be used with -daemonize"},
        {"-mon mode=control", "-mon: parameter 'chardev' is missing"},
        {"-mon chardev=x,mode=fancy", "-mon: mode 'fancy' is not valid"},
        {"-mon chardev=x,pretty=on", "-mon: pretty=on is only valid with mode=control"},
        {"-mon chardev=nope,mode=control", "-mon: chardev 'nope' not found"},
        {"-chardev socket,id=a,path=/x,server=on,wait=off -mon a -mon a,mode=control",
         "-mon: chardev 'a' is already in use"},
        {"-chardev socket,path=/x", "-chardev: parameter 'id' is missing"},
        {"-chardev socket,id=a", "-chardev: a unix socket needs a path"},
        {"-chardev socket,id=a,host=localhost,port=4444", "-chardev: only unix sockets"},
        {"-chardev spice,id=a", "-chardev: backend 'spice' is not supported"},
        {"-chardev null,id=1a", "-chardev: invalid id '1a'"},
        {"-chardev null,id=a -chardev pty,id=a", "-chardev: duplicate id 'a'"},
        {"-chardev pty,id=a,mux=on", "-chardev: mux=on is only supported with the stdio"},
        {"-chardev file,id=a", "-chardev: parameter 'path' is missing"},
        {"-display gtk", "-display: display gtk is not supported"},
        {"-display sdl,gl=on", "-display: display sdl is not supported"},
        {"-vga std", "-vga: 'std' is not supported"},
        /* QEMU's default -net nic model is e1000, which plugvirt-vmm does not have. */
        {"-net nic", "-net: nic: QEMU's default model e1000 is not supported by plugvirt-vmm"},
        {"-netdev user,id=n0",
         "-netdev: netdev type 'user' is not supported by plugvirt-vmm (only tap)"},
        {"-no-acpi", "-no-acpi: ACPI cannot be disabled"},
        {"-readconfig /etc/qemu.cfg", "-readconfig: configuration files are not supported"},
        {"-sandbox on", "-sandbox: enable=on is not supported"},
        {"-overcommit mem-lock=on", "-overcommit: mem-lock=on is not supported"},
        {"-rtc base=localtime", "-rtc: base=localtime is not supported"},
        {"-global isa-fdc.driveA=", "-global: 'isa-fdc.driveA=' is not supported"},
        {"-name guest=x,color=red", "-name: invalid parameter 'color'"},
        {"-uuid not-a-uuid", "-uuid: 'not-a-uuid' is not a UUID"},
        {"-boot menu=maybe", "-boot: parameter 'menu'"},
        {"-msg timestamp=sometimes", "-msg: parameter 'timestamp'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].line, cases[i].message);

    char *empty_kernel[] = {"plugvirt-vmm", "-kernel", "", NULL};
    struct parsed result;
    parse_argv(&result, 3, empty_kernel);
    cr_assert_lt(result.rc, 0);
    cr_assert_str_eq(result.error.message, "-kernel: empty path");
    release(&result);
}

/* -netdev is checked at parse time (nothing is opened) and kept verbatim. */
Test(cmdline, netdev_tap_kept_verbatim_and_checked)
{
    struct parsed result;
    expect_ok(&result, "-netdev tap,id=n0,ifname=t0,script=no,downscript=no "
                       "-device virtio-net-pci,netdev=n0,id=nic0,mac=52:54:00:00:00:01 "
                       "-netdev {\"type\":\"tap\",\"id\":\"hostnet1\",\"fd\":\"9\"}");
    cr_assert_eq(result.config.netdev_arg_count, 2);
    cr_assert_str_eq(result.config.netdev_args[0], "tap,id=n0,ifname=t0,script=no,downscript=no");
    cr_assert_str_eq(result.config.netdev_args[1],
                     "{\"type\":\"tap\",\"id\":\"hostnet1\",\"fd\":\"9\"}");
    cr_assert_eq(result.config.device_arg_count, 1);
    cr_assert_str_eq(result.config.device_args[0],
                     "virtio-net-pci,netdev=n0,id=nic0,mac=52:54:00:00:00:01");
    release(&result);
}

/* Texts from qemu-system-x86_64 7.2 -M pc -accel tcg -nodefaults <the line>, where QEMU
 * has the option (its "qemu-system-x86_64: <option>: " prefix is ours "-netdev: "). */
Test(cmdline, netdev_errors_match_qemu)
{
    static const struct {
        const char *line;
        const char *message;
    } cases[] = {
        {"-netdev tap,id=n0,bogus=1", "-netdev: Invalid parameter 'bogus'"},
        {"-netdev tap", "-netdev: Parameter 'id' is missing"},
        {"-netdev tap,id=9x", "-netdev: Parameter 'id' expects an identifier"},
        {"-netdev tap,id=a -netdev tap,id=a", "-netdev: Duplicate ID 'a' for netdev"},
        {"-netdev tap,id=a,fd=3,ifname=x",
         "-netdev: ifname=, script=, downscript=, vnet_hdr=, helper=, queues=, fds=, and "
         "vhostfds= are invalid with fd="},
        {"-netdev tap,id=a,fds=3:4,queues=2",
         "-netdev: ifname=, script=, downscript=, vnet_hdr=, helper=, queues=, and vhostfd= "
         "are invalid with fds="},
        {"-netdev tap,id=a,vhostfds=3:4",
         "-netdev: vhostfds=: vhost-net is not supported yet by plugvirt-vmm"},
        {"-net foo", "-net: Parameter 'type' does not accept value 'foo'"},
        /* JSON is QAPI-typed, as QMP netdev_add: a string other than on/off is no boolean. */
        {"-netdev {\"type\":\"tap\",\"id\":\"n\",\"vhost\":\"maybe\"}",
         "-netdev: Invalid parameter type for 'vhost', expected: boolean"},
        /* Ours: refusals by name. */
        {"-netdev socket,id=s", "-netdev: netdev type 'socket' is not supported by plugvirt-vmm"},
        {"-netdev tap,id=a,helper=/usr/lib/qemu/qemu-bridge-helper",
         "-netdev: helper=: the bridge helper is not supported by plugvirt-vmm"},
        {"-netdev tap,id=a,queues=0", "-netdev: queues=0: plugvirt-vmm supports 1 to 16 queues"},
        {"-net user", "-net: netdev type 'user' is not supported by plugvirt-vmm (only tap)"},
        {"-net nic,model=e1000", "-net: nic,model=e1000: not supported by plugvirt-vmm (only "
                                 "virtio); use -netdev tap,id=ID,... -device "
                                 "virtio-net-pci,netdev=ID"},
        {"-net nic,model=rtl8139", "-net: nic,model=rtl8139: not supported"},
        {"-net nic,model=virtio -net nic,model=virtio",
         "-net: nic: a second -net nic on QEMU's hub 0 is not supported by plugvirt-vmm (no hub)"},
        {"-net tap,script=no -net tap,script=no",
         "-net: tap: a second -net tap on QEMU's hub 0 is not supported by plugvirt-vmm"},
        {"-net nic,model=virtio,macaddr=52:54:00", "-net: nic: Parameter 'macaddr' expects a MAC"},
        {"-net nic,model=virtio,speed=10", "-net: invalid parameter 'speed'"},
        {"-net tap,bogus=1", "-net: tap: Invalid parameter 'bogus'"},
        {"-nic tap,model=virtio-net-pci",
         "-nic: not supported by plugvirt-vmm; use -netdev tap,id=ID,... -device "
         "virtio-net-pci,netdev=ID"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].line, cases[i].message);
}

/* -net nic,model=virtio -net tap: QEMU's hub 0 with one NIC and one tap is a netdev and a
 * virtio-net-pci on it; the -net NIC comes before -device devices, as QEMU creates it with
 * the machine. */
Test(cmdline, legacy_net_pair_becomes_netdev_and_device)
{
    struct parsed result;
    expect_ok(&result,
              "-device virtio-blk-pci,drive=d -net nic,model=virtio,macaddr=52:54:00:ab:cd:ef "
              "-net tap,ifname=t0,script=no,downscript=no");
    cr_assert_eq(result.config.netdev_arg_count, 1);
    cr_assert_str_eq(result.config.netdev_args[0],
                     "tap,id=tap.0,ifname=t0,script=no,downscript=no");
    cr_assert_eq(result.config.device_arg_count, 2);
    cr_assert_str_eq(result.config.device_args[0],
                     "virtio-net-pci,mac=52:54:00:ab:cd:ef,netdev=tap.0");
    cr_assert_str_eq(result.config.device_args[1], "virtio-blk-pci,drive=d");
    release(&result);

    expect_ok(&result,
              "-net tap,name=up0,script=no -net nic,model=virtio-net-pci,name=nic0 "
              "-net nic,model=virtio,netdev=n1 -netdev tap,id=n1,fd=5 -net none -nic none");
    cr_assert_str_eq(result.config.netdev_args[0], "tap,id=up0,script=no");
    cr_assert_str_eq(result.config.device_args[0], "virtio-net-pci,id=nic0,netdev=up0");
    cr_assert_str_eq(result.config.device_args[1], "virtio-net-pci,netdev=n1");
    release(&result);

    /* The plain form of the issue: defaults everywhere. */
    expect_ok(&result, "-net nic,model=virtio -net tap");
    cr_assert_str_eq(result.config.netdev_args[0], "tap,id=tap.0");
    cr_assert_str_eq(result.config.device_args[0], "virtio-net-pci,netdev=tap.0");
    release(&result);
}

Test(cmdline, too_many_monitors)
{
    char line[1024] = "";
    for (int i = 0; i <= VMM_MAX_MONITORS; i++) {
        char part[64];
        snprintf(part, sizeof(part), "-qmp unix:/tmp/q%d,server=on,wait=off ", i);
        strcat(line, part);
    }
    expect_error(line, "-qmp: too many monitors");
}

Test(cmdline, free_is_safe_on_zeroed_and_twice)
{
    struct vmm_config config;
    memset(&config, 0, sizeof(config));
    vmm_config_free(&config);
    vmm_config_free(&config);
    struct parsed result;
    expect_ok(&result, "-chardev null,id=n -serial chardev:n -cpu host,+x -device e1000");
    vmm_config_free(&result.config);
    vmm_config_free(&result.config);
    cr_assert_null(result.config.cpu_model);
    free(result.output);
}

/* Every prefix of good lines, and each line with one word dropped, must
 * parse or fail cleanly; run under ASan this finds leaks and overreads. */
Test(cmdline, truncated_and_mutilated_argv_never_crash)
{
    const char *lines[] = {
        "-display none -no-user-config -m 2048 -nodefaults -monitor stdio "
        "-machine pc,accel=kvm,usb=off -smp 1,maxcpus=2 -cpu IvyBridge-IBRS "
        "-qmp unix:/tmp/x.sock,server=on,wait=off -kernel guest.elf",
        "-name guest=demo,debug-threads=on -S -machine pc,usb=off,dump-guest-core=off "
        "-accel kvm -cpu host -m size=131072k -overcommit mem-lock=off "
        "-smp 2,sockets=2,cores=1,threads=1 -no-user-config -nodefaults "
        "-chardev socket,id=charmonitor,path=/x/qmp.sock,server=on,wait=off "
        "-mon chardev=charmonitor,id=monitor,mode=control -rtc base=utc -no-shutdown "
        "-boot strict=on -kernel k",
        "-nographic -chardev stdio,id=c,mux=on -serial chardev:c -mon c -cpu host,+a,-b,c=on "
        "-device virtio-blk-pci,drive=d -drive file=x,if=none,id=d -netdev tap,id=n "
        "-blockdev driver=null-co,node-name=z -pidfile /tmp/p -uuid "
        "c7a5fdbd-edaf-9455-926a-d65c16db1809 -serial none -qmp-pretty stdio",
    };
    for (size_t line = 0; line < sizeof(lines) / sizeof(lines[0]); line++) {
        char buffer[2048];
        char *words[MAX_WORDS + 1];
        int word_count = split_line(lines[line], buffer, sizeof(buffer), words);
        for (int argc = 1; argc <= word_count; argc++) {
            struct parsed result;
            parse_argv(&result, argc, words);
            if (result.rc < 0)
                cr_assert_neq(result.error.message[0], '\0');
            release(&result);
        }
        for (int dropped = 1; dropped < word_count; dropped++) {
            char *mutilated[MAX_WORDS + 1];
            int count = 0;
            for (int i = 0; i < word_count; i++)
                if (i != dropped)
                    mutilated[count++] = words[i];
            mutilated[count] = NULL;
            struct parsed result;
            parse_argv(&result, count, mutilated);
            if (result.rc < 0)
                cr_assert_neq(result.error.message[0], '\0');
            release(&result);
        }
        /* Truncated option strings inside a word. */
        for (int word = 1; word < word_count; word++) {
            size_t length = strlen(words[word]);
            for (size_t cut = 0; cut < length; cut++) {
                char truncated[512];
                snprintf(truncated, sizeof(truncated), "%.*s", (int)cut, words[word]);
                char *saved = words[word];
                words[word] = truncated;
                struct parsed result;
                parse_argv(&result, word_count, words);
                if (result.rc < 0)
                    cr_assert_neq(result.error.message[0], '\0');
                release(&result);
                words[word] = saved;
            }
        }
    }
}
