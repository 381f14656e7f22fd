"""YAML read safely and within bounds.

``yaml.safe_load`` refuses to build arbitrary objects, but it does not bound what a document
expands to: aliases are kept as shared references, so a few lines of nested aliases (the
"billion laughs") load in a blink and then explode into billions of values in whatever walks
the result as a tree (pySigma, a JSON encoder, the configuration checker). Here every
document is composed into its node graph first and the size it would have as a tree is
bounded before a single Python object is built; anchors and aliases within the bound stay
usable. Errors are ``yaml.MarkedYAMLError`` with the line of the node at fault, so callers
report them like any other YAML error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

#: libyaml's parser when PyYAML was built with it: the same safety, about ten times faster.
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLimitError(yaml.MarkedYAMLError):
    """A document that is valid YAML but outside socpipe's bounds."""


def read_bounded(path: Path, max_bytes: int) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes`` bytes. Anything else (a FIFO
    or a device would block or never end) is a ``YamlLimitError``; unreadable files raise
    ``OSError`` and invalid UTF-8 ``UnicodeDecodeError``."""
    # O_NONBLOCK: opening a FIFO would otherwise wait for a writer before fstat could refuse it.
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise YamlLimitError(problem="not a regular file")
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise YamlLimitError(problem=f"larger than the {max_bytes >> 10:,} KiB allowed")
    return data.decode("utf-8")


def load_documents(text: str, *, max_nodes: int) -> list[Any]:
    """Every document of ``text``, each checked before it is constructed: at most
    ``max_nodes`` nodes once aliases are expanded, and none that contains itself."""
    loader = SAFE_LOADER(text)
    documents = []
    try:
        while loader.check_node():
            node = loader.get_node()
            check_node_graph(node, max_nodes=max_nodes)
            documents.append(loader.construct_document(node))
    finally:
        loader.dispose()
    return documents


def load_document(text: str, *, max_nodes: int) -> Any:
    """The single document of ``text`` (None when empty), checked as ``load_documents`` does."""
    documents = load_documents(text, max_nodes=max_nodes)
    if len(documents) > 1:
        raise yaml.YAMLError("expected a single document, found several")
    return documents[0] if documents else None


def check_node_graph(root: yaml.Node, *, max_nodes: int) -> None:
    """Raise ``YamlLimitError`` if the graph under ``root`` refers to itself or would hold
    more than ``max_nodes`` nodes as a tree.

    An alias is the anchored node itself, reached twice. Sizes are worked out once per
    distinct node (post-order, without recursion), so checking takes time linear in the
    document, whatever it would expand to.
    """
    expanded: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        identity = id(node)
        children = _children(node)
        if children_done:
            on_path.discard(identity)
            size = 1 + sum(expanded[id(child)] for child in children)
            if size > max_nodes:
                raise YamlLimitError(
                    problem=f"the document expands to more than {max_nodes:,} values"
                    " (aliases repeating aliases?)",
                    problem_mark=node.start_mark,
                )
            expanded[identity] = size
            continue
        if identity in expanded:
            continue
        if identity in on_path:
            raise YamlLimitError(
                problem="a value that contains itself (recursive alias)",
                problem_mark=node.start_mark,
            )
        on_path.add(identity)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                raise YamlLimitError(
                    problem="a value that contains itself (recursive alias)",
                    problem_mark=child.start_mark,
                )
            if id(child) not in expanded:
                stack.append((child, False))


def yaml_problem(error: yaml.YAMLError) -> tuple[str, int | None]:
    """What to tell a person about a YAML error: the reason, and the 1-based line if known."""
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    reason = str(getattr(error, "problem", None) or error).replace("\n", " ")
    return (reason if isinstance(error, YamlLimitError) else f"invalid YAML: {reason}"), line


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []
