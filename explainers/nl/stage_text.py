"""The words about an early stage of an anytime explanation (explainers/anytime.py), in English
and Chinese: the short tag every front end puts before an early stage's lines (its parts, its
place in the plan and how exact its figures are) and the one sentence saying what the stage is
and what still runs. A final result (or a single one) has neither. `StageInfo` carries the
figures (granularity, fidelity, pending lines); only this module words them."""

from __future__ import annotations

from promptxray.explainers.details import StageInfo
from promptxray.explainers.nl.tables import templates
from promptxray.explainers.types import Explanation

# what each anytime stage is doing, in the progress lines of the editor and the chat
STAGE_PROGRESS: dict[str, str] = {
    "outline": "exact effects of the prompt's large parts",
    "blocks": "exact block effects",
    "lines_bf16": "lines in bf16",
    "top_lines": "exact lines of the top blocks",
    "lines": "exact line effects",
    "refine": "refining lines, words and tokens",
}
STAGE_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "tag": "[{name} {index}/{total} · {fidelity}] ",
        "timed": "{tag}{seconds} s · ",
        "tag_final": "[{name} {index}/{total}] ",
        # a stage's parts, by stage name (lines_bf16 are lines too: its fidelity says bf16)
        "name_outline": "outline",
        "name_blocks": "blocks",
        "name_lines_bf16": "lines",
        "name_top_lines": "top lines",
        "name_lines": "lines",
        "name_refined": "refined",
        "name_final": "final",
        "exact": "exact",
        "approximate": "{precision} ±{error} nats",
        "name_proxy": "proxy",
        "on_proxy": "by the proxy {model}, not the server's model",
        "units_block": "blocks",
        "units_line": "lines",
        "units_mixed": "parts (lines, and blocks still whole)",
        "note_top_lines": (
            "Exact line effects in the blocks that matter most after {seconds} s; {pending_n} "
            "lines of the other blocks show their block's exact effect until they are scored "
            "next."
        ),
        "note_outline": (
            "Exact effect of each of {count} large parts of the prompt after {seconds} s; "
            "the blocks inside them are being scored."
        ),
        "note_blocks": (
            "Exact effect of each of the prompt's {count} blocks after {seconds} s; the lines "
            "of the blocks that matter are being scored."
        ),
        "note_lines_bf16": (
            "Lines in {precision} after {seconds} s, within {error} nats of exact on the "
            "{checked} lines checked (those {checked} are exact); exact lines are running."
        ),
        "note_lines": "Exact line effects after {seconds} s{pending}; words and tokens are being "
        "refined.",
        "pending_one": "; 1 line in a block with no effect is scored with the final result",
        "pending_many": "; {n} lines in blocks with no effect are scored with the final result",
        # a stage this table does not name: what its tag says, in one sentence
        "note_other_exact": "Exact {name} after {seconds} s; the final result is running.",
        "note_other_approximate": (
            "{name} in {precision} after {seconds} s, within {error} nats of exact on the "
            "{checked} parts checked; the final result is running."
        ),
    },
    "zh": {
        "tag": "[{name} {index}/{total} · {fidelity}] ",
        "timed": "{tag}{seconds} 秒 · ",
        "tag_final": "[{name} {index}/{total}] ",
        "name_outline": "概要",
        "name_blocks": "分块",
        "name_lines_bf16": "逐行",
        "name_top_lines": "重点行",
        "name_lines": "逐行",
        "name_refined": "细化",
        "name_final": "最终",
        "exact": "精确",
        "approximate": "{precision} ±{error} nats",
        "name_proxy": "代理",
        "on_proxy": "由代理模型 {model} 计算，非服务器模型",
        "units_block": "个块",
        "units_line": "行",
        "units_mixed": "个部分（行，以及尚未拆分的块）",
        "note_top_lines": (
            "{seconds} 秒后：最重要的块中各行的精确效果；其他块中的 {pending_n} 行暂以所在块的精确"
            "效果显示，接下来逐行计算。"
        ),
        "note_outline": (
            "{seconds} 秒后：提示中 {count} 个大部分各自的精确效果；其中的各块正在计算。"
        ),
        "note_blocks": (
            "{seconds} 秒后：提示中 {count} 个块各自的精确效果；重要块中的各行正在计算。"
        ),
        "note_lines_bf16": (
            "{seconds} 秒后的 {precision} 逐行结果：在核对的 {checked} 行上与精确值相差不超过 "
            "{error} nats（这 {checked} 行已是精确值）；精确的逐行计算正在进行。"
        ),
        "note_lines": "{seconds} 秒后的精确逐行效果{pending}；词和词元正在细化。",
        "pending_one": "；无效果的块中还有 1 行，将随最终结果计算",
        "pending_many": "；无效果的块中还有 {n} 行，将随最终结果计算",
        "note_other_exact": "{seconds} 秒后的精确结果（{name}）；最终结果正在计算。",
        "note_other_approximate": (
            "{seconds} 秒后的 {precision} 结果（{name}）：在核对的 {checked} 个部分上与精确值"
            "相差不超过 {error} nats；最终结果正在计算。"
        ),
    },
}


