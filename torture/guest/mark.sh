#!/bin/sh
# mark SLOT TEXT...: in the replay mode (berth.mark=SECTOR on the kernel command line, BERTH_MARK in the
# environment) writes "BERTHMARK TEXT" as one 512-byte O_DIRECT write to sector SECTOR+SLOT of /dev/vda, past
# the end of the file system, with no flush. blklogwrites logs it in order with berth's own writes, so the host
# knows exactly which writes were submitted before the operation was acknowledged (the console lags the log).
# Without BERTH_MARK it does nothing.
[ -n "$BERTH_MARK" ] || exit 0
slot=$1
shift
printf 'BERTHMARK %-501.501s\n' "$*" | dd of=/dev/vda bs=512 seek=$((BERTH_MARK + slot)) iflag=fullblock oflag=direct 2>/dev/null
