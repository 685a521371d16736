#!/bin/sh
# The man pages document exactly what the programs accept, in both
# directions:
#  (a) the options in `warrend --help` equal the .It Fl entries in the
#      OPTIONS section of warrend.8;
#  (b) the keys in keys.def (from the config_keys helper) equal the
#      .It Cm entries under the ".Ss [section]" headings of warren.conf.5,
#      and each entry states its key's default and range;
#  (c) etc/warren.conf lists every key, commented out, with its default,
#      and uncommenting those lines changes no setting.
# Prints what differs and exits 1 on any mismatch.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=.}"
LC_ALL=C
export LC_ALL

warrend=$top_builddir/src/warrend
keys=$top_builddir/tests/man/config_keys
page8=$top_srcdir/man/warrend.8
page5=$top_srcdir/man/warren.conf.5
sample=$top_srcdir/etc/warren.conf

tmp=$(mktemp -d "${TMPDIR:-/tmp}/warren-man.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0

# Print the lines of sorted files $1 and $2 that are only in one of them.
compare() { # name-of-$1 name-of-$2 file1 file2
	only1=$(comm -23 "$3" "$4")
	only2=$(comm -13 "$3" "$4")
	if [ -n "$only1" ]; then
		echo "in $1 but not in $2:"
		printf '%s\n' "$only1" | sed 's/^/    /'
		status=1
	fi
	if [ -n "$only2" ]; then
		echo "in $2 but not in $1:"
		printf '%s\n' "$only2" | sed 's/^/    /'
		status=1
	fi
}

# ---- (a) options ------------------------------------------------------
if ! "$warrend" --help >"$tmp/help"; then
	echo "$warrend --help failed"
	exit 1
fi
{
	grep -o -e '--[A-Za-z][A-Za-z0-9-]*' "$tmp/help"
	grep -o -e '^-[A-Za-z][ ,]' -e '[ ,]-[A-Za-z][ ,]' -e '[ ,]-[A-Za-z]$' "$tmp/help" |
		tr -d ' ,'
} | sort -u >"$tmp/help.flags"

# Each ".It Fl x ..., Fl \-long ..." line of OPTIONS; "\-" renders as "-".
awk '
	/^\.Sh / { in_opts = ($2 == "OPTIONS"); next }
	in_opts && /^\.It / {
		for (i = 2; i < NF; i++)
			if ($i == "Fl") {
				f = $(i + 1)
				gsub(/\\/, "", f)
				print "-" f
			}
	}
' "$page8" | sort -u >"$tmp/man.flags"
compare "warrend --help" "warrend.8 OPTIONS" "$tmp/help.flags" "$tmp/man.flags"

# ---- (b) configuration keys --------------------------------------------
if ! "$keys" >"$tmp/keys.raw" || ! "$keys" --table >"$tmp/table"; then
	echo "$keys failed"
	exit 1
fi
sort -u "$tmp/keys.raw" >"$tmp/keys"

# ".Ss [section]" sets the section; ".It Cm name" documents section.name.
# The body of each entry (up to the next .It/.El) is saved, joined into
# one line, for the default and range checks below.
awk -v dir="$tmp/entry" '
	/^\.Sh / { section = ""; key = ""; next }
	/^\.Ss \[[a-z_]+\]$/ { section = substr($2, 2, length($2) - 2); next }
	/^\.(It|El)/ { key = "" }
	section != "" && /^\.It Cm / {
		key = section "." $3
		print key
		next
	}
	key != "" { printf "%s ", $0 >> (dir "." key) }
' "$page5" | sort >"$tmp/man.keys.all"
dups=$(uniq -d "$tmp/man.keys.all")
if [ -n "$dups" ]; then
	echo "documented more than once in warren.conf.5:"
	printf '%s\n' "$dups" | sed 's/^/    /'
	status=1
fi
sort -u "$tmp/man.keys.all" >"$tmp/man.keys"
compare "keys.def" "warren.conf.5" "$tmp/keys" "$tmp/man.keys"

while IFS='|' read -r key def min max; do
	entry=$tmp/entry.$key
	[ -f "$entry" ] || continue
	if ! grep -q -F -e "$def" "$entry"; then
		echo "warren.conf.5: $key: default $def not stated"
		status=1
	fi
	if [ -n "$min$max" ] && ! grep -q -F -e "Range $min..$max" "$entry"; then
		echo "warren.conf.5: $key: range $min..$max not stated as 'Range $min..$max'"
		status=1
	fi
done <"$tmp/table"

# ---- (c) the sample file -----------------------------------------------
# Defaults are the lines "# key = value" (one blank after '#'); examples in
# the prose are indented further and do not count.
awk '
	/^\[[a-z_]+\]/ { section = substr($1, 2, length($1) - 2); next }
	/^# [a-z_]+ = / { print section "." $2 "|" substr($0, index($0, "=") + 2) }
' "$sample" | sort >"$tmp/sample.table"
cut -d'|' -f1 "$tmp/sample.table" | sort -u >"$tmp/sample.keys"
compare "keys.def" "etc/warren.conf" "$tmp/keys" "$tmp/sample.keys"
cut -d'|' -f1,2 "$tmp/table" | sort >"$tmp/table.defaults"
compare "keys.def defaults" "etc/warren.conf defaults" \
	"$tmp/table.defaults" "$tmp/sample.table"

sed -n 's/^# \([a-z_][a-z_]* = \)/\1/p; /^\[/p' "$sample" >"$tmp/uncommented.conf"
: >"$tmp/empty.conf"
if ! "$keys" --dump "$tmp/uncommented.conf" >"$tmp/dump.sample"; then
	echo "etc/warren.conf with its defaults uncommented does not load"
	status=1
elif ! "$keys" --dump "$tmp/empty.conf" >"$tmp/dump.defaults"; then
	echo "$keys --dump failed on an empty file"
	status=1
elif ! diff -u "$tmp/dump.defaults" "$tmp/dump.sample"; then
	echo "etc/warren.conf: uncommented defaults differ from the built-in ones"
	status=1
fi

exit $status