def _table(lang: str) -> dict[str, str]:
    return templates(lang, STAGE_TEMPLATES)


def _early(expl: Explanation) -> StageInfo | None:
    """The explanation's stage when it is an early one (None: final, or a single result)."""
    stage = expl.stage
    return None if stage is None or stage.final else stage


def _error(value: float) -> str:
    return f"{value:.2f}" if value >= 0.005 else f"{value:.1g}"


def stage_tag(expl: Explanation, lang: str = "en") -> str:
    """The short form before an early stage's lines: its parts, its place in the plan and its
    fidelity ("[blocks 1/3 · exact] ", "[lines 2/4 · bf16 ±0.23 nats] "); "" when final."""
    stage = _early(expl)
    if stage is None:
        return ""
    t = _table(lang)
    fidelity = stage.fidelity
    if stage.name == "proxy":  # --proxy: a local model's figures, before the server's
        said = t["on_proxy"].format(model=expl.model)
    elif fidelity.exact:
        said = t["exact"]
    else:
        said = t["approximate"].format(
            precision=fidelity.precision, error=_error(fidelity.max_error)
        )
    name = t.get(f"name_{stage.name}", stage.name)
    return t["tag"].format(name=name, index=stage.index, total=stage.total, fidelity=said)


def timed_stage_tag(expl: Explanation, lang: str = "en") -> str:
    """`stage_tag` with the seconds since the explanation started, for a log of the stages as
    they arrive (the CLI's --stages): "[blocks 1/3 · exact] 3.1 s · "; the final stage, which
    closes the log, has its name and place only ("[refined 3/3] 31.0 s · "); "" without a
    stage."""
    stage = expl.stage
    if stage is None:
        return ""
    t = _table(lang)
    tag = stage_tag(expl, lang)
    if stage.final:
        name = t.get(f"name_{stage.name}", stage.name)
        tag = t["tag_final"].format(name=name, index=stage.index, total=stage.total)
    return t["timed"].format(tag=tag, seconds=f"{stage.seconds:.1f}")


def stage_note(expl: Explanation, lang: str = "en") -> str:
    """One sentence on what an early stage shows, how exact it is, and what still runs (the
    lines still inside whole inert blocks, when there are any); "" when final."""
    stage = _early(expl)
    if stage is None:
        return ""
    t = _table(lang)
    fidelity = stage.fidelity
    n = stage.pending_lines
    pending = "" if n <= 0 else t["pending_one" if n == 1 else "pending_many"].format(n=n)
    figures = {
        "seconds": f"{stage.seconds:.1f}",
        "count": len(expl.spans),
        "precision": fidelity.precision,
        "error": _error(fidelity.max_error),
        "checked": fidelity.checked,
        "pending": pending,
        "pending_n": n,
        "name": t.get(f"name_{stage.name}", stage.name),
    }
    template = t.get(f"note_{stage.name}")
    if template is None:
        template = t["note_other_exact" if fidelity.exact else "note_other_approximate"]
    return template.format(**figures)


def stage_units(expl: Explanation, lang: str = "en") -> str | None:
    """What an early stage's parts are called in a rank ("#2 of 8 blocks"); None when the
    explanation's own granularity names them (a final result, or no stage granularity)."""
    stage = _early(expl)
    if stage is None:
        return None
    if stage.granularity == "line" and stage.pending_lines > 0:
        return _table(lang)["units_mixed"]  # some parts are still whole blocks
    return _table(lang).get(f"units_{stage.granularity}")


def stage_unit(expl: Explanation) -> str | None:
    """The level of an early stage's parts ("block", "line") where the explanation's own
    granularity ("auto") does not say it; None otherwise."""
    stage = _early(expl)
    if stage is None or stage.granularity not in ("block", "line"):
        return None
    return stage.granularity
