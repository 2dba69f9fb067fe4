#!/usr/bin/env python3
"""Build srp-pcap's LogRhythm SmartResponse package (.lpi).

    python build_lpi.py [--output DIR] [--python PATH] [--platform TAG]... [--python-version X.Y]

Writes ARPlugin_<GUID>_<YYYYMMDD>.lpi into --output (default dist/) and prints its path: a
gzip stream of a ustar tar laid out as LogRhythm's own packages are (see the README,
"Installing in LogRhythm"). The package is self-contained: pip installs the project's
dependencies into it as binary wheels for the Event Manager's platform and Python.

The same tree builds the same bytes: members in a fixed order, every time taken from
SOURCE_DATE_EPOCH or else the last commit, a fixed gzip header.

Exit codes: 0 built; 1 not built (actions.xml invalid, pip failed, ...); 2 bad command line;
130 interrupted.
"""

from __future__ import annotations

import argparse
import email.parser
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

try:
    from lxml import etree
except ImportError as exc:  # the build needs the project's own environment
    sys.exit(f"build_lpi.py: error: {exc}: run it with the project's Python (pip install -e .)")

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip carries the same parser
    from pip._vendor import tomli as tomllib

try:
    from packaging.requirements import Requirement
except ImportError:  # pip, which the build runs anyway, carries its own copy
    from pip._vendor.packaging.requirements import Requirement

PROG = "build_lpi.py"
ROOT = Path(__file__).resolve().parent
ACTIONS = ROOT / "actions.xml"
SCHEMA = ROOT / "smartresponse" / "actions.xsd"
LAUNCHER = ROOT / "smartresponse" / "srp_pcap.py"
PACKAGE = ROOT / "srp"
PYPROJECT = ROOT / "pyproject.toml"

NAMESPACE = "RemediationVersion1.xsd"
ACTION, CONSTANT, STRING, ENCRYPTED = (
    f"{{{NAMESPACE}}}{tag}"
    for tag in ("Action", "ConstantParameter", "StringParameter", "EncryptedParameter"))
DEPENDENCIES = "lib"          # Plugin/bin/lib: the launcher puts it on sys.path
# Parts of srp that no action runs: the vendor simulators and the demo (srp-pcap[simulators]).
TEST_TOOLS = ("simulators", "demo.py")
OS_NTFS = 11                  # the gzip OS byte LogRhythm's packager writes
MAX_RESOLUTIONS = 5           # pip runs to close the dependencies under the target's markers

# (platform tag prefix, platform_system, sys_platform, os_name) for environment markers
SYSTEMS = [("win", "Windows", "win32", "nt"),
           ("manylinux", "Linux", "linux", "posix"),
           ("musllinux", "Linux", "linux", "posix"),
           ("linux", "Linux", "linux", "posix"),
           ("macosx", "Darwin", "darwin", "posix")]


class BuildError(Exception):
    """Why the package was not built: one line for the person building it."""


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        print(build(options))
    except BuildError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{PROG}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 130
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description="Build srp-pcap's LogRhythm "
                                     "SmartResponse package (.lpi).")
    parser.add_argument("--output", type=Path, default=ROOT / "dist", metavar="DIR",
                        help="folder for the .lpi (default: dist/)")
    parser.add_argument("--python", metavar="PATH",
                        help="python.exe on the Event Manager, the actions' Command (default: "
                             r"C:\Program Files\PythonXY\python.exe for --python-version)")
    parser.add_argument("--platform", action="append", metavar="TAG",
                        help="wheel platform tag of the Event Manager, repeatable "
                             "(default: win_amd64)")
    parser.add_argument("--python-version", default="3.11", metavar="X.Y",
                        help="the Event Manager's Python version (default: 3.11)")
    options = parser.parse_args(argv)
    if not re.fullmatch(r"3\.\d{1,2}", options.python_version):
        parser.error(f"--python-version: expected 3.Y, got {options.python_version!r}")
    options.platform = options.platform or ["win_amd64"]
    minor = options.python_version.split(".")[1]
    options.python = options.python or rf"C:\Program Files\Python3{minor}\python.exe"
    if not options.python.strip() or '"' in options.python:
        parser.error("--python: expected a path to python.exe, without quote marks")
    return options


