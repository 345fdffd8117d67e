"""Compile a Casbin matcher written in a documented subset into a Python function.

The subset (policies/README.md, "What the engine compiles"): `g`-family calls, `==`, `!=`,
`&&`, `||`, `!`, parentheses, `r.<field>` and `p.<field>`, and double-quoted string literals.
Anything else is refused with the construct named, so that a model the engine cannot decide
exactly as Casbin does never loads. A top-level conjunct `r.X == p.Y` becomes the index: the
engine only evaluates the policy lines whose `Y` equals the request's `X`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authz.base.errors import AuthzError


class MatcherError(AuthzError):
    """The matcher is outside the subset the engine compiles."""

    status = 500
    title = "Policy error"
    slug = "policy"


_TOKEN = re.compile(
    r"\s*(?:(?P<str>\"[^\"\\]*\")|(?P<op>&&|\|\||==|!=|!|\(|\)|,)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*))"
)

Node = tuple[Any, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if found is None or found.end() == pos:
            rest = text[pos:].strip()
            raise MatcherError(f"the matcher uses {rest[:12]!r}, which is outside the subset")
        kind = found.lastgroup or ""
        tokens_value = found.group(kind)
        out.append((kind, tokens_value))
        pos = found.end()
    return out


class _Parser:
    """Recursive descent: or ← and (`||` and)*; and ← unary (`&&` unary)*; unary ← `!` unary |
    compare; compare ← atom ((`==`|`!=`) atom)?; atom ← `(` or `)` | call | field | string."""

    def __init__(
        self, text: str, request: Sequence[str], policy: Sequence[str], roles: Mapping[str, int]
    ):
        self.toks = _tokens(text)
        self.i = 0
        self.request, self.policy, self.roles = request, policy, roles

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise MatcherError("the matcher ends too early (unbalanced parentheses?)")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.or_()
        if self.i != len(self.toks):
            raise MatcherError(f"unexpected {self.toks[self.i][1]!r} in the matcher")
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.peek() == "||":
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.unary()
        while self.peek() == "&&":
            self.take()
            node = ("and", node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() == "!":
            self.take()
            return ("not", self.unary())
        return self.compare()

    def compare(self) -> Node:
        left = self.atom()
        op = self.peek()
        if op in ("==", "!="):
            self.take()
            right = self.atom()
            if left[0] not in ("field", "str") or right[0] not in ("field", "str"):
                raise MatcherError(f"`{op}` compares fields and strings only")
            return ("eq" if op == "==" else "ne", left, right)
        if op is not None and op not in ("&&", "||", ")", ","):
            raise MatcherError(f"{op!r} is outside the subset")
        if left[0] in ("field", "str"):
            raise MatcherError(f"a bare {left[0]} is not a condition; compare it with == or !=")
        return left

    def atom(self) -> Node:
        kind, value = self.take()
        if value == "(":
            node = self.or_()
            if self.take()[1] != ")":
                raise MatcherError("unbalanced parentheses in the matcher")
            return node
        if kind == "str":
            return ("str", value[1:-1])
        if kind != "name":
            raise MatcherError(f"unexpected {value!r} in the matcher")
        if value.count(".") > 1:
            raise MatcherError(f"{value}: attribute access is outside the subset")
        if "." in value:
            obj, _, name = value.partition(".")
            fields = self.request if obj == "r" else self.policy if obj == "p" else None
            if fields is None:
                raise MatcherError(f"{value}: only r. and p. fields are in the subset")
            if name not in fields:
                raise MatcherError(f"{value} is not defined in model.conf")
            return ("field", obj, fields.index(name))
        if self.peek() != "(":
            raise MatcherError(f"{value}: bare names are outside the subset")
        if value not in self.roles:
            raise MatcherError(
                f"function {value}() is outside the subset (only g-family role functions)"
            )
        self.take()
        args: list[Node] = []
        while True:
            arg = self.atom()
            if arg[0] not in ("field", "str"):
                raise MatcherError(f"{value}() takes fields and strings")
            args.append(arg)
            sep = self.take()[1]
            if sep == ")":
                break
            if sep != ",":
                raise MatcherError(f"unexpected {sep!r} in {value}()")
        if len(args) != self.roles[value]:
            raise MatcherError(f"{value}() takes {self.roles[value]} arguments, not {len(args)}")
        return ("call", value, tuple(args))


def _python(
    node: Node,
    held: Mapping[str, frozenset[str]] | None = None,
    hoisted: dict[tuple[str, str, str], str] | None = None,
) -> str:
    """Python for `node`; with `held` (`Matcher.decider`), a role call with a constant second
    argument outside `held[role]` reads the role's set once per pair of other arguments."""

    def py(n: Node) -> str:
        return _python(n, held, hoisted)

    kind = node[0]
    if kind == "or":
        return f"({py(node[1])} or {py(node[2])})"
    if kind == "and":
        return f"({py(node[1])} and {py(node[2])})"
    if kind == "not":
        return f"(not {py(node[1])})"
    if kind in ("eq", "ne"):
        op = "==" if kind == "eq" else "!="
        return f"({py(node[1])} {op} {py(node[2])})"
    if kind in ("str", "const"):
        return repr(node[1])
    if kind == "field":
        return f"{node[1]}[{node[2]}]"
    name, args = node[1], node[2]
    if held is not None and hoisted is not None and name in held and len(args) == 3:
        a, b = py(args[0]), py(args[2])
        var = hoisted.setdefault((name, a, b), f"h{len(hoisted)}")
        # Read on first use (a short-circuited test may never need it), then reused.
        found = f"({var} if {var} is not None else ({var} := R[{name + '.held'!r}]({a}, {b}, N)))"
        if args[1][0] == "str" and args[1][1] not in held[name]:
            return f"({args[1][1]!r} in {found})"
        return f"R[{name + '.given'!r}]({found}, {a}, {py(args[1])}, {b}, N)"
    return f"R[{name!r}]({', '.join(py(a) for a in args)})"


