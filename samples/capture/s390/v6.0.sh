#!/bin/bash
# Kernels v6.0 and v6.1 (s390 DMA API in pci_dma.c, IOMMU API ops attach/detach/release).
#   ./v6.0.sh start            # set up and start tracing
#   ... deconfigure the function (PEC 0x303) during vfio-pci use, or run fio ...
#   ./v6.0.sh save trace.txt   # stop and keep the trace (and the debugfs counters)
. "$(dirname "$0")/common.sh"
setup() {
    lifetime_probes
    probe 'p:s390_map s390_iommu_map domain=$arg1'
    probe 'r:s390_map_r s390_iommu_map ret=$retval:s32'
    probe 'p:s390_unmap s390_iommu_unmap domain=$arg1'
    probe 'r:s390_unmap_r s390_iommu_unmap ret=$retval:s32'
    probe 'p:rpcit zpci_refresh_trans fn=$arg1 addr=$arg2 range=$arg3'
    probe 'r:rpcit_r zpci_refresh_trans ret=$retval:s32'
    probe "p:dmamap s390_dma_map_pages dev=\$arg1 $NAME size=\$arg4"
    probe 'r:dmamap_r s390_dma_map_pages ret=$retval'
    probe "p:dmaunmap s390_dma_unmap_pages dev=\$arg1 $NAME addr=\$arg2 size=\$arg3"
    probe 'r:dmaunmap_r s390_dma_unmap_pages'
    # dma_alloc_address is static: present only when not inlined; its global RPCIT
    # shows anyway as an RPCIT returning into dma_alloc_address.
}
case "${1:-}" in
    start) setup; start ;;
    save) save "${2:?usage: $0 save OUT}" ;;
    *) echo "usage: $0 start | save OUT" >&2; exit 2 ;;
esac
