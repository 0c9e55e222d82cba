#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make demo: the vmsplice-move command handing memory from one process to
# another, first by moving (4 KiB pages, then THPs), then by copying, with
# the summaries of both sides.
#
#   demo.sh VMSPLICE_MOVE_BINARY [SIZE_MIB]
set -u
vsm=${1:?usage: demo.sh VMSPLICE_MOVE_BINARY [SIZE_MIB]}
mib=${2:-256}
sock=/tmp/vsm-demo.$$.sock
out=$(mktemp -d)
trap 'rm -rf "$out" "$sock"' EXIT
rc=0

echo "vmsplice-move demo: $mib MiB from one process to another"
echo
echo "\$ vmsplice-move probe"
"$vsm" probe || rc=1

handoff() {	# LABEL SEND-ARGS...
	label=$1
	shift
	echo
	echo "== $label"
	echo "\$ vmsplice-move recv $sock &"
	echo "\$ vmsplice-move send -s ${mib}M $* $sock"
	"$vsm" recv -q -t 120 "$sock" > "$out/recv" 2>&1 &
	rpid=$!
	"$vsm" send -q -t 120 -s "${mib}M" "$@" "$sock" > "$out/send" 2>&1 || rc=1
	wait "$rpid" || rc=1
	sed 's/^/  sender:   /' "$out/send"
	sed 's/^/  receiver: /' "$out/recv"
}

handoff "move, 4 KiB pages"
handoff "move, 4 KiB pages, through one pipe: the two sides take turns" --pipes 1
handoff "move, transparent huge pages" --huge
handoff "copy (SPLICE_F_GIFT only): what every kernel does" --copy
exit $rc
