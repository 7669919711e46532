"""One instruction applied to a stage's state (pure): the image config it leaves, the build
arguments in scope, and what the executor must do to the filesystem (a ``Run`` or a ``Copy``;
None for an instruction that only changes the config).

The state's config is the OCI image config's ``config`` object, with docker's keys: Env, Cmd,
Entrypoint, WorkingDir, User, ExposedPorts, Labels, Volumes, StopSignal, Shell, Healthcheck.
"""

import copy
import json
import posixpath
import re

from kago.manager.build.parser import json_form
from kago.manager.build.stages import arg_pairs
from kago.manager.build.substitute import SubstitutionError, expand, expand_words, pairs

DEFAULT_SHELL = ["/bin/sh", "-c"]
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_NS = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
_FLAGS = {"COPY": {"from", "chown", "chmod", "link"}, "ADD": {"chown", "chmod", "link"},
          "HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"}}
_SIGNALS = ("HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT "
            "CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS").split()


class State:
    """A stage's state between instructions."""

    __slots__ = ("args", "author", "cmd_set", "config", "escape", "global_args")

    def __init__(self, config=None, global_args=None, escape="\\"):
        self.config = copy.deepcopy(config or {})
        self.args = {}                  # declared in the stage: name -> value or None
        self.global_args = dict(global_args or {})
        self.escape = escape
        self.cmd_set = False
        self.author = None

    def copy(self):
        other = State(self.config, self.global_args, self.escape)
        other.args, other.cmd_set, other.author = dict(self.args), self.cmd_set, self.author
        return other

    def env_map(self):
        """What ``$NAME`` sees: the stage's ARGs with a value, then ENV over them."""
        out = {k: v for k, v in self.args.items() if v is not None}
        for item in self.config.get("Env") or ():
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def run_env(self):
        """A RUN's environment: ENV, plus the ARGs with a value that ENV does not set."""
        env = list(self.config.get("Env") or ())
        keys = {e.partition("=")[0] for e in env}
        env += [f"{k}={v}" for k, v in self.args.items() if v is not None and k not in keys]
        return env


class Run:
    __slots__ = ("argv", "env", "text", "user", "workdir")

    def __init__(self, argv, env, workdir, user, text):
        self.argv, self.env, self.workdir, self.user, self.text = argv, env, workdir, user, text

    def key(self):
        return {"run": self.argv, "env": self.env, "workdir": self.workdir, "user": self.user}


class Copy:
    """COPY/ADD: ``sources`` (context paths, or paths in ``source``'s filesystem), ``dest``
    (absolute, a directory if it ends in /), ``source`` (a stage label or an image; None: the
    context), ``chown`` ("user[:group]" or None), ``chmod`` (int or None), ``add``."""

    __slots__ = ("add", "chmod", "chown", "dest", "source", "sources", "text")

    def __init__(self, sources, dest, source, chown, chmod, add, text):
        self.sources, self.dest, self.source = list(sources), dest, source
        self.chown, self.chmod, self.add, self.text = chown, chmod, add, text

    def key(self):
        return {"copy": self.sources, "dest": self.dest, "from": self.source,
                "chown": self.chown, "chmod": self.chmod, "add": self.add}


def apply(state, instr, build_args):
    """Apply ``instr`` to ``state`` (changed in place); returns (Run|Copy|None, history text)."""
    handler = _HANDLERS.get(instr.keyword)
    if handler is None:
        raise instr.error(f"{instr.keyword} cannot be used here")
    allowed = _FLAGS.get(instr.keyword, set())
    for flag, _value in instr.flags:
        if flag not in allowed:
            if instr.keyword == "RUN" and flag in ("mount", "network", "security"):
                raise instr.error(f"RUN --{flag} is not supported by kago build")
            if instr.keyword == "ADD" and flag in ("checksum", "keep-git-dir"):
                raise instr.error(f"ADD --{flag} is for URLs and git, which kago build does "
                                  "not fetch")
            raise instr.error(f"{instr.keyword} --{flag}: unknown flag"
                              + (f" (it takes {', '.join('--' + a for a in sorted(allowed))})"
                                 if allowed else ""))
    for flag, value in instr.flags:
        if value is None and flag != "link":
            raise instr.error(f"{instr.keyword} --{flag} needs a value: --{flag}=VALUE")
    try:
        return handler(state, instr, build_args)
    except SubstitutionError as e:
        raise instr.error(str(e)) from None


