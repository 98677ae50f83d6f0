"""BUG-3: every config error is one line ``<file>:<line>: <what is wrong>``, naming the system, integration or
table in words and pointing at the offending key; secret values never appear in a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import config as config_mod
from reconciler.errors import ConfigError
from reconciler.rules.locating import split_msgspec_error

TOKEN = "s3cr3t-Token-that-must-never-be-shown"

BASE = """\
[state]
path = "state.db"

[systems.oz]
kind = "ozmap"
url = "http://192.0.2.1"
secret = { env = "OZ_KEY" }

[integrations.ozmap-ixc]
entities = ["boxes"]
"""
ENV = {"OZ_KEY": "k", "ERP_TOKEN": TOKEN}


def error_of(tmp_path: Path, text: str) -> tuple[Path, str]:
    """The config file written from ``text`` and the message of the ConfigError loading it raises."""
    path = tmp_path / "reconciler.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        config_mod.load(path, environ=ENV)
    message = str(caught.value)
    assert "\n" not in message, message
    return path, message


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_base_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "reconciler.toml"
    path.write_text(BASE)
    assert config_mod.load(path, environ=ENV).systems["oz"].kind == "ozmap"


def test_an_unknown_system_kind_names_the_system_the_known_kinds_and_the_line_of_kind(tmp_path: Path) -> None:
    text = BASE + '\n[systems.erp]\nurl = "http://192.0.2.2"\nkind = "ixcc"\nsecret = { env = "ERP_TOKEN" }\n'
    path, message = error_of(tmp_path, text)
    line = line_of(text, 'kind = "ixcc"')
    assert message.startswith(f'{path}:{line}: systems.erp: unknown system kind "ixcc" (known: '), message
    assert "ixc, ozmap" in message


def test_an_unknown_key_in_an_integration(tmp_path: Path) -> None:
    text = BASE + "[integrations.ozmap-ixc.options]\nx = 1\n[integrations.archolt-ozmap]\nenabeld = false\n"
    path, message = error_of(tmp_path, text)
    assert message == f'{path}:{line_of(text, "enabeld")}: integrations.archolt-ozmap: unknown key "enabeld"'


def test_an_unknown_key_in_a_system_written_with_dotted_keys(tmp_path: Path) -> None:
    text = BASE.replace('url = "http://192.0.2.1"', 'url = "http://192.0.2.1"\nhttp.tiemout = 3')
    path, message = error_of(tmp_path, text)
    assert message == f'{path}:{line_of(text, "tiemout")}: systems.oz.http: unknown key "tiemout"'


def test_an_unknown_top_level_key(tmp_path: Path) -> None:
    text = 'colour = "blue"\n' + BASE
    path, message = error_of(tmp_path, text)
    assert message == f'{path}:1: unknown top-level key "colour"'


def test_a_wrong_type_in_daemon(tmp_path: Path) -> None:
    text = BASE + '\n[daemon]\nlisten = "127.0.0.1:0"\nshutdown-timeout = "soon"\n'
    path, message = error_of(tmp_path, text)
    line = line_of(text, "shutdown-timeout")
    assert message == f"{path}:{line}: daemon.shutdown-timeout: expected float, got str"


def test_a_bad_schedule_override_is_named_by_its_quoted_key(tmp_path: Path) -> None:
    text = BASE + '\n[daemon.schedules."ozmap-ixc/boxes"]\nfull = "1d"\nincremental = 0\n'
    path, message = error_of(tmp_path, text)
    line = line_of(text, "incremental = 0")
    assert message.startswith(f'{path}:{line}: daemon.schedules."ozmap-ixc/boxes".incremental: expected '), (
        message
    )


def test_a_wrong_type_in_a_list_points_at_the_list(tmp_path: Path) -> None:
    text = BASE.replace('entities = ["boxes"]', 'entities = ["boxes", 3]')
    path, message = error_of(tmp_path, text)
    line = line_of(text, "entities")
    assert message == f"{path}:{line}: integrations.ozmap-ixc.entities[1]: expected str, got int"


def test_a_share_out_of_range_points_at_its_key(tmp_path: Path) -> None:
    text = BASE + "\n[guard]\nmax-inactivate-share = 1.5\n"
    path, message = error_of(tmp_path, text)
    line = line_of(text, "max-inactivate-share")
    assert message == f"{path}:{line}: guard.max-inactivate-share: expected float <= 1.0"


def test_a_missing_required_key_points_at_the_table(tmp_path: Path) -> None:
    text = BASE + '\n[systems.erp]\nkind = "ixc"\nsecret = { env = "ERP_TOKEN" }\n'
    path, message = error_of(tmp_path, text)
    assert message == f'{path}:{line_of(text, "[systems.erp]")}: systems.erp: missing key "url"'


def test_a_table_that_is_not_a_table(tmp_path: Path) -> None:
    text = BASE + "\n[systems]\nerp = 3\n"
    path, message = error_of(tmp_path, text)
    assert message == f"{path}:{line_of(text, 'erp = 3')}: systems.erp: expected table, got int"


def test_a_missing_environment_variable_points_at_the_secret(tmp_path: Path) -> None:
    text = BASE + '\n[systems.erp]\nkind = "ixc"\nurl = "http://192.0.2.2"\nsecret = { env = "NOPE_UNSET" }\n'
    path, message = error_of(tmp_path, text)
    line = line_of(text, "NOPE_UNSET")
    assert message == f"{path}:{line}: systems.erp.secret: environment variable NOPE_UNSET is not set"


def test_a_daemon_webhook_secret_problem_points_at_its_line(tmp_path: Path) -> None:
    text = BASE + '\n[daemon]\nwebhook-secret = { file = "missing.key" }\n'
    path, message = error_of(tmp_path, text)
    assert message.startswith(
        f"{path}:{line_of(text, 'webhook-secret')}: daemon.webhook-secret: cannot read"
    ), message


def test_a_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    text = BASE.replace('kind = "ozmap"', 'kind = "ozmap')
    path, message = error_of(tmp_path, text)
    line = line_of(text, 'kind = "ozmap')
    assert message.startswith(f"{path}:{line}: invalid TOML: "), message
    assert f"at line {line}" in message


def test_a_toml_error_at_the_end_of_the_document_names_the_last_line(tmp_path: Path) -> None:
    text = BASE + "extra = [1,\n"
    path, message = error_of(tmp_path, text)
    assert message.startswith(f"{path}:{len(text.splitlines())}: invalid TOML: "), message


@pytest.mark.parametrize(
    "secret",
    [
        f'secret = "{TOKEN}"',
        f'secret = {{ env = ["{TOKEN}"] }}',
        f'secret = {{ env = "ERP_TOKEN", file = "{TOKEN}" }}',
        f'secret = {{ value = "{TOKEN}" }}',
        f'secret = {{ env = "{TOKEN}" }}\nwebhook-secret = "{TOKEN}"',
        f'secret = "{TOKEN}',  # a TOML syntax error on the secret's line
    ],
)
def test_a_secret_written_in_the_config_is_never_echoed(tmp_path: Path, secret: str) -> None:
    text = BASE + f'\n[systems.erp]\nkind = "ixc"\nurl = "http://192.0.2.2"\n{secret}\n'
    path, message = error_of(tmp_path, text)
    assert TOKEN not in message, message
    assert message.startswith(f"{path}:"), message
    assert "secret" in message or "TOML" in message, message


def test_the_daemon_webhook_secret_written_in_the_config_is_not_echoed(tmp_path: Path) -> None:
    text = BASE + f'\n[daemon]\nwebhook-secret = "{TOKEN}"\n'
    path, message = error_of(tmp_path, text)
    line = line_of(text, "webhook-secret")
    assert message.startswith(f"{path}:{line}: daemon.webhook-secret: a secret is never written"), message
    assert TOKEN not in message


def test_split_msgspec_error() -> None:
    assert split_msgspec_error("Expected `int`, got `str` - at `$.http.concurrency`") == (
        "Expected `int`, got `str`",
        ("http", "concurrency"),
    )
    assert split_msgspec_error("Expected `str`, got `int` - at `$.source.check[1].expr`") == (
        "Expected `str`, got `int`",
        ("source", "check", 1, "expr"),
    )
    assert split_msgspec_error("Object missing required field `url`") == (
        "Object missing required field `url`",
        (),
    )
