// Ports the socketserver documentation's UDP client (the other half of "socketserver.UDPServer Example"),
// with nothing but the socket calls Python's `socket` module wraps:
//
//   sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)    socket(AF_INET, SOCK_DGRAM, 0)
//   sock.sendto(bytes(data, "utf-8"), (HOST, PORT))            sendto(...)
//   received = str(sock.recv(1024), "utf-8")                   recv(..., 1024, 0)
//   print("Sent:     {}".format(data))                         print("Sent:     \(data)")
//   print("Received: {}".format(received))                     print("Received: \(received)")
//
// `udp-client-example PORT TEXT` sends TEXT to 127.0.0.1:PORT and prints the reply; exits 1 when none comes
// within 5 seconds (UDP may lose it).
#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count == 3, let port = Int(arguments[1]) else {
    print("usage: udp-client-example PORT TEXT")
    exit(64)
}
let data = arguments[2]
let sock = socket(AF_INET, CInt(SOCK_DGRAM.rawValue), 0)
var timeout = timeval(tv_sec: 5, tv_usec: 0)  // sock.settimeout(5)
setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

var target = sockaddr_in()
target.sin_family = sa_family_t(AF_INET)
target.sin_port = UInt16(port).bigEndian
target.sin_addr.s_addr = inet_addr("127.0.0.1")
let sent = withUnsafePointer(to: &target) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        sendto(sock, data, data.utf8.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
    }
}
var buffer = [UInt8](repeating: 0, count: 1024)
let count = sent < 0 ? -1 : recv(sock, &buffer, buffer.count, 0)
close(sock)
guard count >= 0 else {
    print("no reply from 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
    exit(1)
}
print("Sent:     \(data)")
print("Received: \(String(decoding: buffer[..<count], as: UTF8.self))")