def _conjuncts(node: Node) -> list[Node]:
    if node[0] == "and":
        return _conjuncts(node[1]) + _conjuncts(node[2])
    return [node]


#: `fn(r, p, R)`: r and p are the request and policy tuples, R the role functions by name.
Compiled = Callable[[Sequence[str], Sequence[str], Mapping[str, Callable[..., bool]]], bool]


#: `decide(r, R, now)` → (allowed, the line that decided, or None): `Matcher.decider`.
Decide = Callable[[Sequence[str], Mapping[str, Callable[..., Any]], Any], tuple[bool, Any]]


@dataclass(frozen=True)
class Matcher:
    """A compiled matcher: `test(r, p, roles)`, and the index `(r field, p field)` or None."""

    text: str
    test: Compiled
    index: tuple[int, int] | None
    roles: frozenset[str]
    #: The parsed matcher, and its top-level conjunct that is the index (or None).
    tree: Node = ()
    index_node: Node | None = None

    def decider(
        self,
        deny: Sequence[Sequence[str]],
        allow: Sequence[Sequence[str]],
        held: Mapping[str, frozenset[str]],
    ) -> Decide:
        """One function deciding a request over these lines, as `test` line by line would:
        the first deny line that matches, else the first allow line, else (False, None).

        Each line is the matcher with the line's fields as constants and every comparison
        that no longer depends on the request decided now (`r.act == p.act && p.eft ==
        "allow" && …` on an allow line leaves `g(…)`); a line no request can match is left
        out. The index conjunct counts as true: the engine passes only the lines filed under
        the request's index value (`PolicySet.load`).

        `held` names the roles that answer through a set, each with the relations its set
        leaves out: `role(a, rel, b)` becomes `rel in R["role.held"](a, b, now)` for a
        constant `rel` outside them, else `R["role.given"](that set, a, rel, b, now)`; the
        set is read at most once per (a, b) in a decision. Other roles are `R[role](…)`."""
        body: list[str] = []
        lines: list[tuple[bool, Any]] = []
        hoisted: dict[tuple[str, str, str], str] = {}
        for allowed, rules in ((False, deny), (True, allow)):
            for p in rules:
                node = _specialise(self.tree, p, self.index_node)
                if node == _FALSE:
                    continue
                body.append(f"    if {_python(node, held, hoisted)}: return L[{len(lines)}]")
                lines.append((allowed, p))
        head = [f"    {name} = None" for name in hoisted.values()]
        source = "\n".join(["def decide(r, R, N):", *head, *body, "    return NONE", ""])
        scope: dict[str, Any] = {"__builtins__": {}, "L": lines, "NONE": (False, None)}
        exec(compile(source, "<model.conf matcher, per line>", "exec"), scope)  # noqa: S102
        return scope["decide"]  # type: ignore[no-any-return]


