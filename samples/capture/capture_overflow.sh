#!/bin/bash
# Variant 7: overflowed ring buffer.
#  - `trace` with a tiny buffer: entries-in-buffer < entries-written and
#    "##### CPU N buffer started ####" lines.
#  - `trace_pipe` read slowly while the buffer overflows: "CPU:N [LOST M EVENTS]".
#    (Reading trace_pipe only after tracing_on=0 produced no LOST lines here.)
. "$(dirname "$0")/common.sh"
ensure_tracefs
OV_EVENTS="sched:sched_switch sched:sched_wakeup irq:irq_handler_entry irq:irq_handler_exit
irq:softirq_entry irq:softirq_exit timer:hrtimer_start timer:hrtimer_expire_entry
timer:hrtimer_expire_exit block:block_rq_issue block:block_rq_complete"

setup_ov() {
    tt_restore
    echo ${1:-8} > $T/buffer_size_kb         # per-CPU size, kB
    for e in $OV_EVENTS; do echo $e >> $T/set_event; done
    echo > $T/trace
}

# 1) trace file of an overwritten (wrapped) buffer; load both CPUs so that
#    both per-CPU buffers wrap
setup_ov 8
echo 1 > $T/tracing_on
workload 8
# many short sleeps on each CPU -> hrtimer/sched events fill both buffers
taskset -c 0 python3 -c "import time; [time.sleep(0.0001) for _ in range(2000)]" &
taskset -c 1 python3 -c "import time; [time.sleep(0.0001) for _ in range(2000)]" &
wait
echo 0 > $T/tracing_on
cat $T/trace > $RAW/x86-overflow.trace.txt

# 2) live slow reader: tracing stays on while a throttled reader consumes
#    trace_pipe (pv-like: dd with small blocks and sleeps), so LOST markers
#    appear in the middle of the stream.
setup_ov 8
echo 1 > $T/tracing_on
( for i in $(seq 1 12); do workload 4; done ) &
WL=$!
python3 - $T/trace_pipe $RAW/x86-lost-events-live.trace_pipe.txt <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
out = open(sys.argv[2], 'wb')
end = time.time() + 3
while time.time() < end:
    try:
        b = os.read(fd, 4096)
    except BlockingIOError:
        b = b''
    out.write(b)
    time.sleep(0.05)          # read slowly so the writer overruns us
# stop tracing and drain the rest so the file does not end in a partial line
open(sys.argv[1].rsplit('/', 1)[0] + '/tracing_on', 'w').write('0')
while True:
    try:
        b = os.read(fd, 4096)
    except BlockingIOError:
        break
    if not b:
        break
    out.write(b)
out.close()
PY
wait $WL
echo 0 > $T/tracing_on
tt_restore

trim $RAW/x86-overflow.trace.txt $FT_OUT/x86-overflow.trace.txt --first 20 --last 10 \
    --around '^##### CPU' --count 4 --before 10 --after 10
trim $RAW/x86-lost-events-live.trace_pipe.txt $FT_OUT/x86-lost-events-live.trace_pipe.txt --first 6 \
    --around 'LOST [0-9]+ EVENTS' --count 4 --before 5 --after 5
