/// RFC 863: input is read and thrown away; nothing is sent.
struct DiscardService: StreamService {
    init(maximumLineLength: Int) {}
}
