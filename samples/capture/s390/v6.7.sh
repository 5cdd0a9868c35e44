#!/bin/bash
# Kernels v6.7 and later (dma-iommu: pci_dma.c is gone; flush queues). After the
# blocking-domain rework (~v6.13) release_device and detach are gone: those probes are
# reported as skipped.
#   ./v6.7.sh start | save OUT
. "$(dirname "$0")/common.sh"
setup() {
    probe "p:s390_probe s390_iommu_probe_device dev=\$arg1 $NAME"
    probe 'r:s390_probe_r s390_iommu_probe_device ret=$retval:s32'
    probe "p:s390_att s390_iommu_attach_device domain=\$arg1 dev=\$arg2 $NAME2"
    probe 'r:s390_att_r s390_iommu_attach_device ret=$retval:s32'
    probe "p:s390_rel s390_iommu_release_device dev=\$arg1 $NAME"
    probe 'r:s390_rel_r s390_iommu_release_device'
    probe 'p:reg_ioat zpci_register_ioat zdev=$arg1'
    probe 'p:unreg_ioat zpci_unregister_ioat zdev=$arg1'
    probe 'p:zpci_event zpci_event_availability pec=+2($arg1):x16'
    probe 'p:zpci_deconf zpci_deconfigure_device zdev=$arg1'
    probe 'p:flushall s390_iommu_flush_iotlb_all domain=$arg1'
    probe 'r:flushall_r s390_iommu_flush_iotlb_all'
    probe 'p:fqtimeout fq_flush_timeout'
    probe 'r:fqtimeout_r fq_flush_timeout'
    probe 'p:rpcit zpci_refresh_trans fn=$arg1 addr=$arg2 range=$arg3'
    probe 'r:rpcit_r zpci_refresh_trans ret=$retval:s32'
    probe "p:dmamap iommu_dma_map_page dev=\$arg1 $NAME size=\$arg4"
    probe 'r:dmamap_r iommu_dma_map_page ret=$retval'
    probe "p:dmaunmap iommu_dma_unmap_page dev=\$arg1 $NAME addr=\$arg2 size=\$arg3"
    probe 'r:dmaunmap_r iommu_dma_unmap_page'
}
case "${1:-}" in
    start) setup; start ;;
    save) save "${2:?usage: $0 save OUT}" ;;
    *) echo "usage: $0 start | save OUT" >&2; exit 2 ;;
esac
