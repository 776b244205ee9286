"""The prompt's natural blocks, scored first and exactly: what an anytime explanation shows
within seconds on a long prompt, and where it looks next.

A block is a run of whole lines: a section (a Markdown heading with its text, an XML-style
element such as `<context>`…`</context>`, or a blank-line-separated block, never across a
message; `structure.sections`), cut into chunks of about √lines lines when it is long, and
neighbouring short sections merged when there are many. Each block's score is its exact
leave-one-out effect (the method's own, e.g. occlusion): a handful of variants instead of one
per line.

Leave-one-out's blind spot is redundancy: two blocks that say the same thing each cost
little when removed alone. Before the lines of blocks with no effect are left for later, the
inert blocks are removed together; if that costs the answer, the pairs among them are tested
(interactions.py), and redundant blocks are treated as blocks that matter.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from promptxray.explainers.context import MethodContext
from promptxray.explainers.hierarchy import REFINE_FLOOR, removal_effects
from promptxray.explainers.interactions import FoundPairs, find_pairs
from promptxray.explainers.prompt.document import PromptDocument
from promptxray.explainers.prompt.structure import sections
from promptxray.explainers.registry import MethodSpec
from promptxray.explainers.types import Token

# blocks whose |effect| is under this many nats have no measurable effect (nl's threshold;
# the same figure as hierarchy.REFINE_FLOOR, option refine_floor)
FLOOR = REFINE_FLOOR
# a prompt with more blocks than twice this is first scored in this many large parts of whole
# blocks (the "outline" stage: about two plain forwards, whatever the prompt's length)
OUTLINE_PARTS = 4


@dataclass
class Block:
    """A run of whole lines (indices into the line units) and the tokens they hold."""

    lines: list[int]
    tokens: list[int]


@dataclass
class BlockPass:
    """The blocks' exact leave-one-out scores, which of them matter (their lines are scored
    next), and what the redundancy test found."""

    blocks: list[Block]
    scores: np.ndarray
    matter: list[int]  # block indices, largest |effect| first
    inert: list[int]  # blocks with no measurable effect, alone or with the others
    # the redundancy test of the inert blocks (interactions.find_pairs, inert blocks only)
    pairs: FoundPairs | None = None


def block_size(n_lines: int) -> int:
    """Lines per block: about √lines, so blocks and the lines of one block are both few."""
    return max(2, math.ceil(math.sqrt(n_lines)))


def natural_blocks(
    doc: PromptDocument, tokens: list[Token], line_units: list[list[int]]
) -> list[Block]:
    """The prompt's blocks, in file order (see the module docstring)."""
    n = len(line_units)
    if n == 0:
        return []
    cap = block_size(n)
    starts = sorted(r[0] for part in sections(doc) for r in part.ranges)

    def section_of(line: int) -> int:
        at = tokens[line_units[line][0]].start
        return sum(1 for s in starts if s <= at)

    runs = [list(g) for _, g in itertools.groupby(range(n), key=section_of)]
    chunks: list[list[int]] = []
    for run in runs:  # long sections: near-equal chunks of at most `cap` lines
        parts = math.ceil(len(run) / cap)
        size = math.ceil(len(run) / parts)
        chunks += [run[i : i + size] for i in range(0, len(run), size)]
    if len(chunks) > 2 * cap:  # many short sections: merge neighbours up to `cap` lines
        merged: list[list[int]] = []
        for chunk in chunks:
            if merged and len(merged[-1]) + len(chunk) <= cap:
                merged[-1] = merged[-1] + chunk
            else:
                merged.append(chunk)
        chunks = merged
    return [Block(lines, [t for i in lines for t in line_units[i]]) for lines in chunks]


def outline(blocks: list[Block], parts: int = OUTLINE_PARTS) -> list[list[int]]:
    """Consecutive blocks grouped into at most `parts` runs of about equal line counts (block
    indices); [] when the blocks are few enough to be the first stage themselves."""
    if len(blocks) <= 2 * parts:
        return []
    total = sum(len(b.lines) for b in blocks)
    groups: list[list[int]] = [[]]
    held = 0
    for i, block in enumerate(blocks):
        if groups[-1] and held >= total * len(groups) / parts and len(groups) < parts:
            groups.append([])
        groups[-1].append(i)
        held += len(block.lines)
    return groups


def block_pass(
    ctx: MethodContext, spec: MethodSpec, blocks: list[Block], floor: float = FLOOR
) -> BlockPass:
    """Score every block exactly, then test the inert ones for redundancy (module docstring)."""
    scores = removal_effects(ctx, spec, [b.tokens for b in blocks])
    inert = [i for i, s in enumerate(scores) if abs(s) < floor]
    found = BlockPass(blocks, scores, [], inert)
    found.pairs = find_pairs(ctx, spec, [b.tokens for b in blocks], scores, floor, matter=0)
    joint = found.pairs.test.inert_joint
    if joint is not None and abs(joint) >= floor:  # together they matter: keep the redundant
        # ones (all of them when no pair explains it, or when too many to test in pairs)
        suspects = found.pairs.units() or set(inert)
        found.inert = [i for i in inert if i not in suspects]
    found.matter = sorted(
        (i for i in range(len(blocks)) if i not in found.inert), key=lambda i: -abs(scores[i])
    )
    return found
