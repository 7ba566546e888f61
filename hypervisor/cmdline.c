/* The QEMU-compatible command line of plugvirt-vmm.
 *
 * Options are handled in order, as QEMU does: -version or -help print and
 * stop at once, and the last of a repeated scalar option wins. What QEMU
 * decides after the whole line is read (default serial and monitor for
 * -nographic, -serial chardev:ID and -mon chardev=ID references, stdio
 * users) is done in chardev_options_finish(). Options QEMU has and we do not
 * implement are errors, never silently ignored; the few that are accepted
 * and ignored are those whose QEMU meaning already holds here (-no-hpet: we
 * have no HPET) or has no effect for a direct kernel boot (-boot).
 *
 * This file is the parse loop, -version and -help; each option's handler is in
 * its family's table in options/. */
#include "cmdline.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "options/boot_options.h"
#include "options/chardev_options.h"
#include "options/device_options.h"
#include "options/net_options.h"
#include "options/machine_options.h"
#include "options/misc_options.h"
#include "options/option_helpers.h"

#ifndef PLUGVIRT_VERSION
#define PLUGVIRT_VERSION "0.1.0"
#endif

#define DEFAULT_MEMORY_BYTES (128 * QEMU_SIZE_MIB)

/* --- information ------------------------------------------------------------ */

static int option_version(struct parse_state *state, const char *argument, struct pv_error *error)
{
    fprintf(state->output,
            "QEMU emulator version " VMM_QEMU_COMPAT_VERSION " (plugvirt-vmm " PLUGVIRT_VERSION
            ")\n"
            "plugvirt-vmm is a KVM virtual machine monitor with a QEMU-compatible command line\n");
    *state->exit_early = true;
    return 0;
}

static const char usage_text[] =
    "usage: plugvirt-vmm [options]\n"
    "\n"
    "A KVM virtual machine monitor with a QEMU-compatible command line (a subset).\n"
    "Options may be spelled -option or --option.\n"
    "\n"
    "Machine:\n"
    "  -machine|-M pc[,accel=kvm][,usb=off][,dump-guest-core=on|off][,mem-merge=on|off]\n"
    "                       the i440FX PC (pc-i440fx-* are aliases); -machine help lists it\n"
    "  -accel kvm, -enable-kvm\n"
    "                       KVM is the only accelerator\n"
    "  -cpu MODEL[,+feature][,-feature][,feature=on|off]\n"
    "                       CPU model name (default host); -cpu help lists the models\n"
    "  -m [size=]SIZE[,slots=N,maxmem=SIZE]\n"
    "                       guest RAM; a plain number is MiB, suffixes K M G T (default 128M)\n"
    "  -smp [cpus=]N[,maxcpus=M][,sockets=S][,cores=C][,threads=T]\n"
    "                       vCPUs at start and the hotpluggable maximum (at most 64)\n"
    "  -name [guest=]NAME[,debug-threads=on|off][,process=NAME]\n"
    "  -uuid UUID\n"
    "\n"
    "Boot (direct kernel boot, no firmware):\n"
    "  -kernel FILE         ELF (vmlinux) or bzImage to boot\n"
    "  -initrd FILE         initial ramdisk\n"
    "  -append CMDLINE      kernel command line\n"
    "  -boot ...            accepted; nothing to choose without firmware\n"
    "\n"
    "Character devices and monitors:\n"
    "  CHARDEV is stdio | null | pty | file:PATH | unix:PATH[,server=on|off][,wait=on|off]\n"
    "             | chardev:ID\n"
    "  -serial CHARDEV|mon:stdio|none\n"
    "                       the COM1 UART (default: none, or stdio with -nographic)\n"
    "  -monitor CHARDEV|none\n"
    "                       HMP monitor\n"
    "  -qmp CHARDEV, -qmp-pretty CHARDEV\n"
    "                       QMP monitor (pretty-printed JSON with -qmp-pretty)\n"
    "  -chardev socket,id=ID,path=PATH[,server=on|off][,wait=on|off]\n"
    "  -chardev file,id=ID,path=PATH | pty,id=ID | null,id=ID | stdio,id=ID[,mux=on|off]\n"
    "  -mon [chardev=]ID[,mode=control|readline][,pretty=on|off]\n"
    "  -nographic           serial port and HMP monitor multiplexed on stdio (Ctrl-a h)\n"
    "  -display none, -vga none\n"
    "                       there is no display\n"
    "  -nodefaults          no default serial port or monitor\n"
    "\n"
    "Devices (handled by the device layers, QEMU syntax):\n"
    "  -device DRIVER[,prop=value...]\n"
    "  -blockdev OPTIONS, -drive OPTIONS, -netdev OPTIONS\n"
    "  -net none\n"
    "\n"
    "Run control:\n"
    "  -S                   do not start the vCPUs (use cont)\n"
    "  -no-reboot           exit instead of rebooting\n"
    "  -no-shutdown         stop the VM instead of exiting when the guest powers off\n"
    "  -daemonize           detach once the VM is set up\n"
    "  -pidfile FILE        write and lock a PID file\n"
    "  -dump-acpi-tables DIR\n"
    "                       write the generated ACPI tables to DIR (debugging)\n"
    "\n"
    "Accepted for libvirt compatibility, without effect:\n"
    "  -no-user-config, -nodefconfig, -no-hpet, -rtc base=utc[,clock=..][,driftfix=..],\n"
    "  -msg timestamp=on|off, -overcommit mem-lock=off[,cpu-pm=off], -sandbox off,\n"
    "  -global kvm-pit.lost_tick_policy=delay, -global PIIX4_PM.disable_s3=1 (and s4)\n"
    "\n"
    "Information:\n"
    "  -version, --version  print the version\n"
    "  -h, -help, --help    print this help\n";

