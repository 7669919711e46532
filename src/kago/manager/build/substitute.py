"""Variable substitution in instruction arguments, as docker's shell lexer does it (pure).

``$NAME``, ``${NAME}``, ``${NAME:-word}`` (word if unset or empty), ``${NAME-word}`` (if
unset), ``${NAME:+word}`` (word if set and not empty), ``${NAME+word}`` (if set),
``${NAME:?message}`` / ``${NAME?message}`` (an error if unset, or empty with the colon).
Single quotes keep everything literal; in double quotes the escape character escapes only
``"``, ``$`` and itself; outside quotes it escapes any character. Quotes are removed.
An unknown variable is empty; a ``$`` not followed by a name is a literal ``$``.

``expand`` keeps whitespace (one word: WORKDIR, USER, a value of ENV); ``expand_words``
splits on unquoted whitespace, also inside an unquoted variable's value (COPY, EXPOSE,
VOLUME); ``split_raw`` splits without expanding, keeping quotes (ENV/LABEL pairs, before each
part is expanded); ``pairs`` reads ``key=value ...`` or the old ``KEY value`` form.
"""

import re

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BLANK = " \t\r\n"


class SubstitutionError(ValueError):
    """A message without the place: the caller adds ``Containerfile:N:``."""


class _Scanner:
    def __init__(self, text, env, escape):
        self.s = text
        self.i = 0
        self.env = env
        self.esc = escape

    def _peek(self, k=0):
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def words(self, split, stop=None, active=True):
        """Scan until the end (or an unquoted ``stop``); [words] if ``split``, else [text]."""
        words, cur, have = [], [], False

        def flush():
            nonlocal cur, have
            if have:
                words.append("".join(cur))
            cur, have = [], False

        while self.i < len(self.s):
            c = self.s[self.i]
            if stop and c == stop:
                break
            if c == self.esc:
                if self.i + 1 < len(self.s):
                    cur.append(self.s[self.i + 1])
                    self.i += 2
                else:
                    cur.append(c)
                    self.i += 1
                have = True
            elif c == "'":
                end = self.s.find("'", self.i + 1)
                if end < 0:
                    raise SubstitutionError("unexpected end of text: a ' is not closed")
                cur.append(self.s[self.i + 1:end])
                self.i = end + 1
                have = True
            elif c == '"':
                cur.append(self._double(active))
                have = True
            elif c == "$":
                value = self._dollar(active)
                if split and value is not None:
                    for ch in value:
                        if ch in _BLANK:
                            flush()
                        else:
                            cur.append(ch)
                            have = True
                else:
                    cur.append(value or "")
                    have = have or bool(value)
            elif split and c in _BLANK:
                flush()
                self.i += 1
            else:
                cur.append(c)
                have = True
                self.i += 1
        if split:
            flush()
            return words
        return ["".join(cur)]

    def _double(self, active):
        self.i += 1
        out = []
        while True:
            if self.i >= len(self.s):
                raise SubstitutionError('unexpected end of text: a " is not closed')
            c = self.s[self.i]
            if c == '"':
                self.i += 1
                return "".join(out)
            if c == self.esc and self._peek(1) in ('"', "$", self.esc):
                out.append(self._peek(1))
                self.i += 2
            elif c == "$":
                out.append(self._dollar(active) or "")
            else:
                out.append(c)
                self.i += 1

    def _dollar(self, active):
        """At a ``$``: the value it stands for (None: a literal ``$``)."""
        nxt = self._peek(1)
        if nxt == "{":
            return self._braced(active)
        m = _NAME.match(self.s, self.i + 1)
        if not m:
            self.i += 1
            return "$"
        self.i = m.end()
        return self.env.get(m.group(0), "") if active else ""

    def _braced(self, active):
        start = self.i
        m = _NAME.match(self.s, self.i + 2)
        if not m:
            raise SubstitutionError(f"bad substitution: {self.s[start:start + 12]!r} needs a "
                                    "variable name after ${")
        name = m.group(0)
        self.i = m.end()
        op = ""
        for candidate in (":-", ":+", ":?", "-", "+", "?"):
            if self.s.startswith(candidate, self.i):
                op = candidate
                break
        if not op:
            if self._peek() != "}":
                if self._peek() == "":
                    raise SubstitutionError(f"missing '}}' in ${{{name}")
                raise SubstitutionError(f"unsupported modifier ({self._peek()}) in "
                                        f"${{{name}...}}: kago build knows :- - :+ + :? ?")
            self.i += 1
            return self.env.get(name, "") if active else ""
        self.i += len(op)
        is_set = name in self.env
        full = is_set and self.env[name] != ""
        present = full if op.startswith(":") else is_set
        wanted = {"-": not present, "+": present, "?": not present}[op[-1]]
        word = self.words(False, stop="}", active=active and wanted)[0]
        if self._peek() != "}":
            raise SubstitutionError(f"missing '}}' in ${{{name}{op}...")
        self.i += 1
        if not active:
            return ""
        if op[-1] == "-":
            return word if wanted else self.env[name]
        if op[-1] == "+":
            return word if wanted else ""
        if wanted:
            raise SubstitutionError(f"{name}: {word or 'parameter not set or null'}")
        return self.env[name]


def expand(text, env, escape="\\"):
    """One word: variables expanded, quotes and escapes removed, whitespace kept."""
    return _Scanner(text, env, escape).words(False)[0]


def expand_words(text, env, escape="\\"):
    """Words split on unquoted whitespace, each expanded (``"a b" $X`` -> [a b, ...])."""
    return _Scanner(text, env, escape).words(True)


def split_raw(text, escape="\\"):
    """Split on unquoted whitespace without expanding; quotes and escapes are kept."""
    words, cur, i, quote = [], [], 0, None
    while i < len(text):
        c = text[i]
        if quote:
            cur.append(c)
            if c == escape and quote == '"' and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c == escape and i + 1 < len(text):
            cur += [c, text[i + 1]]
            i += 1
        elif c in "'\"":
            quote = c
            cur.append(c)
        elif c in _BLANK:
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(c)
        i += 1
    if quote:
        raise SubstitutionError(f"unexpected end of text: a {quote} is not closed")
    if cur:
        words.append("".join(cur))
    return words


def pairs(text, env, escape="\\", keyword="ENV", old_form=True):
    """``k=v k2="v 2"`` (or ``KEY the value``, the old form) -> [(key, value)], expanded."""
    words = split_raw(text, escape)
    if not words:
        raise SubstitutionError(f"{keyword} needs at least one argument")
    if "=" not in words[0]:
        if not old_form:
            raise SubstitutionError(f"{keyword} {words[0]}: use name=value")
        if len(words) == 1:
            raise SubstitutionError(f"{keyword} {words[0]} needs a value: use "
                                    f"{keyword} {words[0]}=VALUE")
        key = expand(words[0], env, escape)
        rest = text.strip()[len(words[0]):].strip()
        return [(key, expand(rest, env, escape))]
    out = []
    for word in words:
        if "=" not in word:
            raise SubstitutionError(f"{keyword}: cannot find = in {word!r}: use name=value")
        key, _, value = word.partition("=")
        key = expand(key, env, escape)
        if not key:
            raise SubstitutionError(f"{keyword} names cannot be blank")
        out.append((key, expand(value, env, escape)))
    return out
