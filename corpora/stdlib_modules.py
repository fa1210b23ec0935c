"""Which standard-library modules the default corpus documents, and why the others are left out.

The candidates are the modules the interpreter names (``sys.stdlib_module_names``) and their
submodules (found with :mod:`pkgutil` once their package is imported). Every module left out gets a
reason, so the extraction can count them. This module runs in the extraction's child process
(:mod:`dualsearch.corpora.stdlib_extract`) and imports nothing of the modules it judges.
"""

from __future__ import annotations

import sys

# Modules whose import acts (opens a browser, prints, starts a GUI) or that are programs rather than
# library APIs. They are never imported, not even by another module: an import of one fails.
SIDE_EFFECT_MODULES = frozenset({"antigravity", "this", "idlelib", "turtledemo", "__hello__", "__phello__"})
# Without a display, Tk cannot start; tkinter and what imports it (turtle) are left out rather than
# imported half-working. (Importing tkinter itself opens no window; the brief asked for this rule.)
GUI_MODULES = frozenset({"tkinter"})
# Test suites, installers, the 2to3 tool and example extension modules: not library documentation.
NOT_LIBRARY = frozenset({"test", "idlelib", "lib2to3", "ensurepip", "pydoc_data", "xxsubtype", "xxlimited"})
# distutils (PEP 632, removed in 3.12): setuptools replaces it on import wherever setuptools is installed.
REMOVED_UPSTREAM = frozenset({"distutils"})
# Implementations whose contents are documented under the name users import (posix.listdir is os.listdir).
DOCUMENTED_ELSEWHERE = {"posix": "os", "nt": "os"} | dict.fromkeys(["posixpath", "ntpath", "genericpath"], "os.path")
WINDOWS_ONLY = frozenset(
    {"msvcrt", "winreg", "winsound", "nt", "ntpath", "nturl2path", "msilib", "_winapi", "ctypes.wintypes"}
    | {"asyncio.windows_events", "asyncio.windows_utils", "multiprocessing.popen_spawn_win32"}
)
POSIX_ONLY = frozenset(
    {"posix", "posixpath", "pwd", "grp", "fcntl", "termios", "tty", "pty", "resource", "syslog", "crypt", "spwd"}
    | {"nis", "readline", "curses", "ossaudiodev", "pipes"}
)
# Modules the library reference marks deprecated (PEP 594 "dead batteries", removed in 3.13; imp and
# the sre_* internals; tkinter.tix). Importing most of them also emits a DeprecationWarning, which the
# extraction records as well.
DEPRECATED_MODULES = frozenset(
    {"aifc", "asynchat", "asyncore", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "mailcap", "msilib"}
    | {"nis", "nntplib", "ossaudiodev", "pipes", "smtpd", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib"}
    | {"imp", "distutils", "sre_compile", "sre_constants", "sre_parse", "tkinter.tix"}
)


def other_platform_modules(platform: str = sys.platform) -> frozenset[str]:
    """Modules for another operating system than ``platform``.

    Example:
        >>> "msvcrt" in other_platform_modules("linux"), "fcntl" in other_platform_modules("linux")
        (True, False)
        >>> "fcntl" in other_platform_modules("win32")
        True
    """
    return POSIX_ONLY if platform == "win32" else WINDOWS_ONLY


def deny_list(has_display: bool) -> frozenset[str]:
    """Top-level modules never imported during the extraction.

    Example:
        >>> "tkinter" in deny_list(has_display=False), "tkinter" in deny_list(has_display=True)
        (True, False)
    """
    return SIDE_EFFECT_MODULES | (frozenset() if has_display else GUI_MODULES)


def is_denied(name: str, denied: frozenset[str]) -> bool:
    """Whether ``name`` is a denied module or inside a denied package.

    Example:
        >>> is_denied("tkinter.ttk", frozenset({"tkinter"})), is_denied("tkinterx", frozenset({"tkinter"}))
        (True, False)
    """
    return any(name == top or name.startswith(top + ".") for top in denied)


def leave_out_reason(name: str, denied: frozenset[str], platform: str = sys.platform) -> str | None:
    """Why the module ``name`` is not documented, or None when it is.

    Example:
        >>> [leave_out_reason(n, frozenset({"this"}), "linux") for n in ("json", "this", "_json", "nturl2path")]
        [None, 'side effects on import', 'private', 'for another platform']
        >>> leave_out_reason("unittest.test.test_case", frozenset(), "linux")
        'test suite, tool or example'
    """
    parts = name.split(".")
    if any(part.startswith("_") for part in parts):
        return "private"
    if is_denied(name, denied):
        return "side effects on import" if is_denied(name, SIDE_EFFECT_MODULES) else "GUI without a display"
    if name in other_platform_modules(platform) or parts[0] in other_platform_modules(platform):
        return "for another platform"
    if parts[0] in NOT_LIBRARY or parts[-1] in ("test", "tests", "__main__") or "test" in parts:
        return "test suite, tool or example"
    if parts[0] in REMOVED_UPSTREAM:
        return "replaced by setuptools (removed in 3.12)"
    if name in DOCUMENTED_ELSEWHERE:
        return f"documented as {DOCUMENTED_ELSEWHERE[name]}"
    if parts[0] == "encodings" and len(parts) > 1:
        return "codec table"  # a hundred codec modules (encodings.cp1252 ...); the codecs module documents them
    return None


def is_deprecated_module(name: str, warned: set[str]) -> bool:
    """Whether ``name`` (or its package) is deprecated: in the reference's list, or it warned on import.

    Example:
        >>> is_deprecated_module("cgi", set()), is_deprecated_module("json", set()), is_deprecated_module("a.b", {"a"})
        (True, False, True)
    """
    parts = name.split(".")
    prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
    return bool(prefixes & (DEPRECATED_MODULES | warned))