def build(options: argparse.Namespace) -> Path:
    source = with_command(ACTIONS.read_bytes(), options.python)
    tree = check_actions(source)
    guid = tree.getroot().get("Guid")
    epoch = source_epoch()
    name = f"ARPlugin_{guid}_{time.strftime('%Y%m%d', time.gmtime(epoch))}"
    with tempfile.TemporaryDirectory(prefix="srp-lpi-") as staging:
        plugin = Path(staging) / "Plugin"
        stage_plugin(plugin, source, tree, options)
        return write_lpi(plugin, options.output.resolve() / f"{name}.lpi", f"{name}.tar",
                         epoch)


# --- actions.xml ---

def with_command(source: bytes, python: str) -> bytes:
    """actions.xml with every action's Command set to `python`; the rest byte for byte."""
    value = python.replace("&", "&amp;").replace("<", "&lt;")
    text = re.sub(r'(<(?:\w+:)?Action\b[^>]*?\bCommand=")[^"]*(")',
                  lambda match: match.group(1) + value + match.group(2),
                  source.decode("utf-8"))
    return text.encode("utf-8")


def check_actions(source: bytes) -> etree._ElementTree:
    """The parsed actions.xml, if it follows the schema and every action runs a real
    srp-pcap command with real options, each action its own first parameter; else
    BuildError."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             remove_blank_text=True)
    try:
        tree = etree.ElementTree(etree.fromstring(source, parser))
    except etree.XMLSyntaxError as exc:
        raise BuildError(f"{ACTIONS.name} is not well-formed XML: {exc}") from None
    schema = etree.XMLSchema(etree.parse(str(SCHEMA), parser))
    if not schema.validate(tree):
        error = schema.error_log.last_error
        raise BuildError(f"{ACTIONS.name}: line {error.line}: {error.message} "
                         f"(schema: {SCHEMA.relative_to(ROOT).as_posix()})")
    commands, constants = cli_commands(), {}
    for action in tree.getroot().iterchildren(ACTION):
        check_action(action, commands)
        # The launcher tells the actions apart by their constants (srp_pcap.py reads them).
        first = min(action_parameters(action), key=lambda p: int(p.get("Order")))
        words = tuple(first.get("Switch").split())
        if words in constants:
            raise BuildError(f"{where(action)}: has the first parameter of the action "
                             f"{constants[words]!r}, by which the launcher tells them apart")
        constants[words] = action.get("Name")
    return tree


def cli_commands() -> dict:
    """srp-pcap's click commands by name, from this tree's srp package."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        from srp.cli import main as cli
    except Exception as exc:  # a broken tree is reported, not shown as a traceback
        raise BuildError(f"srp.cli does not import: {type(exc).__name__}: {exc}") from None
    return cli.commands


def check_action(action, commands: dict) -> None:
    """The first parameter names the launcher and a command; every other one is an option
    of that command that takes a value; every option the command requires is there."""
    parameters = sorted(action_parameters(action), key=lambda p: int(p.get("Order")))
    command = launched_command(action, parameters[0], commands)
    given = set()
    for parameter in parameters[1:]:
        option = option_of(parameter, command, action)
        if option.name in given:
            raise BuildError(f"{where(action, parameter)}: {option.opts[0]} is given twice")
        given.add(option.name)
    missing = [param.opts[0] for param in command.params
               if param.required and param.name not in given]
    if missing:
        raise BuildError(f"{where(action)}: leaves out {', '.join(missing)}, which "
                         f"'srp-pcap {command.name}' requires")


def action_parameters(action) -> list:
    """ConstantParameter and StringParameter elements, an EncryptedParameter's inside it."""
    return [element.find(STRING) if element.tag == ENCRYPTED else element
            for element in action.iterchildren(CONSTANT, STRING, ENCRYPTED)]


def launched_command(action, parameter, commands: dict):
    """The command the first parameter starts: `srp_pcap.py COMMAND [--FLAG...]`, the flags
    (fixed by the action, never by an alarm) among the command's own."""
    words = parameter.get("Switch").split()
    if parameter.tag != CONSTANT or len(words) < 2 or words[0] != LAUNCHER.name:
        raise BuildError(f"{where(action)}: its first parameter must be the constant "
                         f"'{LAUNCHER.name} COMMAND [--FLAG...]'")
    if words[1] not in commands:
        raise BuildError(f"{where(action)}: 'srp-pcap {words[1]}' is not a command of "
                         f"srp-pcap ({', '.join(sorted(commands))})")
    command = commands[words[1]]
    flags = {opt for param in command.params if getattr(param, "is_flag", False)
             for opt in param.opts}
    for word in words[2:]:
        if word not in flags:
            raise BuildError(f"{where(action)}: {word!r} in its first parameter is not a "
                             f"flag of 'srp-pcap {command.name}'")
    return command


