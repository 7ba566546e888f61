/* The daemon's end of a domain's serial port 0 (issue 9, defect 3).
 *
 * The VMM's serial chardev is always a unix socket server in the run directory
 * (run-dir/domains/<name>/serial.sock, daemon/vmm_argv.h) and the daemon is its one client.
 * The VMM itself appends everything the guest writes to the daemon's own log,
 * run-dir/domains/<name>/serial.log (chardev logfile=, logappend=on; truncated here at start),
 * so the log has no gap while the daemon is down. Everything the guest writes is read here
 * and
 *  - passed on to the backend the user chose in <serial>/<console target type='serial'>:
 *      file  the daemon appends to <source path> (truncated at start unless append='on');
 *      pty   the daemon opens a pty pair, keeps the guest on the master and reports the
 *            slave, /dev/pts/N, in the live XML (<source path=>, as libvirt does);
 *      unix  mode='bind': the daemon listens on <source path> (one client at a time, like
 *            QEMU's server socket); mode='connect' (libvirt's default): the daemon connects
 *            to <source path> at start (start fails when nobody listens);
 *      null  nowhere but serial.log;
 *      no <serial>: as null (the guest still has serial port 0, for the log and consoles);
 *  - passed to the console session (pvsh console, API method domain.console), if any.
 * Bytes from the user's backend (pty, unix peer) and from the console session go to the
 * guest. A peer that does not read its output loses it beyond a bound (the guest never
 * waits for a slow reader).
 *
 * Across a daemon restart the VMM keeps running (and logging): the next daemon reconnects to
 * serial.sock, appends to the user's file, and recreates the user's pty (a new path, in the
 * live XML) or unix socket; what the guest writes while no daemon runs reaches serial.log
 * only. */
#ifndef PLUGVIRT_CONSOLE_H
#define PLUGVIRT_CONSOLE_H

#include <stdbool.h>

#include "domain.h"
#include "pv_error.h"

struct event_base;
struct bufferevent;
struct console;

/* Truncates serial.log (a new start) and opens the user's backend for `live` (run-dir/domains/<name> is
 * `directory`), and writes a pty's path into `live`. `restored`: the VMM is already running
 * (daemon restart): files are appended to, never truncated. NULL with the reason. */
struct console *console_create(struct event_base *base, const char *name, const char *directory,
                               struct domain_definition *live, bool restored,
                               struct pv_error *error);
/* Connects to the VMM's serial socket (once its QMP answers: the socket exists by then). */
int console_connect_vmm(struct console *console, struct pv_error *error);
/* Closes everything: the console session sees end of file. NULL is fine. */
void console_free(struct console *console);

/* The domain's name. */
const char *console_domain_name(const struct console *console);
/* True while a console session is attached. */
bool console_busy(const struct console *console);
/* Makes `client` (an API connection whose JSON reply is already queued in its output; bytes
 * already in its input are the first keystrokes) the console session: from now on its input
 * goes to the guest and the guest's output to it. With `force`, an attached session is
 * closed first; without, -EBUSY. The console owns `client` afterwards, also on error. */
int console_attach_client(struct console *console, struct bufferevent *client, bool force,
                          struct pv_error *error);

#endif
