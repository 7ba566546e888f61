/* The QEMU version we tell clients we are (query-version, the QMP greeting, HMP's
 * `info version`). Its own header so HMP does not depend on the QMP dispatcher,
 * which runs HMP commands for human-monitor-command. */
#ifndef PLUGVIRT_QMP_VERSION_H
#define PLUGVIRT_QMP_VERSION_H

/* What we tell clients we are (query-version, the QMP greeting, HMP). */
#define QMP_QEMU_VERSION_MAJOR 8
#define QMP_QEMU_VERSION_MINOR 2
#define QMP_QEMU_VERSION_MICRO 0
#ifndef PLUGVIRT_VERSION
#define PLUGVIRT_VERSION "0.1.0"
#endif
#define QMP_PACKAGE "plugvirt-vmm " PLUGVIRT_VERSION

#endif
