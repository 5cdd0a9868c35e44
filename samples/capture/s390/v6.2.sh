#!/bin/bash
# Kernels v6.2 to v6.6: map_pages/unmap_pages and the IOTLB ops; the DMA API is still
# pci_dma.c. From about v6.5 release_device returns into iommu_deinit_device (under the
# group mutex), which tells tracetool the era.
#   ./v6.2.sh start | save OUT
. "$(dirname "$0")/common.sh"
setup() {
    lifetime_probes
    probe 'p:map_pages s390_iommu_map_pages domain=$arg1'
    probe 'r:map_pages_r s390_iommu_map_pages ret=$retval:s32'
    probe 'p:unmap_pages s390_iommu_unmap_pages domain=$arg1'
    probe 'r:unmap_pages_r s390_iommu_unmap_pages ret=$retval:s32'
    probe 'p:flushall s390_iommu_flush_iotlb_all domain=$arg1'
    probe 'r:flushall_r s390_iommu_flush_iotlb_all'
    probe 'p:sync s390_iommu_iotlb_sync domain=$arg1'
    probe 'r:sync_r s390_iommu_iotlb_sync'
    probe 'p:sync_map s390_iommu_iotlb_sync_map domain=$arg1'
    probe 'r:sync_map_r s390_iommu_iotlb_sync_map'
    probe 'p:rpcit zpci_refresh_trans fn=$arg1 addr=$arg2 range=$arg3'
    probe 'r:rpcit_r zpci_refresh_trans ret=$retval:s32'
    probe "p:dmamap s390_dma_map_pages dev=\$arg1 $NAME size=\$arg4"
    probe 'r:dmamap_r s390_dma_map_pages ret=$retval'
    probe "p:dmaunmap s390_dma_unmap_pages dev=\$arg1 $NAME addr=\$arg2 size=\$arg3"
    probe 'r:dmaunmap_r s390_dma_unmap_pages'
}
case "${1:-}" in
    start) setup; start ;;
    save) save "${2:?usage: $0 save OUT}" ;;
    *) echo "usage: $0 start | save OUT" >&2; exit 2 ;;
esac
