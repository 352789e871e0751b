"""URLs fit to print: a password never reaches a log line or a terminal."""


def redact_url(url: str) -> str:
    """Any password replaced by ***; also for a Sentinel URL's several hosts."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    if not at:
        return url
    user, colon, _password = credentials.partition(":")
    if not colon:
        return url
    return f"{scheme}://{user}:***@{hosts}{slash}{path}"
