"""The asyncio side of pua: sockets, connections and RFC 3263 next-hop resolution."""
