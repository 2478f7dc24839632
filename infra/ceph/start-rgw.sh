#!/usr/bin/env bash
# Start a throwaway single-node Ceph cluster with an S3 gateway (RGW) on loopback, all state in DIR:
# one monitor, one OSD on memstore (RAM, nothing on disk), one radosgw, an S3 user. About 10-20 s.
#
#   infra/ceph/start-rgw.sh DIR [RGW_PORT]     prints shell assignments: RGW_ENDPOINT, AWS keys
#   infra/ceph/stop-rgw.sh DIR
#
# For tests and local development only: no authentication between daemons, one replica, data in memory.
# Needs Debian's ceph-mon, ceph-osd, radosgw and ceph-common (infra/ci/install-tools.sh installs them).
set -euo pipefail

dir="$(realpath -m "${1:?usage: start-rgw.sh DIR [RGW_PORT]}")"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rgw_port="${2:-$(free_port)}"
mon_port="$(free_port)"
access_key="retouch"
secret_key="retouch-test-secret"

mkdir -p "$dir"/{run,log,mon,osd/ceph-0}
conf="$dir/ceph.conf"
fsid="$(cat /proc/sys/kernel/random/uuid)"
cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
# Daemons trust each other: this cluster lives for one test on loopback.
auth cluster required = none
auth service required = none
auth client required = none
# "none" auth only works over crc framing; daemons like radosgw otherwise insist on "secure" to the mon.
ms mon client mode = crc
run dir = $dir/run
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
# One OSD: one copy of everything, no CRUSH failure domain, no health warnings about it.
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
# memstore: objects in RAM; fast to create, gone on stop.
osd objectstore = memstore
memstore device bytes = 1073741824
CONF

ceph_() { ceph -c "$conf" --connect-timeout 10 "$@"; }

monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" >/dev/null
ceph-mon -c "$conf" -i a

osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
osd_id="$(ceph_ osd new "$osd_uuid")"
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
ceph-osd -c "$conf" -i "$osd_id"

for _ in $(seq 60); do
  ceph_ osd stat 2>/dev/null | grep -q "1 up" && break
  sleep 0.5
done
ceph_ osd stat | grep -q "1 up" || { echo "start-rgw: the OSD did not come up; see $dir/log" >&2; exit 1; }

radosgw -c "$conf" -n client.rgw \
  --rgw-frontends "beast endpoint=127.0.0.1:$rgw_port" \
  --rgw-data "$dir/rgw" \
  --rgw-dns-name localhost \
  --rgw-enable-apis "s3, admin, notifications"
for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$rgw_port/" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fs "http://127.0.0.1:$rgw_port/" >/dev/null || { echo "start-rgw: radosgw did not answer; see $dir/log" >&2; exit 1; }

radosgw-admin -c "$conf" user create --uid retouch --display-name retouch \
  --access-key "$access_key" --secret "$secret_key" >/dev/null

cat <<ENV
RGW_ENDPOINT=http://127.0.0.1:$rgw_port
AWS_ACCESS_KEY_ID=$access_key
AWS_SECRET_ACCESS_KEY=$secret_key
CEPH_CONF=$conf
ENV