def option_of(parameter, command, action):
    """The command's option a parameter fills; its Switch is `--name=` or `--name `."""
    if parameter.tag == CONSTANT:
        raise BuildError(f"{where(action, parameter)}: only the first parameter may be a "
                         "constant")
    switch = parameter.get("Switch")
    name = switch[:-1].strip() if switch.endswith(("=", " ")) else None
    options = {opt: param for param in command.params if param.param_type_name == "option"
               for opt in param.opts}
    if name not in options:
        raise BuildError(f"{where(action, parameter)}: Switch {switch!r} must be an option "
                         f"of 'srp-pcap {command.name}' followed by '=' or a space")
    if getattr(options[name], "is_flag", False):
        raise BuildError(f"{where(action, parameter)}: {name} is a flag: it takes no value")
    return options[name]


def where(action, parameter=None) -> str:
    place = f"{ACTIONS.name}: action {action.get('Name')!r}"
    return f"{place}, parameter {parameter.get('Name')!r}" if parameter is not None else place


def config_copy(tree: etree._ElementTree) -> bytes:
    """Plugin/config/actions.xml as LogRhythm's packager rewrites it: UTF-8 with a byte-order
    mark, CRLF line ends, 2-space indent."""
    text = ('<?xml version="1.0" encoding="utf-8"?>\n'
            + etree.tostring(tree, encoding="unicode", pretty_print=True))
    return text.replace("\n", "\r\n").encode("utf-8-sig")


def source_epoch() -> int:
    """The time of every member: SOURCE_DATE_EPOCH, else the last commit's."""
    if "SOURCE_DATE_EPOCH" in os.environ:
        value = os.environ["SOURCE_DATE_EPOCH"]
        if not value.isdigit():
            raise BuildError(f"SOURCE_DATE_EPOCH: expected seconds since 1970, got {value!r}")
        return int(value)
    try:
        done = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"],
                              capture_output=True, text=True, check=True)
        return int(done.stdout.strip())
    except (OSError, subprocess.CalledProcessError, ValueError):
        raise BuildError("no time for the package: set SOURCE_DATE_EPOCH (this tree is not a "
                         "git checkout with a commit)") from None


# --- the Plugin folder ---

def stage_plugin(plugin: Path, source: bytes, tree, options: argparse.Namespace) -> None:
    """Plugin/bin: actions.xml, the launcher, srp (without its test tools) and its
    dependencies; Plugin/config."""
    bin_dir, config_dir = plugin / "bin", plugin / "config"
    bin_dir.mkdir(parents=True)
    config_dir.mkdir()
    (bin_dir / "actions.xml").write_bytes(source)
    (config_dir / "actions.xml").write_bytes(config_copy(tree))
    shutil.copyfile(LAUNCHER, bin_dir / LAUNCHER.name)
    shutil.copytree(PACKAGE, bin_dir / PACKAGE.name, ignore=left_out)
    install_dependencies(bin_dir / DEPENDENCIES, options.platform, options.python_version)


def left_out(folder: str, names: list[str]) -> set[str]:
    """copytree's ignore: the names in `folder` that stay out of the package."""
    ignored = set(shutil.ignore_patterns("__pycache__", "*.pyc")(folder, names))
    if Path(folder) == PACKAGE:
        ignored.update(name for name in names if name in TEST_TOOLS)
    return ignored


def install_dependencies(lib: Path, platforms: list[str], python_version: str) -> None:
    """pip installs the project's dependencies for the target: binary wheels only, so
    nothing is compiled here and nothing is fetched on the Event Manager.

    pip judges markers (`; python_version < "3.14"`) by the Python running it, not the
    target's: what the target needs and pip left out is asked for by name, until none is."""
    environment = target_environment(platforms, python_version)
    wanted = project_requirements()
    for _ in range(MAX_RESOLUTIONS):
        shutil.rmtree(lib, ignore_errors=True)
        pip_install(lib, wanted, platforms, python_version)
        missing = missing_requirements(lib, environment)
        if not missing:
            shutil.rmtree(lib / "bin", ignore_errors=True)  # console scripts for this host
            return
        wanted += missing
    raise BuildError(f"pip did not install {', '.join(missing)} for the target")


def target_environment(platforms: list[str], python_version: str) -> dict[str, str]:
    """The environment markers of the Event Manager's Python."""
    systems = {system_of(tag) for tag in platforms}
    if len(systems) != 1:
        raise BuildError(f"--platform {' '.join(platforms)}: expected the tags of one "
                         "operating system")
    system, sys_platform, os_name = systems.pop()
    return {"os_name": os_name, "sys_platform": sys_platform, "platform_system": system,
            "python_version": python_version, "python_full_version": f"{python_version}.0",
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "implementation_version": f"{python_version}.0", "extra": ""}


