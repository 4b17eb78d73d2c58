[ferry_web]
title="Ferry web admin"
desc="Ferry"
port_forward="yes"
dst.ports="8888/tcp"

[ferry_sync]
title="Ferry sync"
desc="Ferry"
port_forward="yes"
dst.ports="22100/tcp,udp"
