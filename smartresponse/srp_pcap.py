"""srp-pcap inside a LogRhythm SmartResponse package: the script every action runs.

The Alarming and Response Manager starts `python.exe srp_pcap.py COMMAND --option=value ...`
in the package's Plugin\\bin folder. The srp package lies beside this file and its
dependencies in lib\\, so the Event Manager needs only Python: no pip, no internet, no PATH.

The ARM writes alarm values, which an attacker can choose, into that one command line, and a
quote mark in a value splits it into more arguments (`x" --log-file=C:\\...`). So before
anything else runs, the arguments must be exactly the layout of one action of the
actions.xml beside this file: its constant's words, then every one of its parameters once,
in Order, as its Switch and value. Anything else ends the run with exit code 2 (and a
package without its actions.xml, with 1).
"""

import sys
from pathlib import Path
from xml.parsers import expat

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "actions.xml"
NAMESPACE = "RemediationVersion1.xsd"
ACTION, CONSTANT, STRING, ENCRYPTED = (     # expat's names: the namespace, a space, the tag
    f"{NAMESPACE} {tag}"
    for tag in ("Action", "ConstantParameter", "StringParameter", "EncryptedParameter"))
EXIT_ERROR, EXIT_USAGE = 1, 2               # srp.errors' codes, before srp is importable
SHOWN = 60                                  # characters of an argument an error shows


def stop(message: str, code: int) -> None:
    """End the run with one line on stderr and stdout (the Web Console shows only stdout)."""
    for stream in (sys.stderr, sys.stdout):
        if stream is not None:
            print(f"srp-pcap: error: {message}", file=stream, flush=True)
    sys.exit(code)


def declared_actions(path: Path) -> dict:
    """The actions of actions.xml by their command words (`('cisco', '--preview')`): each its
    name and its parameters after the constant, in Order, as (Switch, encrypted)."""
    found, encrypted = [], False             # [(name, [(Order, Switch, encrypted), ...])]

    def start(tag, attributes):
        nonlocal encrypted
        if tag == ACTION:
            found.append((attributes.get("Name"), []))
        elif tag == ENCRYPTED:               # it wraps exactly one StringParameter
            encrypted = True
        elif tag in (CONSTANT, STRING) and found:
            found[-1][1].append((int(attributes["Order"]), attributes["Switch"], encrypted))
            encrypted = False

    def no_doctype(*_):                      # so no entity of any kind is ever declared
        raise ValueError("it has a DOCTYPE")

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = no_doctype
    try:
        parser.Parse(path.read_bytes(), True)
        actions = {}
        for name, parameters in found:
            (_, constant, _), *rest = sorted(parameters)
            actions.setdefault(tuple(constant.split()[1:]),   # the build keeps them unique
                               (name, [(switch, secret) for _, switch, secret in rest]))
    except OSError as exc:
        stop(f"{path}: {exc.strerror or exc}: the package is broken (import it again)",
             EXIT_ERROR)
    except (expat.ExpatError, KeyError, ValueError) as exc:
        stop(f"{path}: not the package's actions.xml ({type(exc).__name__}: {exc}): the "
             "package is broken (import it again)", EXIT_ERROR)
    if not actions:
        stop(f"{path}: declares no action: the package is broken (import it again)",
             EXIT_ERROR)
    return actions


def check(arguments: list[str], actions: dict) -> None:
    """Stop unless `arguments` are one action's layout: the longest constant they start
    with (`cisco --preview`, not `cisco`), then each parameter as the ARM lays it out."""
    words = max((key for key in actions if tuple(arguments[:len(key)]) == key), key=len,
                default=None)
    if words is None:
        first = f"argument 1 is {shown(arguments[0])}" if arguments else "there is no argument"
        commands = ", ".join(" ".join(key) for key in actions)
        stop(f"the command line begins with no action's command of {MANIFEST.name} "
             f"({commands}; {first}): nothing was run", EXIT_USAGE)
    name, parameters = actions[words]
    position, secret_before = len(words), False
    for switch, secret in parameters:
        glued = switch.endswith("=")         # `--name=VALUE`; else `--name ` VALUE: two
        if position < len(arguments):
            given = arguments[position]
            if not (given.startswith(switch) if glued else given == switch.strip()):
                refuse(position, arguments, name, f"which has {switch.strip()!r} there",
                       secret_before)
        position += 1 if glued else 2
        if position > len(arguments):       # the ARM passes every parameter, even empty
            stop(f"the command line ends without {switch.strip()!r}, a parameter of the "
                 f"action '{name}': nothing was run", EXIT_USAGE)
        secret_before = secret
    if position < len(arguments):
        refuse(position, arguments, name, "which has no more", secret_before)


def refuse(position: int, arguments: list[str], name: str, why: str,
           secret_before: bool) -> None:
    """Stop at the argument `position`: a bare word, or anything right after a secret, may
    be a piece of a secret that a quote mark split, so it shows only its length."""
    argument = arguments[position]
    hidden = secret_before or not argument.startswith("-")
    stop(f"argument {position + 1} ({shown(argument, hidden)}) is not a parameter of the "
         f"action '{name}', {why}: nothing was run", EXIT_USAGE)


def shown(argument: str, hidden: bool = False) -> str:
    """An argument as an error shows it: its switch up to '=', escaped and cut, never its
    value; or, `hidden`, only its length."""
    if hidden:
        return f"{characters(len(argument))}, not shown"
    switch, equals, value = argument.partition("=")
    text = ascii(switch + equals)[1:-1]      # control and bidi characters escaped: one line
    text = text if len(text) <= SHOWN else text[:SHOWN - 3] + "..."
    return f"'{text}'" + (f" with a value of {characters(len(value))}" if value else "")


def characters(count: int) -> str:
    return f"{count} character{'' if count == 1 else 's'}"


# The ARM reads the output through a pipe in the ANSI code page: a character that page
# lacks (an attacker's host name) is escaped instead of ending the run.
for stream in (sys.stdout, sys.stderr):
    if stream is not None:
        stream.reconfigure(errors="backslashreplace")

check(sys.argv[1:], declared_actions(MANIFEST))

# First on the path, so the bundled versions win over anything installed on the host;
# and `python -I` would not even add this script's own folder.
sys.path[:0] = [str(HERE), str(HERE / "lib")]

from srp.cli import main  # noqa: E402  (needs the path above)

# The arguments exactly as checked: on Windows click would expand %VAR%, $VAR, ~ and
# wildcards in them, an alarm value's too.
main(prog_name="srp-pcap", windows_expand_args=False)