_TRUE: Node = ("const", True)
_FALSE: Node = ("const", False)


def _specialise(node: Node, p: Sequence[str], index_node: Node | None) -> Node:
    """`node` with the policy line's fields as strings and constant parts folded."""
    if node is index_node:
        return _TRUE
    kind = node[0]
    if kind == "field":
        return ("str", p[node[2]]) if node[1] == "p" else node
    if kind in ("str", "const"):
        return node
    if kind in ("eq", "ne"):
        left, right = _specialise(node[1], p, None), _specialise(node[2], p, None)
        if left[0] == "str" and right[0] == "str":
            return _TRUE if (left[1] == right[1]) == (kind == "eq") else _FALSE
        return (kind, left, right)
    if kind == "not":
        inner = _specialise(node[1], p, index_node)
        if inner[0] == "const":
            return _FALSE if inner[1] else _TRUE
        return ("not", inner)
    if kind == "call":
        return ("call", node[1], tuple(_specialise(a, p, None) for a in node[2]))
    left, right = _specialise(node[1], p, index_node), _specialise(node[2], p, index_node)
    # `and` and `or` over booleans: a constant side decides or drops out.
    absorbing, neutral = (_FALSE, _TRUE) if kind == "and" else (_TRUE, _FALSE)
    if absorbing in (left, right):
        return absorbing
    if left == neutral:
        return right
    if right == neutral:
        return left
    return (kind, left, right)


def compile_matcher(
    text: str, request: Sequence[str], policy: Sequence[str], roles: Mapping[str, int]
) -> Matcher:
    """Compile `text` over the named request and policy fields and role functions (name →
    arity), or raise MatcherError naming the construct outside the subset."""
    tree = _Parser(text, request, policy, roles).parse()
    index = index_node = None
    for part in _conjuncts(tree):
        if part[0] == "eq" and {part[1][0], part[2][0]} == {"field"}:
            sides = {part[1][1]: part[1][2], part[2][1]: part[2][2]}
            if set(sides) == {"r", "p"}:
                index, index_node = (sides["r"], sides["p"]), part
                break
    code = compile(f"lambda r, p, R: {_python(tree)}", "<model.conf matcher>", "eval")
    fn = eval(code, {"__builtins__": {}})  # noqa: S307 - built from the validated tree only
    used = frozenset(re.findall(r"R\['(\w+)'\]", _python(tree)))
    return Matcher(text, fn, index, used, tree, index_node)


EFFECTS = {
    "some(where (p.eft == allow)) && !some(where (p.eft == deny))": "allow_unless_denied",
    "some(where (p.eft == allow))": "allow",
}


def effect_kind(text: str) -> str:
    """The effect as the engine names it, or MatcherError for one outside the subset."""
    found = EFFECTS.get(text.strip())
    if found is None:
        raise MatcherError(
            f"policy effect {text!r} is outside the subset (allow, allow-unless-deny)"
        )
    return found
