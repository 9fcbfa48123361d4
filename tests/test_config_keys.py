"""The config's schema (issue 26): every unknown key in every table is a problem named with the
nearest known one, `check-config` exits 1 on it and `run` refuses to start; offices' points of
contact, on-call users, country and accepted languages are validated."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import BASE_CONFIG, make_settings
from liaisonbot.config import ConfigError, parse, unknown_keys
from liaisonbot.domain.model import Contact

ROOT = Path(__file__).resolve().parent.parent

#: One misspelt key in each table the file may hold.
MISSPELT = """
[databse]
url = "sqlite+aiosqlite:///x.db"
[http]
listn = "127.0.0.1:3000"
[slack]
enabled = false
mdoe = "socket"
[matrix]
enabled = false
homserver = "https://matrix.example.org"
[policy]
ack_whitin = "5bd"
[policy.due]
mla = "30d"
evidance = "30d"
[policy.nudges]
escalate_form = 3
[reports]
weekley = true
[web]
enabled = false
base_ulr = "https://liaison.example.org"
[instruments.eio]
name = "European Investigation Order (Directive 2014/41/EU)"
requries = ["basis"]
[[offices]]
slug = "icc-otp"
workng_hours = "09:00-17:30"
rooms = ["console:icc"]
contacts = [{ name = "Alice Martin", role = "liaison prosecutor", phnoe = "+31705550142", email = "a@icc.example.org", languages = ["en"] }]
"""
EXPECTED = [
    "databse: unknown section; did you mean database?",
    "http.listn: unknown key; did you mean listen?",
    "slack.mdoe: unknown key; did you mean mode?",
    "matrix.homserver: unknown key; did you mean homeserver?",
    "policy.ack_whitin: unknown key; did you mean ack_within?",
    "policy.due.evidance: unknown kind; did you mean evidence?",
    "policy.nudges.escalate_form: unknown key; did you mean escalate_from?",
    "reports.weekley: unknown key; did you mean weekly?",
    "web.base_ulr: unknown key; did you mean base_url?",
    "instruments.eio.requries: unknown key; did you mean requires?",
    "offices[0].workng_hours: unknown key; did you mean working_hours?",
    "offices[0].contacts[0].phnoe: unknown key; did you mean phone?",
]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "liaisonbot.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_every_unknown_key_in_every_table_is_named_with_the_nearest_known_one() -> None:
    assert unknown_keys(tomllib.loads(MISSPELT)) == EXPECTED
    with pytest.raises(ConfigError) as caught:
        parse(tomllib.loads(MISSPELT), "misspelt.toml")
    for problem in EXPECTED:
        assert problem in caught.value.problems


def test_a_key_near_nothing_lists_the_known_ones() -> None:
    assert unknown_keys({"http": {"colour": "blue"}}) == ["http.colour: unknown key; known: listen"]
    assert unknown_keys({"offices": [{"slug": "a", "Timezone": "UTC"}]}) == [
        "offices[0].Timezone: unknown key; did you mean timezone?"]


def test_check_config_and_run_refuse_an_ignored_key(tmp_path: Path) -> None:
    """The issue's case: `workng_hours` used to be ignored and the office chased on the default
    hours, with check-config calling the file sound."""
    path = tmp_path / "typo.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "x.db"}"\n'
                    '[[offices]]\nslug = "icc-otp"\nworkng_hours = "09:00-17:30"\n'
                    'rooms = ["console:icc"]\n')
    for command in ("check-config", "run"):
        done = cli(command, "--config", str(path))
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert f"{path}: offices[0].workng_hours: unknown key; did you mean working_hours?" \
            in done.stderr
        assert "Traceback" not in done.stderr and "sound" not in done.stdout
    assert not (tmp_path / "x.db").exists()  # run stopped before it touched the database


def _shipped_configs() -> dict[str, dict[str, Any]]:
    configmap = yaml.safe_load((ROOT / "deploy" / "k8s" / "configmap.yaml").read_text())
    found = {str(p.relative_to(ROOT)): tomllib.loads(p.read_text())
             for p in [*(ROOT / "config").glob("*.toml"), ROOT / "deploy" / "liaisonbot.compose.toml"]}
    found["deploy/k8s/configmap.yaml"] = tomllib.loads(configmap["data"]["liaisonbot.toml"])
    for i, block in enumerate(re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(),
                                         re.S)):
        found[f"README.md toml block {i}"] = tomllib.loads(block)
    found["tests/conftest.py BASE_CONFIG"] = BASE_CONFIG
    return found


def test_every_config_in_the_repository_uses_known_keys_only() -> None:
    configs = _shipped_configs()
    assert len(configs) >= 6
    for name, data in configs.items():
        assert unknown_keys(data) == [], name
    for name in ("config/liaisonbot.toml", "config/liaisonbot.example.toml",
                 "deploy/liaisonbot.compose.toml", "deploy/k8s/configmap.yaml"):
        parse(configs[name], name)  # sound as a whole, too


# ---------------------------------------------------------------------- points of contact

def _office_problems(**office: Any) -> list[str]:
    offices = copy.deepcopy(BASE_CONFIG["offices"])
    offices[0].update(office)
    try:
        make_settings("sqlite+aiosqlite:///x.db", offices=offices)
    except ConfigError as error:
        return error.problems
    return []


GOOD = {"name": "Alice Martin", "role": "liaison prosecutor", "user": "matrix:@alice:icc.example",
        "phone": "+31705550142", "email": "alice.martin@icc.example.org",
        "languages": ["en", "fr"]}


def test_contacts_country_on_call_and_languages_are_read() -> None:
    offices = copy.deepcopy(BASE_CONFIG["offices"])
    offices[1].update(contacts=[GOOD, {"name": "Duty", "role": "duty officer",
                                       "phone": "+38733555000", "languages": ["bs"]}],
                      on_call=["console:duty-ba"], country="BA",
                      accepts_languages=["bs", "hr", "sr", "en"])
    office = make_settings("sqlite+aiosqlite:///x.db", offices=offices).directory.office("ba-spo")
    assert office is not None
    assert office.contacts[0] == Contact(name="Alice Martin", role="liaison prosecutor",
                                         user="matrix:@alice:icc.example", phone="+31705550142",
                                         email="alice.martin@icc.example.org",
                                         languages=("en", "fr"))
    assert office.contacts[1].user is None and office.contacts[1].email is None
    assert (office.on_call, office.country) == (("console:duty-ba",), "BA")
    assert office.request_languages == ("bs", "hr", "sr", "en")
    directory = make_settings("sqlite+aiosqlite:///x.db").directory
    plain, court = directory.office("ua-pgo"), directory.office("icc-otp")
    assert plain is not None and plain.request_languages == ("en",)  # its own language
    assert court is not None and court.country is None and court.on_call == ()  # optional


def test_check_config_refuses_a_contact_with_a_bad_user_reference(tmp_path: Path) -> None:
    path = tmp_path / "contact.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "x.db"}"\n'
                    '[[offices]]\nslug = "icc-otp"\nrooms = ["console:icc"]\n'
                    '[[offices.contacts]]\nname = "Alice Martin"\nrole = "liaison prosecutor"\n'
                    'user = "alice@icc"\nlanguages = ["en"]\n')
    done = cli("check-config", "--config", str(path))
    assert done.returncode == 1
    assert (f"{path}: offices[0].contacts[0].user: 'alice@icc' is not a user like "
            "slack:U123ABC, matrix:@alice:example.org or console:alice") in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("contact", "problem"), [
    ({"user": "alice"}, "offices[0].contacts[0].user: 'alice' is not a user like"),
    ({"phone": "+31 70 555 0142"}, "offices[0].contacts[0].phone: '+31 70 555 0142' is not a "
                                   "phone number in E.164 form"),
    ({"phone": "0705550142"}, "offices[0].contacts[0].phone: '0705550142' is not a phone"),
    ({"phone": 31705550142}, "offices[0].contacts[0].phone: '31705550142' is not a phone"),
    ({"email": "alice at icc"}, "offices[0].contacts[0].email: 'alice at icc' is not an email"),
    ({"name": ""}, "offices[0].contacts[0].name: is required"),
    ({"role": None}, "offices[0].contacts[0].role: is required"),
    ({"languages": None}, "offices[0].contacts[0].languages: is required"),
    ({"languages": []}, "offices[0].contacts[0].languages: needs a list of language codes"),
    ({"languages": ["english"]}, "offices[0].contacts[0].languages: 'english' is not a language"),
    ({"user": None, "phone": None, "email": None},
     "offices[0].contacts[0]: gives no way to reach them: add a user, phone or email"),
])
def test_each_bad_contact_field_is_named(contact: dict[str, Any], problem: str) -> None:
    given = {k: v for k, v in {**GOOD, **contact}.items() if v is not None}
    found = _office_problems(contacts=[given])
    assert any(p.startswith(problem) for p in found), found


@pytest.mark.parametrize(("office", "problem"), [
    ({"contacts": {"name": "x"}}, "offices[0].contacts: a list of tables like"),
    ({"on_call": ["duty"]}, "offices[0].on_call: 'duty' is not a user like"),
    ({"on_call": "console:duty"}, "offices[0].on_call: needs a list of users"),
    ({"country": "Netherlands"}, "offices[0].country: 'Netherlands' is not an ISO 3166-1"),
    ({"country": "EU"}, "offices[0].country: 'EU' is not an ISO 3166-1"),
    ({"accepts_languages": ["nl", "xx"]}, "offices[0].accepts_languages: 'xx' is not a language"),
    ({"accepts_languages": "nl"}, "offices[0].accepts_languages: needs a list"),
])
def test_each_bad_office_field_is_named(office: dict[str, Any], problem: str) -> None:
    found = _office_problems(**office)
    assert any(p.startswith(problem) for p in found), found


def test_offices_must_be_tables() -> None:
    data = copy.deepcopy(BASE_CONFIG)
    data["offices"] = {"slug": "a"}
    with pytest.raises(ConfigError) as caught:
        parse(data, "x")
    assert "offices: write each office as an [[offices]] table" in caught.value.problems
