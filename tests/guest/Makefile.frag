# The probe guest: freestanding, with its own compiler flags (tests/guest/build.sh holds
# them, so the standalone build and this one cannot drift). configure's sanitizer flags
# must never reach it, which is why it is not an automake program.
# Output: tests/guest/probe-guest.elf, installed as $(pkgdatadir)/probe-guest.elf.

probe_guest_inputs = \
	$(srcdir)/tests/guest/build.sh \
	$(srcdir)/tests/guest/probe-guest.ld \
	$(wildcard $(srcdir)/tests/guest/*.c) \
	$(wildcard $(srcdir)/tests/guest/*.S) \
	$(wildcard $(srcdir)/tests/guest/*.h)

tests/guest/probe-guest.elf: $(probe_guest_inputs)
	$(AM_V_GEN)CC="$(CC)" $(SHELL) $(srcdir)/tests/guest/build.sh tests/guest >/dev/null

pkgdata_DATA = tests/guest/probe-guest.elf
CLEANFILES = tests/guest/probe-guest.elf systemd/plugvirtd.service
clean-local: clean-probe-guest
clean-probe-guest:
	-rm -rf tests/guest/obj
.PHONY: clean-probe-guest

EXTRA_DIST += tests/guest/README tests/guest/build.sh tests/guest/probe-guest.ld \
	tests/guest/Makefile.frag $(wildcard $(srcdir)/tests/guest/*.c) \
	$(wildcard $(srcdir)/tests/guest/*.S) $(wildcard $(srcdir)/tests/guest/*.h) \
	$(wildcard $(srcdir)/tests/guest/*.py)
