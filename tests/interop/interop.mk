# Interop suite: real client libraries against a real warrend.  Not part of
# `make check` (it needs the clients from scripts/setup-deps and a built
# broker); scripts/test runs it as `tests/interop/run --broker PATH`.
# The cases directory ships whole, so new cases need no edit here.
EXTRA_DIST += \
	tests/interop/run \
	tests/interop/README \
	tests/interop/capture_golden.py \
	tests/interop/cases \
	tests/interop/node/package.json \
	tests/interop/node/.gitignore \
	tests/crash \
	examples

# Python bytecode caches are not sources.
dist-hook: dist-hook-interop
dist-hook-interop:
	find $(distdir)/tests $(distdir)/examples -name __pycache__ -prune -exec rm -rf {} +
.PHONY: dist-hook-interop
