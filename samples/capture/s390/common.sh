# Shared part of the s390 capture recipes (one script per kernel era beside this file).
# Source it, define probes with `probe`, then call `start`; reproduce the problem; then
# call `save OUT`. Run as root on the s390 system.
#
# The probe names and fetch-args are the ones tracetool reads (and `tracetool simulate`
# writes): the event name says which call it is, `dev=`, `zdev=`, `domain=`, `fn=` are
# the keys a device is found by, and `name=` is its PCI name (dev_name(dev): the first
# member of struct device is its kobject, whose first member is the name pointer).
set -euo pipefail
T=${TRACEFS:-/sys/kernel/tracing}
[ -d "$T/events" ] || mount -t tracefs nodev "$T"
: > "$T/kprobe_events"

# probe SPEC...: one kprobe_events line, e.g. "p:s390_rel s390_iommu_release_device dev=\$arg1".
# A function the kernel does not have (inlined, or another era) is reported and skipped.
probe() {
    local spec="$*" func
    func=$(echo "$spec" | awk '{print $2}')
    if ! grep -qw "^$func" "$T/available_filter_functions"; then
        echo "skipped (no $func in this kernel): $spec" >&2
        return 0
    fi
    echo "$spec" >> "$T/kprobe_events"
}

# Name of the device a struct device * points to (in the first or second argument).
NAME='name=+0(+0($arg1)):string'
NAME2='name=+0(+0($arg2)):string'

# The device's lifetime up to v6.6: probe, attach, detach, release, the DMA-API
# hand-over, IOAT registration and the zPCI event that deconfigures it.
lifetime_probes() {
    probe "p:s390_probe s390_iommu_probe_device dev=\$arg1 $NAME"
    probe 'r:s390_probe_r s390_iommu_probe_device ret=$retval:s32'
    probe "p:s390_att s390_iommu_attach_device domain=\$arg1 dev=\$arg2 $NAME2"
    probe 'r:s390_att_r s390_iommu_attach_device ret=$retval:s32'
    probe "p:s390_det s390_iommu_detach_device domain=\$arg1 dev=\$arg2 $NAME2"
    probe 'r:s390_det_r s390_iommu_detach_device'
    probe "p:s390_rel s390_iommu_release_device dev=\$arg1 $NAME"
    probe 'r:s390_rel_r s390_iommu_release_device'
    probe 'p:dma_init zpci_dma_init_device zdev=$arg1'
    probe 'p:dma_exit zpci_dma_exit_device zdev=$arg1'
    probe 'p:reg_ioat zpci_register_ioat zdev=$arg1'
    probe 'p:unreg_ioat zpci_unregister_ioat zdev=$arg1'
    probe 'p:zpci_event zpci_event_availability pec=+2($arg1):x16'
    probe 'p:zpci_deconf zpci_deconfigure_device zdev=$arg1'
}

start() {
    echo nop > "$T/current_tracer"
    echo local > "$T/trace_clock"
    echo 16384 > "$T/buffer_size_kb"
    : > "$T/trace"
    echo 1 > "$T/events/kprobes/enable"
    echo 1 > "$T/events/iommu/enable"
    echo 1 > "$T/events/block/block_rq_issue/enable"
    echo 1 > "$T/events/block/block_rq_complete/enable"
    # A WARN or Oops dumps the buffer into the kernel log; with panic_on_warn=1 a WARN
    # does too (tracetool reads the dump from the log: `tracetool check dmesg.txt`).
    sysctl -q kernel.ftrace_dump_on_oops=1
    echo 1 > "$T/tracing_on"
}

save() {
    echo 0 > "$T/tracing_on"
    cat "$T/trace" > "$1"
    # The debugfs counters let `tracetool stats --counters` reconcile the RPCIT counts.
    for s in /sys/kernel/debug/pci/*/statistics; do
        [ -r "$s" ] && cp "$s" "$1.$(basename "$(dirname "$s")").statistics"
    done
    echo "wrote $1; analyse with: tracetool check $1 && tracetool stats $1" >&2
}
