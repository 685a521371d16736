#!/bin/sh
# Lint the man pages: mandoc must print nothing at warning level, and groff
# (when installed) must render them without warnings.  Exit 77 (skip) when
# mandoc is not installed.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"

if ! command -v mandoc >/dev/null 2>&1; then
	echo "mandoc not installed: skipping"
	exit 77
fi

status=0
for page in "$top_srcdir"/man/*.[0-9]; do
	out=$(mandoc -T lint -W warning "$page" 2>&1)
	if [ -n "$out" ]; then
		printf '%s\n' "$out"
		status=1
	fi
	if command -v groff >/dev/null 2>&1; then
		out=$(groff -mandoc -ww -z "$page" 2>&1)
		if [ -n "$out" ]; then
			printf '%s: groff: %s\n' "$page" "$out"
			status=1
		fi
	fi
done
exit $status
