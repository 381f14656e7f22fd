"""Message templates: "Failed password for <*> from <*>" instead of one string per line.

Drain (He et al., ICWS 2017, as maintained in the drain3 package) groups messages by a fixed-
depth parse tree over their leading tokens. Masking the obvious variables first (addresses,
numbers, hex, block ids) keeps them from splitting one template into many.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

#: Variables masked before mining, most specific first. Plain numbers are left to Drain's own
#: numeric-token handling: masking them too lowered grouping accuracy on the loghub samples
#: (BGL 0.97 -> 0.85, docs/benchmarks.md).
MASKS = (
    (r"blk_-?\d+", "BLK"),
    (r"(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?", "IP"),
    (r"\b[0-9a-fA-F]{8,}\b", "HEX"),
    (r"\b0x[0-9a-fA-F]+\b", "HEX"),
)
UNSEEN_TEMPLATE = "<unseen>"


def new_miner(similarity: float = 0.5, depth: int = 4) -> TemplateMiner:
    config = TemplateMinerConfig()
    config.drain_sim_th = similarity
    config.drain_depth = depth
    config.masking_instructions = [MaskingInstruction(pattern, name) for pattern, name in MASKS]
    config.profiling_enabled = False
    return TemplateMiner(config=config)


class TemplateVocabulary:
    """Learns templates from training messages, then names the template of any message.

    After training the vocabulary is frozen: a message unlike every known template is
    ``<unseen>``, which is itself a signal (new kinds of messages are what anomalies look like).
    """

    def __init__(self, similarity: float = 0.5, depth: int = 4) -> None:
        self.miner = new_miner(similarity, depth)

    def learn(self, messages: Iterable[str]) -> list[str]:
        return [f"T{self.miner.add_log_message(message)['cluster_id']}" for message in messages]

    def template_of(self, message: str) -> str:
        cluster = self.miner.match(message)
        return f"T{cluster.cluster_id}" if cluster is not None else UNSEEN_TEMPLATE

    @property
    def templates(self) -> dict[str, str]:
        return {f"T{c.cluster_id}": c.get_template() for c in self.miner.drain.clusters}


def grouping_accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Loghub's parsing metric: a message counts as right when the group it was put in holds
    exactly the messages of its true template, no more and no fewer."""
    true_groups: dict[str, set[int]] = {}
    predicted_groups: dict[str, set[int]] = {}
    for position, (true_id, predicted_id) in enumerate(zip(truth, predicted, strict=True)):
        true_groups.setdefault(true_id, set()).add(position)
        predicted_groups.setdefault(predicted_id, set()).add(position)
    correct = sum(
        len(members)
        for members in predicted_groups.values()
        if true_groups[truth[next(iter(members))]] == members
    )
    return correct / len(truth) if truth else 0.0
