"""Daemon settings: flag, then environment, then ``[daemon]``, then default; schedules checked against rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import config as config_mod
from reconciler.daemon import settings
from reconciler.errors import ConfigError


def load(tmp_path: Path, daemon: str = "") -> config_mod.Config:
    path = tmp_path / "c.toml"
    path.write_text(f"[daemon]\n{daemon}\n")
    return config_mod.load(path, environ={})


def test_defaults(tmp_path: Path) -> None:
    resolved = settings.resolve(load(tmp_path))
    assert (resolved.host, resolved.port) == ("127.0.0.1", 8080)
    assert resolved.log_format == "json"  # auto, and stderr is not a terminal
    assert settings.resolve(load(tmp_path), isatty=True).log_format == "human"
    assert (resolved.shutdown_timeout, resolved.readiness_failures) == (30.0, 3)


def test_flag_beats_environment_beats_file(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'listen = "10.0.0.1:9000"\nlog-format = "human"')
    assert settings.resolve(cfg).port == 9000
    env = {
        "RECONCILER_LISTEN": "0.0.0.0:8081",
        "RECONCILER_LOG_FORMAT": "json",
        "RECONCILER_LOG_LEVEL": "debug",
    }
    from_env = settings.resolve(cfg, environ=env)
    assert (from_env.host, from_env.port, from_env.log_format, from_env.log_level) == (
        "0.0.0.0",
        8081,
        "json",
        "DEBUG",
    )
    from_flag = settings.resolve(cfg, listen="[::1]:0", log_format="human", environ=env)
    assert (from_flag.host, from_flag.port, from_flag.log_format) == ("::1", 0, "human")


@pytest.mark.parametrize("listen", ["8080", "host:", ":8080", "host:99999", "host:http"])
def test_bad_listen_addresses_are_config_errors(tmp_path: Path, listen: str) -> None:
    with pytest.raises(ConfigError, match="host:port"):
        settings.resolve(load(tmp_path), listen=listen)


def test_bad_log_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="log format"):
        settings.resolve(load(tmp_path), environ={"RECONCILER_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="log level"):
        settings.resolve(load(tmp_path, 'log-level = "LOUD"'))
    with pytest.raises(ConfigError, match="log-format"):
        load(tmp_path, 'log-format = "xml"')


def test_schedule_overrides_take_durations_or_seconds(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        '[daemon.schedules."ozmap-ixc/boxes"]\nincremental = "1m30s"\n'
        '[daemon.schedules."ozmap-ixc/clients"]\nfull = 7200\n',
    )
    resolved = settings.resolve(cfg)
    assert resolved.schedule("ozmap-ixc/boxes", incremental=300, full=86400) == (90, 86400)
    assert resolved.schedule("ozmap-ixc/clients", incremental=300, full=86400) == (300, 7200)
    assert resolved.schedule("ozmap-ixc/ports", incremental=300, full=86400) == (300, 86400)
    resolved.check_schedules(["ozmap-ixc/boxes", "ozmap-ixc/clients"], "c.toml")
    with pytest.raises(ConfigError, match=r"ozmap-ixc/clients, which is not an enabled entity"):
        resolved.check_schedules(["ozmap-ixc/boxes"], "c.toml")


def test_bad_durations_are_config_errors(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[daemon.schedules."ozmap-ixc/boxes"]\nincremental = "soon"\n')
    with pytest.raises(ConfigError, match=r"daemon.schedules.ozmap-ixc/boxes.incremental: bad duration"):
        settings.resolve(cfg)
    with pytest.raises(ConfigError):
        load(tmp_path, '[daemon.schedules."ozmap-ixc/boxes"]\nincremental = 0\n')
