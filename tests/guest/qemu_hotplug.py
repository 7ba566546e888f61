#!/usr/bin/env python3
"""Checks the probe guest's PCI, ACPI PCI hotplug and virtio-blk contract against stock QEMU.

Usage: qemu_hotplug.py [probe-guest.elf] [--accel tcg|kvm] [--cycles N] [--only SCENARIO ...]
Scenarios (each boots a fresh QEMU): hotplug, ignore, delay, evil.
Exit status 0 when every check passed. Development aid, like qemu_smoke.py; the
plugvirt-vmm end-to-end tests live in tests/integration/.
"""
import argparse, json, os, re, select, shutil, socket, statistics, subprocess, sys, tempfile
import time

SECTOR = 512
DISK_BYTES = 64 << 20
ADD_BLK = re.compile(r"^PROBE PCI ADD (\S+) 1af4:(1001|1042) virtio-blk sectors=(\d+) serial=(.*)$")


def fnv1a(data):
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


class Qmp:
    """A QMP connection that keeps asynchronous events for wait_event."""

    def __init__(self, path, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.socket = socket.socket(socket.AF_UNIX)
                self.socket.connect(path)
                break
            except OSError:
                self.socket.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.buffer = b""
        self.events = []
        self._read_message(timeout)  # greeting
        self.execute("qmp_capabilities")

    def _read_message(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.socket], [], [], left)
            if ready:
                data = self.socket.recv(65536)
                if not data:
                    return None
                self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, arguments=None, timeout=10):
        message = {"execute": command}
        if arguments is not None:
            message["arguments"] = arguments
        self.socket.sendall(json.dumps(message).encode() + b"\n")
        while True:
            reply = self._read_message(timeout)
            if reply is None:
                raise RuntimeError(f"no QMP answer to {command}")
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{command}: {reply['error']}")
            return reply.get("return")

    def wait_event(self, name, timeout, device=None):
        def matches(event):
            return event["event"] == name and (
                device is None or event.get("data", {}).get("device") == device)
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if matches(event):
                    self.events.remove(event)
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            message = self._read_message(left)
            if message is None:
                return None
            if "event" in message:
                self.events.append(message)

    def close(self):
        self.socket.close()


