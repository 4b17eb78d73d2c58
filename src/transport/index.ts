// Public API of transport/: the sync port's shared UDP socket and µTP (BEP 29) over it.

export { UDP_SOCKET_BUFFER_BYTES, UdpSocket, type UdpEndpoint, type UdpSocketOptions } from './udp-socket.js';
export { MAX_CONNECTIONS, MAX_HALF_OPEN, UtpEndpoint, type DatagramSocket, type UtpConnectOptions, type UtpEndpointOptions } from './utp-endpoint.js';
export { LOOPBACK_PAYLOAD, MAX_PAYLOAD, MAX_SIZE_PROBES, SYN_INTERVAL_MS, UtpConnection, type UtpConnectionOptions, type UtpState } from './utp-connection.js';
export { isUtpPacket } from './utp-packet.js';
