"""The real ``liaisonbot`` command: console through stdin, check-config, export, audit, usage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, stdin: str = "", env_config: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "liaisonbot.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    text = (ROOT / "config" / "liaisonbot.toml").read_text()
    text = text.replace("sqlite+aiosqlite:///var/liaisonbot.db",
                        f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    path = tmp_path / "liaisonbot.toml"
    path.write_text(text)
    return path


SESSION = """\
!liaison open ICC-01/14 to:ba-spo kind:mla due:30d Bank records of X
:in ba-spo
:as bojan
!liaison ack R-1 eta:2026-12-20 on it
!liaison list ICC-01/14
R-1: we found the account
:in icc-otp
:as alice
!liaison show R-1
:in eurojust
!liaison show R-1
"""


def test_console_session(config: Path) -> None:
    result = cli("console", "--config", str(config), "--now", "2026-11-30T10:00+01:00",
                 stdin=SESSION)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[console:ba-spo] R-1 opened: ICC-01/14, mla" in out
    assert "[console:ba-spo] R-1 is acknowledged now." in out
    assert "[console:icc-otp] [R-1 thread] console:bojan · ba-spo: we found the account" in out
    assert "relayed by console:bojan" in out
    assert "R-1 does not exist or Eurojust liaison desk is not party to it." in out
    assert "Traceback" not in out + result.stderr


def test_console_advance_sends_nudge_in_working_hours(config: Path) -> None:
    script = ("!liaison open C-9 to:ba-spo due:2026-12-02 Records\n"
              ":advance 3d\n")
    result = cli("console", "--config", str(config), "--now", "2026-11-30T10:00+01:00",
                 stdin=script)
    assert result.returncode == 0, result.stderr
    nudge = [line for line in result.stdout.splitlines() if "Reminder 1: R-1" in line]
    assert nudge and nudge[0].startswith("[console:ba-spo]")


def test_export_formats_and_need_to_know(config: Path) -> None:
    cli("console", "--config", str(config), "--now", "2026-11-30T10:00+01:00",
        stdin="!liaison open C-1 to:ba-spo =HYPERLINK(\"x\") first\n"
              "!liaison open C-1 to:fr-pnat conf:confidential secret witness\n")
    md = cli("export", "C-1", "--config", str(config))
    assert md.returncode == 0 and "| R-1 |" in md.stdout and "| R-2 |" in md.stdout
    assert "secret witness" not in md.stdout
    as_ba = json.loads(cli("export", "C-1", "--config", str(config), "--format", "json",
                           "--office", "ba-spo").stdout)
    assert [r["id"] for r in as_ba["requests"]] == ["R-1"]
    csv_out = cli("export", "C-1", "--config", str(config), "--format", "csv").stdout
    assert "'=HYPERLINK" in csv_out  # formula neutralised


def test_audit_verify_exit_codes(config: Path) -> None:
    cli("console", "--config", str(config), stdin="!liaison open C-1 to:ba-spo x\n")
    ok = cli("audit", "verify", "--config", str(config))
    assert ok.returncode == 0 and "intact" in ok.stdout
    import sqlite3

    db = sqlite3.connect(config.parent / "bot.db")
    db.execute("DROP TRIGGER history_no_update")  # the insider drops the append-only guard
    db.execute("UPDATE history SET detail = '{}' WHERE id = 1")
    db.commit()
    db.close()
    broken = cli("audit", "verify", "--config", str(config))
    assert broken.returncode == 1 and "entry 1" in broken.stdout


def test_check_config_names_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("""
[policy.due]
bribes = "3d"
mla = "soon"
[[offices]]
slug = "a"
timezone = "Mars/Olympus"
rooms = ["console:x"]
[[offices]]
slug = "a"
rooms = ["console:x"]
""")
    result = cli("check-config", "--config", str(bad))
    assert result.returncode == 1
    err = result.stderr
    assert "policy.due.bribes: unknown kind" in err
    assert "policy.due.mla" in err
    assert "offices[0].timezone: unknown time zone 'Mars/Olympus'" in err
    assert "the slug 'a' is used twice" in err
    assert str(bad) in err and "Traceback" not in err
    good = cli("check-config", "--config", str(ROOT / "config" / "liaisonbot.toml"))
    assert good.returncode == 0, good.stderr
    example = cli("check-config", "--config", str(ROOT / "config" / "liaisonbot.example.toml"))
    assert example.returncode == 0, example.stderr


def test_bad_usage_exits_2_with_one_line() -> None:
    result = cli("frobnicate")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    result = cli("export", "bad case!", "--config", str(ROOT / "config" / "liaisonbot.toml"))
    assert result.returncode == 2 and "not a case reference" in result.stderr


def test_run_serves_health_and_stops_on_sigterm(config: Path) -> None:
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.write_text(config.read_text().replace('listen = "127.0.0.1:3000"',
                                                 f'listen = "127.0.0.1:{port}"'))
    proc = subprocess.Popen([sys.executable, "-m", "liaisonbot.cli", "run", "--config",
                             str(config)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        body = None
        for _ in range(300):  # bounded wait for the server to come up (30 s)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    body = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.1)
        assert body is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert body["ok"] is True and body["database"]["ok"] is True
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            assert b"# HELP" in r.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
    assert "Traceback" not in proc.stderr.read()


def test_database_password_only_from_the_environment(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pw.toml"
    path.write_text('[database]\nurl = "postgresql+asyncpg://bot:hunter2@db/liaison"\n'
                    '[[offices]]\nslug = "a"\nrooms = ["console:a"]\n')
    refused = cli("check-config", "--config", str(path))
    assert refused.returncode == 1 and "database.url: holds a password" in refused.stderr
    assert "hunter2" not in refused.stderr
    from liaisonbot.config import parse

    monkeypatch.setenv("LIAISONBOT_DATABASE_URL", "postgresql+asyncpg://bot:s3cret@db/liaison")
    settings = parse({"database": {"url": "postgresql+asyncpg://bot@db/liaison"},
                      "offices": [{"slug": "a", "rooms": ["console:a"]}]}, "x")
    assert settings.database_url == "postgresql+asyncpg://bot:s3cret@db/liaison"


def _clean_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISONBOT_")}
    return {**env, **extra}


def _with_platforms(config: Path, slack_mode: str | None, matrix: bool = False) -> Path:
    text = config.read_text()
    if slack_mode:
        text += f'\n[slack]\nenabled = true\nmode = "{slack_mode}"\n'
    if matrix:
        text += ('\n[matrix]\nenabled = true\nhomeserver = "http://127.0.0.1:9"\n'
                 'user_id = "@bot:example.org"\n')
    config.write_text(text)
    return config


@pytest.mark.parametrize(("mode", "matrix", "names"), [
    ("http", False, ["LIAISONBOT_SLACK_SIGNING_SECRET"]),
    ("socket", False, ["LIAISONBOT_SLACK_APP_TOKEN"]),
    (None, True, ["LIAISONBOT_MATRIX_PICKLE_KEY", "LIAISONBOT_MATRIX_ACCESS_TOKEN"]),
])
def test_check_config_names_each_missing_secret(config: Path, mode: str | None, matrix: bool,
                                                names: list[str]) -> None:
    path = _with_platforms(config, mode, matrix)
    args = [sys.executable, "-m", "liaisonbot.cli", "check-config", "--config", str(path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env=_clean_env())
    assert result.returncode == 1, result.stdout
    for name in names:
        assert name in result.stderr
    assert "Traceback" not in result.stderr and "sound" not in result.stdout
    secrets = {"LIAISONBOT_SLACK_SIGNING_SECRET": "s", "LIAISONBOT_SLACK_APP_TOKEN": "xapp-1",
               "LIAISONBOT_MATRIX_PICKLE_KEY": "3b9e0f6a2c7d41e8a5f09c2d6b7e8f13", "LIAISONBOT_MATRIX_ACCESS_TOKEN": "t"}
    sound = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=ROOT,
                           env=_clean_env(**secrets))
    assert sound.returncode == 0, sound.stderr


def test_run_refuses_to_start_without_the_signing_secret(config: Path) -> None:
    """A real ``liaisonbot run`` in Slack http mode with no signing secret: exit 1 with one
    sentence naming the variable, before anything listens."""
    path = _with_platforms(config, "http")
    result = subprocess.run([sys.executable, "-m", "liaisonbot.cli", "run", "--config", str(path)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env=_clean_env(LIAISONBOT_SLACK_BOT_TOKEN="xoxb-t",
                                           LIAISONBOT_SLACK_SIGNING_SECRET=""))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "LIAISONBOT_SLACK_SIGNING_SECRET" in lines[0], result.stderr
    assert lines[0].startswith("liaisonbot: not starting:")
    assert not (config.parent / "bot.db").exists()  # refused before touching the database


def test_audit_checkpoint_and_verify_against_it(config: Path) -> None:
    """The real commands: ``audit checkpoint`` prints one ``lbcp1:`` word as its last line;
    ``audit verify --checkpoint`` accepts it after more work, refuses an altered one in one
    line (exit 2), and names a request an insider deleted with all its history (exit 1)."""
    import sqlite3

    cli("console", "--config", str(config),
        stdin="!liaison open C-1 to:ba-spo first\n!liaison open C-2 to:ba-spo second\n")
    taken = cli("audit", "checkpoint", "--config", str(config))
    assert taken.returncode == 0, taken.stderr
    word = taken.stdout.strip().splitlines()[-1]
    assert word.startswith("lbcp1:") and " " not in word
    cli("console", "--config", str(config), stdin="!liaison open C-3 to:ba-spo third\n")
    ok = cli("audit", "verify", "--config", str(config), "--checkpoint", word)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    altered = word[:-3] + ("A" if word[-3] != "A" else "B") + word[-2:]
    refused = cli("audit", "verify", "--config", str(config), "--checkpoint", altered)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "Traceback" not in refused.stderr
    db = sqlite3.connect(config.parent / "bot.db")
    db.execute("DROP TRIGGER history_no_delete")  # the insider drops the append-only guard
    db.execute("DELETE FROM history WHERE request_id = 2")
    db.execute("DELETE FROM request WHERE id = 2")
    db.commit()
    db.close()
    broken = cli("audit", "verify", "--config", str(config), "--checkpoint", word)
    assert broken.returncode == 1 and "R-2" in broken.stdout, broken.stdout
