"""A session's conversation and its explanations as a JSON file or a self-contained HTML page.

The JSON keeps the library's explanation schema (`Explanation.to_dict()`, typed fields
included), with its "path" key renamed "prompt_path": Gradio clients take any dict with a
"path" string for a file to download.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from promptxray.chat_ui.engine import ExplainResult
from promptxray.chat_ui.session import Session
from promptxray.explainers import nl


def result_json(result: ExplainResult, index: int) -> dict[str, Any]:
    """One explanation with the conversation it indexes into (for the UI and the exports)."""
    conv = result.conversation
    expl = result.explanation.to_dict()
    expl["prompt_path"] = expl.pop("path", None)
    return {
        "reply_index": index,
        "source": conv.text,
        "messages": conv.messages,
        "message_spans": [list(s) for s in conv.spans],
        "target_text": result.target_text,
        "whole_reply": result.whole_reply,
        "seconds": result.seconds,
        "explanation": expl,
    }


def session_json(session: Session, model: str) -> dict[str, Any]:
    return {
        "model": model,
        "turns": [
            {
                "user": t.user,
                "reply": t.reply,
                "note": t.note,
                "stopped": t.stopped,
                "prompt": t.conversation.text,
                "explanations": [
                    result_json(r, i) | {"method": method, "upto": upto, "foil": foil}
                    for (method, upto, foil), r in t.explanations.items()
                ],
            }
            for i, t in enumerate(session.turns)
        ],
    }


def write_json(session: Session, model: str, folder: Path) -> Path:
    path = folder / "promptxray-chat.json"
    data = session_json(session, model)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def session_html(session: Session, threshold: float) -> str:
    """Every turn; under each explained reply the library's summary and its HTML rendering
    of the shown explanation (the tinted prompt, the figures, the top drivers, the report)."""
    from promptxray.explainers.render import render_html

    esc = html.escape
    head, sections = "", []
    for i, t in enumerate(session.turns):
        r = t.shown_result
        body = f"<p><b>User:</b> {esc(t.user)}</p><p><b>Assistant:</b> {esc(t.reply)}</p>"
        if r is None:
            body += "<p><i>Not explained.</i></p>"
        else:
            page = render_html(
                r.explanation, r.conversation.text, f"Reply {i + 1}", session.lang, threshold
            )
            if not head:
                head = page[page.index("<head>") + 6 : page.index("</head>")]
            text = nl.summary(r.explanation, lang=session.lang, threshold=threshold)
            body += f"<p>{esc(text)}</p>"
            body += page[page.index("<body>") + 6 : page.index("</body>")]
        sections.append(f'<section id="turn-{i + 1}"><h2>Turn {i + 1}</h2>{body}</section>')
    head = head or '<meta charset="utf-8"><title>promptxray chat</title>'
    return (
        '<!DOCTYPE html>\n<html lang="en">\n'
        f"<head>{head}</head>\n<body>\n"
        "<h1>promptxray chat export</h1>\n" + "\n<hr>\n".join(sections) + "\n</body>\n</html>\n"
    )


def write_html(session: Session, threshold: float, folder: Path) -> Path:
    path = folder / "promptxray-chat.html"
    path.write_text(session_html(session, threshold), encoding="utf-8")
    return path
