"""A session's browser named the way people say it ("Chrome on Linux", "Safari on iPhone"), read with ua-parser."""

from __future__ import annotations

from functools import lru_cache

from ua_parser import Result, parse

UNKNOWN = "Unknown browser"
# ua-parser's family names, shortened to the names people use.
_BROWSERS = {"Mobile Safari": "Safari", "Mobile Safari UI/WKWebView": "Safari", "Chrome Mobile": "Chrome",
             "Chrome Mobile iOS": "Chrome", "Chrome Mobile WebView": "Chrome", "Firefox Mobile": "Firefox",
             "Firefox iOS": "Firefox", "Edge Mobile": "Edge", "Samsung Internet": "Samsung Internet",
             "HeadlessChrome": "Headless Chrome"}
_SYSTEMS = {"Mac OS X": "macOS", "Ubuntu": "Linux", "Fedora": "Linux", "Debian": "Linux", "Chrome OS": "ChromeOS"}
_APPLE_DEVICES = ("iPhone", "iPad", "iPod")


@lru_cache(maxsize=256)
def describe(user_agent: str | None) -> str:
    """"<browser> on <system or device>", the browser alone, or "Unknown browser"."""
    if not user_agent:
        return UNKNOWN
    result = parse(user_agent[:500])
    family = result.user_agent.family if result.user_agent else "Other"
    browser = _BROWSERS.get(family, family) if family != "Other" else ""
    system = _system(result)
    if browser and system:
        return f"{browser} on {system}"
    return browser or UNKNOWN


def _system(result: Result) -> str:
    device = result.device.family if result.device else ""
    if device in _APPLE_DEVICES:
        return device
    family = result.os.family if result.os else "Other"
    if family == "Other":
        return ""
    return _SYSTEMS.get(family, family)