def _quoted(words):
    """A list as docker's history shows it (Go's %q of a []string): ["sh" "-c" "x"]."""
    return "[" + " ".join(json.dumps(w, ensure_ascii=False) for w in words) + "]"


def _shell_or_exec(state, instr):
    if instr.json is not None:
        return list(instr.json)
    if not instr.args:
        raise instr.error(f"{instr.keyword} needs a command")
    return list(state.config.get("Shell") or DEFAULT_SHELL) + [instr.args]


def _run(state, instr, _ba):
    argv = _shell_or_exec(state, instr)
    cfg = state.config
    return Run(argv, state.run_env(), cfg.get("WorkingDir") or "/", cfg.get("User") or "",
               "RUN " + " ".join(argv)), "RUN " + " ".join(argv)


def _cmd(state, instr, _ba):
    argv = list(instr.json) if instr.json is not None else _shell_or_exec(state, instr)
    if instr.keyword == "CMD":
        state.config["Cmd"] = argv
        state.cmd_set = True
    else:
        state.config["Entrypoint"] = argv
        if not state.cmd_set:  # docker: a base image's CMD does not outlive a new ENTRYPOINT
            state.config.pop("Cmd", None)
    return None, f"{instr.keyword} {_quoted(argv)}"


def _env(state, instr, _ba):
    env = list(state.config.get("Env") or ())
    found = pairs(instr.args, state.env_map(), state.escape, "ENV")
    for key, value in found:
        env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
    state.config["Env"] = env
    return None, "ENV " + " ".join(f"{k}={v}" for k, v in found)


def _label(state, instr, _ba):
    labels = dict(state.config.get("Labels") or {})
    found = pairs(instr.args, state.env_map(), state.escape, "LABEL")
    labels.update(found)
    state.config["Labels"] = labels
    return None, "LABEL " + " ".join(f"{k}={v}" for k, v in found)


def _arg(state, instr, build_args):
    for name, default in arg_pairs(instr, state.env_map(), state.escape):
        if name in build_args:
            value = build_args[name]
        elif default is None and name in state.global_args:
            value = state.global_args[name]   # a global ARG declared again, without a value
        else:
            value = default
        state.args[name] = value
    return None, "ARG " + instr.args


def _workdir(state, instr, _ba):
    path = expand(instr.args.strip(), state.env_map(), state.escape)
    if not path:
        raise instr.error("WORKDIR needs a path")
    if not path.startswith("/"):
        path = posixpath.join(state.config.get("WorkingDir") or "/", path)
    state.config["WorkingDir"] = posixpath.normpath(path).replace("//", "/")
    return None, "WORKDIR " + state.config["WorkingDir"]


def _user(state, instr, _ba):
    user = expand(instr.args.strip(), state.env_map(), state.escape)
    if not user or " " in user:
        raise instr.error("USER needs one user[:group]")
    state.config["User"] = user
    return None, "USER " + user


def _expose(state, instr, _ba):
    ports = dict(state.config.get("ExposedPorts") or {})
    words = expand_words(instr.args, state.env_map(), state.escape)
    if not words:
        raise instr.error("EXPOSE needs a port")
    for word in words:
        port, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        low, _, high = port.partition("-")
        if proto not in ("tcp", "udp", "sctp") or not low.isdigit() or (high and not
                                                                         high.isdigit()):
            raise instr.error(f"EXPOSE {word}: use PORT[/tcp|udp|sctp] or LOW-HIGH[/proto]")
        for number in range(int(low), int(high or low) + 1):
            if not 0 < number < 65536:
                raise instr.error(f"EXPOSE {word}: port {number} is out of range")
            ports[f"{number}/{proto}"] = {}
    state.config["ExposedPorts"] = ports
    return None, "EXPOSE " + " ".join(words)


def _volume(state, instr, _ba):
    paths = (list(instr.json) if instr.json is not None
             else expand_words(instr.args, state.env_map(), state.escape))
    if not paths or any(not p.strip() for p in paths):
        raise instr.error("VOLUME needs a path")
    volumes = dict(state.config.get("Volumes") or {})
    volumes.update({p: {} for p in paths})
    state.config["Volumes"] = volumes
    return None, "VOLUME " + _quoted(paths)


def _stopsignal(state, instr, _ba):
    sig = expand(instr.args.strip(), state.env_map(), state.escape)
    name = sig.upper().removeprefix("SIG")
    ok = (sig.isdigit() and 0 < int(sig) < 65) or name in _SIGNALS or re.match(
        r"^RTM(IN|AX)([+-]\d+)?$", name)
    if not ok:
        raise instr.error(f"STOPSIGNAL {sig}: not a signal (use a name like SIGTERM or a "
                          "number)")
    state.config["StopSignal"] = sig
    return None, "STOPSIGNAL " + sig


