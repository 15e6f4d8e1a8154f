// Ports the socketserver documentation's UDP client (the other half of "socketserver.UDPServer Example"),
// with nothing but the socket calls Python's `socket` module wraps:
//
//   sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)    socket(AF_INET, SOCK_DGRAM, 0)
//   sock.sendto(bytes(data, "utf-8"), (HOST, PORT))            connect(...) + send(...)
//   received = str(sock.recv(1024), "utf-8")                   recv(..., 1024, 0)
//   print("Sent:     {}".format(data))                         print("Sent:     \(data)")
//   print("Received: {}".format(received))                     print("Received: \(received)")
//
// connect() instead of sendto() only fixes the peer, so that "nobody at that port" (ICMP port unreachable)
// fails the recv at once instead of after the 5-second timeout.
// `udp-client-example PORT TEXT` sends TEXT to 127.0.0.1:PORT and prints the reply; exits 1 when none comes.
#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count == 3, let port = UInt16(arguments[1]) else {
    print("usage: udp-client-example PORT TEXT")
    exit(64)
}
let data = arguments[2]
let sock = socket(AF_INET, CInt(SOCK_DGRAM.rawValue), 0)
var timeout = timeval(tv_sec: 5, tv_usec: 0)  // sock.settimeout(5)
setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
var server = sockaddr_in()
server.sin_family = sa_family_t(AF_INET)
server.sin_port = port.bigEndian
server.sin_addr.s_addr = inet_addr("127.0.0.1")
let connected = withUnsafePointer(to: &server) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(sock, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
}
var buffer = [UInt8](repeating: 0, count: 1024)
let sent = connected == 0 ? send(sock, data, data.utf8.count, 0) : -1
let count = sent < 0 ? -1 : recv(sock, &buffer, buffer.count, 0)
guard count >= 0 else {
    print("no reply from 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
    exit(1)
}
print("Sent:     \(data)")
print("Received: \(String(decoding: buffer[..<count], as: UTF8.self))")
