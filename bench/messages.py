"""The two messages the codec benchmark measures (shapes from the survey:
a 626-byte PUBLISH with 13 header fields and a PIDF body, and a 343-byte
200 OK with Via received/rport, To-tag, SIP-ETag and Expires)."""

PIDF = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
    b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com">\r\n'
    b'<tuple id="t8a7b6c5"><status><basic>open</basic></status>'
    b"<note>Available now, at desk</note></tuple>\r\n"
    b"</presence>\r\n"
)

PUBLISH = (
    b"PUBLISH sip:alice@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK.9f1c2;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:alice@example.com>\r\n"
    b"From: <sip:alice@example.com>;tag=4f2b9c1d\r\n"
    b"Call-ID: 7c1e5a9b@192.0.2.10\r\n"
    b"CSeq: 10 PUBLISH\r\n"
    b"Event: presence\r\n"
    b"Expires: 3600\r\n"
    b"SIP-If-Match: a.1795673927.17870.8040.0\r\n"
    b"Content-Type: application/pidf+xml\r\n"
    b"User-Agent: pua/0.1\r\n"
    b"Accept: */*\r\n"
    b"Content-Length: " + str(len(PIDF)).encode() + b"\r\n\r\n" + PIDF
)

OK_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK.9f1c2e7a6b;rport=5060;received=192.0.2.10\r\n"
    b"To: <sip:alice@example.com>;tag=25483a2a9fa04090c2dd4f1854d1ed2b-4ea8656a\r\n"
    b"From: <sip:alice@example.com>;tag=4f2b9c1d\r\n"
    b"Call-ID: 7c1e5a9b3d2f4e6a@192.0.2.10\r\n"
    b"CSeq: 10 PUBLISH\r\n"
    b"Expires: 3600\r\n"
    b"SIP-ETag: a.1795673927.17870.8041.1\r\n"
    b"Content-Length: 0\r\n\r\n"
)