class Guest:
    def __init__(self, elf, accel, directory, append="", extra=()):
        self.qmp_path = os.path.join(directory, f"qmp-{time.monotonic_ns()}.sock")
        command = ["qemu-system-x86_64", "-machine", "pc", "-accel", accel, "-m", "128",
                   "-smp", "2", "-display", "none", "-no-reboot", "-serial", "stdio",
                   "-qmp", f"unix:{self.qmp_path},server=on,wait=off", "-kernel", elf,
                   "-append", append, *extra]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        self.buffer = b""
        self.console = b""
        self.lines = []  # every complete line, in order
        self.qmp = None

    def connect(self):
        self.qmp = Qmp(self.qmp_path)

    def _pump(self, timeout):
        ready, _, _ = select.select([self.process.stdout], [], [], max(timeout, 0))
        if not ready:
            return True
        data = os.read(self.process.stdout.fileno(), 65536)
        if not data:
            return False
        self.buffer += data
        self.console += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.lines.append(line.decode(errors="replace").strip())
        return True

    def read_line(self, prefix, timeout):
        """The next console line starting with prefix (earlier other lines are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            while self.lines:
                line = self.lines.pop(0)
                if line.startswith(prefix):
                    return line
            left = deadline - time.monotonic()
            if left <= 0 or not self._pump(left):
                return None

    def lines_for(self, seconds):
        """Every line that arrives within the next `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self._pump(deadline - time.monotonic()):
            pass
        lines, self.lines = self.lines, []
        return lines

    def send(self, line):
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def command(self, line, prefix="PROBE", timeout=10):
        self.send(line)
        return self.read_line(prefix, timeout)

    def close(self):
        if self.qmp:
            self.qmp.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.stderr = self.process.stderr.read().decode(errors="replace")


class Checker:
    def __init__(self):
        self.failures = 0

    def check(self, what, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + str(detail) if detail != '' else ''}")
        if not ok:
            self.failures += 1
        return ok


def disk_image(directory, name):
    path = os.path.join(directory, name)
    with open(path, "wb") as image:
        image.truncate(DISK_BYTES)
    return path


def hot_add(guest, path, node, device_id, serial):
    guest.qmp.execute("blockdev-add", {"driver": "raw", "node-name": node,
                                       "file": {"driver": "file", "filename": path}})
    started = time.monotonic()
    guest.qmp.execute("device_add", {"driver": "virtio-blk-pci", "drive": node, "id": device_id,
                                     "serial": serial})
    line = guest.read_line("PROBE PCI ADD", 20)
    return line, time.monotonic() - started


def hot_remove(guest, device_id, node, expect_eject=True):
    started = time.monotonic()
    guest.qmp.execute("device_del", {"id": device_id})
    eject = guest.read_line("PROBE PCI EJECT", 20) if expect_eject else None
    eject_time = time.monotonic() - started
    event = guest.qmp.wait_event("DEVICE_DELETED", 20, device=device_id)
    if event:
        blockdev_del(guest, node)
    return eject, event, eject_time


def blockdev_del(guest, node, timeout=5):
    # QEMU drops the device's last reference to the node a little after
    # DEVICE_DELETED (RCU), so "is in use" can briefly follow the event.
    deadline = time.monotonic() + timeout
    while True:
        try:
            return guest.qmp.execute("blockdev-del", {"node-name": node})
        except RuntimeError as error:
            if "in use" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def check_data(c, guest, bdf, path, lba, byte, what):
    line = guest.command(f"blk-write {bdf} {lba} {byte:#x}")
    c.check(f"{what}: blk-write", line == f"PROBE BLK WRITE {bdf} lba={lba} ok", line)
    with open(path, "rb") as image:
        image.seek(lba * SECTOR)
        on_disk = image.read(SECTOR)
    c.check(f"{what}: host file holds the sector", on_disk == bytes([byte]) * SECTOR)
    count = 3
    with open(path, "rb") as image:
        image.seek(lba * SECTOR)
        expected = fnv1a(image.read(count * SECTOR))
    line = guest.command(f"blk-read {bdf} {lba} {count}")
    c.check(f"{what}: blk-read checksum", line ==
            f"PROBE BLK READ {bdf} lba={lba} count={count} sum=0x{expected:08x}", line)


def boot(c, guest, what):
    started = time.monotonic()
    ready = guest.read_line("PROBE READY", 90)
    c.check(f"{what}: boot", ready is not None, f"{ready} after {time.monotonic() - started:.2f} s")
    guest.connect()
    return ready is not None


def scenario_hotplug(c, elf, accel, directory, cycles):
    cold_path = disk_image(directory, "cold.img")
    with open(cold_path, "r+b") as image:  # recognisable content for a read check
        image.seek(7 * SECTOR)
        image.write(bytes(range(256)) * 6)
    guest = Guest(elf, accel, directory, extra=[
        "-blockdev", f"driver=raw,node-name=d0,file.driver=file,file.filename={cold_path}",
        "-device", "virtio-blk-pci,drive=d0,id=vd0,serial=COLD0"])
    add_times = []
    try:
        boot_started = time.monotonic()
        cold = guest.read_line("PROBE PCI ADD 00:04.0", 90)
        match = cold and ADD_BLK.match(cold)
        c.check("cold disk reported at boot", bool(match) and match.group(3) == "131072" and
                match.group(4) == "COLD0", cold)
        if not boot(c, guest, "hotplug"):
            return
        print(f"     boot to READY: {time.monotonic() - boot_started:.2f} s")
        cold_bdf = match.group(1) if match else "00:04.0"
        listing = []
        guest.send("pci")
        while True:
            line = guest.read_line("PROBE PCI", 10)
            listing.append(line)
            if line is None or line == "PROBE PCI END":
                break
        c.check("pci lists the cold disk", f"PROBE PCI {cold_bdf} 1af4:1001" in listing, listing)
        check_data(c, guest, cold_bdf, cold_path, 7, 0x3c, "cold disk")
        line = guest.command(f"blk-read {cold_bdf} 131072 1")
        c.check("read past the end → IOERR", line == f"PROBE BLK ERROR {cold_bdf} IOERR", line)
        line = guest.command(f"blk-flush {cold_bdf}")
        c.check("flush", line == f"PROBE BLK FLUSH {cold_bdf} ok", line)
        line = guest.command("blk-read 00:1f.0 0 1")
        c.check("no such device", line == "PROBE BLK ERROR 00:1f.0 no such device", line)

        hot_path = disk_image(directory, "hot.img")
        line, seconds = hot_add(guest, hot_path, "d1", "vd1", "S1")
        add_times.append(seconds)
        match = line and ADD_BLK.match(line)
        c.check("hot-added disk reported", bool(match) and match.group(3) == "131072" and
                match.group(4) == "S1", f"{line} ({seconds * 1000:.0f} ms after device_add)")
        if match:
            bdf = match.group(1)
            check_data(c, guest, bdf, hot_path, 100, 0xa7, "hot disk")
            eject, event, seconds = hot_remove(guest, "vd1", "d1")
            c.check("hot disk ejected", eject == f"PROBE PCI EJECT {bdf}",
                    f"{eject} ({seconds * 1000:.0f} ms after device_del)")
            c.check("DEVICE_DELETED vd1", event is not None)
            line = guest.command(f"blk-read {bdf} 0 1")
            c.check("ejected disk is gone", line == f"PROBE BLK ERROR {bdf} no such device", line)

        eject, event, _ = hot_remove(guest, "vd0", "d0")
        c.check("cold disk ejected", eject == f"PROBE PCI EJECT {cold_bdf}", eject)
        c.check("DEVICE_DELETED vd0", event is not None)

        ok_cycles = 0
        for cycle in range(cycles):
            path = disk_image(directory, f"cycle{cycle % 2}.img")
            line, seconds = hot_add(guest, path, f"c{cycle}", f"vc{cycle}", f"CYC{cycle}")
            add_times.append(seconds)
            match = line and ADD_BLK.match(line)
            if not (match and match.group(4) == f"CYC{cycle}"):
                c.check(f"cycle {cycle}: add", False, line)
                break
            bdf = match.group(1)
            line = guest.command(f"blk-write {bdf} {cycle} {cycle}")
            if line != f"PROBE BLK WRITE {bdf} lba={cycle} ok":
                c.check(f"cycle {cycle}: write", False, line)
                break
            eject, event, _ = hot_remove(guest, f"vc{cycle}", f"c{cycle}")
            if eject != f"PROBE PCI EJECT {bdf}" or event is None:
                c.check(f"cycle {cycle}: remove", False, f"{eject} {event}")
                break
            ok_cycles += 1
        c.check(f"{cycles} add/write/del cycles", ok_cycles == cycles, ok_cycles)
        c.check("guest still answers", guest.command("ping") == "PROBE PONG")
        warnings = [line for line in guest.console.decode(errors="replace").splitlines()
                    if "WARN" in line or "FAULT" in line]
        c.check("no WARN/FAULT lines", not warnings, warnings)
        if add_times:
            print(f"     device_add → PROBE PCI ADD: median {statistics.median(add_times) * 1000:.0f}"
                  f" ms, min {min(add_times) * 1000:.0f} ms, max {max(add_times) * 1000:.0f} ms"
                  f" over {len(add_times)} adds")
    finally:
        guest.close()
        if c.failures:
            print("console:\n" + guest.console.decode(errors="replace") + "\nstderr:\n" +
                  guest.stderr)


def scenario_ignore(c, elf, accel, directory):
    guest = Guest(elf, accel, directory, append="probe.unplug=ignore")
    try:
        if not boot(c, guest, "ignore"):
            return
        line, _ = hot_add(guest, disk_image(directory, "ignore.img"), "d1", "vd1", "IGN")
        match = line and ADD_BLK.match(line)
        c.check("ignore: disk added", bool(match), line)
        bdf = match.group(1) if match else "?"
        guest.qmp.execute("device_del", {"id": "vd1"})
        line = guest.read_line("PROBE PCI", 10)
        c.check("ignore: UNPLUG-IGNORED", line == f"PROBE PCI UNPLUG-IGNORED {bdf}", line)
        event = guest.qmp.wait_event("DEVICE_DELETED", 3, device="vd1")
        c.check("ignore: no DEVICE_DELETED within 3 s", event is None, event)
        line = guest.command(f"blk-read {bdf} 0 1")
        c.check("ignore: disk still works", line is not None and line.startswith(
            f"PROBE BLK READ {bdf} lba=0 count=1"), line)
        # A second request re-raises the event; the guest says nothing more.
        guest.qmp.execute("device_del", {"id": "vd1"})
        extra = [line for line in guest.lines_for(1) if line.startswith("PROBE")]
        c.check("ignore: repeated device_del stays quiet", not extra, extra)
    finally:
        guest.close()
        if c.failures:
            print("console:\n" + guest.console.decode(errors="replace"))


def scenario_delay(c, elf, accel, directory):
    delay_ms = 700
    guest = Guest(elf, accel, directory, append=f"probe.unplug=delay:{delay_ms}")
    try:
        if not boot(c, guest, "delay"):
            return
        line, _ = hot_add(guest, disk_image(directory, "delay.img"), "d1", "vd1", "DLY")
        match = line and ADD_BLK.match(line)
        c.check("delay: disk added", bool(match), line)
        bdf = match.group(1) if match else "?"
        started = time.monotonic()
        guest.qmp.execute("device_del", {"id": "vd1"})
        time.sleep(0.1)
        pong = guest.command("ping")
        c.check("delay: guest answers during the delay", pong == "PROBE PONG" and
                time.monotonic() - started < delay_ms / 1000, pong)
        eject = guest.read_line("PROBE PCI EJECT", 10)
        seconds = time.monotonic() - started
        c.check("delay: EJECT after the delay", eject == f"PROBE PCI EJECT {bdf}" and
                delay_ms / 1000 <= seconds < delay_ms / 1000 + 1.5, f"{eject} after {seconds:.3f} s")
        event = guest.qmp.wait_event("DEVICE_DELETED", 5, device="vd1")
        c.check("delay: DEVICE_DELETED", event is not None)
    finally:
        guest.close()
        if c.failures:
            print("console:\n" + guest.console.decode(errors="replace"))


def scenario_evil(c, elf, accel, directory):
    path = disk_image(directory, "evil.img")
    guest = Guest(elf, accel, directory, append="probe.virtio=evil", extra=[
        "-blockdev", f"driver=raw,node-name=d0,file.driver=file,file.filename={path}",
        "-device", "virtio-blk-pci,drive=d0,id=vd0,serial=EVIL"])
    try:
        add = guest.read_line("PROBE PCI ADD 00:04.0", 90)
        c.check("evil: cold disk added", bool(add and ADD_BLK.match(add)), add)
        sent = guest.read_line("PROBE EVIL", 10)
        c.check("evil: requests sent", sent == "PROBE EVIL 00:04.0 sent", sent)
        started = time.monotonic()
        outcome = guest.read_line("PROBE", 10)
        seconds = time.monotonic() - started
        c.check("evil: QEMU does not answer, guest times out after 2 s",
                outcome == "PROBE BLK ERROR 00:04.0 timeout" and 1.5 < seconds < 4,
                f"{outcome} after {seconds:.2f} s")
        # QEMU's virtio_error() sets NEEDS_RESET in device_status.
        line = guest.read_line("PROBE", 5)
        c.check("evil: QEMU marked the device NEEDS_RESET",
                line == "PROBE BLK ERROR 00:04.0 needs reset", line)
        if not boot(c, guest, "evil"):
            return
        c.check("evil: QEMU still running", guest.process.poll() is None)
        c.check("evil: guest answers", guest.command("ping") == "PROBE PONG")
        line = guest.command("blk-read 00:04.0 0 1")
        c.check("evil: disk reported broken", line is not None and
                line.startswith("PROBE BLK ERROR 00:04.0 "), line)
        line, _ = hot_add(guest, disk_image(directory, "evil2.img"), "d1", "vd1", "EVIL2")
        c.check("evil: hot-added disk gets the same treatment", bool(line and ADD_BLK.match(line))
                and guest.read_line("PROBE EVIL", 10) is not None, line)
        eject, event, _ = hot_remove(guest, "vd0", "d0")
        c.check("evil: broken disk can still be ejected", eject == "PROBE PCI EJECT 00:04.0" and
                event is not None, eject)
    finally:
        guest.close()
        if c.failures:
            print("console:\n" + guest.console.decode(errors="replace") + "\nstderr:\n" +
                  guest.stderr)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("elf", nargs="?",
                        default=os.path.join(os.path.dirname(__file__), "probe-guest.elf"))
    parser.add_argument("--accel", default="tcg")
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--only", nargs="*", default=["hotplug", "ignore", "delay", "evil"])
    options = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="probe-hotplug-")
    c = Checker()
    try:
        if "hotplug" in options.only:
            scenario_hotplug(c, options.elf, options.accel, directory, options.cycles)
        if "ignore" in options.only:
            scenario_ignore(c, options.elf, options.accel, directory)
        if "delay" in options.only:
            scenario_delay(c, options.elf, options.accel, directory)
        if "evil" in options.only:
            scenario_evil(c, options.elf, options.accel, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print("all checks passed" if not c.failures else f"{c.failures} check(s) failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
