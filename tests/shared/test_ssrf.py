"""The SSRF guard's matrix: every non-public form refused (literals in every spelling, and names
resolving to them), the allowlist, and a resolver that mixes a public and a private answer."""

import ipaddress

import pytest
from forgestack_shared.ssrf import BlockedUrlError, check_url, parse_allowlist

REFUSED = [
    "http://127.0.0.1/",
    "http://127.1.2.3:8080/x",
    "http://localhost./",
    "http://[::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://198.18.0.1/",
    "http://[fc00::1]/",
    "http://[fec0::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.0.0.1/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://0xa9.0xfe.0xa9.0xfe/",
    "ftp://8.8.8.8/",
    "file:///etc/passwd",
    "gopher://8.8.8.8/",
    "http://user:pw@8.8.8.8/",
    "http:///nohost",
]


async def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"literal {host!r} must not be resolved")


@pytest.mark.parametrize("url", REFUSED)
async def test_refused(url: str) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        assert host == "localhost"
        return ["127.0.0.1", "::1"]

    with pytest.raises(BlockedUrlError):
        await check_url(url, (), resolver)


@pytest.mark.parametrize(
    "url", ["https://8.8.8.8/hook", "http://[2606:4700::1111]:8443/", "http://[64:ff9b::808:808]/"]
)
async def test_public_literals_pass_without_dns(url: str) -> None:
    target = await check_url(url, (), no_dns)
    assert ipaddress.ip_address(target.address).is_global


async def test_a_name_is_pinned_to_the_address_that_was_checked() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    target = await check_url("https://hooks.example.com:8443/in?x=1", (), resolver)
    assert (target.address, target.port, target.target) == ("93.184.216.34", 8443, "/in?x=1")
    assert target.host_header == "hooks.example.com:8443"


async def test_one_private_answer_among_public_ones_refuses_the_name() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.1.2.3"]

    with pytest.raises(BlockedUrlError, match=r"10\.1\.2\.3"):
        await check_url("http://mixed.example.com/", (), resolver)


async def test_the_allowlist_admits_its_ranges_only() -> None:
    allowed = parse_allowlist("127.0.0.0/8, ::1/128")
    assert (await check_url("http://127.0.0.1:9/", allowed, no_dns)).address == "127.0.0.1"
    assert (await check_url("http://[::1]:9/", allowed, no_dns)).address == "::1"
    with pytest.raises(BlockedUrlError):
        await check_url("http://10.0.0.1/", allowed, no_dns)


def test_a_malformed_allowlist_entry_raises() -> None:
    with pytest.raises(ValueError, match="not-a-cidr"):
        parse_allowlist("127.0.0.0/8,not-a-cidr")


def test_a_malformed_allowlist_setting_stops_the_process_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from forgestack_shared.settings import Settings
    from pydantic import ValidationError

    monkeypatch.setenv("WEBHOOK_ALLOWED_CIDRS", "127.0.0.0/8,10.0.0.0/33")
    with pytest.raises(ValidationError, match=r"10\.0\.0\.0/33"):
        Settings()


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[zz]/",
        "http://" + "a" * 64 + ".example.com/",
        "http://a..example.com/",
        "http://\ud800.example.com/",
    ],
)
async def test_a_malformed_url_is_refused_with_a_reason_not_a_crash(url: str) -> None:
    """urlsplit rejects broken IPv6 brackets with ValueError, and the resolver's IDNA encoding an
    over-long or empty label with UnicodeError: both must read as a refused URL."""
    with pytest.raises(BlockedUrlError):
        await check_url(url)
