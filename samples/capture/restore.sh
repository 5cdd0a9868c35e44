#!/bin/bash
# Restore tracefs to defaults and print the state for checking.
. "$(dirname "$0")/common.sh"
ensure_tracefs
tt_restore
echo "tracing_on=$(cat $T/tracing_on) tracer=$(cat $T/current_tracer) clock=$(cat $T/trace_clock)"
echo "buffer_size_kb=$(cat $T/buffer_size_kb)"
echo "enabled events: $(cat $T/set_event | wc -l)  uprobe_events: $(cat $T/uprobe_events | wc -l)  instances: $(ls $T/instances | wc -l)"
grep -E '^(no)?(irq-info|record-tgid|stacktrace|userstacktrace|sym-offset|sym-addr|sym-userobj|overwrite)$' $T/trace_options | tr '\n' ' '; echo
