"""Tests against real SIP peers (SIPp, Kamailio) from Debian packages."""
