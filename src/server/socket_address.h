// The address of either end of a connected TCP socket, as text: what cpp-httplib's
// remote_addr holds and what the servers' log lines name.
#pragma once

#include <string>

namespace mare {

// The peer's (peer = true) or this end's address and port; empty and 0 when unknown.
void SocketAddress(int sock, bool peer, std::string* ip, int* port);

// "ip:port" of the peer ("[ip]:port" for IPv6), or "an unknown peer".
std::string PeerAddress(int sock);

}  // namespace mare
