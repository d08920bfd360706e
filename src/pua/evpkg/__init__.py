"""Event packages and the processing of their PUBLISH bodies.

The registry of packages (Kamailio's names, flags and content types), the
body processors the engine runs before publishing (PIDF tuple ids, dialog
and reg versions), builders for the documents pua's own publishers send
(PIDF, dialog-info, reginfo, message-summary) and the hardened XML parser
every body goes through.  Pure functions of their arguments: no I/O, no
clock.
"""

from pua.evpkg.body import BodyContext, BodyProcessor, ProcessedBody, rewrite_version
from pua.evpkg.dialoginfo import DialogStateGuard, dialog_info_document, process_dialog_info
from pua.evpkg.mwi import MessageCounts, message_summary
from pua.evpkg.presence import pidf_document, process_pidf
from pua.evpkg.reginfo import RegContact, process_reginfo, reginfo_document
from pua.evpkg.registry import EventPackage, EventPackageError, EventRegistry
from pua.evpkg.xml import XmlBodyError, find_first, parse_xml, serialize_xml

__all__ = [
    "BodyContext",
    "BodyProcessor",
    "DialogStateGuard",
    "EventPackage",
    "EventPackageError",
    "EventRegistry",
    "MessageCounts",
    "ProcessedBody",
    "RegContact",
    "XmlBodyError",
    "dialog_info_document",
    "find_first",
    "message_summary",
    "parse_xml",
    "pidf_document",
    "process_dialog_info",
    "process_pidf",
    "process_reginfo",
    "reginfo_document",
    "rewrite_version",
    "serialize_xml",
]
