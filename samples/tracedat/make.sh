#!/bin/bash
# Capture the trace.dat samples of this directory (run as root; see README.md).
#
# `trace-cmd record` is refused on the capture machine ("Can't enable ftrace"), so each
# sample enables events through tracefs, runs a workload, and pulls the ring buffer
# with `trace-cmd extract`. To keep the files small, extract runs in a private mount
# namespace where /proc/kallsyms is a few hundred symbols and the event systems not
# traced are empty directories (trace-cmd stores the format of every event it sees).
set -eu
. "$(dirname "$0")/../capture/common.sh"
ensure_tracefs
command -v trace-cmd > /dev/null || { echo "apt-get install -y trace-cmd" >&2; exit 1; }
OUT=$SAMPLES/tracedat
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

SYSTEMS="sched irq block syscalls timer iommu dma lock ftrace"
EVENTS="sched:sched_switch sched:sched_wakeup sched:sched_waking sched:sched_process_fork
sched:sched_process_exec sched:sched_process_exit irq:irq_handler_entry irq:irq_handler_exit
irq:softirq_entry irq:softirq_exit irq:softirq_raise block:block_rq_issue block:block_rq_insert
block:block_rq_complete syscalls:sys_enter_openat syscalls:sys_exit_openat timer:timer_start
timer:timer_expire_entry timer:timer_expire_exit timer:hrtimer_start timer:hrtimer_expire_entry
timer:hrtimer_expire_exit timer:hrtimer_cancel lock:contention_begin lock:contention_end"

# Symbols the events of these samples point at (timer functions, the marker's ip).
grep -E ' [Tt] (tracing_mark|hrtimer_|tick_|it_real_fn|process_timeout|delayed_work_timer_fn|sched_|irq_|rcu_|watchdog|.*_timer_fn|.*_timeout$)' \
    /proc/kallsyms | grep -v '\[' > "$WORK/kallsyms"
mkdir -p "$WORK/empty"

# extract ARGS...: trace-cmd extract with the reduced kallsyms and event systems.
extract() {
    local binds="mount --bind $WORK/kallsyms /proc/kallsyms"
    for d in $T/events/*/; do
        local s; s=$(basename "$d")
        case " $SYSTEMS " in *" $s "*) ;; *) binds="$binds && mount --bind $WORK/empty $d" ;; esac
    done
    unshare -m sh -c "$binds && trace-cmd extract $*" > "$WORK/extract.log" 2>&1 \
        || { cat "$WORK/extract.log" >&2; exit 1; }
}

start() {  # start BUFFER_KB [EVENTS...]
    tt_restore
    echo "$1" > $T/buffer_size_kb
    shift
    for e in "$@"; do echo "$e" >> $T/set_event; done
    echo 1 > $T/tracing_on
}

load() {
    echo "tt: trace.dat sample begins" > $T/trace_marker
    dd if=/dev/urandom of=$SCRATCH/dd.bin bs=4k count=32 oflag=direct status=none
    cat /etc/hostname /etc/os-release > /dev/null
    sleep 0.02
    printf 'tt: marker with "quotes", tabs\tand a long tail %0100d\n' 7 > $T/trace_marker
    sync
    echo "tt: trace.dat sample ends" > $T/trace_marker
    echo 0 > $T/tracing_on
}

# extract always writes its default (v7, zstd when available); `trace-cmd convert`
# rewrites a capture as v6 (never compressed) or v7 with or without compression.
convert() {  # convert FROM TO VERSION COMPRESSION
    trace-cmd convert -i "$1" -o "$2" --file-version "$3" --compression "$4" \
        > "$WORK/convert.log" 2>&1 || { cat "$WORK/convert.log" >&2; exit 1; }
}

# One capture of every event group, as v7 uncompressed, v7 zstd and v6.
start 64 $EVENTS; load; extract -o "$WORK/main.dat"
convert "$WORK/main.dat" "$OUT/x86-v7.dat" 7 none
convert "$WORK/main.dat" "$OUT/x86-v7-zstd.dat" 7 zstd
convert "$WORK/main.dat" "$OUT/x86-v6.dat" 6 none

# A buffer instance next to the top-level buffer (extract -t -B).
start 32 sched:sched_switch sched:sched_wakeup
mkdir $T/instances/ttdat
echo 32 > $T/instances/ttdat/buffer_size_kb
echo block:block_rq_issue > $T/instances/ttdat/set_event
echo block:block_rq_complete >> $T/instances/ttdat/set_event
echo 1 > $T/instances/ttdat/tracing_on
echo "tt: instance marker" > $T/instances/ttdat/trace_marker
load
echo 0 > $T/instances/ttdat/tracing_on
extract -t -B ttdat -o "$OUT/x86-v7-instance.dat"

# Overflow: 8 KB per CPU and a burst of wakeups, so pages carry the missed-events flag.
start 8 sched:sched_switch sched:sched_wakeup sched:sched_waking timer:hrtimer_start
for c in 0 1; do
    taskset -c $c python3 -c "import time; [time.sleep(0.0001) for _ in range(1500)]" &
done
wait
load
extract -o "$WORK/overflow.dat"
convert "$WORK/overflow.dat" "$OUT/x86-v7-overflow.dat" 7 none
convert "$WORK/overflow.dat" "$OUT/x86-v6-overflow.dat" 6 none
tt_restore

for f in "$OUT"/*.dat; do
    trace-cmd report -t -i "$f" > "$WORK/report.txt" 2>&1
    printf '%-28s %8d bytes %6d lines of report -t\n' "$(basename "$f")" \
        "$(stat -c %s "$f")" "$(wc -l < "$WORK/report.txt")"
done
