#!/usr/bin/env python3
"""Boots the probe guest under stock QEMU and checks the serial contract.

Usage: qemu_smoke.py [probe-guest.elf] [--accel tcg|kvm] [--memory MiB] [--smp N]
Exit status 0 when every check passed. Development aid; the real end-to-end
tests live in tests/integration/.
"""
import argparse, json, os, select, socket, subprocess, sys, tempfile, time


class Guest:
    def __init__(self, elf, accel, memory, smp, append):
        self.directory = tempfile.mkdtemp(prefix="probe-smoke-")
        self.qmp_path = os.path.join(self.directory, "qmp.sock")
        command = ["qemu-system-x86_64", "-machine", "pc", "-accel", accel, "-m", str(memory),
                   "-smp", str(smp), "-display", "none", "-no-reboot", "-serial", "stdio",
                   "-qmp", f"unix:{self.qmp_path},server=on,wait=off", "-kernel", elf]
        if append:
            command += ["-append", append]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        self.buffer = b""
        self.console = b""

    def read_line(self, prefix, timeout):
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                text = line.decode(errors="replace").strip()
                if text.startswith(prefix):
                    return text
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.process.stdout], [], [], left)
            if ready:
                data = os.read(self.process.stdout.fileno(), 4096)
                if not data:
                    return None
                self.buffer += data
                self.console += data

    def send(self, line):
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def qmp(self, command):
        client = socket.socket(socket.AF_UNIX)
        client.connect(self.qmp_path)
        stream = client.makefile("rw")
        stream.readline()
        for message in ({"execute": "qmp_capabilities"}, {"execute": command}):
            stream.write(json.dumps(message) + "\n")
            stream.flush()
            stream.readline()
        client.close()

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("elf", nargs="?",
                        default=os.path.join(os.path.dirname(__file__), "probe-guest.elf"))
    parser.add_argument("--accel", default="tcg")
    parser.add_argument("--memory", type=int, default=128)
    parser.add_argument("--smp", type=int, default=2)
    parser.add_argument("--append", default="probe.unplug=delay:100 probe.virtio=evil x=y")
    options = parser.parse_args()
    guest = Guest(options.elf, options.accel, options.memory, options.smp, options.append)
    failures = 0

    def check(what, got, expected):
        nonlocal failures
        ok = got == expected if not callable(expected) else expected(got)
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {got!r}")
        failures += 0 if ok else 1

    try:
        start = time.monotonic()
        boot = guest.read_line("PROBE BOOT", 60)
        booted = time.monotonic()
        ready = guest.read_line("PROBE READY", 60)
        print(f"     {boot}")
        print(f"     QEMU start to PROBE BOOT: {booted - start:.3f} s, "
              f"PROBE BOOT to READY: {time.monotonic() - booted:.3f} s")
        check("ready", ready, f"PROBE READY cpus={options.smp} mem={options.memory}")
        guest.send("ping")
        check("ping", guest.read_line("PROBE", 10), "PROBE PONG")
        guest.send("cpus")
        check("cpus", guest.read_line("PROBE", 10), f"PROBE CPUS {options.smp}")
        guest.send("no-such-command")
        check("unknown", guest.read_line("PROBE", 10), "PROBE ERROR unknown command: no-such-command")
        guest.send("mem-test 64")
        check("mem-test", guest.read_line("PROBE", 120), "PROBE MEMTEST ok")
        guest.send(f"mem-test {options.memory * 4}")
        check("mem-test too large", guest.read_line("PROBE", 10),
              lambda line: line is not None and line.startswith("PROBE ERROR mem-test:"))
        guest.send("mem-test abc")
        check("mem-test junk", guest.read_line("PROBE", 10),
              lambda line: line is not None and line.startswith("PROBE ERROR mem-test:"))
        guest.send("ping")
        check("ping after mem-test", guest.read_line("PROBE", 10), "PROBE PONG")
        guest.qmp("system_powerdown")
        check("powerdown", guest.read_line("PROBE", 10), "PROBE POWEROFF")
        try:
            guest.process.wait(10)
        except subprocess.TimeoutExpired:
            pass
        check("qemu exited", guest.process.poll(), 0)
    finally:
        guest.close()
        stderr = guest.process.stderr.read().decode(errors="replace")
        if failures:
            print("console:\n" + guest.console.decode(errors="replace") + "\nstderr:\n" + stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
