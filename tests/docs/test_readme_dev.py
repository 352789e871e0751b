"""The README's `forgestack dev` banner and key story against the supervisor's own code, run in
this process with the README's example values: the banner's layout is what `_print_summary`
prints, and each row is what the step that reports it says (the steps that start processes are
compared by their constants here, and as a real process in tests/cli/test_dev_banner.py)."""

import re
import stat
from pathlib import Path

import pytest
from forgestack_cli import embedded_redis, mail_catcher
from forgestack_cli.db_commands import prepare_dev_database
from forgestack_cli.dev import _print_summary
from forgestack_cli.dev_key import KEY_FILE
from forgestack_cli.stack import DevStack, use_or_default_database, use_or_generate_admin_key
from forgestack_db.migrate import head_revision
from forgestack_shared.settings import Settings

from tests.docs.doc_commands import check_command
from tests.docs.doc_routes import curl_call, route_for
from tests.docs.test_readme_routes import curl_commands

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
README_DATA_DIR = "/home/you/forgestack/.forgestack"
"""The data dir the README's banner shows: `.forgestack` under a project checkout."""
README_KEY = "q3J0..."
README_ORG_KEY = "fsk_6871d3f7_E2kJ..."
ROW = re.compile(r"^  (\S.*?)\s{2,}(\S.*)$")
ORG_KEY = re.compile(r"^fsk_[0-9a-f]{8}_")


def _readme_banner() -> list[str]:
    block = README.split("```text\nForgeStack is running\n", 1)[1].split("```", 1)[0]
    return ["ForgeStack is running", *block.rstrip("\n").splitlines()]


def _readme_rows() -> dict[str, str]:
    rows = {}
    for line in _readme_banner()[1:-1]:
        match = ROW.match(line)
        assert match, f"README banner line is not a row: {line!r}"
        rows[match[1]] = match[2]
    return rows


def _stack(data_dir: Path, **settings: object) -> DevStack:
    defaults: dict[str, object] = {
        "forgestack_data_dir": data_dir,
        "redis_url": None,
        "database_url": None,
        "forgestack_admin_api_key": None,
        "smtp_host": None,
    }
    return DevStack.create(Settings(**(defaults | settings)))  # type: ignore[arg-type]


def _as_in_readme(value: str, data_dir: Path) -> str:
    return value.replace(str(data_dir), README_DATA_DIR)


def test_the_banner_is_laid_out_as_the_supervisor_prints_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = _stack(tmp_path)
    stack.summary = list(_readme_rows().items())
    _print_summary(stack)
    printed = capsys.readouterr().out.strip("\n").splitlines()
    assert printed == _readme_banner()


def test_the_rows_without_processes_are_what_their_steps_report(tmp_path: Path) -> None:
    data_dir = tmp_path / "forgestack" / ".forgestack"
    stack = _stack(data_dir)
    use_or_default_database(stack)
    prepare_dev_database(stack)
    use_or_generate_admin_key(stack)
    reported = {label: _as_in_readme(value, data_dir) for label, value in stack.summary}
    key = (data_dir / KEY_FILE).read_text().strip()
    reported["Admin API key"] = reported["Admin API key"].replace(key, README_KEY)
    org_label = "Org 'dev' admin key"
    assert ORG_KEY.match(reported[org_label]) and ORG_KEY.match(README_ORG_KEY)
    reported[org_label] = ORG_KEY.sub(README_ORG_KEY[:-4], reported[org_label]).split(" ")[0]
    readme = _readme_rows()
    for label in ("Database", "Schema", "Admin API key"):
        assert reported[label] == readme[label], f"README banner row {label!r}"
    assert readme["Schema"] == f"migrated to revision {head_revision()}"
    assert readme[org_label] == f"{README_ORG_KEY} (shown once)"


def test_the_rows_of_child_processes_show_their_real_defaults() -> None:
    readme = _readme_rows()
    fields = Settings.model_fields
    api = f"http://{fields['api_host'].default}:{fields['api_port'].default}"
    assert (readme["API"], readme["API docs"], readme["Health"]) == (
        api,
        f"{api}/docs",
        f"{api}/healthz",
    )
    redis = re.fullmatch(r"redis://127\.0\.0\.1:(\d+)/0 \(embedded, pid \d+\)", readme["Redis"])
    assert redis and int(redis[1]) == embedded_redis.FIRST_PORT
    mail = re.fullmatch(
        rf"smtp://{mail_catcher.HOST}:(\d+), messages saved in {README_DATA_DIR}/mail",
        readme["Mail catcher"],
    )
    assert mail and int(mail[1]) == mail_catcher.FIRST_PORT
    assert mail_catcher.mail_dir(Path(README_DATA_DIR)) == Path(README_DATA_DIR) / "mail"


