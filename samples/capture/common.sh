#!/bin/bash
# Shared helpers for the tracetool sample capture recipes.
# Source this file from the individual capture_*.sh scripts (run as root).
set -u

T=/sys/kernel/tracing
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SAMPLES=$(cd "$HERE/.." && pwd)
FT_OUT=$SAMPLES/ftrace
TC_OUT=$SAMPLES/trace-cmd
RAW=${RAW:-/tmp/tt-raw}          # untrimmed captures (NOT part of the project)
SCRATCH=${SCRATCH:-/tmp/tt-scratch}
# Default (expanded) per-CPU buffer size of this kernel. Before the first use
# buffer_size_kb reads "7 (expanded: 1408)"; the unexpanded state cannot be
# re-created from userspace, so we restore the expanded default.
DEFAULT_BUF_KB=${DEFAULT_BUF_KB:-1408}
mkdir -p "$FT_OUT" "$TC_OUT" "$RAW" "$SCRATCH"

ensure_tracefs() {
    [ -e $T/trace ] || mount -t tracefs nodev $T
}

# Put tracefs back into its default state.
tt_restore() {
    echo 0 > $T/tracing_on
    echo nop > $T/current_tracer
    echo 0 > $T/events/enable
    echo > $T/set_event_pid 2>/dev/null
    # clear any event filters we may have set
    for f in $T/events/uprobes/*/filter; do [ -e "$f" ] && echo 0 > "$f"; done 2>/dev/null
    for o in irq-info norecord-tgid nostacktrace nouserstacktrace nosym-offset \
             nosym-addr nosym-userobj overwrite context-info noevent-fork \
             nolatency-format noraw nohex nobin record-cmd print-parent markers; do
        echo $o > $T/trace_options
    done
    echo local > $T/trace_clock
    printf '%x\n' $(( (1 << $(nproc --all)) - 1 )) > $T/tracing_cpumask
    # remove instances
    for d in $T/instances/*/; do
        [ -d "$d" ] || continue
        echo 0 > "$d/tracing_on"; echo 0 > "$d/events/enable"
        rmdir "$d"
    done
    # uprobes: events are disabled above, now delete the definitions
    echo > $T/uprobe_events
    echo $DEFAULT_BUF_KB > $T/buffer_size_kb
    echo > $T/trace
}

# Small, deterministic-ish workload generating block I/O, wakeups, timers, IRQs.
workload() {
    dd if=/dev/urandom of=$SCRATCH/dd.bin bs=64k count=${1:-16} conv=fsync status=none
    sync
    cat $SCRATCH/dd.bin > /dev/null
    sleep 0.05
    sync
}

# trim.py wrapper: trim RAW file into project file
trim() { python3 "$HERE/trim.py" "$@"; }
