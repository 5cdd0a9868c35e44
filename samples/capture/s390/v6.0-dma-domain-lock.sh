#!/bin/bash
# v6.0 with the proposed (never merged) zdev->dma_domain_lock patch: the v6.0 probes plus
# mutex_lock/mutex_unlock on that one lock, named so tracetool recognises the era.
#   ZDEV_LOCK=0x...  the lock's address: &zdev->dma_domain_lock (e.g. from crash or drgn)
#   ./v6.0-dma-domain-lock.sh start | save OUT
. "$(dirname "$0")/common.sh"
setup_lock() {
    : "${ZDEV_LOCK:?set ZDEV_LOCK to the address of zdev->dma_domain_lock}"
    probe 'p:dma_domain_lock mutex_lock lock=$arg1'
    probe 'p:dma_domain_unlock mutex_unlock lock=$arg1'
    echo "lock == $ZDEV_LOCK" > "$T/events/kprobes/dma_domain_lock/filter"
    echo "lock == $ZDEV_LOCK" > "$T/events/kprobes/dma_domain_unlock/filter"
}
case "${1:-}" in
    start) "$(dirname "$0")/v6.0.sh" start; setup_lock ;;
    save) save "${2:?usage: $0 save OUT}" ;;
    *) echo "usage: $0 start | save OUT" >&2; exit 2 ;;
esac
