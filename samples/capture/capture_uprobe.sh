#!/bin/bash
# Variant 10: uprobe + uretprobe events on libc write()/fsync() with fetch args.
. "$(dirname "$0")/common.sh"
ensure_tracefs
tt_restore

LIBC=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
off() { printf '0x%x' 0x$(nm -D "$LIBC" | awk -v s="$1" '$3 == s"@@GLIBC_2.2.5" {print $1}'); }
WRITE_OFF=$(off write)
FSYNC_OFF=$(off fsync)
echo "libc=$LIBC write=$WRITE_OFF fsync=$FSYNC_OFF"

cat > $T/uprobe_events <<EOP
p:uprobes/tt_write $LIBC:$WRITE_OFF fd=%di:s32 buf=%si:x64 count=%dx:u64
r:uprobes/tt_write_ret $LIBC:$WRITE_OFF ret=\$retval:s64
p:uprobes/tt_write_str $LIBC:$WRITE_OFF fd=%di:s32 data=+0(%si):string head=+0(%si):x8[4] who=\$comm
p:uprobes/tt_fsync $LIBC:$FSYNC_OFF fd=%di:s32
r:uprobes/tt_fsync_ret $LIBC:$FSYNC_OFF ret=\$retval:s32
EOP
cat $T/uprobe_events > $RAW/uprobe_events.txt
# uprobes in libc fire for every process: restrict to the workload's programs
for e in tt_write tt_write_ret tt_fsync tt_fsync_ret; do
    echo 'comm == "dd" || comm == "tt_writer"' > $T/events/uprobes/$e/filter
done
# string fetch only for short text writes of our writer
echo 'comm == "tt_writer"' > $T/events/uprobes/tt_write_str/filter
echo 1 > $T/events/uprobes/enable
echo sched:sched_process_exec >> $T/set_event
echo 1 > $T/tracing_on
dd if=/dev/urandom of=$SCRATCH/up.bin bs=4k count=4 conv=fsync status=none
# a bash whose comm is tt_writer writes short text lines (libc write)
cp /bin/bash $SCRATCH/tt_writer
$SCRATCH/tt_writer -c "echo 'hello uprobe: a b c' > $SCRATCH/up.txt; echo second >> $SCRATCH/up.txt; echo x > /dev/full" 2>/dev/null
echo 0 > $T/tracing_on
cat $T/trace > $RAW/x86-uprobes.trace.txt
tt_restore     # disables the events, clears filters, then clears uprobe_events

trim $RAW/x86-uprobes.trace.txt $FT_OUT/x86-uprobes.trace.txt --first 60