def test_the_admin_key_is_kept_printed_again_and_is_the_examples_key(tmp_path: Path) -> None:
    first = _stack(tmp_path)
    use_or_generate_admin_key(first)
    key_file = tmp_path / KEY_FILE
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The key the children get, so the API accepts the key the banner prints.
    assert first.env["FORGESTACK_ADMIN_API_KEY"] == key
    assert dict(first.summary)["Admin API key"].startswith(f"{key}  ($KEY in the README's examples")

    again = _stack(tmp_path)
    use_or_generate_admin_key(again)
    assert again.env["FORGESTACK_ADMIN_API_KEY"] == key
    assert dict(again.summary)["Admin API key"] == dict(first.summary)["Admin API key"].replace(
        "new, kept", "kept"
    )

    key_file.unlink()  # "Delete that file for a new one."
    renewed = _stack(tmp_path)
    use_or_generate_admin_key(renewed)
    assert renewed.env["FORGESTACK_ADMIN_API_KEY"] not in ("", key)


def test_a_configured_admin_key_is_used_and_not_printed(tmp_path: Path) -> None:
    stack = _stack(tmp_path, forgestack_admin_api_key="configured-operator-key")
    use_or_generate_admin_key(stack)
    assert dict(stack.summary)["Admin API key"] == "from FORGESTACK_ADMIN_API_KEY (not shown)"
    assert "configured-operator-key" not in repr(stack.summary)
    assert not (tmp_path / KEY_FILE).exists()


def test_the_org_key_is_shown_once_then_later_starts_say_so(tmp_path: Path) -> None:
    prepare_dev_database(_stack(tmp_path))
    later = _stack(tmp_path)
    prepare_dev_database(later)
    label, value = later.summary[-1]
    assert f"(later starts print `{label}  {value.split(' (')[0]}`)" in README
    command = value.split("new ones: ", 1)[1].removesuffix(")")
    check_command(command)
    assert f"`uv run {command}`" in README


def test_the_readme_text_names_the_file_the_key_is_kept_in() -> None:
    default_dir = Settings.model_fields["forgestack_data_dir"].default
    assert f"`{Path(default_dir) / KEY_FILE}` (readable by you only, mode 0600)" in README
    assert f"kept in {README_DATA_DIR}/{KEY_FILE})" in _readme_rows()["Admin API key"]


def test_the_examples_use_the_key_the_banner_names() -> None:
    assert "$KEY in the README's examples" in _readme_rows()["Admin API key"]
    assert re.search(r"^KEY=\.\.\.\s+# the Admin API key `forgestack dev` printed", README, re.M)
    assert re.search(r"^OPERATOR_KEY=\.\.\.\s+# FORGESTACK_ADMIN_API_KEY", README, re.M)
    assert re.search(
        r"^ORG_KEY=\.\.\.\s+# an organisation's key: the Org 'dev' admin key", README, re.M
    )
    calls = [call for call in map(curl_call, curl_commands(README)) if call and call.key]
    assert sum(call.key == "$KEY" for call in calls) >= 10
    assert {call.key for call in calls} == {"$KEY", "$OPERATOR_KEY", "$ORG_KEY"}


TENANT_ONLY = "require_tenant"
"""The dependency that answers the operator key 403 (forgestack_api.tenant)."""


def test_each_example_uses_a_key_its_route_accepts() -> None:
    """The admin key `$KEY` is the operator's, which tenant routes refuse: those examples must use
    the organisation key, and the others may use the admin key."""
    wrong = []
    for call in map(curl_call, curl_commands(README)):
        if call is None or call.key is None:
            continue
        route = route_for(call.method, call.path)
        assert route is not None, f"{call.method} {call.path}"
        tenant_only = TENANT_ONLY in route.dependencies
        if tenant_only != (call.key == "$ORG_KEY"):
            wrong.append(f"{route} with {call.key}")
    assert wrong == [], "README examples call routes with a key they refuse or need not: " + str(
        wrong
    )
