"""Prompts in code: promptxray finds them by parsing (never running) this file.

promptxray explain examples/assistant.py:15 -g variable
"""

from openai import OpenAI

SYSTEM_PROMPT = """You are Atlas, the travel assistant of a small agency.
Answer in one short sentence and never invent prices."""


def ask(client: OpenAI, city: str, month: str) -> str:
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"What should I see first in {city} in {month}?"},
    ]
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    return reply.choices[0].message.content or ""