def _shell(state, instr, _ba):
    if instr.json is None or not instr.json:
        raise instr.error('SHELL needs the JSON form: SHELL ["/bin/sh", "-c"]')
    state.config["Shell"] = list(instr.json)
    return None, "SHELL " + _quoted(instr.json)


def _maintainer(state, instr, _ba):
    state.author = expand(instr.args.strip(), state.env_map(), state.escape)
    return None, "MAINTAINER " + state.author


def _healthcheck(state, instr, _ba):
    word, _, rest = instr.args.strip().partition(" ")
    if word.upper() == "NONE":
        if rest.strip() or instr.flags:
            raise instr.error("HEALTHCHECK NONE takes no arguments")
        state.config["Healthcheck"] = {"Test": ["NONE"]}
        return None, "HEALTHCHECK NONE"
    if word.upper() != "CMD":
        raise instr.error("HEALTHCHECK needs CMD COMMAND or NONE")
    rest = rest.strip()
    if not rest:
        raise instr.error("HEALTHCHECK CMD needs a command")
    check = {}
    argv = json_form(rest)
    check["Test"] = ["CMD"] + argv if argv is not None else ["CMD-SHELL", rest]
    for flag, value in instr.flags:
        if flag == "retries":
            if not (value or "").isdigit():
                raise instr.error(f"HEALTHCHECK --retries={value}: not a number")
            check["Retries"] = int(value)
        else:
            key = "".join(p.capitalize() for p in flag.split("-"))
            check[key] = _duration(instr, flag, value)
    state.config["Healthcheck"] = check
    return None, "HEALTHCHECK " + _quoted(check["Test"])


def _duration(instr, flag, text):
    """Go's time.ParseDuration (1m30s, 500ms, 10s) -> nanoseconds."""
    if not text:
        raise instr.error(f"HEALTHCHECK --{flag} needs a duration")
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _NS[m.group(2)]
        pos = m.end()
    if text == "0":
        return 0
    if pos != len(text):
        raise instr.error(f"HEALTHCHECK --{flag}={text}: not a duration (use 30s, 1m30s, "
                          "500ms)")
    return int(total)


def _copy(state, instr, _ba):
    add = instr.keyword == "ADD"
    env = state.env_map()
    words = (list(instr.json) if instr.json is not None
             else expand_words(instr.args, env, state.escape))
    if len(words) < 2:
        raise instr.error(f"{instr.keyword} needs a source and a destination")
    *sources, dest = words
    for src in sources:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", src) or src.startswith("git@"):
            if add:
                raise instr.error(f"ADD {src}: kago build does not fetch from the network; "
                                  "download it into the build context and ADD the file")
            raise instr.error(f"COPY {src}: a URL is not a path in the build context")
    workdir = state.config.get("WorkingDir") or "/"
    full = dest if dest.startswith("/") else posixpath.join(workdir, dest)
    if dest.endswith("/") or dest in (".", "..") or dest.endswith("/.") or (
            dest.endswith("/..")):
        full = posixpath.normpath(full) + "/"
    else:
        full = posixpath.normpath(full)
    full = "/" + full.lstrip("/")
    chown = instr.flag("chown")
    chown = expand(chown, env, state.escape) if chown else None
    chmod = instr.flag("chmod")
    if chmod is not None:
        if not re.match(r"^[0-7]{3,4}$", chmod):
            raise instr.error(f"{instr.keyword} --chmod={chmod}: use an octal mode like 755")
        chmod = int(chmod, 8)
    source = instr.flag("from")
    if source is not None:
        source = expand(source, env, state.escape)
        if not source:
            raise instr.error("COPY --from needs a stage name, a stage index or an image")
    text = f"{instr.keyword} " + " ".join(
        [f"--{k}={v}" for k, v in instr.flags] + sources + [dest])
    return Copy(sources, full, source, chown, chmod, add, text), text


_HANDLERS = {"RUN": _run, "CMD": _cmd, "ENTRYPOINT": _cmd, "ENV": _env, "LABEL": _label,
             "ARG": _arg, "WORKDIR": _workdir, "USER": _user, "EXPOSE": _expose,
             "VOLUME": _volume, "STOPSIGNAL": _stopsignal, "SHELL": _shell,
             "MAINTAINER": _maintainer, "HEALTHCHECK": _healthcheck, "COPY": _copy,
             "ADD": _copy}
