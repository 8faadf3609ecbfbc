"""Final answers in model output: the last ``\\boxed{...}``, a light normal form, and grading against
a reference with math-verify (symbolic equivalence, so ``0.5`` matches ``\\frac{1}{2}``).

math-verify (and sympy behind it) is imported inside the grading functions, so importing this module
stays cheap.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

BOX_COMMANDS = ("\\boxed", "\\fbox")
TIMEOUT_S = 5  # math-verify's own default per parse and per comparison

_SPACING = re.compile(r"\\[!,;:]|\\ ")  # \! \, \; \: and "\ ": spacing only
_SIZING = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])")  # \left( ... \right): size only
_FRAC = re.compile(r"\\[dt]frac(?![a-zA-Z])")
_SPACE = re.compile(r"(?<![a-zA-Z])\s+|\s+(?![a-zA-Z])")  # keep a space only between two letters (\pi r)


def extract_boxed(text: str) -> str | None:
    """The content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed 5``) in
    ``text``, braces matched (nested groups and escaped ``\\{``, ``\\}`` allowed); None if there is none.
    A box left open at the end of the text is not an answer; an earlier complete one then is."""
    found = None
    for command in BOX_COMMANDS:
        start = 0
        while (at := text.find(command, start)) != -1:
            start = at + len(command)
            if start < len(text) and text[start].isalpha():
                continue  # another command, e.g. \boxedsymbol
            content = _box_content(text, start)
            if content is not None and (found is None or at > found[0]):
                found = (at, content)
    return found[1] if found else None


def _box_content(text: str, start: int) -> str | None:
    """The argument of a box command whose name ends at ``start``, or None if it never closes."""
    i = start
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text):
        return None
    if text[i] != "{":  # \boxed 5: one word, as TeX reads an undelimited argument
        word = re.match(r"[^\s$]+", text[i:])
        return word.group(0) if word else None
    depth = 0
    j = i
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2  # an escaped character (\{, \}) never opens or closes a group
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
        j += 1
    return None


def normalise_answer(answer: str) -> str | None:
    """A light normal form that keeps the mathematical meaning: no surrounding ``$`` or whitespace,
    no spacing or sizing commands, ``\\dfrac``/``\\tfrac`` as ``\\frac``, no trailing full stop,
    no spaces except between two letters. None for an empty answer."""
    s = answer.strip().strip("$").strip()
    s = _SPACING.sub(" ", s)
    s = _SIZING.sub("", s)
    s = _FRAC.sub(r"\\frac", s)
    s = _SPACE.sub("", s).rstrip(".")
    return s or None


def grade(answer: str | None, reference: str) -> bool:
    """Whether ``answer`` equals ``reference`` (both LaTeX without ``$``): equal normal forms, or
    equivalent for math-verify (numbers, fractions, intervals, tuples, sets, expressions)."""
    if answer is None:
        return False
    if normalise_answer(answer) == normalise_answer(reference):
        return True
    return equivalent(reference, answer)


def equivalent(gold: str, other: str) -> bool:
    """math-verify's ``verify(parse(gold), parse(other))``; False when either does not parse."""
    from math_verify import verify

    g, o = _parsed(gold), _parsed(other)
    if not g or not o:
        return False
    return bool(verify(list(g), list(o), timeout_seconds=_timeout()))


def merge_equivalent(answers: list[str | None]) -> list[str | None]:
    """Each answer replaced by the first earlier answer equivalent to it (math-verify), so a majority
    vote counts '0.5' and '\\frac{1}{2}' as one answer. None stays None. Compares distinct strings
    only, each to the representatives found so far."""
    reps: list[str] = []
    chosen: dict[str, str] = {}
    for a in answers:
        if a is None or a in chosen:
            continue
        chosen[a] = next((r for r in reps if equivalent(r, a)), a)
        if chosen[a] == a:
            reps.append(a)
    return [None if a is None else chosen[a] for a in answers]


@lru_cache(maxsize=4096)
def _parsed(latex: str) -> tuple:
    from math_verify import parse

    # an extracted answer is bare LaTeX; math-verify looks for maths between $...$
    return tuple(parse(f"${latex}$", parsing_timeout=_timeout()))


def _timeout() -> int | None:
    # math-verify times out through signal.alarm, which only the main thread may set
    return TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