def system_of(tag: str) -> tuple[str, str, str]:
    for prefix, *system in SYSTEMS:
        if tag.startswith(prefix):
            return tuple(system)
    raise BuildError(f"--platform {tag}: not a wheel platform tag of Windows, Linux or macOS "
                     "(win_amd64, manylinux2014_x86_64, macosx_11_0_arm64, ...)")


def project_requirements() -> list[str]:
    with PYPROJECT.open("rb") as file:
        return list(tomllib.load(file)["project"]["dependencies"])


def pip_install(lib: Path, requirements: list[str], platforms: list[str],
                python_version: str) -> None:
    print(f"{PROG}: installing the dependencies for {', '.join(platforms)}, "
          f"Python {python_version}", file=sys.stderr)
    command = [sys.executable, "-m", "pip", "install", "--target", str(lib),
               "--only-binary=:all:", "--implementation", "cp",
               "--python-version", python_version,
               *[f"--platform={tag}" for tag in platforms],
               "--no-compile", "--disable-pip-version-check", "--no-input", "--quiet",
               *requirements]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or ["no output"]
        reason = next((line for line in lines if line.startswith("ERROR:")), lines[-1])
        raise BuildError(f"pip could not install the dependencies for "
                         f"{', '.join(platforms)}, Python {python_version}: {reason}")


def missing_requirements(lib: Path, environment: dict[str, str]) -> list[str]:
    """Requirements of the installed distributions that the target needs and lib lacks."""
    installed, requires = set(), []
    for path in sorted(lib.glob("*.dist-info/METADATA")):
        metadata = email.parser.BytesHeaderParser().parsebytes(path.read_bytes())
        installed.add(canonical_name(metadata["Name"]))
        requires += metadata.get_all("Requires-Dist", [])
    missing = set()
    for requirement in map(Requirement, requires):
        needed = requirement.marker is None or requirement.marker.evaluate(environment)
        if needed and canonical_name(requirement.name) not in installed:
            requirement.marker = None
            missing.add(str(requirement))
    return sorted(missing)


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- the .lpi ---

def write_lpi(plugin: Path, target: Path, inner_name: str, epoch: int) -> Path:
    """gzip(ustar tar of Plugin/), written under a temporary name and renamed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("wb") as raw:
            stream = GzipStream(raw, inner_name, epoch)
            with tarfile.open(fileobj=stream, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for path in [plugin, *walk(plugin)]:
                    add_member(tar, path, path.relative_to(plugin.parent).as_posix(), epoch)
            stream.close()
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def walk(folder: Path):
    """Every file and folder below `folder`, each folder before its contents, by name."""
    for path in sorted(folder.iterdir(), key=lambda entry: entry.name):
        yield path
        if path.is_dir():
            yield from walk(path)


def add_member(tar: tarfile.TarFile, path: Path, name: str, epoch: int) -> None:
    """As real packages have them: uid/gid 0, no user names, mode 0644 on files and
    folders alike."""
    info = tarfile.TarInfo(name)
    info.mtime, info.mode, info.uname, info.gname = epoch, 0o644, "", ""
    try:
        if path.is_dir():
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        else:
            info.size = path.stat().st_size
            with path.open("rb") as file:
                tar.addfile(info, file)
    except ValueError as exc:  # a path too long for ustar
        raise BuildError(f"{name}: {exc}") from None


class GzipStream:
    """A gzip stream with the header LogRhythm's packager writes (the inner .tar's name,
    OS byte NTFS) and a fixed time, so the same tar gives the same bytes."""

    def __init__(self, raw, inner_name: str, mtime: int):
        self._raw, self._crc, self._size = raw, 0, 0
        self._compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        flags_fname, extra_flags_best = 0x08, 0x02
        raw.write(bytes([0x1F, 0x8B, zlib.DEFLATED, flags_fname])
                  + struct.pack("<I", mtime) + bytes([extra_flags_best, OS_NTFS])
                  + inner_name.encode("ascii") + b"\0")

    def write(self, data) -> int:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._raw.write(self._compressor.compress(data))
        return len(data)

    def tell(self) -> int:
        return self._size

    def close(self) -> None:
        self._raw.write(self._compressor.flush()
                        + struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))


if __name__ == "__main__":
    sys.exit(main())