static int option_help(struct parse_state *state, const char *argument, struct pv_error *error)
{
    fputs(usage_text, state->output);
    *state->exit_early = true;
    return 0;
}

/* The option families, each a table in options/. -version and -help are here. */
static const struct option_handler information_options[] = {
    {"version", false, option_version},
    {"h", false, option_help},
    {"help", false, option_help},
    {NULL, false, NULL},
};

static const struct option_handler *const option_families[] = {
    machine_options, boot_options, chardev_options,     device_options,
    net_options,     misc_options, information_options,
};

static const struct option_handler *find_handler(const char *name)
{
    for (size_t f = 0; f < sizeof(option_families) / sizeof(option_families[0]); f++)
        for (const struct option_handler *handler = option_families[f]; handler->name; handler++)
            if (strcmp(handler->name, name) == 0)
                return handler;
    return NULL;
}

/* --- entry points ------------------------------------------------------------ */

static int set_defaults(struct vmm_config *config, struct pv_error *error)
{
    config->memory_bytes = DEFAULT_MEMORY_BYTES;
    config->cpus = config->max_cpus = 1;
    config->sockets = config->cores = config->threads = 1;
    int rc = option_set_string(&config->machine_type, "pc", error);
    if (rc == 0)
        rc = option_set_string(&config->cpu_model, "host", error);
    if (rc == 0)
        rc = option_set_string(&config->kernel_cmdline, "", error);
    return rc;
}

int vmm_config_parse_to(struct vmm_config *config, int argc, char **argv, bool *exit_early,
                        FILE *output, struct pv_error *error)
{
    memset(config, 0, sizeof(*config));
    *exit_early = false;
    struct parse_state state = {
        .config = config,
        .output = output,
        .exit_early = exit_early,
        .default_serial = true,
        .default_monitor = true,
    };
    int rc = set_defaults(config, error);
    if (rc < 0)
        return rc;
    for (int index = 1; index < argc; index++) {
        const char *word = argv[index];
        if (!word)
            return pv_error_set(error, -EINVAL, "argument %d is missing", index);
        if (word[0] != '-' || word[1] == '\0')
            return pv_error_set(error, -EINVAL,
                                "unexpected argument '%s' (disk images are given with -drive or "
                                "-blockdev)",
                                word);
        const char *name = word + (word[1] == '-' ? 2 : 1);
        const struct option_handler *handler = find_handler(name);
        if (!handler)
            return pv_error_set(error, -EINVAL, "unknown option '%s'", word);
        const char *argument = NULL;
        if (handler->has_argument) {
            if (index + 1 >= argc || !argv[index + 1])
                return pv_error_set(error, -EINVAL, "option '-%s' needs an argument",
                                    handler->name);
            argument = argv[++index];
        }
        rc = handler->handle(&state, argument, error);
        if (rc < 0)
            return pv_error_prefix(error, "-%s", handler->name);
        if (*exit_early)
            return 0;
    }
    rc = chardev_options_finish(&state, error);
    if (rc == 0)
        rc = net_options_finish(&state, error);
    return rc;
}

int vmm_config_parse(struct vmm_config *config, int argc, char **argv, bool *exit_early,
                     struct pv_error *error)
{
    return vmm_config_parse_to(config, argc, argv, exit_early, stdout, error);
}
