"""Prompt structure: a prompt file (plain text, Markdown, Prompty, Dotprompt, Copilot prompt
file, or a prompt in Python code) read into the messages a model sees, every visible character
mapped to the file span that produced it, and the parts found in it (roles, variables,
sections, examples)."""
