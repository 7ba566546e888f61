/* The host side of a chardev: the descriptors each kind opens (stdio, file,
 * unix socket server and client, pty). chardev.c runs the event loop side. */
#ifndef PLUGVIRT_CHARDEV_HOST_H
#define PLUGVIRT_CHARDEV_HOST_H

#include <stdbool.h>
#include <sys/types.h>

#include "pv_error.h"
#include "vmm_config.h"

struct chardev_host {
    /* input_fd == output_fd for sockets and ptys. */
    int input_fd;  /* -1: no input */
    int output_fd; /* -1: output is discarded */
    bool input_fd_owned, output_fd_owned;
    bool input_is_socket, output_is_socket; /* use recv/send with per-call flags */
    bool input_pollable, output_pollable;   /* regular files cannot be polled */
    bool input_eof;

    int listen_fd; /* UNIX_SERVER: listening, the caller accepts */
    char *socket_path;
    dev_t socket_device;
    ino_t socket_inode;

    bool owns_stdio;
    char pty_path[64];
};

/* No descriptors: everything -1 or empty. */
void chardev_host_init(struct chardev_host *host);
/* Opens what `spec` describes; `label` names a pty in its "char device
 * redirected" line. On error the caller still calls chardev_host_close. */
int chardev_host_open(struct chardev_host *host, const struct chardev_spec *spec, const char *label,
                      struct pv_error *error);
/* Closes the listening socket (removing it if it is still ours) and gives stdio
 * back. The input and output descriptors are the caller's to close. */
void chardev_host_close(struct chardev_host *host);

/* Restores terminal settings changed for stdio (raw mode); safe to call twice. */
void chardev_restore_terminals(void);

#endif
