#!/bin/sh
# mark SLOT TEXT...: in the replay mode (berth.mark=SECTOR on the kernel command line, BERTH_MARK in the
# environment) writes "BERTHMARK TEXT" as one 512-byte O_DIRECT write to sector SECTOR+8*SLOT of /dev/vda, past
# the end of the file system, with no flush. blklogwrites logs it in order with berth's own writes, so the host
# knows exactly which writes were submitted before the operation was acknowledged (the console lags the log).
# Without BERTH_MARK it does nothing.
# coreutils' dd, not busybox's: busybox's buffer is not 512-byte aligned, so the guest's kernel (6.1) refuses the
# O_DIRECT write with EINVAL and busybox writes again through the page cache (seen: 1 KiB read-modify-writes,
# repeated). One 4 KiB page per slot, so that no two writers share a page.
[ -n "$BERTH_MARK" ] || exit 0
slot=$1
shift
printf 'BERTHMARK %-501.501s\n' "$*" | dd-direct of=/dev/vda bs=512 seek=$((BERTH_MARK + 8 * slot)) iflag=fullblock oflag=direct status=none
